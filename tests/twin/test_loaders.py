"""Loaders: DEM GeoTIFFs, vector layers and buildings from footprints — and their errors."""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.errors import NotGeoreferencedWarning
from shapely.geometry import Point, Polygon

from citytwin.twin.errors import TwinValidationError
from citytwin.twin.loaders import buildings_from_footprints, load_dem, load_layer
from citytwin.twin.terrain import Terrain

X0, Y0 = 500_000.0, 6_400_000.0
GRID = Affine(1.0, 0.0, X0, 0.0, -1.0, Y0)  # 1 m cells, 40 × 50
SWEREF = CRS.from_epsg(3006)


def raises(match: str):
    return pytest.raises(TwinValidationError, match=re.escape(match))


def ramp(rows: int = 40, cols: int = 50, dtype=np.float32) -> np.ndarray:
    r, c = np.mgrid[0:rows, 0:cols]
    return (5.0 + 0.1 * r + 0.01 * c).astype(dtype)


# --------------------------------------------------------------------------- load_dem


def test_load_dem_keeps_grid_dtype_and_crs(tmp_path, write_tif):
    path = write_tif(tmp_path / "dem.tif", ramp(), transform=GRID, crs="EPSG:3006")
    terrain = load_dem(path)
    assert terrain.shape == (40, 50)
    assert terrain.elevation_m.dtype == np.float32
    assert np.array_equal(terrain.elevation_m, ramp())
    assert terrain.transform == GRID
    assert terrain.crs == SWEREF and terrain.crs.to_string() == "EPSG:3006"


def test_integer_dem_becomes_float64(tmp_path, write_tif):
    path = write_tif(tmp_path / "dem.tif", ramp(dtype=np.int16), transform=GRID,
                     crs="EPSG:3006")
    assert load_dem(path).elevation_m.dtype == np.float64


def test_dem_without_crs_is_rejected(tmp_path, write_tif):
    path = write_tif(tmp_path / "nocrs.tif", ramp(), transform=GRID)
    with raises(f"{path}: crs: has no CRS; pass target_crs / --crs"):
        load_dem(path)


def test_dem_without_crs_takes_target_crs(tmp_path, write_tif):
    path = write_tif(tmp_path / "nocrs.tif", ramp(), transform=GRID)
    terrain = load_dem(path, target_crs="EPSG:3006")
    assert terrain.crs == SWEREF and terrain.transform == GRID
    assert np.array_equal(terrain.elevation_m, ramp())


def test_dem_without_georeferencing(tmp_path, write_tif):
    with pytest.warns(NotGeoreferencedWarning):
        path = write_tif(tmp_path / "plain.tif", ramp(), transform=Affine.identity())
    with raises(f"{path}: transform: has no georeferencing (no geotransform: cell size and "
                "position unknown)"):
        load_dem(path, target_crs=3006)


def test_dem_with_nan_hole_names_count_and_first_cell(tmp_path, write_tif):
    z = ramp()
    z[5:7, 8:11] = np.nan  # 6 cells, first at row 5, col 8
    path = write_tif(tmp_path / "hole.tif", z, transform=GRID, crs="EPSG:3006")
    with raises(f"{path}: band 1: 6 of 2000 cells are nodata/NaN (nodata value None); first at "
                "row 5, col 8; the twin needs a complete DEM"):
        load_dem(path)


def test_dem_with_nodata_cells(tmp_path, write_tif):
    z = ramp()
    z[0, 3] = -9999.0
    path = write_tif(tmp_path / "nodata.tif", z, transform=GRID, crs="EPSG:3006",
                     nodata=-9999.0)
    with raises(f"{path}: band 1: 1 of 2000 cells are nodata/NaN (nodata value -9999.0); first "
                "at row 0, col 3"):
        load_dem(path)


