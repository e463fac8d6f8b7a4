"""City twin: terrain, buildings, pipe networks and places in one projected CRS (metres)."""

from twin.errors import InputError, TwinValidationError
from twin.model import CityTwin
from twin.network import PipeNetwork
from twin.terrain import Terrain

__all__ = ["CityTwin", "InputError", "PipeNetwork", "Terrain", "TwinValidationError"]
