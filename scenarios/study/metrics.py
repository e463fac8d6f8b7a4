"""Per-member measurements of a study: the field recorder and the member metrics.

The recorder is a SimPy process (``simulate(..., processes=...)``) that samples the true
hazard on each metric's grid every ``interval_s`` and keeps the running maximum per cell.
Metrics are pure functions of the run result and those maxima; definitions are in
``member_metrics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from citytwin.alerting.impact import ImpactIndex
from citytwin.physics.base import FieldGrid, polygonize
from citytwin.twin.errors import InputError


@dataclass(frozen=True)
class StudyGrid:
    """Cell centres of a metric's grid: ``xs_m`` west→east, ``ys_m`` north→south."""

    xs_m: np.ndarray
    ys_m: np.ndarray
    cell_m: float

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ys_m), len(self.xs_m)

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) in metres, for ``imshow``."""
        h = self.cell_m / 2
        return (float(self.xs_m[0] - h), float(self.xs_m[-1] + h),
                float(self.ys_m[-1] - h), float(self.ys_m[0] + h))

    def xyz(self, height_m: float) -> np.ndarray:
        xx, yy = np.meshgrid(self.xs_m, self.ys_m)
        return np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, float(height_m))])


def make_grid(bounds_m: tuple[float, float, float, float], cell_m: float) -> StudyGrid:
    """Cells of ``cell_m`` covering ``bounds_m`` (xmin, ymin, xmax, ymax) from its corner."""
    xmin, ymin, xmax, ymax = map(float, bounds_m)
    nx = max(1, math.ceil((xmax - xmin) / cell_m - 1e-9))
    ny = max(1, math.ceil((ymax - ymin) / cell_m - 1e-9))
    xs = xmin + cell_m * (np.arange(nx) + 0.5)
    ys = ymax - cell_m * (np.arange(ny) + 0.5)
    return StudyGrid(xs, ys, float(cell_m))


def grid_for(metric: dict, twin) -> StudyGrid:
    bounds = metric.get("bounds_m") or twin.terrain.bounds
    return make_grid(tuple(bounds), metric["cell_m"])


#: Per worker process: twin key → its impact index. The synthetic city is deterministic,
#: so members on the same twin share one index.
_IMPACT_CACHE: dict[tuple, ImpactIndex] = {}


def impact_index(twin) -> ImpactIndex:
    """The twin's ``ImpactIndex`` (the one way of counting people), cached per process."""
    key = (twin.name, twin.terrain.bounds, len(twin.buildings), len(twin.places))
    if key not in _IMPACT_CACHE:
        _IMPACT_CACHE[key] = ImpactIndex(twin)
    return _IMPACT_CACHE[key]


class FieldRecorder:
    """SimPy processes keeping the running max of each metric's quantity per grid cell."""

    def __init__(self, run, metrics: list[dict], source: str) -> None:
        self.metrics = metrics
        produced = {q for h in run.hazards for q in h.info}
        for k, m in enumerate(metrics):
            if m["quantity"] not in produced:
                raise InputError(source, f"no hazard of the scenario produces "
                                 f"{m['quantity']!r} (they produce {sorted(produced)})",
                                 field=f"metrics.{k}.quantity")
        self.grids = [grid_for(m, run.twin) for m in metrics]
        self._max = [np.zeros(g.shape[0] * g.shape[1]) for g in self.grids]
        self.samples = [0] * len(metrics)

    def processes(self) -> list:
        """One SimPy process per distinct (quantity, height, grid, interval): metrics that
        differ only in threshold share their samples."""
        keys: dict[tuple, list[int]] = {}
        for k, (m, g) in enumerate(zip(self.metrics, self.grids, strict=True)):
            key = (m["quantity"], m["height_m"], m["interval_s"], g.cell_m, g.shape,
                   float(g.xs_m[0]), float(g.ys_m[0]))
            keys.setdefault(key, []).append(k)
        return [self._process(ks) for ks in keys.values()]

    def _process(self, ks: list[int]):
        m, grid = self.metrics[ks[0]], self.grids[ks[0]]
        xyz = grid.xyz(m["height_m"])

        def record(ctx):
            env = ctx.env
            while env.now <= ctx.duration_s:
                value = ctx.sample(m["quantity"], xyz, t_s=float(env.now))
                for k in ks:
                    np.maximum(self._max[k], value, out=self._max[k])
                    self.samples[k] += 1
                yield env.timeout(m["interval_s"])

        return record

    def maxima(self) -> dict[str, np.ndarray]:
        return {m["label"]: v.reshape(g.shape)
                for m, g, v in zip(self.metrics, self.grids, self._max, strict=True)}


