"""Warnings: alarms grouped into incidents, graded, routed, and followed through their lifecycle.

One incident, not forty alarms: an alarm (or a model forecast at a protected target) joins an
active warning of the same hazard when it lies within its rule's ``cluster_radius_m`` of a
member already in that warning; otherwise it opens a new warning.

A warning's level, re-evaluated on every change and at situation updates (``refresh``):
1. the highest current level of its members (forecast members capped at the forecast's
   ``max_level``);
2. plus ``raise_by`` when a rule's corroboration holds (k sensors alarming within r metres of
   one another or on the same network segment);
3. at least the rulebook's impact levels: a protected target inside the affected area, or
   the population inside reaching a threshold.

Lifecycle events: ``raised`` → ``escalated`` / ``deescalated`` (level up/down) and
``updated`` (members, protected targets or area changed by more than the impact policy's
``area_update_ratio``) → ``cleared`` (all-clear: every member back to no alarm) or
``cancelled`` (withdrawn by an operator, e.g. a confirmed false alarm; its members' alarms are
then ignored until they clear).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from citytwin.alerting.events import CLOSING, AlarmChange, WarningEvent
from citytwin.alerting.impact import ImpactIndex
from citytwin.alerting.routing import RoutingTable
from citytwin.alerting.rulebook import Forecast, Rule, Rulebook

#: (hazard, quantity, threshold, t_s) → footprint geometry in the twin CRS (empty: the model
#: has nothing above the threshold), or None (no model of that hazard: use the buffer).
AreaProvider = Callable[[str, str, float, float], BaseGeometry | None]

Key = tuple[str, str]  # (rule id, member id: sensor, site or protected-target id)


@dataclass
class _Warning:
    warning_id: str
    hazard: str
    first_exceedance_s: float
    members: dict[Key, int] = field(default_factory=dict)
    level: int = 0
    sensors: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    area_m2: float = 0.0
    forecast_at: tuple[str, ...] = ()   # places a model forecast reached at the last event


class WarningBoard:
    """Turns alarm changes and forecasts, in order, into warning lifecycle events."""

    def __init__(self, rulebook: Rulebook, positions: dict[str, tuple[float, float]],
                 routing: RoutingTable, *, impact: ImpactIndex | None = None,
                 area_provider: AreaProvider | None = None,
                 segments: dict[str, frozenset[str]] | None = None,
                 bounds: BaseGeometry | None = None, id_prefix: str = "W") -> None:
        self.rulebook = rulebook
        self.rules: dict[str, Rule | Forecast] = {r.id: r for r in [*rulebook.rules,
                                                                     *rulebook.forecasts]}
        self.positions = positions
        self.routing = routing
        self.impact = impact
        self.area_provider = area_provider
        self.segments = segments or {}
        #: the twin's extent: every warning area is clipped to it (no one outside is counted)
        self.bounds = bounds
        self.id_prefix = id_prefix
        self.n_levels = len(rulebook.levels)
        self.active: list[_Warning] = []
        self.suppressed: set[Key] = set()
        self.count = 0

    # -- input ------------------------------------------------------------------------------
    def apply(self, change: AlarmChange) -> tuple[str, WarningEvent | None]:
        """Fold one alarm change into the board: the warning it went to ("" for none) and
        the warning event it causes, if any."""
        warning = self._fold(change)
        if warning is None:
            return "", None
        return warning.warning_id, self._evaluate(warning, change.time_s, change.known_at_s)

    def apply_all(self, changes: list[AlarmChange]
                  ) -> tuple[list[str], list[tuple[int, WarningEvent]]]:
        """Fold changes that happen together (one forecast), then grade each warning they
        touched once: one event per warning, not one per change. Returns the warning each
        change went to ("" for none) and (index of the warning's last change, event) pairs
        in the order the warnings were first touched."""
        touched: dict[str, tuple[_Warning, int]] = {}
        warning_ids = []
        for i, change in enumerate(changes):
            warning = self._fold(change)
            warning_ids.append("" if warning is None else warning.warning_id)
            if warning is not None:  # dicts keep first-touch order; remember the last change
                touched[warning.warning_id] = (warning, i)
        out = []
        for warning, i in touched.values():
            if warning in self.active:
                event = self._evaluate(warning, changes[i].time_s, changes[i].known_at_s)
                if event is not None:
                    out.append((i, event))
        return warning_ids, out

    def _fold(self, change: AlarmChange) -> _Warning | None:
        """Record a change in its warning (new, nearby or its own); None if it makes none."""
        rule = self.rules[change.rule_id]
        if isinstance(rule, Rule) and not rule.warn:
            return None  # the owner is alarmed; a composite over this rule makes the warning
        key = (change.rule_id, change.sensor_id)
        if key in self.suppressed:
            if change.to_level == 0:
                self.suppressed.discard(key)
            return None
        warning = next((w for w in self.active if key in w.members), None)
        if warning is None:
            if change.to_level == 0:
                return None  # a member of a cleared warning dropping further: nothing new
            warning = self._nearby(change, rule)
            if warning is None:
                self.count += 1
                warning = _Warning(f"{self.id_prefix}-{self.count:04d}", change.hazard,
                                   change.first_exceedance_s)
                self.active.append(warning)
        if np.isfinite(change.first_exceedance_s):
            warning.first_exceedance_s = min(warning.first_exceedance_s,
                                             change.first_exceedance_s)
        warning.members[key] = change.to_level
        return warning

    def refresh(self, t_s: float) -> list[WarningEvent]:
        """Situation update: re-draw every active warning's area and re-grade it at ``t_s``."""
        out = []
        for warning in list(self.active):
            event = self._evaluate(warning, t_s, t_s)
            if event is not None:
                out.append(event)
        return out

    def cancel(self, warning_id: str, t_s: float, reason: str) -> WarningEvent:
        """Withdraw an active warning (e.g. a confirmed false alarm)."""
        warning = next((w for w in self.active if w.warning_id == warning_id), None)
        if warning is None:
            known = ", ".join(w.warning_id for w in self.active) or "none"
            raise KeyError(f"cannot cancel {warning_id!r}: not an active warning "
                           f"(active: {known})")
        self.active.remove(warning)
        self.suppressed.update(k for k, lv in warning.members.items() if lv > 0)
        return self._event(warning, "cancelled", t_s, t_s, shapely.Polygon(), "none",
                           (), 0, f"cancelled: {reason}", warning.level)

    # -- grading ----------------------------------------------------------------------------
    def _evaluate(self, warning: _Warning, t_s: float,
                  known_at_s: float) -> WarningEvent | None:
        base, reasons = self._member_level(warning)
        if base == 0:
            self.active.remove(warning)
            return self._event(warning, "cleared", t_s, known_at_s, shapely.Polygon(),
                               "none", (), 0, "all members back below thresholds", 0)
        area, source = self._area(warning, t_s)
        counted = self.impact.count(area) if self.impact else None
        targets = counted.targets if counted else ()
        population = counted.people if counted else 0
        level = base
        policy = self.rulebook.impact
        if targets and policy.protected_target_level is not None:
            floor = self.rulebook.level_number(policy.protected_target_level)
            if floor > level:
                level = floor
                reasons.append(f"protected target(s) inside → at least "
                               f"{policy.protected_target_level}")
        for name, min_pop in policy.population_levels.items():
            floor = self.rulebook.level_number(name)
            if population >= min_pop and floor > level:
                level = floor
                reasons.append(f"population inside ≥ {min_pop} → at least {name}")
        sensors = tuple(sorted({m for (r, m) in warning.members
                                if not isinstance(self.rules[r], Forecast)}))
        forecast_at = tuple(sorted({m for (r, m), lv in warning.members.items()
                                    if lv > 0 and isinstance(self.rules[r], Forecast)}))
        if forecast_at:
            reasons.append(f"model forecast reaches {', '.join(forecast_at)}")
        area_m2 = float(area.area)
        if warning.level == 0:
            kind = "raised"
        elif level > warning.level:
            kind = "escalated"
        elif level < warning.level:
            kind = "deescalated"
        elif (sensors != warning.sensors or targets != warning.targets
              or forecast_at != warning.forecast_at
              or abs(area_m2 - warning.area_m2) > policy.area_update_ratio
              * max(warning.area_m2, 1.0)):
            kind = "updated"
        else:
            return None
        warning.sensors, warning.targets, warning.area_m2 = sensors, targets, area_m2
        warning.forecast_at = forecast_at
        return self._event(warning, kind, t_s, known_at_s, area, source, targets,
                           population, "; ".join(reasons), level)

    def _member_level(self, warning: _Warning) -> tuple[int, list[str]]:
        """Highest member level (forecasts capped), corroboration bonus, and the reasons."""
        best, best_key = 0, None
        for key, lv in sorted(warning.members.items()):
            rule = self.rules[key[0]]
            if isinstance(rule, Forecast) and rule.max_level is not None:
                lv = min(lv, self.rulebook.level_number(rule.max_level))
            if lv > best:
                best, best_key = lv, key
        if best == 0:
            return 0, []
        what = "forecast at" if isinstance(self.rules[best_key[0]], Forecast) else "sensor"
        reasons = [f"{self.rulebook.level_name(best)} from {what} {best_key[1]} "
                   f"(rule {best_key[0]})"]
        for rule in self.rules.values():
            if not isinstance(rule, Rule) or rule.corroboration is None:
                continue
            c = rule.corroboration
            used = np.flatnonzero(~np.isnan(self.rulebook.threshold_vector(rule)))
            min_level = (self.rulebook.level_number(c.min_level) if c.min_level
                         else int(used[0]) + 1)
            ids = sorted(m for (r, m), lv in warning.members.items()
                         if r == rule.id and lv >= min_level)
            n = self._largest_group(ids, c.radius_m, c.same_segment)
            if n >= c.min_sensors:
                raised = min(self.n_levels, best + c.raise_by)
                if raised > best:
                    reasons.append(f"corroborated by {n} sensors within {c.radius_m:g} m or on "
                                   f"one segment (rule {rule.id}) → "
                                   f"{self.rulebook.level_name(raised)}")
                    best = raised
        return best, reasons

    def _largest_group(self, ids: list[str], radius_m: float, same_segment: bool) -> int:
        """Size of the largest set of sensors all near one of them (distance or segment)."""
        if len(ids) < 2:
            return len(ids)
        xy = np.array([self.positions[i] for i in ids])
        near = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
        near = near <= radius_m
        if same_segment:
            segs = [self.segments.get(i, frozenset()) for i in ids]
            for a in range(len(ids)):
                for b in range(a + 1, len(ids)):
                    if segs[a] & segs[b]:
                        near[a, b] = near[b, a] = True
        return int(near.sum(axis=1).max())

    # -- geometry ---------------------------------------------------------------------------
    def _nearby(self, change: AlarmChange, rule: Rule | Forecast) -> _Warning | None:
        radius = rule.cluster_radius_m
        x, y = self.positions[change.sensor_id]
        for w in self.active:
            if w.hazard != change.hazard:
                continue
            pts = np.array([self.positions[m] for _, m in w.members])
            if np.min(np.hypot(pts[:, 0] - x, pts[:, 1] - y)) <= radius:
                return w
        return None

    def _area(self, warning: _Warning, t_s: float) -> tuple[BaseGeometry, str]:
        """Union over the warning's alarming rules of each rule's area: the attached model's
        footprint above the rule's area threshold, or buffers around its alarming members;
        clipped to the twin's extent (``bounds``): what the hazard covers inside the twin."""
        parts, sources = [], set()
        for rule_id in sorted({r for (r, _), lv in warning.members.items() if lv > 0}):
            geom, source = self._rule_area(warning, self.rules[rule_id], t_s)
            parts.append(geom)
            sources.add(source)
        area = shapely.unary_union(parts)
        if self.bounds is not None and not area.is_empty:
            area = shapely.intersection(area, self.bounds)
        return area, "+".join(sorted(sources))

    def _rule_area(self, warning: _Warning, rule: Rule | Forecast,
                   t_s: float) -> tuple[BaseGeometry, str]:
        if self.area_provider is not None and rule.area.model_level is not None:
            threshold = (rule.area.model_threshold if rule.area.model_threshold is not None
                         else rule.thresholds[rule.area.model_level])
            quantity = rule.area.model_quantity or rule.quantity
            geom = self.area_provider(warning.hazard, quantity, threshold, t_s)
            if geom is not None:  # the model's footprint, even when empty: it knows better
                return geom, "model"  # than a buffer, and switching would flap the area
        xy = np.array([self.positions[m] for (r, m), lv in sorted(warning.members.items())
                       if lv > 0 and r == rule.id], dtype=float).reshape(-1, 2)
        # one vectorised buffer (16 segments per quarter, as Point.buffer) and one union
        discs = shapely.buffer(shapely.points(xy), rule.area.buffer_m, quad_segs=16)
        return shapely.union_all(discs), "buffer"

    def _event(self, warning: _Warning, kind: str, t_s: float, known_at_s: float,
               area: BaseGeometry, source: str,
               targets: tuple[str, ...], population: int, reason: str,
               level: int) -> WarningEvent:
        route_level = max(level if kind != "cleared" else warning.level, 1)
        warning.level = level if kind not in CLOSING else 0
        model_only = all(isinstance(self.rules[r], Forecast) for (r, _), lv
                         in warning.members.items() if lv > 0) and kind not in CLOSING
        level_name = self.rulebook.level_name(level)
        routing = self.routing.route(warning.hazard, self.rulebook.level_name(route_level),
                                     targets=targets or warning.targets,
                                     population=population)
        return WarningEvent(
            time_s=float(t_s), known_at_s=float(known_at_s), warning_id=warning.warning_id,
            event=kind, hazard=warning.hazard, level=level, level_name=level_name,
            basis="model" if model_only else "sensors",
            certainty="Likely" if model_only else "Observed",
            sensors=warning.sensors, first_exceedance_s=float(warning.first_exceedance_s),
            area_wkt=shapely.to_wkt(area, rounding_precision=2),
            area_m2=round(float(area.area), 2), area_source=source, targets=targets,
            population=int(population), loop=routing.loop, lead_unit=routing.lead_unit,
            recipients=routing.recipients, reason=reason)
