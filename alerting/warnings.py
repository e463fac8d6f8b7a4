"""Warnings: alarms grouped into incidents, each with a level, an area, targets and recipients.

One incident, not forty alarms: an alarm joins an active warning of the same hazard when its
sensor lies within the rule's ``cluster_radius_m`` of a sensor already in that warning;
otherwise it opens a new warning. The warning's level is the highest current alarm level of
its members; it is cleared (all-clear) when every member is back to level 0.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from alerting.events import AlarmChange, WarningEvent
from alerting.impact import ImpactIndex
from alerting.rulebook import Rule, Rulebook

#: (hazard, quantity, threshold, t_s) → footprint geometry in the twin CRS, or None.
AreaProvider = Callable[[str, str, float, float], BaseGeometry | None]


@dataclass
class _Warning:
    warning_id: str
    hazard: str
    first_exceedance_s: float
    members: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, sensor) → level
    level: int = 0


class WarningBoard:
    """Turns alarm changes, in order, into warning events."""

    def __init__(self, rulebook: Rulebook, sensor_xy: dict[str, tuple[float, float]],
                 impact: ImpactIndex | None = None, area_provider: AreaProvider | None = None,
                 id_prefix: str = "W") -> None:
        self.rulebook = rulebook
        self.rules = {r.id: r for r in rulebook.rules}
        self.sensor_xy = sensor_xy
        self.impact = impact
        self.area_provider = area_provider
        self.id_prefix = id_prefix
        self.active: list[_Warning] = []
        self.count = 0

    def apply(self, change: AlarmChange) -> WarningEvent | None:
        """Fold one alarm change into the board; return the warning event it causes, if any."""
        key = (change.rule_id, change.sensor_id)
        warning = next((w for w in self.active if key in w.members), None)
        if warning is None:
            if change.to_level == 0:
                return None  # a member of a cleared warning dropping further: nothing new
            warning = self._nearby(change)
            if warning is None:
                self.count += 1
                warning = _Warning(f"{self.id_prefix}-{self.count:04d}", change.hazard,
                                   change.first_exceedance_s)
                self.active.append(warning)
        joined = key not in warning.members
        warning.first_exceedance_s = min(warning.first_exceedance_s, change.first_exceedance_s)
        warning.members[key] = change.to_level
        new_level = max(warning.members.values())
        if warning.level == 0:
            kind = "raised"
        elif new_level == 0:
            kind = "cleared"
        elif new_level != warning.level or joined:
            kind = "updated"
        else:
            warning.level = new_level
            return None
        warning.level = new_level
        if kind == "cleared":
            self.active.remove(warning)
        return self._event(warning, kind, change)

    def _nearby(self, change: AlarmChange) -> _Warning | None:
        radius = self.rules[change.rule_id].cluster_radius_m
        x, y = self.sensor_xy[change.sensor_id]
        for w in self.active:
            if w.hazard != change.hazard:
                continue
            pts = np.array([self.sensor_xy[s] for _, s in w.members])
            if np.min(np.hypot(pts[:, 0] - x, pts[:, 1] - y)) <= radius:
                return w
        return None

    def _area(self, warning: _Warning, rule: Rule, t_s: float) -> tuple[BaseGeometry, str]:
        if self.area_provider is not None and rule.area.model_level is not None:
            threshold = rule.thresholds[rule.area.model_level]
            geom = self.area_provider(warning.hazard, rule.quantity, threshold, t_s)
            if geom is not None and not geom.is_empty:
                return geom, "model"
        pts = [shapely.Point(self.sensor_xy[s]) for _, s in sorted(warning.members)]
        return shapely.unary_union([p.buffer(rule.area.buffer_m) for p in pts]), "buffer"

    def _event(self, warning: _Warning, kind: str, change: AlarmChange) -> WarningEvent:
        rule = self.rules[change.rule_id]
        if kind == "cleared":
            area, source = shapely.Polygon(), "none"
        else:
            area, source = self._area(warning, rule, change.time_s)
        targets = tuple(self.impact.targets_inside(area)) if self.impact else ()
        population = self.impact.population_inside(area) if self.impact else 0
        return WarningEvent(
            time_s=change.time_s,
            known_at_s=change.known_at_s,
            warning_id=warning.warning_id,
            event=kind,
            hazard=warning.hazard,
            level=warning.level,
            level_name=self.rulebook.level_name(warning.level),
            sensors=tuple(sorted({s for _, s in warning.members})),
            first_exceedance_s=warning.first_exceedance_s,
            area_wkt=shapely.to_wkt(area, rounding_precision=2),
            area_m2=round(float(area.area), 2),
            area_source=source,
            targets=targets,
            population=population,
            recipients=tuple(self.rulebook.recipients_for(warning.level)),
        )
