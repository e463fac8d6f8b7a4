"""Helpers for sensors_sim tests: a clean test sensor type and a tiny hand-made twin."""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
from affine import Affine
from pyproj import CRS
from shapely.geometry import LineString, Point

from citytwin.sensors_sim.catalogue import SensorType
from citytwin.twin.model import CityTwin
from citytwin.twin.network import PipeNetwork
from citytwin.twin.terrain import Terrain

EPSG = 32650  # WGS 84 / UTM zone 50N: projected, metres
X0, Y0 = 400_000.0, 3_500_000.0  # upper-left corner of the tiny terrain
CELL_M = 10.0

#: A clean gauge: no lag, noise, bias, drift or faults; tests switch on what they need.
CLEAN = SensorType(
    id="test_gauge", quantity="test_value_u", unit="u", range_min=-1000.0, range_max=1000.0,
    resolution=1e-6, noise_sd=0.0, bias_sd=0.0, drift_per_day_sd=0.0, response_t90_s=0.0,
    interval_s=10.0, latency_s=0.0, drop_probability=0.0, offline_rate_per_day=0.0,
    offline_mean_duration_s=3600.0, stuck_rate_per_day=0.0, stuck_mean_duration_s=3600.0,
    description="a test gauge", source="tests",
)


def gauge(**changes: object) -> dict[str, SensorType]:
    """A one-type catalogue: ``CLEAN`` with ``changes``."""
    return {"test_gauge": dataclasses.replace(CLEAN, **changes)}


def gauge_records(n: int, prefix: str = "S", **extra: object) -> list[dict]:
    """``n`` test_gauge sensors in a row, 10 m apart."""
    return [{"sensor_id": f"{prefix}{i:04d}", "type_id": "test_gauge", "x_m": 10.0 * i,
             "y_m": 0.0, **extra} for i in range(n)]


def _gdf(rows: list[dict], geoms: list, crs: CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=crs)


def make_tiny_twin() -> CityTwin:
    """A 200 m × 200 m twin with only a gas network.

    Nodes (kind): G-st (station), G-j1 (junction), G-v1, G-v2, G-v3, G-v4 (valve_well).
    Links (install year): G-st–G-j1 1980, G-j1–G-v1 1990, G-v1–G-v2 2015,
    G-j1–G-v3 2006 (exactly 20 years old in 2026), G-v4–G-j1 no install year (NaN).
    """
    crs = CRS.from_epsg(EPSG)
    z = np.full((20, 20), 5.0)
    terrain = Terrain(elevation_m=z, transform=Affine(CELL_M, 0, X0, 0, -CELL_M, Y0), crs=crs)
    xy = {"G-st": (X0 + 10, Y0 - 100), "G-j1": (X0 + 60, Y0 - 100),
          "G-v1": (X0 + 110, Y0 - 100), "G-v2": (X0 + 160, Y0 - 100),
          "G-v3": (X0 + 60, Y0 - 40), "G-v4": (X0 + 60, Y0 - 160)}
    kinds = {"G-st": "station", "G-j1": "junction", "G-v1": "valve_well", "G-v2": "valve_well",
             "G-v3": "valve_well", "G-v4": "valve_well"}
    nodes = _gdf([{"id": k, "kind": kinds[k], "depth_m": 1.2} for k in xy],
                 [Point(p) for p in xy.values()], crs)
    pairs = [("G-st", "G-j1", 1980), ("G-j1", "G-v1", 1990), ("G-v1", "G-v2", 2015),
             ("G-j1", "G-v3", 2006), ("G-v4", "G-j1", np.nan)]
    links = _gdf([{"id": f"G-l{k}", "from_node": a, "to_node": b, "diameter_mm": 160.0,
                   "material": "PE", "install_year": year, "pressure_class": "low"}
                  for k, (a, b, year) in enumerate(pairs)],
                 [LineString([xy[a], xy[b]]) for a, b, _ in pairs], crs)
    buildings = gpd.GeoDataFrame(
        {c: [] for c in ("id", "height_m", "floors", "use", "occupants", "year_built")},
        geometry=[], crs=crs)
    return CityTwin(name="tiny", crs=crs, terrain=terrain, buildings=buildings,
                    networks={"gas": PipeNetwork("gas", nodes, links)})