def test_corrupt_tif(tmp_path, write_tif):
    good = write_tif(tmp_path / "good.tif", ramp(), transform=GRID, crs="EPSG:3006")
    bad = tmp_path / "corrupt.tif"
    bad.write_bytes(good.read_bytes()[:300])  # truncated: header survives, data does not
    with raises(f"{bad}: cannot be read as a raster (corrupt or not a GeoTIFF?)"):
        load_dem(bad)
    junk = tmp_path / "junk.tif"
    junk.write_bytes(b"this is not a GeoTIFF at all" * 10)
    with raises(f"{junk}: cannot be read as a raster (corrupt or not a GeoTIFF?)"):
        load_dem(junk)


def test_missing_dem_file(tmp_path):
    with raises(f"{tmp_path / 'nope.tif'}: file does not exist"):
        load_dem(tmp_path / "nope.tif")


def test_missing_band(tmp_path, write_tif):
    path = write_tif(tmp_path / "dem.tif", ramp(), transform=GRID, crs="EPSG:3006")
    with raises(f"{path}: band: band 2 does not exist (the file has 1 band(s))"):
        load_dem(path, band=2)


def _lonlat_dem(tmp_path, write_tif):
    """A DEM in WGS84 near Gothenburg whose elevation is a plane in lon/lat."""
    res = 0.0002  # degrees: ~12 m east, ~22 m north
    transform = Affine(res, 0.0, 11.95, 0.0, -res, 57.72)
    rows, cols = 100, 120
    lon = 11.95 + (np.arange(cols) + 0.5) * res
    lat = 57.72 - (np.arange(rows) + 0.5) * res
    z = 10.0 + 1000.0 * (lon[None, :] - 11.95) + 2000.0 * (57.72 - lat[:, None])
    return write_tif(tmp_path / "wgs84.tif", z, transform=transform, crs="EPSG:4326")


def test_geographic_dem_needs_projected_target(tmp_path, write_tif):
    path = _lonlat_dem(tmp_path, write_tif)
    with raises(f"{path}: crs: CRS EPSG:4326 is geographic (degrees); pass a projected "
                "target_crs / --crs in metres"):
        load_dem(path)
    with raises(f"{path}: target_crs: CRS EPSG:4326 is geographic"):
        load_dem(path, target_crs=4326)


def test_geographic_dem_is_reprojected_to_square_cells(tmp_path, write_tif):
    path = _lonlat_dem(tmp_path, write_tif)
    terrain = load_dem(path, target_crs="EPSG:3007")
    t = terrain.transform
    assert terrain.crs == CRS.from_epsg(3007)
    assert t.b == 0 and t.d == 0 and t.a == -t.e and 5.0 < t.a < 25.0
    assert np.isfinite(terrain.elevation_m).all()
    # The reprojected grid lies inside the source footprint and is nearly as large.
    assert terrain.shape[0] * terrain.shape[1] * t.a**2 > 0.8 * (100 * 22.3) * (120 * 11.9)
    # Elevation at cell centres matches the plane evaluated at their lon/lat, to within a
    # few percent of the 0.2–0.4 m step between neighbouring source cells (GDAL widens the
    # bilinear kernel when a target cell spans more than one source cell).
    xs, ys = terrain.cell_centres()
    to_ll = Transformer.from_crs(3007, 4326, always_xy=True)
    r, c = np.meshgrid(np.arange(0, terrain.shape[0], 7), np.arange(0, terrain.shape[1], 7),
                       indexing="ij")
    lon, lat = to_ll.transform(xs[c], ys[r])
    expected = 10.0 + 1000.0 * (lon - 11.95) + 2000.0 * (57.72 - lat)
    assert np.abs(terrain.elevation_m[r, c] - expected).max() < 0.02


def test_projected_dem_reprojected_to_another_projected_crs(tmp_path, write_tif):
    path = write_tif(tmp_path / "dem.tif", ramp(), transform=GRID, crs="EPSG:3006")
    terrain = load_dem(path, target_crs=3007)
    assert terrain.crs.to_string() == "EPSG:3007"
    assert terrain.elevation_m.dtype == np.float32
    assert terrain.transform.a == -terrain.transform.e
    assert np.isfinite(terrain.elevation_m).all()


