"""The one map module of the reports: a run's warnings, sensors and hazard over its twin.

Every map (run report, dossier, after-action report, investigation report, study report)
is drawn here: ``context_map`` lays down the twin — reservoirs and dams, buildings, the
utility networks, the places with their names — with a scale bar and a north arrow, framed
by ``frame`` on what matters (the union of the warning areas, the hazard's extent, the
sensors that alarmed, the hazard sources and the reservoirs the hazard names or touches;
padded, never narrower than ``MAX_ASPECT`` : 1 nor smaller than ``MIN_SPAN_M``).
``draw_warnings`` fills each warning's area in its level colour with an edge and a label of
its own, ``draw_sensors`` colours sensors by the highest level they reached, and
``map_legend`` explains every symbol. ``run_map`` puts it together.

A report without a twin gets it from the archive manifest (``twin_for_archive``: the
synthetic city rebuilt from its seed and size, or the saved twin folder). No hazard kind is
named here: fields are drawn in their hazard's registered ``RenderStyle``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from citytwin.physics.hazard import RenderStyle  # noqa: E402
from citytwin.viewer.html import LEVEL_COLOURS  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from citytwin.twin.model import CityTwin

#: Framing: padding around what matters, the smallest span, the most elongated frame.
PAD_FRACTION = 0.15
PAD_M = 60.0
MIN_SPAN_M = 400.0
MAX_ASPECT = 1.5
#: A reservoir this close to the hazard or a warning is part of the picture.
RESERVOIR_NEAR_M = 150.0
NETWORK_COLOURS = {"gas": "#f9a825", "water": "#1e88e5", "drainage": "#00897b"}
OTHER_NETWORK_COLOURS = ("#8d6e63", "#7e57c2", "#26a69a")
#: Edge and label colour per warning (the fill is its level's colour).
WARNING_EDGES = ("#000000", "#6a1b9a", "#00838f", "#4e342e", "#ad1457", "#283593",
                 "#2e7d32", "#bf360c")
WATER = "#90caf9"
SENSOR_NONE = "#ffffff"
PLACE_NAME_SIZE = 6.5


# --- inputs ---------------------------------------------------------------------------------

@lru_cache(maxsize=4)
def _synthetic(seed: int, size: str | float) -> CityTwin:
    from citytwin.twin.synthetic import synthetic_city

    return synthetic_city(seed, size)


def twin_for_archive(archive_path: str | Path | None,
                     manifest: Mapping[str, Any] | None = None) -> CityTwin | None:
    """The twin a run archive was made on, from its manifest's ``scenario.twin``: the
    synthetic city rebuilt from seed and size, or the saved twin folder (relative to the
    scenario file, the archive's folder or the working folder). None if it cannot be had."""
    if manifest is None:
        if archive_path is None:
            return None
        from citytwin.scenarios.run.archive_reader import read_manifest

        manifest = read_manifest(archive_path)
    spec = (manifest.get("scenario") or {}).get("twin") or {}
    try:
        syn = spec.get("synthetic")
        if syn:
            return _synthetic(int(syn.get("seed", 0)), syn.get("size", "small"))
        if spec.get("path"):
            from citytwin.twin.store import load_twin

            path = Path(spec["path"])
            bases = [Path(str(manifest.get("scenario_file") or ".")).parent, Path(".")]
            if archive_path is not None:
                bases.insert(0, Path(archive_path).parent)
            for base in ([Path("/")] if path.is_absolute() else bases):
                if (base / path).is_dir():
                    return load_twin(base / path)
    except (ValueError, OSError):
        return None
    return None


@dataclass(frozen=True)
class HazardField:
    """One snapshot field of a run (``hazard_field.npz``) and its hazard's drawing style."""

    name: str
    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    style: RenderStyle

    @property
    def shown(self) -> np.ndarray:
        """Cells at or above the style's floor."""
        return np.nan_to_num(self.values, nan=-np.inf) >= self.style.floor

    def bounds(self) -> tuple[float, float, float, float] | None:
        """(xmin, ymin, xmax, ymax) of the shown cells, None if none are."""
        rows, cols = np.nonzero(self.shown)
        if not len(rows):
            return None
        return (float(self.xs[cols].min()), float(self.ys[rows].min()),
                float(self.xs[cols].max()), float(self.ys[rows].max()))


def hazard_fields(npz_path: str | Path | None) -> list[HazardField]:
    """The snapshot fields beside an archive (``hazard_field.npz``); [] if there are none."""
    if npz_path is None or not Path(npz_path).is_file():
        return []
    from citytwin.viewer.render import load_fields, style_for

    _, fields = load_fields(npz_path)
    return [HazardField(n, xs, ys, v, style_for(n)) for n, xs, ys, v in fields]


def fields_beside(archive_path: str | Path | None) -> list[HazardField]:
    """The fields of the run folder holding ``archive_path``."""
    if archive_path is None:
        return []
    return hazard_fields(Path(archive_path).parent / "hazard_field.npz")


# --- framing --------------------------------------------------------------------------------

Box = tuple[float, float, float, float]  # xmin, ymin, xmax, ymax


def _reservoir_boxes(twin: CityTwin | None, boxes: list[Box],
                     hazards: Mapping[str, Any] | None) -> list[Box]:
    """Reservoirs a hazard note names, or within ``RESERVOIR_NEAR_M`` of what matters."""
    if twin is None or twin.reservoirs is None or not len(twin.reservoirs):
        return []
    text = json.dumps(hazards or {}, default=str)
    near = shapely.union_all([shapely.box(*b) for b in boxes]) if boxes else None
    out = []
    for r in twin.reservoirs.itertuples():
        named = str(r.id) in text or (isinstance(r.name, str) and r.name in text)
        close = near is not None and r.geometry.distance(near) <= RESERVOIR_NEAR_M
        if named or close:
            out.append(tuple(r.geometry.bounds))
    return out


def frame(boxes: Iterable[Box], twin: CityTwin | None = None, *,
          hazards: Mapping[str, Any] | None = None) -> Box:
    """The map's extent: the union of ``boxes`` and the reservoirs they involve, padded,
    at least ``MIN_SPAN_M`` across and no more elongated than ``MAX_ASPECT`` : 1, kept
    inside the twin where it is large enough (the whole twin when there is nothing)."""
    boxes = [b for b in boxes if b is not None and all(map(math.isfinite, b))]
    boxes += _reservoir_boxes(twin, boxes, hazards)
    tb = twin.terrain.bounds if twin is not None else None
    if not boxes:
        if tb is not None:
            return tuple(map(float, tb))
        return (0.0, 0.0, MIN_SPAN_M, MIN_SPAN_M)
    b = np.array(boxes, dtype=float)
    x0, y0, x1, y1 = b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()
    pad = max(PAD_M, PAD_FRACTION * max(x1 - x0, y1 - y0))
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    w, h = max(x1 - x0, MIN_SPAN_M), max(y1 - y0, MIN_SPAN_M)
    w, h = max(w, h / MAX_ASPECT), max(h, w / MAX_ASPECT)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    x0, x1, y0, y1 = cx - w / 2, cx + w / 2, cy - h / 2, cy + h / 2
    if tb is not None:  # slide inside the twin; never wider than it on either side
        def fit(lo: float, hi: float, tlo: float, thi: float) -> tuple[float, float]:
            span = min(hi - lo, thi - tlo)
            mid = min(max((lo + hi) / 2, tlo + span / 2), thi - span / 2)
            return mid - span / 2, mid + span / 2

        x0, x1 = fit(x0, x1, tb[0], tb[2])
        y0, y1 = fit(y0, y1, tb[1], tb[3])
    return (float(x0), float(y0), float(x1), float(y1))


# --- drawing --------------------------------------------------------------------------------

def _nice_length(span_m: float) -> float:
    """A round scale-bar length near a fifth of the span (1, 2 or 5 × 10^n m)."""
    target = max(span_m / 5.0, 1.0)
    exp = 10 ** math.floor(math.log10(target))
    return float(max(m * exp for m in (1, 2, 5) if m * exp <= target))


def add_scale_bar(ax: Axes, extent: Box) -> Any:
    """A scale bar in the lower right corner (artist gid ``scale bar``)."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    length = _nice_length(extent[2] - extent[0])
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    bar = AnchoredSizeBar(ax.transData, length, label, "lower right", pad=0.4, sep=3,
                          frameon=True, size_vertical=(extent[3] - extent[1]) / 150,
                          fontproperties={"size": 7})
    bar.patch.set_alpha(0.9)
    bar.set_zorder(30)  # over place names at the frame's edge
    bar.set_gid("scale bar")
    ax.add_artist(bar)
    return bar


def add_north_arrow(ax: Axes) -> Any:
    """An arrow and "N" in the upper right corner (grid north; artist gid ``north arrow``)."""
    arrow = ax.annotate("N", xy=(0.96, 0.97), xytext=(0.96, 0.87), xycoords="axes fraction",
                        ha="center", va="center", fontsize=10, weight="bold",
                        arrowprops={"arrowstyle": "-|>", "color": "k", "lw": 1.5},
                        bbox={"boxstyle": "circle,pad=0.15", "fc": "white", "ec": "none",
                              "alpha": 0.8}, zorder=20)
    arrow.set_gid("north arrow")
    return arrow


def _inside(geoms, extent: Box):
    return geoms.cx[extent[0]:extent[2], extent[1]:extent[3]]


def context_map(ax: Axes, twin: CityTwin | None, extent: Box, *,
                place_names: bool = True) -> list[Any]:
    """The twin under a map: reservoirs and dams, buildings, networks, places with their
    names; a scale bar and a north arrow; the extent set, equal aspect, no coordinate
    ticks. Returns the legend handles of what it drew."""
    handles: list[Any] = []
    if twin is not None:
        res = twin.reservoirs if twin.reservoirs is not None else []
        for r in getattr(res, "itertuples", lambda: [])():
            g = r.geometry
            if not g.intersects(shapely.box(*extent)):
                continue
            if g.geom_type in ("Polygon", "MultiPolygon"):
                for poly in getattr(g, "geoms", [g]):
                    ax.fill(*poly.exterior.xy, color=WATER, ec="#1565c0", lw=0.8, zorder=1)
                handles.append(Patch(fc=WATER, ec="#1565c0", label="reservoir"))
            else:
                for line in getattr(g, "geoms", [g]):
                    ax.plot(*line.xy, color="#37474f", lw=3.5, solid_capstyle="butt",
                            zorder=6)
                handles.append(Line2D([], [], color="#37474f", lw=3.5, label="dam"))
            p = g.representative_point()
            if extent[0] <= p.x <= extent[2] and extent[1] <= p.y <= extent[3]:
                ax.annotate(str(r.name), (p.x, p.y), fontsize=7, style="italic",
                            color="#0d47a1", ha="center", va="bottom", xytext=(0, 4),
                            textcoords="offset points", zorder=12)
        if len(twin.buildings):
            twin.buildings.plot(ax=ax, color="#d7d7d7", edgecolor="#9e9e9e", lw=0.3, zorder=2)
            handles.append(Patch(fc="#d7d7d7", ec="#9e9e9e", label="buildings"))
        for k, (name, net) in enumerate(sorted(twin.networks.items())):
            colour = NETWORK_COLOURS.get(name, OTHER_NETWORK_COLOURS[k % 3])
            if len(net.links):
                net.links.plot(ax=ax, color=colour, lw=0.7, alpha=0.75, zorder=3)
                handles.append(Line2D([], [], color=colour, lw=1.2, label=f"{name} network"))
        places = twin.places if twin.places is not None else []
        if len(places):
            pts = places.geometry.representative_point()
            prot = places["protected"].fillna(False).astype(bool).to_numpy()
            for kind_prot, marker, size, colour, label in (
                    (True, "*", 11, "#6a1b9a", "protected target"),
                    (False, "o", 4, "#424242", "other place")):
                sel = prot == kind_prot
                if sel.any():
                    ax.plot(pts.x[sel], pts.y[sel], marker, color=colour, ms=size, ls="none",
                            mec="white", mew=0.5, zorder=9)
                    handles.append(Line2D([], [], marker=marker, color=colour, ls="none",
                                          ms=size * 0.8, label=label))
            if place_names:
                for (x, y), name, is_prot in zip(zip(pts.x, pts.y, strict=True),
                                                 places["name"], prot, strict=True):
                    if extent[0] <= x <= extent[2] and extent[1] <= y <= extent[3]:
                        ax.annotate(str(name), (x, y), fontsize=PLACE_NAME_SIZE,
                                    weight="bold" if is_prot else "normal",
                                    color="#4a148c" if is_prot else "#424242",
                                    xytext=(4, 3), textcoords="offset points", zorder=12,
                                    bbox={"boxstyle": "round,pad=0.1", "fc": "white",
                                          "ec": "none", "alpha": 0.6})
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_facecolor("#f7f5f0")
    add_scale_bar(ax, extent)
    add_north_arrow(ax)
    return handles


def draw_fields(ax: Axes, fields: Sequence[HazardField], *, colorbar: bool = True) -> list[Any]:
    """Each snapshot field above its style's floor, in its style's colours."""
    handles = []
    for f in fields:
        shown = f.shown
        if not shown.any():
            continue
        top = f.style.top or float(np.nanmax(f.values))
        norm = (LogNorm(f.style.floor, max(top, f.style.floor * 1.01)) if f.style.log
                else Normalize(f.style.floor, max(top, f.style.floor * 1.01)))
        dx = (f.xs[-1] - f.xs[0]) / max(len(f.xs) - 1, 1)
        dy = (f.ys[-1] - f.ys[0]) / max(len(f.ys) - 1, 1)
        im = ax.imshow(np.ma.masked_where(~shown, f.values), origin="lower", cmap=f.style.cmap,
                       norm=norm, alpha=0.6, zorder=4, interpolation="nearest",
                       extent=(f.xs[0] - dx / 2, f.xs[-1] + dx / 2, f.ys[0] - dy / 2,
                               f.ys[-1] + dy / 2))
        if colorbar:
            cb = ax.figure.colorbar(im, ax=ax, orientation="horizontal", shrink=0.6,
                                    fraction=0.04, pad=0.02)
            cb.set_label(f"{f.style.label} (snapshot at the largest warning area)", fontsize=8)
            cb.ax.tick_params(labelsize=7)
        handles.append(Patch(fc=plt.get_cmap(f.style.cmap)(0.6), alpha=0.6,
                             label=f"{f.style.label} ≥ {f.style.floor:g}"))
    return handles


def _geoms(wkt: Any) -> list[Any]:
    try:
        g = shapely.from_wkt(wkt)
    except (shapely.errors.GEOSException, TypeError, ValueError):
        return []
    if g is None or g.is_empty:
        return []
    return [p for p in getattr(g, "geoms", [g]) if hasattr(p, "exterior")]


def worst_areas(warnings: pd.DataFrame) -> pd.DataFrame:
    """Each warning's event at its highest level (the largest area among those)."""
    if not len(warnings):
        return warnings
    live = warnings[~warnings["event"].isin(("cleared", "cancelled"))]
    live = live if len(live) else warnings
    return (live.assign(_a=live["area_m2"].fillna(0.0))
            .sort_values(["level", "_a", "seq"], ascending=[True, True, False])
            .groupby("warning_id", sort=False).tail(1).sort_values("warning_id")
            .drop(columns="_a"))


def warning_boxes(warnings: pd.DataFrame) -> list[Box]:
    """Bounds of every warning area drawn (their worst events)."""
    out = []
    for w in worst_areas(warnings).itertuples():
        out += [tuple(p.bounds) for p in _geoms(w.area_wkt)]
    return out


def draw_warnings(ax: Axes, warnings: pd.DataFrame, *, outline_only: bool = False,
                  edges: Mapping[str, str] | None = None, suffix: str = "") -> list[Any]:
    """Each warning's area at its worst: filled in its level colour, edged and labelled in a
    colour of its own (``WARNING_EDGES`` by warning, or ``edges``)."""
    handles = []
    placed: list[tuple[float, float]] = []  # label anchors so far: stack labels that meet
    for k, w in enumerate(worst_areas(warnings).itertuples()):
        polys = _geoms(w.area_wkt)
        if not polys:
            continue
        edge = (edges or {}).get(w.warning_id, WARNING_EDGES[k % len(WARNING_EDGES)])
        fill = LEVEL_COLOURS.get(str(w.level_name), "#9e9e9e")
        for poly in polys:
            x, y = poly.exterior.xy
            if not outline_only:
                ax.fill(x, y, color=fill, alpha=0.35, lw=0, zorder=5)
            ax.plot(x, y, color=edge, lw=1.6, ls="--" if outline_only else "-", zorder=7)
        big = max(polys, key=lambda p: p.area)
        top = big.exterior.coords[int(np.argmax(np.asarray(big.exterior.coords)[:, 1]))]
        near = sum(math.dist(top, p) < 60.0 for p in placed)
        placed.append(tuple(top))
        ax.annotate(f"{w.warning_id}{suffix} ({w.level_name})", top, fontsize=7,
                    weight="bold", color=edge, ha="center", va="bottom",
                    xytext=(0, 3 + 14 * near),
                    textcoords="offset points", zorder=13,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": edge, "lw": 0.8,
                          "alpha": 0.85})
        handles.append(Line2D([], [], color=edge, lw=1.6, ls="--" if outline_only else "-",
                              label=f"{w.warning_id}{suffix}: {w.level_name} area"))
    return handles


