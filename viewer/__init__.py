"""viewer package."""

if __name__ != "citytwin.viewer":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.viewer, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")
