"""Readings plots people read at a glance: one quantity per axis, thresholds that belong on it.

Sensors of different quantities (rain in mm/h, water depth in m) get axes of their own, each
labelled with its quantity and the unit the sensors report. Only plain ``threshold`` rules on
that quantity are drawn on an axis: a composite index (site risk 1–4) or a rate of rise is
not a reading and has no place on the readings' scale. Threshold labels are stacked at the
right edge so that close values (1, 2, 3, 4 near zero) do not print over each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from citytwin.viewer.html import LEVEL_COLOURS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: The least gap between two threshold labels, as a fraction of the axis height.
LABEL_GAP = 0.06
#: Font size of the threshold labels (points).
LABEL_SIZE_PT = 7.0


def quantity_groups(obs: pd.DataFrame, sensors: pd.DataFrame
                    ) -> list[tuple[str, str, pd.DataFrame]]:
    """The readings split by the quantity their sensors measure: ``(quantity, unit, rows)``,
    the quantity with the most sensors first."""
    if not len(obs):
        return []
    meta = sensors.drop_duplicates("sensor_id").set_index("sensor_id")
    q = obs["sensor_id"].map(meta["quantity"]).fillna("value")
    u = obs["sensor_id"].map(meta["unit"]).fillna("")
    out = []
    for (quantity, unit), rows in obs.assign(_q=q, _u=u).groupby(["_q", "_u"], sort=False):
        out.append((str(quantity), str(unit), rows.drop(columns=["_q", "_u"])))
    return sorted(out, key=lambda g: (-g[2]["sensor_id"].nunique(), g[0]))


def threshold_items(rules: Iterable[Mapping[str, Any]], quantity: str,
                    rule_ids: Iterable[str] | None = None, levels: Sequence[str] = ()
                    ) -> list[tuple[float, str, str]]:
    """``(value, colour, label)`` per threshold value of the plain threshold rules on
    ``quantity`` (those in ``rule_ids`` if given); one item per value, every rule named
    when several rules share the plot."""
    chosen = [r for r in rules
              if r.get("quantity") == quantity and r.get("kind", "threshold") == "threshold"
              and r.get("thresholds")
              and (rule_ids is None or (r.get("id") or r.get("rule_id")) in set(rule_ids))]
    order = {lv: i for i, lv in enumerate(levels)}
    by_value: dict[float, list[str]] = {}
    colour: dict[float, str] = {}
    for r in chosen:
        rid = r.get("id") or r.get("rule_id")
        for level, thr in sorted(r["thresholds"].items(), key=lambda kv: (
                order.get(kv[0], 99), kv[1])):
            v = float(thr)
            colour.setdefault(v, LEVEL_COLOURS.get(level, "k"))
            name = f"{level} {v:g} {r.get('unit', '')}".strip()
            by_value.setdefault(v, []).append(name + (f" ({rid})" if len(chosen) > 1 else ""))
    return [(v, colour[v], " / ".join(by_value[v])) for v in sorted(by_value)]


def draw_thresholds(ax: Axes, items: Sequence[tuple[float, str, str]]) -> list[Any]:
    """Dashed lines at the thresholds and their labels at the right edge, pushed apart by
    at least ``LABEL_GAP`` of the axis height (a thin leader joins a moved label to its
    line). Call after the data are drawn; returns the label artists."""
    if not items:
        return []
    for v, colour, _ in items:
        ax.axhline(v, color=colour, ls="--", lw=0.9, zorder=1)
    lo, hi = ax.get_ylim()
    lo, hi = min(lo, min(v for v, *_ in items)), max(hi, max(v for v, *_ in items))
    ax.set_ylim(lo, hi)
    frac = [(v - lo) / (hi - lo) if hi > lo else 0.5 for v, *_ in items]
    height_pt = ax.get_window_extent().height * 72.0 / ax.figure.dpi
    gap = max(LABEL_GAP, 1.5 * LABEL_SIZE_PT / max(height_pt, 1.0))
    placed = list(frac)
    for i in range(1, len(placed)):  # push up, then pull the stack back under the top
        placed[i] = max(placed[i], placed[i - 1] + gap)
    overflow = placed[-1] - 0.97
    if overflow > 0:
        placed = [p - overflow for p in placed]
        for i in range(len(placed) - 2, -1, -1):
            placed[i] = min(placed[i], placed[i + 1] - gap)
    texts = []
    for (_v, colour, label), f, p in zip(items, frac, placed, strict=True):
        t = ax.annotate(label, xy=(1.0, f), xycoords="axes fraction", xytext=(1.01, p),
                        textcoords="axes fraction", fontsize=LABEL_SIZE_PT, va="center", ha="left",
                        color="k", annotation_clip=False,
                        arrowprops=({"arrowstyle": "-", "color": colour, "lw": 0.8}
                                    if abs(p - f) > 1e-6 else None))
        t.set_gid("threshold label")
        texts.append(t)
    return texts


def axis_units(ax: Axes) -> str:
    """The unit in an axis label ``quantity (unit)`` ("" if none)."""
    label = ax.get_ylabel()
    return label[label.rfind("(") + 1:-1] if label.endswith(")") and "(" in label else ""


def top_sensors(rows: pd.DataFrame, n: int) -> list[str]:
    """The ``n`` sensors with the highest readings, in a stable order."""
    top = rows.groupby("sensor_id")["value"].max().sort_values(ascending=False, kind="stable")
    return sorted(str(s) for s in top.index[:n] if np.isfinite(top[s]))
