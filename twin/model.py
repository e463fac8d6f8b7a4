"""The city twin: one projected CRS in metres holding terrain, buildings, networks and places."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
from pyproj import CRS

from citytwin.twin.network import PipeNetwork
from citytwin.twin.terrain import Terrain

#: Columns of the buildings layer (besides geometry = footprint polygon).
BUILDING_COLUMNS = ("id", "height_m", "floors", "use", "occupants", "year_built")
#: Columns of the places layer (besides geometry = point or polygon).
PLACE_COLUMNS = ("id", "name", "kind", "protected", "capacity")
#: Place kinds with a meaning to the warning logic.
PLACE_KINDS = (
    "school", "hospital", "kindergarten", "elderly_home", "venue", "plaza", "transit_station",
    "shelter", "hazard_source", "restaurant",
)
#: Columns of the reservoirs layer (pool polygons and dam lines).
RESERVOIR_COLUMNS = ("id", "name", "kind", "normal_level_m", "crest_level_m")
#: Network names the twin knows.
NETWORK_NAMES = ("gas", "water", "drainage", "heat")


@dataclass
class CityTwin:
    """A CIM-style city model; every layer in ``crs`` (projected, metres)."""

    name: str
    crs: CRS
    terrain: Terrain
    buildings: gpd.GeoDataFrame
    networks: dict[str, PipeNetwork] = field(default_factory=dict)
    places: gpd.GeoDataFrame | None = None
    reservoirs: gpd.GeoDataFrame | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.places is None:
            self.places = empty_layer(PLACE_COLUMNS, self.crs)
        if self.reservoirs is None:
            self.reservoirs = empty_layer(RESERVOIR_COLUMNS, self.crs)

    @property
    def population(self) -> int:
        """Total occupants over all buildings (persons)."""
        return int(self.buildings["occupants"].sum()) if len(self.buildings) else 0

    @property
    def protected_targets(self) -> gpd.GeoDataFrame:
        """Places flagged as protected (schools, hospitals, …)."""
        return self.places[self.places["protected"].astype(bool)]

    def summary(self) -> dict:
        """Counts and extents, for `citytwin twin info` and run manifests."""
        xmin, ymin, xmax, ymax = self.terrain.bounds
        return {
            "name": self.name,
            "crs": self.crs.to_string(),
            "terrain_shape": list(self.terrain.shape),
            "cell_size_m": self.terrain.cell_size_m,
            "bounds_m": [xmin, ymin, xmax, ymax],
            "elevation_range_m": [
                float(np.nanmin(self.terrain.elevation_m)),
                float(np.nanmax(self.terrain.elevation_m)),
            ],
            "buildings": len(self.buildings),
            "population": self.population,
            "networks": {
                name: {"nodes": len(net.nodes), "links": len(net.links)}
                for name, net in sorted(self.networks.items())
            },
            "places": len(self.places),
            "protected_targets": len(self.protected_targets),
            "reservoirs": len(self.reservoirs),
        }


def empty_layer(columns: tuple[str, ...], crs: CRS) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the given columns and CRS."""
    return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=crs)
