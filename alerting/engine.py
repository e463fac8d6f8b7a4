"""The detection and warning engine: observations in, alarms and warnings out.

The same engine runs on simulated, drill, archived and live observations. It gives identical
output whether fed one observation at a time or in batches of any size: the compiled kernel
(``alerting.detect_kernel``) walks the readings in arrival order, per-sensor state only
depends on that sensor's readings, and alarm changes reach the warning board in order.

Input rules (checked for the whole batch before any state changes):
- every sensor id must be in the inventory, with the inventory's unit (else the batch is
  rejected with an error naming the sensor);
- each sensor's readings must arrive in strictly increasing ``time_s``. A repeated time is a
  *duplicate*, an earlier one *out of order*. With ``on_disorder="reject"`` (default) the
  whole batch is refused with an error naming the sensor and times, leaving the engine as it
  was; with ``"drop"`` (replay of messy archives) exactly those rows are skipped and listed in
  ``EngineOutput.dropped`` — never silently double-counted. In both modes the rule is judged
  against the sensor's last *accepted* reading, so streaming and batches agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import shapely

from citytwin.alerting.detect_kernel import check_order
from citytwin.alerting.detection import DetectionState, LevelChanges
from citytwin.alerting.events import AlarmChange, WarningEvent
from citytwin.alerting.impact import ImpactIndex
from citytwin.alerting.observation import USABLE_QUALITIES, Observation, ObservationBatch
from citytwin.alerting.routing import RoutingTable, load_routing
from citytwin.alerting.rulebook import Forecast, Rulebook
from citytwin.alerting.warnings import AreaProvider, WarningBoard
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin

INVENTORY_COLUMNS = ("sensor_id", "type_id", "quantity", "unit", "x_m", "y_m")
DISORDER_POLICIES = ("reject", "drop")
_USABLE = frozenset(USABLE_QUALITIES)


@dataclass(frozen=True)
class DroppedObservation:
    """A reading skipped under ``on_disorder="drop"``."""

    row: int
    sensor_id: str
    time_s: float
    reason: str  # "duplicate" | "out-of-order"


@dataclass
class EngineOutput:
    """What one call to the engine produced, in order."""

    alarms: list[AlarmChange] = field(default_factory=list)
    warnings: list[WarningEvent] = field(default_factory=list)
    dropped: list[DroppedObservation] = field(default_factory=list)
    #: for a processed batch: each row's sensor position and whether it was accepted (not
    #: dropped as a duplicate or out of order)
    sensor_index: np.ndarray | None = None
    accepted: np.ndarray | None = None

    def extend(self, other: EngineOutput) -> None:
        self.alarms.extend(other.alarms)
        self.warnings.extend(other.warnings)
        self.dropped.extend(other.dropped)


class Engine:
    """Stateful detection over a sensor inventory under one rulebook and routing table."""

    def __init__(self, rulebook: Rulebook, inventory: pd.DataFrame, *,
                 twin: CityTwin | None = None, area_provider: AreaProvider | None = None,
                 routing: RoutingTable | None = None,
                 segments: dict[str, frozenset[str]] | None = None,
                 targets: pd.DataFrame | None = None,
                 extra_places: pd.DataFrame | None = None, on_disorder: str = "reject",
                 source: str = "<observations>") -> None:
        missing = [c for c in INVENTORY_COLUMNS if c not in inventory.columns]
        if missing:
            raise InputError("<sensor inventory>", f"missing column(s) {missing}")
        ids = inventory["sensor_id"].astype(str)
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[0]
            raise InputError("<sensor inventory>", "duplicate sensor id", field="sensor_id",
                             feature_id=dup)
        if on_disorder not in DISORDER_POLICIES:
            raise ValueError(f"on_disorder must be one of {DISORDER_POLICIES}, got "
                             f"{on_disorder!r}")
        self.rulebook = rulebook
        self.routing = routing if routing is not None else load_routing()
        self.routing.check_covers(rulebook.hazards, rulebook.levels, "<routing table>")
        self.source = source
        self.on_disorder = on_disorder
        self.sensor_ids = ids.to_numpy(dtype=object)
        self._index = pd.Index(self.sensor_ids)
        self._index_of = {s: i for i, s in enumerate(self.sensor_ids)}
        units = inventory["unit"].astype(str).to_numpy(dtype=object)
        self.units = units
        self._unit_names = sorted(set(units))
        self._unit_code = np.array([self._unit_names.index(u) for u in units], dtype=np.int64)
        self.last_time_s = np.full(len(ids), -np.inf)
        self.state = DetectionState(rulebook, inventory)
        for j, rule in enumerate(rulebook.rules):
            wrong = self.state.member[:, j] & (units != rule.unit)
            if rule.kind != "composite" and wrong.any():
                k = int(np.flatnonzero(wrong)[0])
                raise InputError("<rulebook>", f"rule {rule.id} takes readings in "
                                 f"{rule.unit!r} but sensor {self.sensor_ids[k]} reports "
                                 f"{units[k]!r}", field=f"rules.{j}.unit")
        self._rule_ids = [r.id for r in rulebook.rules]
        self._hazards = [r.hazard for r in rulebook.rules]
        self._slot_names = [
            self.state.site_ids if r.kind == "composite" and r.composite.group_by == "site"
            else self.sensor_ids for r in rulebook.rules]
        xs = inventory["x_m"].astype(float).to_numpy()
        ys = inventory["y_m"].astype(float).to_numpy()
        positions = {s: (float(x), float(y)) for s, x, y in zip(self.sensor_ids, xs, ys,
                                                                strict=True)}
        # A site sits at the mean position of its sensors.
        per_site = np.bincount(self.state.site_of)
        site_x = np.bincount(self.state.site_of, weights=xs) / per_site
        site_y = np.bincount(self.state.site_of, weights=ys) / per_site
        for site, x, y in zip(self.state.site_ids, site_x, site_y, strict=True):
            positions.setdefault(str(site), (float(x), float(y)))
        self.targets = self._target_table(twin, targets, protected_only=True)
        self.places = self._target_table(twin, targets, protected_only=False)
        if extra_places is not None and len(extra_places):
            self.places = pd.concat([self.places, extra_places[["id", "x_m", "y_m"]]],
                                    ignore_index=True)
        for table in (self.targets, self.places):
            for tid, x, y in zip(table["id"], table["x_m"], table["y_m"], strict=True):
                positions.setdefault(str(tid), (float(x), float(y)))
        self.board = WarningBoard(rulebook, positions, self.routing,
                                  impact=ImpactIndex(twin) if twin is not None else None,
                                  area_provider=area_provider, segments=segments,
                                  bounds=(shapely.box(*twin.terrain.bounds)
                                          if twin is not None else None))
        #: hazards that exist (a simulated run knows them; None: live data, any may)
        self.present_hazards: frozenset[str] | None = None
        self._silent: set[int] = set()  # rules whose alarms open no warning (attribute_to)
        self._forecast_level: dict[tuple[str, str], int] = {}

    @staticmethod
    def _target_table(twin: CityTwin | None, targets: pd.DataFrame | None, *,
                      protected_only: bool) -> pd.DataFrame:
        """Places (id, x_m, y_m) forecasts are made for: the protected targets, or every
        place of the twin (hazard sources, shelters, ...); ``targets`` overrides both.
        ``extra_places`` (a scenario's places of concern, e.g. bridges and hamlets in a
        dam's flood path) are added to the latter."""
        if targets is not None:
            return targets[["id", "x_m", "y_m"]].reset_index(drop=True)
        layer = None if twin is None else (twin.protected_targets if protected_only
                                           else twin.places)
        if layer is None or len(layer) == 0:
            return pd.DataFrame({"id": [], "x_m": [], "y_m": []})
        pts = layer.geometry.representative_point()
        return pd.DataFrame({"id": layer["id"].astype(str).to_numpy(),
                             "x_m": pts.x.to_numpy(), "y_m": pts.y.to_numpy()})

    def attribute_to(self, hazards: dict[str, set[str]]) -> None:
        """Tell the engine which hazards exist (kind → quantities its model produces), as a
        simulation does: a rule of a hazard that is absent reports what its sensors see as
        the one present hazard producing the rule's quantity (river gauges in a dam break
        see the dam-break flood, not a rain flood); with no such hazard, or several, its
        alarms open no warning. Only hazards the rulebook itself warns of take a rule over
        (the routing covers exactly those). Forecasts of an absent hazard are ignored
        (``forecast``). Each call replaces the previous one."""
        self.present_hazards = frozenset(hazards)
        self._hazards = [r.hazard for r in self.rulebook.rules]
        self._silent = set()
        warned = set(self.rulebook.hazards)
        for j, rule in enumerate(self.rulebook.rules):
            if rule.hazard in hazards:
                continue
            producers = sorted(k for k, qs in hazards.items()
                               if rule.quantity in qs and k in warned)
            if len(producers) == 1:
                self._hazards[j] = producers[0]
            else:
                self._silent.add(j)

    def forecast_targets(self, rule_id: str) -> pd.DataFrame:
        """The places a forecast rule is evaluated at (its ``targets`` setting)."""
        rule = self.rulebook.rule(rule_id)
        return self.places if getattr(rule, "targets", "protected") == "places" \
            else self.targets

    def has_sensor(self, sensor_id: str) -> bool:
        """Whether ``sensor_id`` is in the inventory."""
        return sensor_id in self._index_of

    def position(self, sensor_id: str) -> int:
        """Inventory position of one sensor id (KeyError if unknown)."""
        return self._index_of[sensor_id]

    # -- feeding ----------------------------------------------------------------------------
    def process_one(self, observation: Observation) -> EngineOutput:
        """Feed one observation (the scalar fast path; same result as a batch of one)."""
        o = observation
        s = self._index_of.get(o.sensor_id)
        if s is None:
            raise InputError(self.source, f"unknown sensor id(s) [{o.sensor_id!r}]",
                             field="sensor_id")
        if o.unit != self.units[s]:
            raise InputError(self.source, f"unit mismatch: sensor {o.sensor_id} reports "
                             f"{o.unit!r}, the inventory says {self.units[s]!r}", field="unit")
        t = float(o.time_s)
        if not math.isfinite(t):
            raise InputError(self.source, f"non-finite time for sensor {o.sensor_id}",
                             field="time_s")
        last = self.last_time_s[s]
        if t <= last:
            what = "duplicate" if t == last else "out-of-order"
            if self.on_disorder == "drop":
                return EngineOutput(dropped=[DroppedObservation(0, o.sensor_id, t, what)])
            raise InputError(self.source, self._disorder_text(what, o.sensor_id, t, last),
                             field="time_s")
        self.last_time_s[s] = t
        v = float(o.value)
        usable = o.quality in _USABLE and math.isfinite(v)
        changes = self.state.run(np.array([s]), np.array([v]), np.array([t]),
                                 np.array([usable]))
        if len(changes) == 0:
            return EngineOutput()
        received = t if o.received_s is None else float(o.received_s)
        return self._emit(changes, [o.sensor_id], np.array([t]), np.array([received]))

    def process(self, batch: ObservationBatch) -> EngineOutput:
        """Feed a batch (rows in arrival order); all-or-nothing on bad input."""
        if len(batch) == 0:
            return EngineOutput()
        idx = self._resolve(batch)
        keep, dropped = self._check_order(idx, batch)
        usable = np.isin(batch.quality, USABLE_QUALITIES) & np.isfinite(batch.value) & keep
        changes = self.state.run(idx, batch.value, batch.time_s, usable)
        out = self._emit(changes, batch.sensor_id, batch.time_s, batch.received_s)
        out.dropped = dropped
        out.sensor_index, out.accepted = idx, keep
        return out

    def _emit(self, changes: LevelChanges, sensor_id, time_s: np.ndarray,
              received_s: np.ndarray) -> EngineOutput:
        out = EngineOutput()
        for row, r, slot, old, new, since, x in zip(
                changes.row.tolist(), changes.rule.tolist(), changes.slot.tolist(),
                changes.old.tolist(), changes.new.tolist(), changes.since_s.tolist(),
                changes.graded.tolist(), strict=True):
            change = AlarmChange(
                time_s=float(time_s[row]), known_at_s=float(received_s[row]),
                sensor_id=str(self._slot_names[r][slot]), rule_id=self._rule_ids[r],
                hazard=self._hazards[r], from_level=old, to_level=new, value=x,
                first_exceedance_s=since)
            warning_id, event = ("", None) if r in self._silent else self.board.apply(change)
            out.alarms.append(replace(change, warning_id=warning_id))
            if event is not None:
                out.warnings.append(event)
        return out

    # -- forecasts, situation updates, operator actions -------------------------------------
    def forecast(self, rule_id: str, t_s: float, predicted: dict[str, tuple[float, float]]
                 ) -> EngineOutput:
        """Model-based pre-warning input from an attached hazard model at time ``t_s``.

        ``predicted`` maps protected-target id → (highest predicted value within the
        forecast's horizon, predicted time it first reaches the lowest threshold or NaN).
        A target's forecast level follows the rule's thresholds, lifted by ``arrival_levels``
        when the predicted arrival is close (no debounce: each forecast replaces the last).
        Changes become alarm changes (``sensor_id`` = target id) and feed the warning board
        like sensor alarms.
        """
        rule = self.rulebook.rule(rule_id)
        if not isinstance(rule, Forecast):
            raise KeyError(f"{rule_id!r} is a detection rule, not a forecast")
        if self.present_hazards is not None and rule.hazard not in self.present_hazards:
            return EngineOutput()  # only the hazard's own model forecasts it
        thresholds = self.rulebook.threshold_vector(rule)
        changes: list[AlarmChange] = []
        for target_id in sorted(predicted):
            value, eta_s = predicted[target_id]
            level = 0
            for k, thr in enumerate(thresholds):
                if not np.isnan(thr) and value >= thr:
                    level = k + 1
            if level and math.isfinite(eta_s):
                lead_s = max(eta_s - t_s, 0.0)
                for name, max_lead_s in rule.arrival_levels.items():
                    if lead_s <= max_lead_s:
                        level = max(level, self.rulebook.level_number(name))
            key = (rule_id, target_id)
            old = self._forecast_level.get(key, 0)
            if level == old:
                continue
            self._forecast_level[key] = level
            changes.append(AlarmChange(
                time_s=float(t_s), known_at_s=float(t_s), sensor_id=target_id,
                rule_id=rule_id, hazard=rule.hazard, from_level=old, to_level=level,
                value=float(value), first_exceedance_s=float(eta_s) if level else math.nan))
        # One forecast is one piece of news: each warning it touches is re-graded once.
        warning_ids, events = self.board.apply_all(changes)
        return EngineOutput(
            alarms=[replace(c, warning_id=w) for c, w in zip(changes, warning_ids, strict=True)],
            warnings=[e for _, e in events])

    def refresh(self, t_s: float) -> list[WarningEvent]:
        """Situation update of every active warning (areas move with the hazard model)."""
        return self.board.refresh(t_s)

    def cancel(self, warning_id: str, t_s: float, reason: str) -> WarningEvent:
        """Withdraw an active warning (operator action)."""
        return self.board.cancel(warning_id, t_s, reason)

    # -- checks ---------------------------------------------------------------------------
    def _disorder_text(self, what: str, sensor_id: str, t: float, prev: float) -> str:
        return (f"{what} observation for sensor {sensor_id}: time {t:g} s after {prev:g} s "
                "(each sensor's times must strictly increase)")

    def _resolve(self, batch: ObservationBatch) -> np.ndarray:
        idx = self._index.get_indexer(batch.sensor_id)
        if (idx < 0).any():
            unknown = sorted({str(s) for s in batch.sensor_id[idx < 0]})
            raise InputError(self.source, f"unknown sensor id(s) {unknown[:5]}"
                             + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""),
                             field="sensor_id")
        units = batch.unit
        if isinstance(units, str):
            code = (self._unit_names.index(units) if units in self._unit_names else -1)
            bad = self._unit_code[idx] != code
        else:
            bad = self.units[idx] != units
        if np.any(bad):
            row = int(np.flatnonzero(bad)[0])
            got = units if isinstance(units, str) else units[row]
            raise InputError(self.source, f"unit mismatch: sensor {batch.sensor_id[row]} "
                             f"reports {got!r}, the inventory says {self.units[idx[row]]!r}",
                             field="unit")
        if not np.all(np.isfinite(batch.time_s)):
            row = int(np.flatnonzero(~np.isfinite(batch.time_s))[0])
            raise InputError(self.source, f"non-finite time for sensor {batch.sensor_id[row]}",
                             field="time_s")
        return idx

    def _check_order(self, idx: np.ndarray, batch: ObservationBatch
                     ) -> tuple[np.ndarray, list[DroppedObservation]]:
        """Accepted rows (time after the sensor's last accepted reading) and the dropped."""
        last = self.last_time_s.copy()
        keep, prev = check_order(idx, batch.time_s, last)
        dropped: list[DroppedObservation] = []
        if not keep.all():
            bad = np.flatnonzero(~keep)
            if self.on_disorder == "reject":
                j = int(bad[0])
                what = "duplicate" if batch.time_s[j] == prev[j] else "out-of-order"
                raise InputError(self.source, self._disorder_text(
                    what, batch.sensor_id[j], batch.time_s[j], prev[j]), field="time_s")
            dropped = [DroppedObservation(
                int(j), str(batch.sensor_id[j]), float(batch.time_s[j]),
                "duplicate" if batch.time_s[j] == prev[j] else "out-of-order")
                for j in bad.tolist()]
        self.last_time_s = last
        return keep, dropped
