"""validate_twin: every fatal path raises a precise error; non-fatal problems are warnings."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest
import shapely
from affine import Affine
from pyproj import CRS
from shapely.geometry import LineString, Point, Polygon

from citytwin.twin.errors import TwinValidationError
from citytwin.twin.synthetic import synthetic_city
from citytwin.twin.terrain import Terrain
from citytwin.twin.validation import validate_twin

SRC = "city.gpkg"


def raises(match: str):
    """pytest.raises for TwinValidationError with a literal (escaped) message fragment."""
    return pytest.raises(TwinValidationError, match=re.escape(match))


def test_small_twin_and_synthetic_city_are_valid(small_twin):
    assert validate_twin(small_twin, SRC) == []
    assert validate_twin(synthetic_city(0, "tiny")) == []


def test_message_names_source_field_feature_and_reason(small_twin):
    small_twin.buildings.loc[1, "height_m"] = -3.0
    with pytest.raises(TwinValidationError) as info:
        validate_twin(small_twin, SRC)
    err = info.value
    assert str(err) == ("city.gpkg: buildings.height_m (feature B-2): height must be finite "
                        "and > 0 m, got -3.0")
    assert (err.source, err.field, err.feature_id) == (SRC, "buildings.height_m", "B-2")


# --------------------------------------------------------------------------- CRS


def test_missing_crs(small_twin):
    small_twin.crs = None
    with raises("city.gpkg: crs: CRS is missing; a twin needs a projected CRS in metres"):
        validate_twin(small_twin, SRC)


def test_geographic_crs(small_twin):
    wgs84 = CRS.from_epsg(4326)
    small_twin.crs = wgs84
    with raises("city.gpkg: crs: CRS EPSG:4326 is geographic (degrees), not projected in "
                "metres"):
        validate_twin(small_twin, SRC)


def test_engineering_crs(small_twin):
    local = CRS.from_wkt('ENGCRS["site grid",EDATUM["site"],CS[Cartesian,2],'
                         'AXIS["x",east,LENGTHUNIT["metre",1]],'
                         'AXIS["y",north,LENGTHUNIT["metre",1]]]')
    small_twin.crs = local
    with raises("city.gpkg: crs: CRS 'site grid' is not a projected CRS (type: Engineering "
                "CRS); a twin needs a projected CRS in metres"):
        validate_twin(small_twin, SRC)


def test_projected_crs_in_feet(small_twin):
    small_twin.crs = CRS.from_epsg(2263)  # NY Long Island, US survey feet
    with raises("city.gpkg: crs: CRS EPSG:2263 has axis units ['US survey foot'], not metres"):
        validate_twin(small_twin, SRC)


def test_layer_in_another_crs(small_twin):
    small_twin.places = small_twin.places.to_crs(3007)
    with raises("city.gpkg: places: layer CRS EPSG:3007 differs from the twin CRS EPSG:3006"):
        validate_twin(small_twin, SRC)


def test_terrain_in_another_crs(small_twin):
    t = small_twin.terrain
    small_twin.terrain = dataclasses.replace(t, crs=CRS.from_epsg(3007))
    with raises("city.gpkg: terrain.crs: terrain CRS EPSG:3007 differs from the twin CRS "
                "EPSG:3006"):
        validate_twin(small_twin, SRC)


# --------------------------------------------------------------------------- terrain


def test_terrain_with_nan_hole_names_count_and_first_cell(small_twin):
    z = small_twin.terrain.elevation_m.copy()
    z[3, 4] = np.nan
    z[3, 5] = np.nan
    z[7, 1] = np.inf
    small_twin.terrain = dataclasses.replace(small_twin.terrain, elevation_m=z)
    with raises("city.gpkg: terrain.elevation_m: 3 of 600 cells are NaN/nodata (not finite); "
                "first at row 3, col 4"):
        validate_twin(small_twin, SRC)


def test_non_square_cells(small_twin):
    t = small_twin.terrain.transform
    small_twin.terrain = dataclasses.replace(
        small_twin.terrain, transform=Affine(t.a, 0.0, t.c, 0.0, -5.0, t.f))
    with raises("city.gpkg: terrain.transform: cells are not square (10.0 m × 5.0 m)"):
        validate_twin(small_twin, SRC)


def test_rotated_cells(small_twin):
    t = small_twin.terrain.transform
    small_twin.terrain = dataclasses.replace(
        small_twin.terrain, transform=Affine(t.a, 0.5, t.c, 0.5, t.e, t.f))
    with raises("city.gpkg: terrain.transform: cells are rotated or sheared (transform b=0.5, "
                "d=0.5)"):
        validate_twin(small_twin, SRC)


def test_south_up_cells(small_twin):
    t = small_twin.terrain.transform
    small_twin.terrain = dataclasses.replace(
        small_twin.terrain, transform=Affine(t.a, 0.0, t.c, 0.0, 10.0, t.f - 200.0))
    with raises("city.gpkg: terrain.transform: cells are not north-up (transform a=10.0, "
                "e=10.0; need a > 0, e < 0)"):
        validate_twin(small_twin, SRC)


def test_terrain_not_2d(small_twin):
    small_twin.terrain = Terrain(np.zeros(5), small_twin.terrain.transform, small_twin.crs)
    with raises("city.gpkg: terrain.elevation_m: elevation must be a non-empty 2-D array, got "
                "shape (5,)"):
        validate_twin(small_twin, SRC)


# --------------------------------------------------------------------------- buildings


def test_building_partly_outside_terrain_is_fatal_even_with_centroid_inside(small_twin):
    # B-3 spans x 200–240 m from the west edge; widen it past the east edge (300 m) while its
    # centroid stays inside.
    x0, y0, _, y1 = small_twin.buildings.geometry.iloc[2].bounds
    small_twin.buildings.loc[2, "geometry"] = shapely.box(x0, y0, x0 + 140.0, y1)
    assert small_twin.terrain.contains(np.array([x0 + 70.0]), np.array([y0]))[0]
    with raises("city.gpkg: buildings.geometry (feature B-3): footprint lies (partly) outside "
                "the terrain extent (footprint bounds (500200.0, 6399830.0, 500340.0, "
                "6399860.0), terrain bounds (500000.0, 6399800.0, 500300.0, 6400000.0))"):
        validate_twin(small_twin, SRC)


def test_building_entirely_outside_terrain(small_twin):
    small_twin.buildings.loc[0, "geometry"] = shapely.box(0, 0, 10, 10)
    with raises("city.gpkg: buildings.geometry (feature B-1): footprint lies (partly) outside"):
        validate_twin(small_twin, SRC)


@pytest.mark.parametrize("height", [0.0, -3.0, np.nan, np.inf])
def test_non_positive_or_non_finite_height(small_twin, height):
    small_twin.buildings.loc[1, "height_m"] = height
    with raises(f"city.gpkg: buildings.height_m (feature B-2): height must be finite and > 0 m, "
                f"got {height!r}"):
        validate_twin(small_twin, SRC)


def test_several_bad_heights_counted(small_twin):
    small_twin.buildings["height_m"] = [12.0, 0.0, -1.0]
    with raises("buildings.height_m (feature B-2): height must be finite and > 0 m, got 0.0 "
                "(and 1 more building)"):
        validate_twin(small_twin, SRC)


def test_floors_below_one(small_twin):
    small_twin.buildings.loc[0, "floors"] = 0
    with raises("city.gpkg: buildings.floors (feature B-1): floors must be ≥ 1, got 0"):
        validate_twin(small_twin, SRC)


def test_negative_occupants(small_twin):
    small_twin.buildings.loc[2, "occupants"] = -5
    with raises("city.gpkg: buildings.occupants (feature B-3): occupants must be finite and "
                "≥ 0, got -5"):
        validate_twin(small_twin, SRC)


def test_zero_occupants_is_a_warning(small_twin):
    small_twin.buildings.loc[[0, 2], "occupants"] = 0
    assert validate_twin(small_twin, SRC) == [
        "city.gpkg: buildings: 2 building(s) have zero occupants: B-1, B-3"]


# --------------------------------------------------------------------------- every layer


def _layer(twin, name):
    if name.endswith("_nodes") or name.endswith("_links"):
        key, part = name.rsplit("_", 1)
        return getattr(twin.networks[key], part)
    return getattr(twin, name)


def _set_layer(twin, name, gdf):
    if name.endswith("_nodes") or name.endswith("_links"):
        key, part = name.rsplit("_", 1)
        setattr(twin.networks[key], part, gdf)
    else:
        setattr(twin, name, gdf)


LAYERS = ["buildings", "places", "reservoirs", "gas_nodes", "gas_links"]


@pytest.mark.parametrize("layer", LAYERS)
def test_duplicate_ids(small_twin, layer):
    gdf = _layer(small_twin, layer)
    first = gdf["id"].iloc[0]
    gdf.loc[gdf.index[1], "id"] = first
    with raises(f"city.gpkg: {layer}.id (feature {first}): duplicate id (appears 2 times"):
        validate_twin(small_twin, SRC)


@pytest.mark.parametrize("layer", LAYERS)
def test_missing_id(small_twin, layer):
    gdf = _layer(small_twin, layer)
    gdf.loc[gdf.index[1], "id"] = None
    with raises(f"city.gpkg: {layer}.id: row 1 has no id (1 rows without id)"):
        validate_twin(small_twin, SRC)


@pytest.mark.parametrize(
    ("layer", "column"),
    [("buildings", "height_m"), ("places", "kind"), ("reservoirs", "crest_level_m"),
     ("gas_nodes", "depth_m"), ("gas_links", "to_node"), ("water_links", "diameter_mm")],
)
def test_missing_required_column(small_twin, layer, column):
    gdf = _layer(small_twin, layer).drop(columns=[column])
    _set_layer(small_twin, layer, gdf)
    with raises(f"city.gpkg: {layer}: missing required column(s) '{column}' (has 'id', "):
        validate_twin(small_twin, SRC)


BOWTIE = Polygon([(500010, 6399810), (500030, 6399830), (500030, 6399810),
                  (500010, 6399830)])


@pytest.mark.parametrize(
    ("layer", "geom", "reason"),
    [
        ("buildings", BOWTIE, "invalid geometry: Self-intersection[500020 6399820]"),
        ("buildings", Polygon(), "geometry is empty"),
        ("buildings", None, "feature has no geometry"),
        ("buildings", Point(500010, 6399810),
         "geometry is a Point; this layer takes Polygon or MultiPolygon"),
        ("places", BOWTIE, "invalid geometry: Self-intersection[500020 6399820]"),
        ("reservoirs", LineString(), "geometry is empty"),
        ("gas_nodes", Point(np.nan, 6399810), "invalid geometry: non-finite coordinates"),
        ("gas_links", Point(500010, 6399810), "geometry is a Point; this layer takes LineString"),
    ],
)
def test_bad_geometries(small_twin, layer, geom, reason):
    gdf = _layer(small_twin, layer)
    gdf.loc[gdf.index[0], "geometry"] = geom
    fid = gdf["id"].iloc[0]
    with raises(f"city.gpkg: {layer}.geometry (feature {fid}): {reason}"):
        validate_twin(small_twin, SRC)


def test_layer_without_crs(small_twin):
    small_twin.places = small_twin.places.set_crs(None, allow_override=True)
    with raises("city.gpkg: places: layer has no CRS"):
        validate_twin(small_twin, SRC)


def test_empty_name(small_twin):
    small_twin.name = " "
    with raises("city.gpkg: name: the twin needs a non-empty name"):
        validate_twin(small_twin, SRC)


# --------------------------------------------------------------------------- networks


def test_dangling_link_names_link_and_missing_node(small_twin):
    links = small_twin.networks["gas"].links
    links.loc[1, "to_node"] = "G-n99"
    with raises("city.gpkg: gas_links.to_node (feature G-l2): link refers to a node that does "
                "not exist: to_node 'G-n99' is not in gas_nodes"):
        validate_twin(small_twin, SRC)


def test_link_with_both_ends_missing_and_more_dangling(small_twin):
    links = small_twin.networks["gas"].links
    links.loc[0, ["from_node", "to_node"]] = ["X-1", "X-2"]
    links.loc[2, "from_node"] = "X-3"
    with raises("city.gpkg: gas_links.from_node (feature G-l1): link refers to a node that does "
                "not exist: from_node 'X-1' and to_node 'X-2' is not in gas_nodes (and 1 more "
                "dangling link)"):
        validate_twin(small_twin, SRC)


def test_disconnected_network_is_reported_not_fatal(small_twin):
    net = small_twin.networks["gas"]
    ymin = small_twin.terrain.bounds[1]
    extra = net.nodes.iloc[:3].copy()
    extra["id"] = ["G-n5", "G-n6", "G-n7"]
    extra["geometry"] = [Point(500_250, ymin + 150), Point(500_260, ymin + 150),
                         Point(500_280, ymin + 190)]
    net.nodes = pd.concat([net.nodes, extra], ignore_index=True)
    link = net.links.iloc[:1].copy()
    link["id"] = ["G-l9"]
    link["from_node"], link["to_node"] = ["G-n5"], ["G-n6"]
    link["geometry"] = [LineString([(500_250, ymin + 150), (500_260, ymin + 150)])]
    net.links = pd.concat([net.links, link], ignore_index=True)
    warnings = validate_twin(small_twin, SRC)
    assert warnings == [
        "city.gpkg: gas network has 3 connected parts: the main part has 4 nodes; minor "
        "parts: 2 node(s) (e.g. G-n5); 1 node(s) (e.g. G-n7)"]


def test_network_nodes_outside_terrain_warn(small_twin):
    small_twin.networks["water"].nodes.loc[1, "geometry"] = Point(600_000, 6_000_000)
    small_twin.networks["water"].links.loc[0, "geometry"] = LineString(
        [(500_010, 6_399_890), (600_000, 6_000_000)])
    assert validate_twin(small_twin, SRC) == [
        "city.gpkg: water_nodes: 1 node(s) lie outside the terrain: W-n2"]


# --------------------------------------------------------------------------- places


def test_places_outside_terrain_and_unknown_kinds_warn(small_twin):
    small_twin.places.loc[0, "geometry"] = Point(0, 0)
    small_twin.places.loc[1, "kind"] = "stadium"
    assert validate_twin(small_twin, SRC) == [
        "city.gpkg: places: 1 place(s) lie (partly) outside the terrain: P-school",
        "city.gpkg: places: 1 place(s) have a kind the warning logic does not know (stadium): "
        "P-plaza",
    ]


def test_empty_layers_are_valid(small_twin):
    small_twin.places = small_twin.places.iloc[:0]
    small_twin.reservoirs = small_twin.reservoirs.iloc[:0]
    small_twin.buildings = small_twin.buildings.iloc[:0]
    assert validate_twin(small_twin, SRC) == []
