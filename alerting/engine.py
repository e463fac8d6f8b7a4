"""The detection and warning engine: observations in, alarms and warnings out.

The same engine runs on simulated, drill, archived and live observations. It gives identical
output whether fed one observation at a time or in batches of any size: per-sensor state only
depends on that sensor's readings in time order, and alarm changes reach the warning board in
the order of the input rows.

Input rules (checked for the whole batch before any state changes, so a rejected batch
leaves the engine as it was):
- every sensor id must be in the inventory, with the inventory's unit;
- each sensor's readings must arrive in strictly increasing ``time_s``; a repeated time is a
  duplicate and an earlier one is out of order — both are rejected with an error naming the
  sensor and the times, never silently double-counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alerting.detector import LevelDetector
from alerting.events import AlarmChange, WarningEvent
from alerting.impact import ImpactIndex
from alerting.observation import USABLE_QUALITIES, Observation, ObservationBatch
from alerting.rulebook import Rulebook
from alerting.warnings import AreaProvider, WarningBoard
from twin.errors import InputError
from twin.model import CityTwin

INVENTORY_COLUMNS = ("sensor_id", "type_id", "quantity", "unit", "x_m", "y_m")


@dataclass
class EngineOutput:
    """What one call to the engine produced, in order."""

    alarms: list[AlarmChange] = field(default_factory=list)
    warnings: list[WarningEvent] = field(default_factory=list)

    def extend(self, other: EngineOutput) -> None:
        self.alarms.extend(other.alarms)
        self.warnings.extend(other.warnings)


class Engine:
    """Stateful detection over a sensor inventory under one rulebook."""

    def __init__(self, rulebook: Rulebook, inventory: pd.DataFrame, *,
                 twin: CityTwin | None = None, area_provider: AreaProvider | None = None,
                 source: str = "<observations>") -> None:
        missing = [c for c in INVENTORY_COLUMNS if c not in inventory.columns]
        if missing:
            raise InputError("<sensor inventory>", f"missing column(s) {missing}")
        ids = inventory["sensor_id"].astype(str)
        if ids.duplicated().any():
            dup = ids[ids.duplicated()].iloc[0]
            raise InputError("<sensor inventory>", "duplicate sensor id", field="sensor_id",
                             feature_id=dup)
        self.rulebook = rulebook
        self.source = source
        self.sensor_ids = ids.to_numpy(dtype=object)
        self._index = pd.Index(self.sensor_ids)
        self.units = inventory["unit"].astype(str).to_numpy(dtype=object)
        self.last_time_s = np.full(len(ids), -np.inf)
        types = inventory["type_id"].astype(str).to_numpy(dtype=object)
        quantities = inventory["quantity"].astype(str).to_numpy(dtype=object)
        self.rule_members: list[np.ndarray] = []
        self.detectors: list[LevelDetector] = []
        for rule in rulebook.rules:
            member = quantities == rule.quantity
            if rule.sensor_types:
                member &= np.isin(types, rule.sensor_types)
            self.rule_members.append(member)
            self.detectors.append(LevelDetector(
                rulebook.threshold_vector(rule), rule.hysteresis, rule.debounce.n,
                rule.debounce.m, len(ids)))
        xy = dict(zip(self.sensor_ids, zip(inventory["x_m"].astype(float),
                                            inventory["y_m"].astype(float), strict=True),
                      strict=True))
        self.board = WarningBoard(rulebook, xy, ImpactIndex(twin) if twin is not None else None,
                                  area_provider)

    # -- feeding ----------------------------------------------------------------------------
    def process_one(self, observation: Observation) -> EngineOutput:
        """Feed one observation."""
        return self.process(ObservationBatch.from_observations([observation]))

    def process(self, batch: ObservationBatch) -> EngineOutput:
        """Feed a batch (rows in arrival order); all-or-nothing on bad input."""
        out = EngineOutput()
        if len(batch) == 0:
            return out
        idx = self._resolve(batch)
        rank = self._check_order(idx, batch.time_s)
        usable = np.isin(batch.quality, USABLE_QUALITIES) & np.isfinite(batch.value)
        changes: list[tuple[int, int, AlarmChange]] = []  # (row, rule order, change)
        for r, (rule, member, det) in enumerate(
                zip(self.rulebook.rules, self.rule_members, self.detectors, strict=True)):
            rows = np.flatnonzero(member[idx] & usable)
            if len(rows) == 0:
                continue
            rounds = rank[rows]  # the k-th reading of each sensor in this batch is round k
            max_round = int(rounds.max())
            for k in range(max_round + 1):
                sel = rows if max_round == 0 else rows[rounds == k]
                since_before = det.exceed_since_s[idx[sel]]
                old, new = det.update(idx[sel], batch.value[sel], batch.time_s[sel])
                # A clearing reading ends the episode; report the episode's start on it too.
                since = np.where(new == 0, since_before, det.exceed_since_s[idx[sel]])
                for j in np.flatnonzero(old != new):
                    row = int(sel[j])
                    changes.append((row, r, AlarmChange(
                        time_s=float(batch.time_s[row]),
                        known_at_s=float(batch.received_s[row]),
                        sensor_id=str(batch.sensor_id[row]), rule_id=rule.id,
                        hazard=rule.hazard, from_level=int(old[j]), to_level=int(new[j]),
                        value=float(batch.value[row]),
                        first_exceedance_s=float(since[j]),
                    )))
        changes.sort(key=lambda c: (c[0], c[1]))
        for _, _, change in changes:
            out.alarms.append(change)
            event = self.board.apply(change)
            if event is not None:
                out.warnings.append(event)
        return out

    # -- checks ---------------------------------------------------------------------------
    def _resolve(self, batch: ObservationBatch) -> np.ndarray:
        idx = self._index.get_indexer(batch.sensor_id)
        if (idx < 0).any():
            unknown = sorted({str(s) for s in batch.sensor_id[idx < 0]})
            raise InputError(self.source, f"unknown sensor id(s) {unknown[:5]}"
                             + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""),
                             field="sensor_id")
        units = batch.unit
        expected = self.units[idx]
        bad = expected != units
        if np.any(bad):
            row = int(np.flatnonzero(bad)[0])
            got = units if isinstance(units, str) else units[row]
            raise InputError(self.source, f"unit mismatch: sensor {batch.sensor_id[row]} "
                             f"reports {got!r}, the inventory says {expected[row]!r}",
                             field="unit")
        if not np.all(np.isfinite(batch.time_s)):
            row = int(np.flatnonzero(~np.isfinite(batch.time_s))[0])
            raise InputError(self.source, f"non-finite time for sensor {batch.sensor_id[row]}",
                             field="time_s")
        return idx

    def _check_order(self, idx: np.ndarray, time_s: np.ndarray) -> np.ndarray:
        """Reject duplicates/out-of-order readings; return each row's rank within its sensor."""
        n = len(idx)
        order = np.lexsort((np.arange(n), idx))
        s_idx, s_t = idx[order], time_s[order]
        start = np.ones(n, dtype=bool)
        start[1:] = s_idx[1:] != s_idx[:-1]
        prev_t = np.empty(n)
        prev_t[1:] = s_t[:-1]
        prev_t[start] = self.last_time_s[s_idx[start]]
        bad = s_t <= prev_t
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            what = "duplicate" if s_t[j] == prev_t[j] else "out-of-order"
            raise InputError(self.source, f"{what} observation for sensor "
                             f"{self.sensor_ids[s_idx[j]]}: time {s_t[j]:g} s after "
                             f"{prev_t[j]:g} s (each sensor's times must strictly increase)",
                             field="time_s")
        starts = np.flatnonzero(start)
        group_start = np.repeat(starts, np.diff(np.append(starts, n)))
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - group_start
        last = np.append(starts[1:], n) - 1
        self.last_time_s[s_idx[last]] = s_t[last]
        return rank
