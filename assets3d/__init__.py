"""Meshes from the twin (terrain, extruded buildings) and 3D exchange formats."""

from assets3d.meshes import buildings_mesh, export_glb, terrain_mesh

__all__ = ["buildings_mesh", "export_glb", "terrain_mesh"]