def level_patches(levels: Iterable[str]) -> list[Any]:
    """A legend patch per warning level (the area fills)."""
    return [Patch(fc=LEVEL_COLOURS.get(lv, "#9e9e9e"), alpha=0.5, label=f"{lv} level")
            for lv in levels]


def draw_sensors(ax: Axes, sensors: pd.DataFrame, alarms: pd.DataFrame,
                 levels: Sequence[str]) -> list[Any]:
    """Sensors coloured by the highest level they reached (white: no alarm)."""
    if not len(sensors):
        return []
    top = alarms.groupby("sensor_id")["to_level"].max() if len(alarms) else pd.Series(
        dtype=float)
    lv = sensors["sensor_id"].map(top).fillna(0).astype(int).to_numpy()
    names = ["none", *levels]
    colours = [SENSOR_NONE if v <= 0 else LEVEL_COLOURS.get(names[min(v, len(names) - 1)],
                                                            "#9e9e9e") for v in lv]
    ax.scatter(sensors["x_m"], sensors["y_m"], s=np.where(lv > 0, 34, 12), c=colours,
               edgecolor="k", lw=0.5, zorder=10)
    handles = []
    for v in sorted(set(lv.tolist())):
        name = "no alarm" if v <= 0 else names[min(v, len(names) - 1)]
        colour = SENSOR_NONE if v <= 0 else LEVEL_COLOURS.get(name, "#9e9e9e")
        handles.append(Line2D([], [], marker="o", ls="none", mfc=colour, mec="k",
                              ms=6 if v > 0 else 4, label=f"sensor: {name}"))
    return handles


