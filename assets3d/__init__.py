"""Meshes from the twin (terrain, extruded buildings) and 3D exchange formats."""

if __name__ != "citytwin.assets3d":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.assets3d, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")

from citytwin.assets3d.meshes import buildings_mesh, export_glb, terrain_mesh

__all__ = ["buildings_mesh", "export_glb", "terrain_mesh"]
