"""3D renders (PNG) of the twin with a hazard field, offscreen through pyvista."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np

from citytwin.assets3d.meshes import buildings_mesh, terrain_mesh
from citytwin.physics import HAZARDS
from citytwin.physics.hazard import RenderStyle
from citytwin.twin.model import CityTwin

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")  # no X server needed


def load_fields(npz_path: str | Path) -> tuple[float, list[tuple[str, np.ndarray, np.ndarray,
                                                                    np.ndarray]]]:
    """Read a run's hazard_field.npz: (t_s, [(name, xs, ys, values), …])."""
    data = np.load(npz_path)
    names = sorted({k.rsplit("__", 1)[0] for k in data.files if k != "t_s"})
    fields = [(n, data[f"{n}__xs"], data[f"{n}__ys"], data[f"{n}__values"]) for n in names]
    return float(data["t_s"][0]), fields


#: A field of a hazard kind no longer registered: drawn plainly above a tiny floor.
FALLBACK_STYLE = RenderStyle(quantity="", floor=1e-9, top=None, log=False, cmap="viridis",
                             label="", lift_m=1.0, crop_m=500.0)


def style_for(name: str) -> RenderStyle:
    """The drawing style of a snapshot field ``<i>__<kind>__<quantity>``: its hazard's
    registered ``RenderStyle`` (physics/<kind>.py)."""
    parts = name.split("__")
    if len(parts) == 3 and parts[1] in HAZARDS:
        return HAZARDS[parts[1]].style
    return replace(FALLBACK_STYLE, quantity=parts[-1], label=parts[-1].replace("_", " "))


def render_run(twin: CityTwin, npz_path: str | Path, png_path: str | Path, *,
               window_size: tuple[int, int] = (1400, 1000),
               crop_m: float | None | Literal["auto"] = "auto") -> Path:
    """Terrain, buildings and the hazard fields draped over the ground, as a PNG.

    Each field is drawn in its hazard's registered style (``style_for``; e.g. gas in %LEL
    1.5 m above ground on a log scale from 1 to 100 %LEL, water depth on a linear scale from
    5 cm to 1.5 m); cells below the style's floor are not drawn. The view looks down steeply
    between the peak and the centroid of the drawn field, about ``crop_m`` across (the whole
    twin if None; ``"auto"``: the styles' own framing, the whole twin if any asks for it).
    """
    import pyvista as pv

    t_s, fields = load_fields(npz_path)
    if crop_m == "auto":
        crops = [style_for(name).crop_m for name, *_ in fields]
        crop_m = None if not crops or None in crops else max(crops)
    origin = np.array([twin.terrain.bounds[0], twin.terrain.bounds[1], 0.0])

    def to_pv(mesh) -> pv.PolyData:
        faces = np.column_stack([np.full(len(mesh.faces), 3), mesh.faces]).ravel()
        return pv.PolyData(np.asarray(mesh.vertices) - origin, faces)

    plotter = pv.Plotter(off_screen=True, window_size=window_size)
    plotter.set_background("white")
    ground = to_pv(terrain_mesh(twin.terrain))
    ground["elevation_m"] = ground.points[:, 2]
    z_lo, z_hi = float(ground.points[:, 2].min()), float(ground.points[:, 2].max())
    # gist_earth from its green third up: land colours only, so blue means water
    plotter.add_mesh(ground, scalars="elevation_m", cmap="gist_earth", show_scalar_bar=False,
                     clim=[z_lo - 0.5 * (z_hi - z_lo + 1.0), z_hi], opacity=1.0)
    plotter.add_mesh(to_pv(buildings_mesh(twin.buildings, twin.terrain)), color="#d9d4cc",
                     show_edges=False, smooth_shading=False)
    focus = None
    for name, xs, ys, values in fields:
        style = style_for(name)
        floor_value, ceiling_value, log_scale = style.floor, style.top, style.log
        cmap, lift_m, label = style.cmap, style.lift_m, style.label
        if values.size == 0 or np.nanmax(values) < floor_value:
            continue
        ceiling_value = ceiling_value or float(np.nanmax(values))
        X, Y = np.meshgrid(xs, ys)
        Z = twin.terrain.elevation_at(X.ravel(), Y.ravel()).reshape(X.shape)
        Z = Z + (np.nan_to_num(values) + 0.1 if lift_m is None else lift_m)
        grid = pv.StructuredGrid(X - origin[0], Y - origin[1], Z)
        grid["value"] = values.ravel(order="F")
        shown = grid.threshold(floor_value, scalars="value")
        plotter.add_mesh(shown, scalars="value", cmap=cmap, opacity=0.8,
                         clim=[floor_value, ceiling_value], above_color="#08306b"
                         if cmap == "Blues" else "#4a0000", log_scale=log_scale,
                         scalar_bar_args={"title": label, "color": "black"})
        inside = values >= floor_value
        r, c = np.unravel_index(int(np.nanargmax(values)), values.shape)
        peak = np.array([xs[c], ys[r], Z[r, c]])
        centroid = np.array([X[inside].mean(), Y[inside].mean(), Z[inside].mean()])
        focus = (2 * peak + centroid) / 3 - origin
    if focus is None or crop_m is None:  # whole twin: look at its centre
        xmin, ymin, xmax, ymax = twin.terrain.bounds
        focus = np.array([(xmax - xmin) / 2, (ymax - ymin) / 2, float(
            np.mean(twin.terrain.elevation_m))])
    span = crop_m or max(twin.terrain.bounds[2] - twin.terrain.bounds[0], 300.0)
    plotter.camera.focal_point = focus
    plotter.camera.position = focus + np.array([-0.25 * span, -0.7 * span, 1.3 * span])
    plotter.camera.up = (0.0, 0.0, 1.0)
    plotter.add_text(f"{twin.name}   t = {t_s / 60:.1f} min", font_size=11, color="black")
    png_path = Path(png_path)
    plotter.screenshot(str(png_path))
    plotter.close()
    return png_path
