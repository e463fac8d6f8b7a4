"""Platform self-checks: the health rules a risk-monitoring platform runs on itself.

The four checks and their defaults come from the district operating rules quoted in
``../shared/reference/SENSORS_AND_THRESHOLDS.md`` ("Operations") and
``../shared/design/MISSION.md`` ("Platform self-checks"):

- ``sensor_offline`` (subject: sensor id) — nothing received from a sensor for
  ``max(offline_after_intervals × interval_s, min_offline_s)``; a sensor never heard from counts
  from ``start_s``. Cleared when a reading is received again. Vectorised over all sensors.
- ``silence`` (subject: sub-system / hazard) — no warning from a sub-system for 1 / 3 / 7 days
  "triggers a self-check (often a technical fault)". Each stage is raised once, value = the
  stage in days; one ``cleared`` when a warning arrives (value = days the silence lasted).
- ``sync_rate`` (subject: downstream name) — delivered / pushed warning events over a sliding
  window below 90 % is a data fault. Judged only on ≥ ``sync_min_events`` pushes; with fewer,
  the state is held (a fault is not cleared for lack of evidence).
- ``false_alarm_rate`` (subject: sensor id) — unconfirmed / judged alarms above
  ``false_alarm_rate_max`` once ``false_alarm_min_alarms`` alarms are judged. An alarm is judged
  once its confirmation window has passed; until then it is neither confirmed nor false.

Conventions:
- Every condition starts *at* its boundary (``t ≥ due``), with ``due`` computed by the same
  float operation ``next_due_s`` returns, so a clock sleeping until ``next_due_s(t)`` wakes
  exactly when the state changes (never a hair before, never a spin at the same time).
- ``check(t)`` returns only state changes, all stamped ``t``, sorted by (check_id, subject);
  several changes of one subject in one check keep their causal order (a silence cleared,
  then raised again; stages 1, 3, 7).
- Feed what was received up to ``t`` (``observed``, ``warning_issued``, ``push_result``,
  ``alarm``, ``confirm``) before calling ``check(t)``.
- No wall clock and no unordered iteration: the same inputs give the same findings.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from citytwin.alerting.observation import QUALITY_DROPPED, QUALITY_OFFLINE

DAY_S = 86400.0
#: Quality codes of rows the platform never actually received (see sensors_sim.measurement).
NOT_RECEIVED_QUALITIES = (QUALITY_DROPPED, QUALITY_OFFLINE)


class SelfCheckPolicy(BaseModel):
    """Self-check settings (a YAML mapping section). Defaults: the "Operations" rules of
    ../shared/reference/SENSORS_AND_THRESHOLDS.md, except where a comment says otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    #: Offline after this many missed intervals (citytwin default: 3 missed readings).
    offline_after_intervals: float = Field(3.0, gt=0)
    #: ... and at least this long, so fast sensors are not flagged by one network hiccup.
    min_offline_s: float = Field(120.0, ge=0)
    #: "no warnings from a scenario for 1/3/7 days → self-check" (Operations).
    silence_days: list[float] = Field(default_factory=lambda: [1.0, 3.0, 7.0])
    #: "warning sync rate < 90 % → data fault" (Operations).
    sync_rate_min: float = Field(0.90, ge=0, le=1)
    #: Sliding window of the sync rate (citytwin default: one day).
    sync_window_s: float = Field(86400.0, gt=0)
    #: Do not judge the sync rate on fewer pushed events (citytwin default).
    sync_min_events: int = Field(5, ge=1)
    #: "sensors with high false-alarm rates" (MISSION.md); "high" = mostly unconfirmed.
    false_alarm_rate_max: float = Field(0.5, ge=0, le=1)
    #: Judge a sensor's false-alarm rate only from this many judged alarms (citytwin default).
    false_alarm_min_alarms: int = Field(3, ge=1)
    #: An alarm is confirmed by another alarm of the same hazard in the warning's cluster
    #: within this time, or by the incident's outcome (citytwin default: 10 minutes).
    confirm_window_s: float = Field(600.0, ge=0)

    @field_validator("silence_days")
    @classmethod
    def _increasing(cls, v: list[float]) -> list[float]:
        if any(d <= 0 for d in v):
            raise ValueError(f"silence stages must be > 0 days, got {v}")
        if any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValueError(f"silence stages must be strictly increasing, got {v}")
        return v