def test_bad_target_crs_text(tmp_path, write_tif):
    path = write_tif(tmp_path / "dem.tif", ramp(), transform=GRID, crs="EPSG:3006")
    with raises(f"{path}: target_crs: cannot understand CRS 'EPSG:nonsense'"):
        load_dem(path, target_crs="EPSG:nonsense")


# --------------------------------------------------------------------------- load_layer


def test_layer_reprojected_from_wgs84_lands_where_pyproj_says(tmp_path):
    lon, lat = 11.9668, 57.7072  # central Gothenburg
    path = tmp_path / "points.geojson"
    gpd.GeoDataFrame({"name": ["Kronhuset"]}, geometry=[Point(lon, lat)],
                     crs=4326).to_file(path)
    gdf = load_layer(path, target_crs="EPSG:3007")
    x, y = Transformer.from_crs(4326, 3007, always_xy=True).transform(lon, lat)
    assert gdf.crs == CRS.from_epsg(3007)
    assert gdf.geometry.iloc[0].x == pytest.approx(x, abs=1e-6)
    assert gdf.geometry.iloc[0].y == pytest.approx(y, abs=1e-6)
    assert 147_000 < x < 149_000 and 6_398_000 < y < 6_400_000  # inside the Kronenhuset tile
    assert gdf.attrs["source"] == str(path)


def test_layer_without_crs_needs_source_crs(tmp_path):
    path = tmp_path / "nocrs.gpkg"
    with pytest.warns(UserWarning, match="'crs' was not provided"):
        gpd.GeoDataFrame({"v": [1]}, geometry=[Point(X0, Y0)]).to_file(path)
    with raises(f"{path}: has no CRS; pass source_crs / --crs"):
        load_layer(path, target_crs=3006)
    gdf = load_layer(path, target_crs=3006, source_crs=3006)
    assert gdf.geometry.iloc[0].equals(Point(X0, Y0))


def test_source_crs_does_not_override_a_declared_crs(tmp_path):
    path = tmp_path / "pt.gpkg"
    gpd.GeoDataFrame({"v": [1]}, geometry=[Point(X0, Y0)], crs=3006).to_file(path)
    gdf = load_layer(path, target_crs=3006, source_crs=4326)
    assert gdf.geometry.iloc[0].equals(Point(X0, Y0))


def _latin1_shapefile(folder, cpg: str | None):
    gdf = gpd.GeoDataFrame({"OPERATÖR": ["Göteborgs Stad", "Trafikkontoret"],
                            "NAMN": ["Kronhuset", "Tullhuset"]},
                           geometry=[shapely.box(0, 0, 10, 10), shapely.box(20, 0, 30, 10)],
                           crs=3007)
    path = folder / "latin1.shp"
    pyogrio.write_dataframe(gdf, path, encoding="ISO-8859-1")
    assert "Göteborgs".encode("latin-1") in path.with_suffix(".dbf").read_bytes()
    cpg_path = path.with_suffix(".cpg")
    cpg_path.unlink(missing_ok=True)
    if cpg is not None:
        cpg_path.write_text(cpg)
    return path


@pytest.mark.parametrize("cpg", [None, "UTF-8"], ids=["no-cpg", "cpg-lies-utf8"])
def test_latin1_shapefile_dbf(tmp_path, cpg):
    path = _latin1_shapefile(tmp_path, cpg)
    gdf = load_layer(path, target_crs=3007)
    assert "OPERATÖR" in gdf.columns
    assert gdf["OPERATÖR"].tolist() == ["Göteborgs Stad", "Trafikkontoret"]


