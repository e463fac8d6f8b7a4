"""build_twin_from_files: the real Gothenburg block, and small files made on the fly."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine
from pyproj import CRS

from citytwin.twin.errors import TwinValidationError
from citytwin.twin.realcity import build_twin_from_files
from citytwin.twin.store import load_twin, save_twin
from citytwin.twin.validation import validate_twin

X0, Y0 = 500_000.0, 6_400_000.0
GRID = Affine(2.0, 0.0, X0, 0.0, -2.0, Y0)  # 2 m cells, 30 × 40 → 80 m × 60 m


def raises(match: str):
    return pytest.raises(TwinValidationError, match=re.escape(match))


@pytest.fixture
def small_files(tmp_path, write_tif):
    """DEM, DSM (a 9 m block) and footprints (GeoJSON, WGS84) for a tiny site."""
    dem = np.full((30, 40), 20.0, dtype=np.float32)
    dsm = dem.copy()
    dsm[5:15, 5:15] += 9.0  # x 10–30 m, y 10–30 m below the top edge
    write_tif(tmp_path / "dem.tif", dem, transform=GRID, crs="EPSG:3006")
    write_tif(tmp_path / "dsm.tif", dsm, transform=GRID, crs="EPSG:3006")
    fp = gpd.GeoDataFrame(
        {"name": ["Hus A", "Hus B"], "h": [9.5, 4.0]},
        geometry=[shapely.box(X0 + 10, Y0 - 30, X0 + 30, Y0 - 10),
                  shapely.box(X0 + 200, Y0 - 30, X0 + 220, Y0 - 10)],  # B is off the DEM
        crs=3006,
    ).to_crs(4326)
    fp.to_file(tmp_path / "footprints.geojson")
    return tmp_path


def test_build_from_small_files_with_dsm(small_files):
    twin, warnings = build_twin_from_files(
        small_files / "dem.tif", buildings_path=small_files / "footprints.geojson",
        dsm_path=small_files / "dsm.tif", name="tiny-site")
    assert twin.name == "tiny-site" and twin.crs == CRS.from_epsg(3006)
    assert twin.terrain.shape == (30, 40)
    assert twin.buildings["id"].tolist() == ["B-00000"]
    assert twin.buildings["height_m"].iloc[0] == pytest.approx(9.0)
    assert twin.buildings["floors"].iloc[0] == 3
    area = twin.buildings.geometry.iloc[0].area
    assert area == pytest.approx(400.0, rel=1e-6)
    assert twin.buildings["occupants"].iloc[0] == round(3 * area / 30.0)
    assert twin.population == 40
    assert warnings == [f"{small_files / 'footprints.geojson'}: 1 footprint(s) outside the "
                        "terrain extent were dropped"]
    meta = twin.metadata
    assert meta["generator"] == "twin.realcity"
    assert set(meta["sources"]) == {"dem", "dsm", "buildings"}
    assert meta["sources"]["dem"]["file"] == "dem.tif"
    assert len(meta["sources"]["dem"]["sha256"]) == 64
    assert validate_twin(twin) == []


def test_build_with_height_column_and_default_name(small_files):
    twin, _ = build_twin_from_files(small_files / "dem.tif",
                                    buildings_path=small_files / "footprints.geojson",
                                    height_column="h")
    assert twin.name == "dem"
    assert twin.buildings["height_m"].tolist() == [9.5]
    assert twin.metadata["height_source"] == "column h"


def test_build_with_crs_reprojects_the_dem(small_files):
    twin, _ = build_twin_from_files(small_files / "dem.tif", crs="EPSG:3007",
                                    buildings_path=small_files / "footprints.geojson",
                                    height_column="h")
    assert twin.crs.to_string() == "EPSG:3007"
    assert twin.buildings.crs == twin.crs and twin.terrain.crs == twin.crs
    assert np.allclose(twin.terrain.elevation_m, 20.0)


def test_dem_only_twin_and_ignored_dsm(small_files):
    twin, warnings = build_twin_from_files(small_files / "dem.tif",
                                           dsm_path=small_files / "dsm.tif")
    assert len(twin.buildings) == 0 and twin.population == 0
    assert warnings == [f"{small_files / 'dsm.tif'}: DSM ignored: no buildings to take heights "
                        "for"]


def test_buildings_need_a_height_source(small_files):
    path = small_files / "footprints.geojson"
    with raises(f"{path}: height_m: no building heights: pass dsm_path (--dsm) or "
                "height_column (--height-column)"):
        build_twin_from_files(small_files / "dem.tif", buildings_path=path)


def test_dem_without_crs_needs_crs(tmp_path, write_tif):
    path = write_tif(tmp_path / "plain.tif", np.ones((5, 5), dtype=np.float32),
                     transform=GRID)
    with raises(f"{path}: crs: has no CRS; pass target_crs / --crs"):
        build_twin_from_files(path)
    twin, _ = build_twin_from_files(path, crs=3006)
    assert twin.crs == CRS.from_epsg(3006)


def test_bad_crs_option(small_files):
    with raises("--crs: crs: cannot understand CRS 'not-a-crs'"):
        build_twin_from_files(small_files / "dem.tif", crs="not-a-crs")


@pytest.mark.shared
def test_gothenburg_kronenhuset(gothenburg_dir, tmp_path):
    """DEM 223 × 234 at 1 m (EPSG:3007), footprints clipped to it, heights from DSM − DEM.

    PROVENANCE.md: DSM − DEM on building cells has median 15.5 m (5th–95th percentile
    6.3–19.3 m); 137 footprints over a much wider extent than the DEM.
    """
    twin, warnings = build_twin_from_files(
        gothenburg_dir / "DEM_KRbig.tif", buildings_path=gothenburg_dir / "buildings.shp",
        dsm_path=gothenburg_dir / "DSM_KRbig.tif", name="gothenburg-kronenhuset")
    assert twin.crs.to_string() == "EPSG:3007"
    assert twin.terrain.shape == (223, 234) and twin.terrain.cell_size_m == 1.0
    assert twin.terrain.bounds == (147720.0, 6398557.0, 147954.0, 6398780.0)
    b = twin.buildings
    assert 30 <= len(b) <= 41  # 41 footprints touch the DEM; a few have no height there
    xmin, ymin, xmax, ymax = b.total_bounds
    assert twin.terrain.contains(np.array([xmin, xmax]), np.array([ymin, ymax])).all()
    median = float(b["height_m"].median())
    assert 13.0 <= median <= 17.0, median
    assert (b["height_m"] >= 2.0).all() and (b["height_m"] < 40.0).all()
    # Area-weighted median height ~ the PROVENANCE cell median (15.5 m).
    order = np.argsort(b["height_m"].to_numpy())
    weights = np.cumsum(b.geometry.area.to_numpy()[order])
    weighted = b["height_m"].to_numpy()[order][np.searchsorted(weights, weights[-1] / 2)]
    assert 14.5 <= weighted <= 16.5, weighted
    assert (b["floors"] == np.maximum(1, np.floor(b["height_m"] / 3.0 + 0.5))).all()
    expected = np.floor(b["floors"] * b.geometry.area / 30.0 + 0.5).astype(int)
    assert (b["occupants"] == expected).all()
    assert 2_000 < twin.population < 8_000
    text = "\n".join(warnings)
    assert "footprint(s) outside the terrain extent were dropped" in text
    assert "crossing the terrain edge were clipped to it" in text
    assert "invalid footprint(s) were repaired" in text
    assert validate_twin(twin) == []
    back = load_twin(save_twin(twin, tmp_path / "gbg"))
    assert back.buildings.equals(twin.buildings)
    assert np.array_equal(back.terrain.elevation_m, twin.terrain.elevation_m)
