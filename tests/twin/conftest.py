"""Fixtures for twin tests: the shared reference data, a small hand-made twin, GeoTIFF writer."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS
from shapely.geometry import LineString, Point

from citytwin.twin.model import CityTwin
from citytwin.twin.network import PipeNetwork
from citytwin.twin.terrain import Terrain

#: SWEREF99 TM: projected, metres.
EPSG = 3006
X0, Y0 = 500_000.0, 6_400_000.0  # upper-left corner of the hand-made terrain
CELL_M = 10.0
ROWS, COLS = 20, 30  # 200 m × 300 m


def _gdf(rows: list[dict], geoms: list, crs: CRS) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(pd.DataFrame(rows), geometry=geoms, crs=crs)


def make_small_twin() -> CityTwin:
    """A 200 m × 300 m twin with every layer: 3 buildings, 2 places, a pool and a dam line,
    a gas network (4 nodes, 3 links) and a water network (2 nodes, 1 link)."""
    crs = CRS.from_epsg(EPSG)
    rows, cols = np.mgrid[0:ROWS, 0:COLS]
    z = 10.0 + 0.05 * rows + 0.02 * cols  # rises southward and eastward
    terrain = Terrain(elevation_m=z, transform=Affine(CELL_M, 0, X0, 0, -CELL_M, Y0), crs=crs)
    ymin = Y0 - ROWS * CELL_M
    buildings = _gdf(
        [
            {"id": "B-1", "height_m": 12.0, "floors": 4, "use": "residential", "occupants": 40,
             "year_built": 1990},
            {"id": "B-2", "height_m": 30.0, "floors": 10, "use": "office", "occupants": 200,
             "year_built": 2005},
            {"id": "B-3", "height_m": 6.0, "floors": 2, "use": "school", "occupants": 120,
             "year_built": 1970},
        ],
        [shapely.box(X0 + 20, ymin + 20, X0 + 50, ymin + 50),
         shapely.box(X0 + 100, ymin + 100, X0 + 130, ymin + 140),
         shapely.box(X0 + 200, ymin + 30, X0 + 240, ymin + 60)],
        crs,
    )
    places = _gdf(
        [
            {"id": "P-school", "name": "School", "kind": "school", "protected": True,
             "capacity": 120},
            {"id": "P-plaza", "name": "Plaza", "kind": "plaza", "protected": False,
             "capacity": 500},
        ],
        [Point(X0 + 220, ymin + 45), shapely.box(X0 + 150, ymin + 20, X0 + 190, ymin + 60)],
        crs,
    )
    reservoirs = _gdf(
        [
            {"id": "R-pool", "name": "Pond", "kind": "pool", "normal_level_m": 11.0,
             "crest_level_m": 12.0},
            {"id": "R-dam", "name": "Pond dam", "kind": "dam", "normal_level_m": 11.0,
             "crest_level_m": 12.0},
        ],
        [shapely.box(X0 + 10, Y0 - 40, X0 + 80, Y0 - 10),
         LineString([(X0 + 10, Y0 - 45), (X0 + 80, Y0 - 45)])],
        crs,
    )
    gas_xy = {"G-n1": (X0 + 10, ymin + 80), "G-n2": (X0 + 90, ymin + 80),
              "G-n3": (X0 + 170, ymin + 80), "G-n4": (X0 + 170, ymin + 150)}
    gas_nodes = _gdf(
        [{"id": k, "kind": kind, "depth_m": 1.2}
         for k, kind in zip(gas_xy, ["station", "junction", "valve_well", "junction"],
                            strict=True)],
        [Point(xy) for xy in gas_xy.values()], crs)
    gas_pairs = [("G-n1", "G-n2"), ("G-n2", "G-n3"), ("G-n3", "G-n4")]
    gas_links = _gdf(
        [{"id": f"G-l{k + 1}", "from_node": a, "to_node": b, "diameter_mm": 160.0,
          "material": "PE", "install_year": 1995 + k, "pressure_class": "low"}
         for k, (a, b) in enumerate(gas_pairs)],
        [LineString([gas_xy[a], gas_xy[b]]) for a, b in gas_pairs], crs)
    water_nodes = _gdf([{"id": "W-n1", "kind": "hydrant", "depth_m": 1.5},
                        {"id": "W-n2", "kind": "junction", "depth_m": 1.5}],
                       [Point(X0 + 10, ymin + 90), Point(X0 + 250, ymin + 90)], crs)
    water_links = _gdf([{"id": "W-l1", "from_node": "W-n1", "to_node": "W-n2",
                         "diameter_mm": 200.0, "material": "ductile_iron",
                         "install_year": 1988, "pressure_class": "PN10"}],
                       [LineString([(X0 + 10, ymin + 90), (X0 + 250, ymin + 90)])], crs)
    return CityTwin(
        name="small",
        crs=crs,
        terrain=terrain,
        buildings=buildings,
        networks={"gas": PipeNetwork("gas", gas_nodes, gas_links),
                  "water": PipeNetwork("water", water_nodes, water_links)},
        places=places,
        reservoirs=reservoirs,
        metadata={"made_by": "tests/twin/conftest.py", "cell_m": CELL_M, "tags": ["a", "b"]},
    )


@pytest.fixture
def small_twin() -> CityTwin:
    """A fresh hand-made twin with every layer (tests may mutate it)."""
    return make_small_twin()


def write_geotiff(
    path: Path,
    z: np.ndarray,
    *,
    transform: Affine,
    crs=None,
    nodata: float | None = None,
) -> Path:
    """Write a one-band GeoTIFF (``crs=None``: no CRS at all)."""
    rows, cols = z.shape
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": 1,
               "dtype": str(z.dtype), "transform": transform}
    if crs is not None:
        profile["crs"] = rasterio.crs.CRS.from_user_input(crs)
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(z, 1)
    return path


@pytest.fixture
def write_tif():
    """The `write_geotiff` helper, as a fixture."""
    return write_geotiff
