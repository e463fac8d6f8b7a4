"""Meshes of the twin: closed extrusions of the right volume, terrain facing up, GLB export."""

import numpy as np
import pytest
import shapely
import trimesh

from citytwin.assets3d import buildings_mesh, export_glb, terrain_mesh
from citytwin.twin.synthetic import synthetic_city


@pytest.fixture(scope="module")
def city():
    return synthetic_city(2, "tiny")


def test_buildings_are_watertight_with_footprint_times_height_volume(city):
    mesh = buildings_mesh(city.buildings, city.terrain)
    expected = float((city.buildings.geometry.area * city.buildings["height_m"]).sum())
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(expected, rel=1e-9)


def test_building_stands_on_the_lowest_ground_under_its_footprint(city):
    one = city.buildings.iloc[[0]]
    mesh = buildings_mesh(one, city.terrain)
    ring = np.asarray(one.geometry.iloc[0].exterior.coords)
    base = city.terrain.elevation_at(ring[:, 0], ring[:, 1]).min()
    assert mesh.bounds[0, 2] == pytest.approx(base)
    assert mesh.bounds[1, 2] == pytest.approx(base + one["height_m"].iloc[0])


def test_non_convex_footprint_extrudes_exactly(city):
    import geopandas as gpd

    ell = shapely.Polygon([(0, 0), (30, 0), (30, 10), (10, 10), (10, 30), (0, 30)])
    x0, y0, _, _ = city.terrain.bounds
    ell = shapely.affinity.translate(ell, x0 + 100, y0 + 100)
    gdf = gpd.GeoDataFrame({"height_m": [12.0]}, geometry=[ell], crs=city.crs)
    mesh = buildings_mesh(gdf, city.terrain)
    assert mesh.volume == pytest.approx(ell.area * 12.0)


def test_terrain_mesh_passes_through_cell_centres_and_faces_up(city):
    mesh = terrain_mesh(city.terrain)
    rows, cols = city.terrain.shape
    assert len(mesh.vertices) == rows * cols
    assert len(mesh.faces) == 2 * (rows - 1) * (cols - 1)
    assert (mesh.face_normals[:, 2] > 0).all()
    assert np.allclose(mesh.vertices[:, 2], city.terrain.elevation_m.ravel())


def test_glb_round_trip(city, tmp_path):
    path = export_glb(city, tmp_path / "city.glb")
    scene = trimesh.load(path)
    assert set(scene.geometry) == {"terrain", "buildings"}
    assert scene.geometry["buildings"].bounds[0, 0] >= 0.0  # shifted to the local origin