def exposure(max_field: np.ndarray, threshold: float, grid: StudyGrid,
             index: ImpactIndex) -> dict:
    """The cells whose maximum exceeds ``threshold``, and the buildings, people and protected
    targets in the area they cover, counted as warnings count them (``ImpactIndex.count``:
    buildings by footprint or wall share, open places by density)."""
    above = np.asarray(max_field, dtype=float).reshape(grid.shape) > threshold
    cells = int(above.sum())
    if cells == 0:
        return {"cells": 0, "buildings": 0, "people": 0, "protected": 0, "protected_ids": []}
    area = polygonize(FieldGrid(xs_m=grid.xs_m, ys_m=grid.ys_m, values=above.astype(float),
                                quantity="exceeded", units="1", t_s=0.0,
                                resolution_m=grid.cell_m), 0.5)
    c = index.count(area)
    return {"cells": cells, "buildings": c.buildings, "people": c.people,
            "protected": len(c.targets), "protected_ids": list(c.targets)}


#: Warning events by which a warning reaches a level.
REACHING_EVENTS = ("raised", "escalated")


def hazard_starts(hazards) -> dict[str, float]:
    """Hazard kind (the rulebook's hazard name) → the earliest start (s) of the scenario's
    hazards of that kind."""
    starts: dict[str, float] = {}
    for h in hazards:
        starts[h.kind] = min(starts.get(h.kind, math.inf), float(h.start_s))
    return starts


def detection_events(warnings, starts: dict[str, float]) -> tuple[list, set[str]]:
    """(the warning events that count as detections, ids of the false warnings).

    A detection is a warning event raising or escalating a warning of one of the scenario's
    hazards (``starts``: rulebook hazard name → start s), known at or after that hazard's
    start. A *false* warning is one raised before its hazard started (noise) or for a hazard
    the scenario does not have; a later escalation of a warning raised by noise, once the
    hazard runs, still counts as a detection (but not its raising).
    """
    hits, false_ids = [], set()
    for w in warnings:
        start = starts.get(w.hazard)
        ok = start is not None and w.known_at_s >= start
        if w.event == "raised" and not ok:
            false_ids.add(w.warning_id)
        if ok and w.event in REACHING_EVENTS:
            hits.append(w)
    return hits, false_ids


def member_metrics(run, result, recorder: FieldRecorder) -> dict:
    """The member's metrics (times in s from the earliest hazard start; NaN if never).

    Warnings count only as detections (``detection_events``): a warning of the scenario's
    hazard (the rulebook names hazards by their kind) raised or escalated at or after that
    hazard's start.

    - ``time_to_first_detection_s``: first alarm of any sensor (owner level).
    - ``time_to_first_warning_s``: first detection warning event (sensor-based or a model
      pre-warning).
    - ``time_to_<level>_s``: first detection warning event at that level or above.
    - ``max_level`` / ``max_level_index``: highest level of the detection events (``none`` /
      0).
    - ``warnings``: distinct warnings (all); ``false_warnings``: those raised before their
      hazard started or for another hazard; ``warning_escalations``: warning level raises;
      ``work_order_escalations``: work orders escalated by the overdue rules.
    - per metric ``<label>_reached``: the max field exceeded the threshold in some cell;
      ``<label>_area_m2``, ``_buildings``, ``_people`` (occupants), ``_protected`` (count)
      and ``_protected_ids``: what the cells above the threshold meet.
    - ``hazard_reached`` (= first metric's ``_reached``) and ``missed_detection``: the
      hazard reached the first metric's threshold somewhere but no warning counted as a
      detection during the run.
    """
    from citytwin.scenarios.replay.session import level_first

    rb = run.rulebook
    t0 = min((h.start_s for h in run.scenario.hazards), default=0.0)
    hits, false_ids = detection_events(result.warnings, hazard_starts(run.scenario.hazards))
    first = [w.known_at_s for w in hits]
    detections = [t for t, kind, _, _ in result.timeline if kind == "first_detection"]
    out: dict = {
        "time_to_first_detection_s": min(detections) - t0 if detections else math.nan,
        "time_to_first_warning_s": min(first) - t0 if first else math.nan,
    }
    reached = level_first(rb.levels, [w.known_at_s for w in hits], [w.level for w in hits])
    for name, t in reached.items():
        out[f"time_to_{name}_s"] = math.nan if t is None else t - t0
    best = max((w.level for w in hits), default=0)
    out["max_level"] = rb.level_name(best)
    out["max_level_index"] = int(best)
    out["warnings"] = len({w.warning_id for w in result.warnings})
    out["false_warnings"] = len(false_ids)
    out["warning_escalations"] = sum(w.event == "escalated" for w in result.warnings)
    out["work_order_escalations"] = int(result.n_escalations)
    maxima = recorder.maxima()
    for m, grid in zip(recorder.metrics, recorder.grids, strict=True):
        e = exposure(maxima[m["label"]], m["threshold"], grid, impact_index(run.twin))
        lab = m["label"]
        out[f"{lab}_reached"] = e["cells"] > 0
        out[f"{lab}_area_m2"] = e["cells"] * grid.cell_m ** 2
        out[f"{lab}_buildings"] = e["buildings"]
        out[f"{lab}_people"] = e["people"]
        out[f"{lab}_protected"] = e["protected"]
        out[f"{lab}_protected_ids"] = e["protected_ids"]
    lab0 = recorder.metrics[0]["label"]
    out["hazard_reached"] = out[f"{lab0}_reached"]
    out["missed_detection"] = bool(out["hazard_reached"] and not hits)
    return out