def draw_sources(ax: Axes, hazards: Mapping[str, Any]) -> list[Any]:
    """Point sources of the hazards (notes with ``xy_m``), marked and named."""
    handles = []
    for h in (hazards or {}).values():
        if not isinstance(h, Mapping) or "xy_m" not in h:
            continue
        ax.plot(*h["xy_m"], marker="X", color="black", mec="white", ms=12, zorder=14)
        ax.annotate(str(h.get("id", "")), h["xy_m"], fontsize=8, weight="bold",
                    xytext=(6, -11), textcoords="offset points", zorder=14)
        handles = [Line2D([], [], marker="X", color="black", ls="none", ms=9,
                          label="hazard source")]
    return handles


def map_legend(ax: Axes, handles: Iterable[Any]) -> Any:
    """One legend for every symbol, beside the map (artist gid ``map legend``)."""
    uniq: dict[str, Any] = {}
    for h in handles:
        uniq.setdefault(h.get_label(), h)
    leg = ax.legend(list(uniq.values()), list(uniq), fontsize=7, loc="upper left",
                    bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=True)
    leg.set_gid("map legend")
    return leg


def run_map_figure(twin: CityTwin | None, *, sensors: pd.DataFrame, alarms: pd.DataFrame,
                   warnings: pd.DataFrame, hazards: Mapping[str, Any] | None,
                   levels: Sequence[str], fields: Sequence[HazardField] = (),
                   title: str = "", extra_boxes: Iterable[Box] = (),
                   frame_fields: bool = True,
                   added: Sequence[tuple[float, float, str]] = (),
                   figsize: tuple[float, float] = (10.0, 8.0)) -> Figure:
    """A run's map: the twin, the hazard snapshot, the warnings at their worst, the sensors by
    highest level, the sources; framed on what matters (``frame``; the snapshot's extent
    only with ``frame_fields``). ``added``: (x, y, name) of sensors a counterfactual adds."""
    alarmed = alarms[alarms["to_level"] > 0]["sensor_id"] if len(alarms) else []
    hot = sensors[sensors["sensor_id"].isin(set(alarmed))]
    boxes = [*warning_boxes(warnings), *(f.bounds() for f in fields if frame_fields),
             *((x, y, x, y) for x, y in zip(hot["x_m"], hot["y_m"], strict=True)),
             *((*h["xy_m"], *h["xy_m"]) for h in (hazards or {}).values()
               if isinstance(h, Mapping) and "xy_m" in h), *extra_boxes,
             *((x, y, x, y) for x, y, _ in added)]
    extent = frame(boxes, twin, hazards=hazards)
    fig, ax = plt.subplots(figsize=figsize)
    handles = context_map(ax, twin, extent)
    handles += draw_fields(ax, fields)
    levels_seen = [lv for lv in levels if lv in set(worst_areas(warnings).get(
        "level_name", pd.Series(dtype=str)))]
    handles += level_patches(levels_seen)
    handles += draw_warnings(ax, warnings)
    handles += draw_sensors(ax, sensors, alarms, levels)
    handles += draw_sources(ax, hazards or {})
    for x, y, name in added:
        ax.plot(x, y, "D", color="#00e5ff", mec="k", ms=8, zorder=11)
        ax.annotate(name, (x, y), fontsize=7, weight="bold", xytext=(6, 6),
                    textcoords="offset points", zorder=13,
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none",
                          "alpha": 0.7})
    if added:
        handles.append(Line2D([], [], marker="D", ls="none", color="#00e5ff", mec="k",
                              label="sensor added (counterfactual)"))
    map_legend(ax, handles)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def probability_map_figure(prob: np.ndarray, grid_extent: tuple[float, float, float, float],
                           twin: CityTwin | None, title: str):
    """A study's P(max field > threshold) per cell (``grid_extent``: left, right, bottom,
    top in metres, rows north first) over the twin's context, framed on where P > 0."""
    left, right, bottom, top = (float(v) for v in grid_extent)
    ny, nx = prob.shape
    cell_x, cell_y = (right - left) / nx, (top - bottom) / ny
    rows, cols = np.nonzero(prob > 0)
    boxes = ([(left + cols.min() * cell_x, top - (rows.max() + 1) * cell_y,
               left + (cols.max() + 1) * cell_x, top - rows.min() * cell_y)]
             if len(rows) else [])
    extent = frame(boxes, twin)
    fig, ax = plt.subplots(figsize=(8.5, 7))
    handles = context_map(ax, twin, extent)
    shown = np.ma.masked_where(prob <= 0, prob)
    im = ax.imshow(shown, extent=(left, right, bottom, top), origin="upper", cmap="inferno_r",
                   vmin=0, vmax=1, alpha=0.75, zorder=3, interpolation="nearest")
    if prob.max() >= 0.5:
        xs = left + (np.arange(nx) + 0.5) * cell_x
        ys = top - (np.arange(ny) + 0.5) * cell_y
        ax.contour(xs, ys, prob, levels=[0.5], colors="k", linewidths=0.9, zorder=4)
        handles.append(Line2D([], [], color="k", lw=0.9, label="P = 0.5"))
    ax.set_xlim(extent[0], extent[2])
    ax.set_ylim(extent[1], extent[3])
    fig.colorbar(im, ax=ax, shrink=0.6, orientation="horizontal", pad=0.04,
                 label="probability of exceeding the threshold")
    map_legend(ax, handles)
    ax.set_title(title, fontsize=10)
    return fig