@dataclass(frozen=True)
class SelfCheckEvent:
    """A self-check finding changed state (one row of the archive's ``self_checks`` table)."""

    time_s: float
    check_id: str        # "sensor_offline" | "silence" | "sync_rate" | "false_alarm_rate"
    subject: str         # sensor id, sub-system (hazard) name or downstream name
    status: str          # "raised" | "cleared"
    #: sensor_offline: s since the last reception; silence: stage in days (raised) or days the
    #: silence lasted (cleared); sync_rate: delivered / pushed; false_alarm_rate: unconfirmed /
    #: judged alarms.
    value: float | None
    detail: str


def _finite(name: str, t: float) -> float:
    t = float(t)
    if not math.isfinite(t):
        raise ValueError(f"{name} must be a finite time in s, got {t}")
    return t


def _pct(x: float) -> str:
    return f"{100.0 * x:.4g} %"


@dataclass
class _Alarms:
    """One sensor's alarms, sorted by time (ties in arrival order)."""

    times_s: list[float]
    judge_s: list[float]          # time + confirm_window_s: judged from then on
    hazards: list[str]
    how: list[str | None]         # confirmation, None while unconfirmed


@dataclass
class _Pushes:
    """Warning events pushed to one downstream, sorted by time (ties in arrival order)."""

    times_s: list[float]
    leave_s: list[float]          # time + sync_window_s: out of the window from then on
    delivered: list[bool]