def test_multi_layer_geopackage_needs_layer(tmp_path):
    path = tmp_path / "two.gpkg"
    for name in ("roads", "trees"):
        gpd.GeoDataFrame({"v": [1]}, geometry=[Point(X0, Y0)], crs=3006).to_file(
            path, layer=name)
    with raises(f"{path}: layer: has 2 layers (roads, trees); pass layer="):
        load_layer(path, target_crs=3006)
    with raises(f"{path}: layer: no layer 'rivers' (layers: roads, trees)"):
        load_layer(path, target_crs=3006, layer="rivers")
    assert len(load_layer(path, target_crs=3006, layer="trees")) == 1


def test_id_column(tmp_path):
    path = tmp_path / "ids.gpkg"
    gpd.GeoDataFrame({"objid": [7.0, 8.0], "id": ["x", "y"]},
                     geometry=[Point(X0, Y0), Point(X0 + 1, Y0)], crs=3006).to_file(path)
    gdf = load_layer(path, target_crs=3006, id_column="objid")
    assert gdf.columns[0] == "id" and gdf["id"].tolist() == ["7", "8"]
    with raises(f"{path}: gid: no such id column (columns: objid, id, geometry)"):
        load_layer(path, target_crs=3006, id_column="gid")


def test_duplicate_id_column_values(tmp_path):
    path = tmp_path / "dup.gpkg"
    gpd.GeoDataFrame({"objid": ["a", "b", "a"]},
                     geometry=[Point(X0, Y0)] * 3, crs=3006).to_file(path)
    with raises(f"{path}: objid (feature a): duplicate id (appears 2 times)"):
        load_layer(path, target_crs=3006, id_column="objid")


def test_unreadable_layer_file(tmp_path):
    path = tmp_path / "broken.gpkg"
    path.write_bytes(b"not a geopackage")
    with raises(f"{path}: cannot be read as a vector layer"):
        load_layer(path, target_crs=3006)
    with raises(f"{tmp_path / 'missing.shp'}: file does not exist"):
        load_layer(tmp_path / "missing.shp", target_crs=3006)


def test_layer_target_crs_must_be_projected(tmp_path):
    path = tmp_path / "pt.gpkg"
    gpd.GeoDataFrame({"v": [1]}, geometry=[Point(X0, Y0)], crs=3006).to_file(path)
    with raises(f"{path}: target_crs: CRS EPSG:4326 is geographic"):
        load_layer(path, target_crs=4326)


# --------------------------------------------------------------------------- buildings


def flat_terrain(z0: float = 10.0) -> Terrain:
    return Terrain(np.full((40, 50), z0), GRID, SWEREF)


def dsm_with(blocks: list[tuple[slice, slice, float]], z0: float = 10.0) -> Terrain:
    z = np.full((40, 50), z0)
    for rows, cols, h in blocks:
        z[rows, cols] += h
    return Terrain(z, GRID, SWEREF)


def cells_box(r0: int, r1: int, c0: int, c1: int) -> Polygon:
    """Footprint covering rows r0..r1-1 and cols c0..c1-1 of GRID."""
    return shapely.box(X0 + c0, Y0 - r1, X0 + c1, Y0 - r0)


def footprints(geoms, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=list(geoms), crs=SWEREF)


