"""City twin: terrain, buildings, pipe networks and places in one projected CRS (metres)."""

if __name__ != "citytwin.twin":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.twin, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")

from citytwin.twin.errors import InputError, TwinValidationError
from citytwin.twin.model import CityTwin
from citytwin.twin.network import PipeNetwork
from citytwin.twin.realcity import build_twin_from_files
from citytwin.twin.store import load_twin, save_twin
from citytwin.twin.synthetic import synthetic_city
from citytwin.twin.terrain import Terrain
from citytwin.twin.validation import validate_twin

__all__ = [
    "CityTwin", "InputError", "PipeNetwork", "Terrain", "TwinValidationError",
    "build_twin_from_files", "load_twin", "save_twin", "synthetic_city", "validate_twin",
]
