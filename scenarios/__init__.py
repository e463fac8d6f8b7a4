"""scenarios package."""

if __name__ != "citytwin.scenarios":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.scenarios, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")
