"""Triangle meshes of the twin (trimesh): terrain surface and extruded buildings."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
import trimesh

from citytwin.twin.model import CityTwin
from citytwin.twin.terrain import Terrain


def terrain_mesh(terrain: Terrain, stride: int = 1) -> trimesh.Trimesh:
    """The ground as a triangulated grid through cell centres (every ``stride``-th cell)."""
    xs, ys = terrain.cell_centres()
    xs, ys = xs[::stride], ys[::stride]
    z = terrain.elevation_m[::stride, ::stride]
    X, Y = np.meshgrid(xs, ys)
    vertices = np.column_stack([X.ravel(), Y.ravel(), z.ravel()])
    rows, cols = z.shape
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    a = (r * cols + c).ravel()
    b, d, e = a + 1, a + cols, a + cols + 1
    # Rows run north→south, so (a, d, b) is counter-clockwise seen from above: normals up.
    faces = np.concatenate([np.column_stack([a, d, b]), np.column_stack([b, d, e])])
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def buildings_mesh(buildings: gpd.GeoDataFrame, terrain: Terrain) -> trimesh.Trimesh:
    """Footprints extruded to their heights, standing on the lowest ground under each."""
    parts = []
    for geom, height in zip(buildings.geometry, buildings["height_m"], strict=True):
        polys = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
        for poly in polys:
            poly = shapely.make_valid(poly)
            if poly.geom_type != "Polygon" or poly.area <= 0:
                continue
            ring = np.asarray(poly.exterior.coords)
            base = float(np.min(terrain.elevation_at(ring[:, 0], ring[:, 1])))
            mesh = trimesh.creation.extrude_polygon(poly, float(height))
            mesh.apply_translation([0.0, 0.0, base])
            parts.append(mesh)
    if not parts:
        return trimesh.Trimesh()
    return trimesh.util.concatenate(parts)


def export_glb(twin: CityTwin, path: str | Path, terrain_stride: int = 2) -> Path:
    """The terrain and buildings as one binary glTF scene (coordinates relative to the
    terrain's south-west corner, since glTF viewers use single precision)."""
    xmin, ymin, _, _ = twin.terrain.bounds
    scene = trimesh.Scene()
    for name, mesh in (("terrain", terrain_mesh(twin.terrain, terrain_stride)),
                       ("buildings", buildings_mesh(twin.buildings, twin.terrain))):
        mesh = mesh.copy()
        mesh.apply_translation([-xmin, -ymin, 0.0])
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    path = Path(path)
    path.write_bytes(scene.export(file_type="glb"))
    return path
