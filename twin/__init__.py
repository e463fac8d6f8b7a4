"""City twin: terrain, buildings, pipe networks and places in one projected CRS (metres)."""

from twin.errors import InputError, TwinValidationError
from twin.model import CityTwin
from twin.network import PipeNetwork
from twin.realcity import build_twin_from_files
from twin.store import load_twin, save_twin
from twin.synthetic import synthetic_city
from twin.terrain import Terrain
from twin.validation import validate_twin

__all__ = [
    "CityTwin", "InputError", "PipeNetwork", "Terrain", "TwinValidationError",
    "build_twin_from_files", "load_twin", "save_twin", "synthetic_city", "validate_twin",
]
