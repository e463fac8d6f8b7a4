"""Simulated sensors: types (``catalogue``), a network placed on twin assets with cadence
groups (``network``) and the vectorised measurement model with faults (``measurement``)."""

if __name__ != "citytwin.sensors_sim":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.sensors_sim, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")