def test_heights_from_dsm_median_floors_and_occupants():
    dsm = dsm_with([(slice(2, 12), slice(2, 12), 12.0), (slice(20, 30), slice(30, 45), 7.4)])
    dsm.elevation_m[5, 5] += 100.0  # an antenna: the median ignores it
    fp = footprints([cells_box(2, 12, 2, 12), cells_box(20, 30, 30, 45)])
    b, warnings = buildings_from_footprints(fp, flat_terrain(), dsm=dsm)
    assert warnings == []
    assert list(b.columns) == ["id", "height_m", "floors", "use", "occupants", "year_built",
                               "geometry"]
    assert b["id"].tolist() == ["B-00000", "B-00001"]
    assert b["height_m"].tolist() == [12.0, pytest.approx(7.4)]
    assert b["floors"].tolist() == [4, 2]  # round(12/3), round(7.4/3)
    assert b["occupants"].tolist() == [round(4 * 100 / 30), 2 * 150 // 30]
    assert b["use"].tolist() == ["unknown", "unknown"]
    assert b["year_built"].isna().all() and str(b["year_built"].dtype) == "Int64"
    assert b.crs == SWEREF


def test_heights_from_column_with_use_year_and_custom_occupancy():
    fp = footprints([cells_box(0, 10, 0, 10), cells_box(10, 20, 10, 30)],
                    h=[9.0, 4.0], kind=["office", None], built=[1999.0, np.nan])
    b, warnings = buildings_from_footprints(
        fp, flat_terrain(), height_column="h", use_column="kind", year_column="built",
        occupancy_m2_per_person=10.0, floor_height_m=4.0)
    assert warnings == []
    assert b["height_m"].tolist() == [9.0, 4.0]
    assert b["floors"].tolist() == [2, 1]
    assert b["occupants"].tolist() == [20, 20]
    assert b["use"].tolist() == ["office", "unknown"]
    assert b["year_built"].tolist()[0] == 1999 and pd.isna(b["year_built"].iloc[1])


def test_outside_dropped_and_crossing_clipped_with_warnings():
    inside = cells_box(2, 12, 2, 12)
    crossing = shapely.box(X0 + 40, Y0 - 20, X0 + 60, Y0 - 10)  # half east of x = X0 + 50
    outside = shapely.box(X0 + 100, Y0 - 20, X0 + 110, Y0 - 10)
    fp = footprints([outside, inside, crossing])
    b, warnings = buildings_from_footprints(fp, flat_terrain(), default_height_m=6.0,
                                            source="src.shp")
    assert b["id"].tolist() == ["B-00001", "B-00002"]  # ids from the source order
    assert b.geometry.iloc[1].equals(shapely.box(X0 + 40, Y0 - 20, X0 + 50, Y0 - 10))
    assert warnings == [
        "src.shp: 1 footprint(s) outside the terrain extent were dropped",
        "src.shp: 1 footprint(s) crossing the terrain edge were clipped to it: B-00002",
    ]


def test_crossing_footprint_is_fatal_without_clipping():
    fp = footprints([cells_box(2, 12, 2, 12), shapely.box(X0 + 40, Y0 - 20, X0 + 60, Y0 - 10)])
    with raises("src.shp: geometry (feature B-00001): footprint lies (partly) outside the "
                "terrain extent (500000.0, 6399960.0, 500050.0, 6400000.0); pass "
                "clip_to_terrain=True"):
        buildings_from_footprints(fp, flat_terrain(), default_height_m=6.0,
                                  clip_to_terrain=False, source="src.shp")


def test_non_positive_dsm_heights_dropped_with_warning():
    dsm = dsm_with([(slice(2, 12), slice(2, 12), 12.0), (slice(20, 30), slice(20, 30), -0.5),
                    (slice(30, 35), slice(0, 5), 0.8)])
    fp = footprints([cells_box(2, 12, 2, 12), cells_box(20, 30, 20, 30), cells_box(30, 35, 0, 5)])
    b, warnings = buildings_from_footprints(fp, flat_terrain(), dsm=dsm, source="f.shp")
    assert b["id"].tolist() == ["B-00000"]
    assert warnings == [
        "f.shp: height_m: 2 building(s) without a usable height were dropped; DSM heights "
        "below 2.0 m do not count (B-00001: DSM − DEM median -0.50 m, B-00002: DSM − DEM "
        "median 0.80 m)"]


def test_non_positive_column_height_falls_back_to_dsm_then_dropped():
    dsm = dsm_with([(slice(2, 12), slice(2, 12), 12.0)])
    fp = footprints([cells_box(2, 12, 2, 12), cells_box(20, 30, 20, 30)], h=[-1.0, 0.0])
    b, warnings = buildings_from_footprints(fp, flat_terrain(), dsm=dsm, height_column="h",
                                            source="f.shp")
    assert b["id"].tolist() == ["B-00000"] and b["height_m"].tolist() == [12.0]
    assert "B-00001: DSM − DEM median 0.00 m" in warnings[0]


def test_tiny_footprint_takes_cell_under_it():
    dsm = dsm_with([(slice(4, 5), slice(6, 7), 9.0)])
    fp = footprints([shapely.box(X0 + 6.2, Y0 - 4.8, X0 + 6.6, Y0 - 4.4)])
    b, _ = buildings_from_footprints(fp, flat_terrain(), dsm=dsm)
    assert b["height_m"].tolist() == [9.0]


def test_dsm_on_another_grid_is_resampled():
    coarse = Affine(2.0, 0.0, X0, 0.0, -2.0, Y0)
    z = np.full((20, 25), 10.0)
    z[1:6, 1:6] += 15.0  # 2 m cells: rows/cols 2..11 of the 1 m grid
    dsm = Terrain(z, coarse, SWEREF)
    fp = footprints([cells_box(4, 10, 4, 10)])
    b, _ = buildings_from_footprints(fp, flat_terrain(), dsm=dsm)
    assert b["height_m"].iloc[0] == pytest.approx(15.0)


def test_invalid_footprint_repaired_and_empty_dropped():
    bowtie = Polygon([(X0 + 2, Y0 - 2), (X0 + 12, Y0 - 12), (X0 + 12, Y0 - 2),
                      (X0 + 2, Y0 - 12)])
    fp = footprints([bowtie, Polygon(), None, cells_box(20, 30, 20, 30)], gid=["a", "b", "c",
                                                                               "d"])
    b, warnings = buildings_from_footprints(fp, flat_terrain(), default_height_m=3.0,
                                            id_column="gid", source="f.shp")
    assert b["id"].tolist() == ["a", "d"]
    assert b.geometry.iloc[0].is_valid and b.geometry.iloc[0].area == pytest.approx(50.0)
    assert warnings == [
        "f.shp: 2 footprint(s) without geometry were dropped: b, c",
        "f.shp: 1 invalid footprint(s) were repaired (a: Self-intersection[500007 6399993])",
    ]


def test_no_height_source_is_an_error():
    fp = footprints([cells_box(2, 12, 2, 12)])
    with raises("<footprints>: height_m: no source of building heights: give height_column, a "
                "DSM or default_height_m"):
        buildings_from_footprints(fp, flat_terrain())


def test_missing_height_column_is_an_error():
    fp = footprints([cells_box(2, 12, 2, 12)], h=[3.0])
    with raises("f.shp: hoejd: no such column (columns: h, geometry)"):
        buildings_from_footprints(fp, flat_terrain(), height_column="hoejd", source="f.shp")


def test_footprints_in_another_crs_are_reprojected():
    fp = footprints([cells_box(2, 12, 2, 12)]).to_crs(4326)
    b, _ = buildings_from_footprints(fp, flat_terrain(), default_height_m=6.0)
    assert b.crs == SWEREF
    assert b.geometry.iloc[0].area == pytest.approx(100.0, rel=1e-6)


@pytest.mark.shared
def test_gothenburg_shapefile_latin1_field(gothenburg_dir):
    gdf = load_layer(gothenburg_dir / "buildings.shp", target_crs="EPSG:3007")
    assert len(gdf) == 137 and "OPERATÖR" in gdf.columns
    assert "Myndighet/Förvaltning" in set(gdf["VERKSAMHET"].dropna())
    assert gdf.crs == CRS.from_epsg(3007)


@pytest.mark.shared
def test_gothenburg_dem(gothenburg_dir):
    dem = load_dem(gothenburg_dir / "DEM_KRbig.tif")
    assert dem.shape == (223, 234) and dem.cell_size_m == 1.0
    assert dem.bounds == (147720.0, 6398557.0, 147954.0, 6398780.0)
    assert dem.crs.to_string() == "EPSG:3007"
    assert 0.0 < dem.elevation_m.min() < 0.01 and 23.2 < dem.elevation_m.max() < 23.21