class SelfChecks:
    """Stateful self-checks over one sensor inventory, its sub-systems and its downstreams."""

    def __init__(self, sensor_ids: np.ndarray, interval_s: np.ndarray,
                 subsystems: Sequence[str], policy: SelfCheckPolicy,
                 start_s: float = 0.0) -> None:
        ids = np.asarray(sensor_ids, dtype=object)
        if ids.ndim != 1:
            raise ValueError(f"sensor_ids must be 1-D, got shape {ids.shape}")
        ids = np.array([str(s) for s in ids], dtype=object)
        index = pd.Index(ids, dtype=object)
        if index.has_duplicates:
            dup = sorted(set(index[index.duplicated()]))
            raise ValueError(f"duplicate sensor id(s) {dup[:5]}")
        interval = np.asarray(interval_s, dtype=np.float64)
        if interval.shape != ids.shape:
            raise ValueError(f"interval_s has shape {interval.shape}, sensor_ids {ids.shape}")
        bad = ~(np.isfinite(interval) & (interval > 0))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(f"sensor {ids[k]!r}: interval_s must be > 0 and finite, "
                             f"got {interval[k]}")
        subs = [str(s) for s in subsystems]
        if len(set(subs)) != len(subs) or any(not s for s in subs):
            raise ValueError(f"subsystems must be distinct non-empty names, got {subs}")
        self.policy = policy
        self.start_s = _finite("start_s", start_s)
        self._ids = ids
        self._index = index
        self._pos = {s: k for k, s in enumerate(ids.tolist())}
        #: position of each sensor in id order (events are sorted by subject)
        self._rank = np.empty(len(ids), dtype=np.int64)
        self._rank[np.argsort(ids.astype(str), kind="stable")] = np.arange(len(ids))
        self._interval_s = interval
        self._offline_after_s = np.maximum(policy.offline_after_intervals * interval,
                                           policy.min_offline_s)
        self._last_seen_s = np.full(len(ids), self.start_s)
        self._offline = np.zeros(len(ids), dtype=bool)
        self._down_since_s = np.full(len(ids), np.nan)     # last reception before the outage
        self._subsystems = tuple(sorted(subs))
        self._stage_s = [d * DAY_S for d in policy.silence_days]
        self._last_warning_s = dict.fromkeys(self._subsystems, self.start_s)
        self._silence_stage = dict.fromkeys(self._subsystems, 0)
        self._silent_since_s = dict.fromkeys(self._subsystems, math.nan)
        self._pushes: dict[str, _Pushes] = {}
        self._sync_raised: dict[str, bool] = {}
        self._alarms: dict[int, _Alarms] = {}
        self._fa_raised: dict[int, bool] = {}
        self._judge_heap: list[tuple[float, int]] = []      # (judge time, sensor position)
        self._fa_dirty: set[int] = set()                    # only ever sorted before use
        self._last_check_s: float | None = None

    # ---------------------------------------------------------------- inputs

    @property
    def sensor_ids(self) -> np.ndarray:
        return self._ids.copy()

    @property
    def subsystems(self) -> tuple[str, ...]:
        return self._subsystems

    def sensor_index(self, sensor_ids: np.ndarray | Sequence[str]) -> np.ndarray:
        """Positions of ``sensor_ids`` (vectorised); ValueError naming unknown ids."""
        ids = np.asarray(sensor_ids, dtype=object)
        pos = self._index.get_indexer(ids)
        if (pos < 0).any():
            unknown = sorted({str(s) for s in ids[pos < 0]})
            raise ValueError(f"unknown sensor id(s) {unknown[:5]}")
        return pos.astype(np.int64)

    def observed(self, sensor_index: np.ndarray, received_s: np.ndarray,
                 quality: np.ndarray | None = None) -> None:
        """Readings received: ``received_s`` per row of ``sensor_index`` (any order).

        Rows whose ``quality`` is dropped or offline were never received and are ignored.
        """
        idx = np.asarray(sensor_index)
        rec = np.asarray(received_s, dtype=np.float64)
        if idx.shape != rec.shape or idx.ndim != 1:
            raise ValueError(f"sensor_index {idx.shape} and received_s {rec.shape} must be "
                             "1-D of the same length")
        if idx.size == 0:
            return
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"sensor_index must be integer positions, got dtype {idx.dtype}")
        out = (idx < 0) | (idx >= len(self._ids))
        if out.any():
            raise ValueError(f"unknown sensor index(es) {sorted(set(idx[out].tolist()))[:5]} "
                             f"(inventory has {len(self._ids)} sensors)")
        if not np.isfinite(rec).all():
            k = int(np.flatnonzero(~np.isfinite(rec))[0])
            raise ValueError(f"sensor {self._ids[idx[k]]!r}: received_s must be finite, "
                             f"got {rec[k]}")
        if quality is not None:
            q = np.asarray(quality)
            if q.shape != idx.shape:
                raise ValueError(f"quality {q.shape} must match sensor_index {idx.shape}")
            keep = ~np.isin(q, NOT_RECEIVED_QUALITIES)
            idx, rec = idx[keep], rec[keep]
        np.maximum.at(self._last_seen_s, idx, rec)

    def warning_issued(self, subsystem: str, t_s: float) -> None:
        """A warning from ``subsystem`` (a hazard) at ``t_s``: ends its silence."""
        if subsystem not in self._last_warning_s:
            raise ValueError(f"unknown subsystem {subsystem!r}; known: {list(self._subsystems)}")
        t = _finite("warning time", t_s)
        self._last_warning_s[subsystem] = max(self._last_warning_s[subsystem], t)

    def push_result(self, t_s: float, delivered: bool,
                    downstream: str = "downstream") -> None:
        """One warning event pushed at ``t_s`` to ``downstream``; ``delivered`` or not."""
        if not isinstance(downstream, str) or not downstream:
            raise ValueError(f"downstream must be a non-empty name, got {downstream!r}")
        t = _finite("push time", t_s)
        p = self._pushes.setdefault(downstream, _Pushes([], [], []))
        self._sync_raised.setdefault(downstream, False)
        i = bisect.bisect_right(p.times_s, t)
        p.times_s.insert(i, t)
        p.leave_s.insert(i, t + self.policy.sync_window_s)
        p.delivered.insert(i, bool(delivered))

    def alarm(self, sensor_id: str, hazard: str, t_s: float,
              confirmed_by: str | None = None) -> None:
        """A sensor alarmed (its level left 0) for ``hazard`` at ``t_s``; ``confirmed_by`` if
        already known (e.g. "neighbour S002", "outcome")."""
        k = self._sensor_pos(sensor_id)
        t = _finite("alarm time", t_s)
        judge = t + self.policy.confirm_window_s
        a = self._alarms.setdefault(k, _Alarms([], [], [], []))
        self._fa_raised.setdefault(k, False)
        i = bisect.bisect_right(a.times_s, t)
        a.times_s.insert(i, t)
        a.judge_s.insert(i, judge)
        a.hazards.insert(i, str(hazard))
        a.how.insert(i, confirmed_by)
        heapq.heappush(self._judge_heap, (judge, k))

    def confirm(self, sensor_id: str, t_s: float, how: str) -> None:
        """Confirm ``sensor_id``'s alarms at ``t_s`` (``how``: "neighbour S002", "outcome" ...).

        Confirms every alarm of the sensor raised within ``confirm_window_s`` before ``t_s``,
        and always its latest alarm at or before ``t_s`` (an incident confirmed by outcome
        later than the window still confirms the alarm that started it). An alarm already
        confirmed keeps its first confirmation.
        """
        k = self._sensor_pos(sensor_id)
        t = _finite("confirmation time", t_s)
        a = self._alarms.get(k)
        hi = 0 if a is None else bisect.bisect_right(a.times_s, t)
        if hi == 0:
            raise ValueError(f"sensor {sensor_id!r} has no alarm at or before {t} s to confirm")
        for i in range(hi - 1, -1, -1):
            if i < hi - 1 and a.times_s[i] < t - self.policy.confirm_window_s:
                break
            if a.how[i] is None:
                a.how[i] = how
        self._fa_dirty.add(k)

    def _sensor_pos(self, sensor_id: str) -> int:
        try:
            return self._pos[sensor_id]
        except KeyError:
            raise ValueError(f"unknown sensor id {sensor_id!r}") from None

    # ---------------------------------------------------------------- checks

    def check(self, t_s: float) -> list[SelfCheckEvent]:
        """Evaluate every check at clock time ``t_s``; return the state changes."""
        t = _finite("check time", t_s)
        if self._last_check_s is not None and t < self._last_check_s:
            raise ValueError(f"check time {t} s is before the previous check at "
                             f"{self._last_check_s} s; time must not go backwards")
        self._last_check_s = t
        events = [*self._check_offline(t), *self._check_silence(t), *self._check_sync(t),
                  *self._check_false_alarms(t)]
        events.sort(key=lambda e: (e.check_id, e.subject))    # stable: keeps causal order
        return events

    def _check_offline(self, t: float) -> list[SelfCheckEvent]:
        due = self._last_seen_s + self._offline_after_s
        want = t >= due
        changed = np.flatnonzero(want != self._offline)
        if changed.size == 0:
            return []
        changed = changed[np.argsort(self._rank[changed])]
        events = []
        pol = self.policy
        for k in changed.tolist():
            last = float(self._last_seen_s[k])
            age = t - last
            if want[k]:
                self._down_since_s[k] = last
                detail = (f"nothing received for {age:g} s (last at {last:g} s; offline after "
                          f"{self._offline_after_s[k]:g} s = max({pol.offline_after_intervals:g}"
                          f" × {self._interval_s[k]:g} s interval, {pol.min_offline_s:g} s))")
                status = "raised"
            else:
                detail = (f"received again at {last:g} s after nothing since "
                          f"{self._down_since_s[k]:g} s")
                self._down_since_s[k] = np.nan
                status = "cleared"
            events.append(SelfCheckEvent(t, "sensor_offline", str(self._ids[k]), status, age,
                                         detail))
        self._offline[changed] = want[changed]
        return events

    def _check_silence(self, t: float) -> list[SelfCheckEvent]:
        events = []
        for sub in self._subsystems:
            last = self._last_warning_s[sub]
            stage = self._silence_stage[sub]
            since = self._silent_since_s[sub]
            if stage > 0 and last > since:
                days = (last - since) / DAY_S
                events.append(SelfCheckEvent(
                    t, "silence", sub, "cleared", days,
                    f"warning at {last:g} s ended {days:.4g} days without warnings"))
                stage = 0
            reached = sum(1 for s in self._stage_s if t >= last + s)
            for j in range(stage, reached):
                d = self.policy.silence_days[j]
                events.append(SelfCheckEvent(
                    t, "silence", sub, "raised", float(d),
                    f"no warning from {sub} for {d:g} days (last at {last:g} s); "
                    "self-check: often a technical fault"))
            if reached > stage:
                stage = reached
                self._silent_since_s[sub] = last
            self._silence_stage[sub] = stage
        return events

    def _sync_window(self, ds: str, at_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pushed, delivered) to ``ds`` in the window at each time of ``at_s``: the pushes
        with time ≤ t < time + window (leave times are sorted like push times)."""
        p = self._pushes[ds]
        times, leaves = np.asarray(p.times_s), np.asarray(p.leave_s)
        cum = np.concatenate(([0], np.cumsum(np.asarray(p.delivered, dtype=np.int64))))
        hi = np.searchsorted(times, at_s, side="right")
        lo = np.searchsorted(leaves, at_s, side="right")
        return hi - lo, cum[hi] - cum[lo]

    def _sync_want(self, n: np.ndarray, d: np.ndarray, raised: bool) -> np.ndarray:
        """The judged state (held when fewer than ``sync_min_events`` pushes)."""
        judged = n >= self.policy.sync_min_events
        low = d / np.maximum(n, 1) < self.policy.sync_rate_min
        return np.where(judged, low, raised)

    def _check_sync(self, t: float) -> list[SelfCheckEvent]:
        events = []
        pmin = self.policy.sync_rate_min
        for ds in sorted(self._pushes):
            p = self._pushes[ds]
            # Drop pushes that left the window for good (check time never goes back).
            gone = bisect.bisect_right(p.leave_s, t)
            if gone:
                del p.times_s[:gone], p.leave_s[:gone], p.delivered[:gone]
            n_a, d_a = self._sync_window(ds, np.array([t]))
            n, d = int(n_a[0]), int(d_a[0])
            want = bool(self._sync_want(n_a, d_a, self._sync_raised[ds])[0])
            if want == self._sync_raised[ds]:
                continue
            self._sync_raised[ds] = want
            rate = d / n
            events.append(SelfCheckEvent(
                t, "sync_rate", ds, "raised" if want else "cleared", rate,
                f"{d}/{n} warning events delivered to {ds} in the last "
                f"{self.policy.sync_window_s:g} s = {_pct(rate)} (minimum {_pct(pmin)})"
                + ("; data fault" if want else "")))
        return events

    def _fa_judge(self, k: int, t: float) -> tuple[int, int, int]:
        """(alarms, judged, unconfirmed among judged) of sensor ``k`` at ``t``."""
        a = self._alarms[k]
        judged = bisect.bisect_right(a.judge_s, t)
        false = sum(1 for h in a.how[:judged] if h is None)
        return len(a.times_s), judged, false

    def _fa_want(self, judged: int, false: int) -> bool:
        return (judged >= self.policy.false_alarm_min_alarms
                and false / judged > self.policy.false_alarm_rate_max)

    def _check_false_alarms(self, t: float) -> list[SelfCheckEvent]:
        todo = self._fa_dirty
        while self._judge_heap and self._judge_heap[0][0] <= t:
            todo.add(heapq.heappop(self._judge_heap)[1])
        self._fa_dirty = set()
        events = []
        for k in sorted(todo, key=lambda k: self._rank[k]):
            total, judged, false = self._fa_judge(k, t)
            want = self._fa_want(judged, false)
            if want == self._fa_raised[k]:
                continue
            self._fa_raised[k] = want
            rate = false / judged
            hazards = ", ".join(sorted(set(self._alarms[k].hazards)))
            events.append(SelfCheckEvent(
                t, "false_alarm_rate", str(self._ids[k]), "raised" if want else "cleared",
                rate, f"{false} of {judged} judged {hazards} alarms unconfirmed within "
                f"{self.policy.confirm_window_s:g} s = {_pct(rate)} (limit "
                f"{_pct(self.policy.false_alarm_rate_max)}; {total} alarms in all)"))
        return events

    # ---------------------------------------------------------------- scheduling and state

    def next_due_s(self, t_s: float) -> float:
        """Earliest time ≥ ``t_s`` at which ``check`` could report a change without new
        input: ``t_s`` itself when input already received changes a state, ``inf`` if never."""
        t = _finite("time", t_s)
        due = math.inf
        # offline: every online sensor goes offline at last_seen + limit
        at = self._last_seen_s + self._offline_after_s
        want = t >= at
        if (want != self._offline).any():
            return t
        online = ~self._offline
        if online.any():
            due = min(due, float(at[online].min()))
        # silence: the next unreported stage of each sub-system
        for sub in self._subsystems:
            last, stage = self._last_warning_s[sub], self._silence_stage[sub]
            if stage > 0 and last > self._silent_since_s[sub]:
                return t
            if stage < len(self._stage_s):
                at_s = last + self._stage_s[stage]
                if t >= at_s:
                    return t
                due = min(due, at_s)
        due = min(due, self._sync_due(t), self._fa_due(t))
        return max(due, t)

    def _sync_due(self, t: float) -> float:
        due = math.inf
        for ds in sorted(self._pushes):
            p = self._pushes[ds]
            times = np.asarray(p.times_s)
            points = np.unique(np.concatenate(([t], times[times > t], p.leave_s)))
            points = points[points >= t]
            n, d = self._sync_window(ds, points)
            change = np.flatnonzero(self._sync_want(n, d, self._sync_raised[ds])
                                    != self._sync_raised[ds])
            if change.size:
                due = min(due, float(points[change[0]]))
        return due

    def _fa_due(self, t: float) -> float:
        due = math.inf
        for k in sorted(self._fa_dirty | {k for _, k in self._judge_heap}):
            for b in [t, *sorted({j for j in self._alarms[k].judge_s if j > t})]:
                if b >= due:
                    break
                _, judged, false = self._fa_judge(k, b)
                if self._fa_want(judged, false) != self._fa_raised[k]:
                    due = b
                    break
        return due

    def summary(self) -> dict:
        """State as of the last ``check`` (plain Python values, JSON-ready)."""
        t = self.start_s if self._last_check_s is None else self._last_check_s
        sync = {}
        for ds in sorted(self._pushes):
            n_a, d_a = self._sync_window(ds, np.array([t]))
            n, d = int(n_a[0]), int(d_a[0])
            sync[ds] = {"pushed": n, "delivered": d, "rate": d / n if n else None,
                        "raised": self._sync_raised[ds]}
        false_alarm = {}
        for k in sorted(self._alarms, key=lambda k: self._rank[k]):
            total, judged, false = self._fa_judge(k, t)
            false_alarm[str(self._ids[k])] = {
                "alarms": total, "judged": judged, "unconfirmed": false,
                "rate": false / judged if judged else None, "raised": self._fa_raised[k]}
        off = np.flatnonzero(self._offline)
        return {
            "time_s": self._last_check_s,
            "sensors": len(self._ids),
            "offline_sensors": [str(self._ids[k]) for k in off[np.argsort(self._rank[off])]],
            "silent_subsystems": {s: self.policy.silence_days[self._silence_stage[s] - 1]
                                  for s in self._subsystems if self._silence_stage[s] > 0},
            "days_since_warning": {s: (t - self._last_warning_s[s]) / DAY_S
                                   for s in self._subsystems},
            "sync": sync,
            "false_alarm": false_alarm,
        }
