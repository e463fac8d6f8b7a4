"""The measurement model: from true values at sensor positions to what the platform receives.

A reading is ``lag(truth) + bias + drift·t + noise``, quantised to the resolution and
clipped to the range, with stuck episodes (value frozen at the last reading), dropped
samples and offline periods (value NaN, not valid). One call of ``measure`` handles a
whole cadence group with NumPy; there is no Python loop over sensors per tick.

Randomness (``twin.seeding.rng_for``):

- per sensor, ``rng_for(seed, "sensor", sensor_id)``: bias, drift rate, then the offline
  schedule, then the stuck schedule, drawn once at construction — they do not depend on
  creation order or on other sensors;
- per group, ``rng_for(seed, "group", group_id)``: each tick draws ``n`` standard normals
  (noise) and then ``n`` uniforms (drops). A counterfactual sensor therefore goes in its own
  group, which leaves the base groups' streams unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from citytwin.sensors_sim.catalogue import SECONDS_PER_DAY, SensorType
from citytwin.sensors_sim.network import CadenceGroup, SensorNetwork
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import rng_for

#: Quality codes (the same numbers as ``alerting.observation``).
QUALITY_OK = 0
QUALITY_CLIPPED = 1  #: reading clipped at the range limit (still delivered)
QUALITY_DROPPED = 2  #: sample lost in transmission (value NaN, not valid)
QUALITY_OFFLINE = 3  #: sensor offline: battery, network (value NaN, not valid)
QUALITY_STUCK = 4  #: value frozen at the last reading (still delivered)
QUALITY_NAMES = {QUALITY_OK: "ok", QUALITY_CLIPPED: "clipped", QUALITY_DROPPED: "dropped",
                 QUALITY_OFFLINE: "offline", QUALITY_STUCK: "stuck"}

_OFFLINE, _STUCK = 0, 1


@dataclass
class MeasuredBatch:
    """One tick of one cadence group, as parallel arrays (row k ↔ sensor ``indices[k]``)."""

    indices: np.ndarray  #: positions into the network table (read-only, shared)
    time_s: np.ndarray  #: phenomenon time
    received_s: np.ndarray  #: time + reporting latency
    value: np.ndarray  #: in the sensor's unit; NaN where not valid
    valid: np.ndarray  #: bool: the platform received a value
    quality: np.ndarray  #: int8 QUALITY_* code

    def __len__(self) -> int:
        return len(self.indices)


def expected_offline_fraction(rate_per_day: float, mean_duration_s: float,
                              t_s: float | np.ndarray) -> float | np.ndarray:
    """Probability that a sensor is offline at ``t_s`` (Poisson starts from 0, exponential
    durations, overlaps merge): 1 − exp(−λ·m·(1 − e^(−t/m))); → 1 − e^(−λm) for t ≫ m."""
    lam_m = rate_per_day / SECONDS_PER_DAY * mean_duration_s
    return 1.0 - np.exp(-lam_m * (1.0 - np.exp(-np.asarray(t_s, dtype=float) / mean_duration_s)))


def draw_episodes(rng: np.random.Generator, rate_per_day: float, mean_duration_s: float,
                  duration_s: float) -> np.ndarray:
    """Episodes (k, 2) of [start_s, end_s): Poisson starts in [0, duration_s] at
    ``rate_per_day``, exponential durations with mean ``mean_duration_s``.

    Starts and durations are drawn alternately, so a longer run keeps the shorter run's
    episodes as a prefix. No draws when the rate is 0.
    """
    out: list[tuple[float, float]] = []
    if rate_per_day <= 0 or duration_s <= 0:
        return np.zeros((0, 2))
    mean_gap_s = SECONDS_PER_DAY / rate_per_day
    t = 0.0
    while True:
        t += float(rng.exponential(mean_gap_s))
        if t > duration_s:
            break
        out.append((t, t + float(rng.exponential(mean_duration_s))))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _compact(a: np.ndarray) -> np.ndarray | float:
    """A scalar when all entries are equal (faster broadcasting), else the array."""
    return float(a[0]) if len(a) and bool(np.all(a == a[0])) else a


class _GroupState:
    """Constants and state of one cadence group, laid out contiguously in group order."""

    def __init__(self, model: MeasurementModel, group: CadenceGroup,
                 types: list[SensorType]) -> None:
        self.group = group
        idx = group.indices
        self.n = n = len(idx)

        def col(name: str) -> np.ndarray:
            return np.array([getattr(t, name) for t in types], dtype=np.float64)

        self.bias = model.bias[idx].copy()
        self.drift_per_s = _compact(model.drift_per_s[idx])
        self.noise_sd = _compact(col("noise_sd"))
        self.resolution = _compact(col("resolution"))
        self.inv_resolution = _compact(1.0 / col("resolution"))
        self.range_min = _compact(col("range_min"))
        self.range_max = _compact(col("range_max"))
        self.drop_p = _compact(col("drop_probability"))
        self.latency_s = _compact(col("latency_s"))
        tau = col("response_t90_s") / np.log(10.0)
        self.tau_zero = tau == 0
        with np.errstate(divide="ignore"):
            self.inv_tau = np.where(self.tau_zero, np.inf, 1.0 / np.where(tau == 0, 1.0, tau))
        self.has_noise = bool(np.any(col("noise_sd") > 0))
        self.has_drops = bool(np.any(col("drop_probability") > 0))
        self.rng = rng_for(model.seed, "group", group.group_id)
        # dynamic state
        self.lag = np.zeros(n)
        self.last_t: float | None = None
        self.alpha_dt: float | None = None
        self.alpha: np.ndarray | float = 1.0
        self.z = np.empty(n)
        self.u = np.empty(n)
        self.tmp = np.empty(n)
        # fault events, sorted by time: (time, local sensor, kind, +1 start / -1 end)
        parts = []
        for kind, episodes in ((_OFFLINE, model._offline), (_STUCK, model._stuck)):
            for local, i in enumerate(idx):
                ep = episodes[i]
                if len(ep):
                    k = len(ep)
                    parts.append(np.column_stack([
                        np.concatenate([ep[:, 0], ep[:, 1]]), np.full(2 * k, local),
                        np.full(2 * k, kind), np.repeat([1.0, -1.0], k)]))
        ev = np.concatenate(parts) if parts else np.zeros((0, 4))
        ev = ev[np.lexsort((ev[:, 2], ev[:, 1], ev[:, 0]))]
        self.ev_t = ev[:, 0].copy()
        self.ev_sensor = ev[:, 1].astype(np.int64)
        self.ev_kind = ev[:, 2].astype(np.int8)
        self.ev_delta = ev[:, 3].astype(np.int32)
        self.ev_ptr = 0
        self.count = np.zeros((2, n), dtype=np.int32)  # active offline / stuck episodes
        self.n_active = [0, 0]
        self.has_stuck = bool(np.any(self.ev_kind == _STUCK))
        self.last_value = np.full(n, np.nan)
        self.frozen = np.full(n, np.nan)
        self.frozen_dirty = False

    def advance_faults(self, t_s: float) -> None:
        """Apply every episode start/end at or before ``t_s``."""
        stop = int(np.searchsorted(self.ev_t, t_s, side="right"))
        if stop > self.ev_ptr:
            sl = slice(self.ev_ptr, stop)
            kinds, sensors, deltas = self.ev_kind[sl], self.ev_sensor[sl], self.ev_delta[sl]
            np.add.at(self.count, (kinds, sensors), deltas)
            for kind in (_OFFLINE, _STUCK):
                self.n_active[kind] += int(deltas[kinds == kind].sum())
            self.ev_ptr = stop


class MeasurementModel:
    """Per-sensor constants and per-group state for measuring ``network`` over a run.

    ``seed`` is the scenario seed; ``duration_s`` the run length over which offline and
    stuck schedules are drawn (none after it). ``ideal=True`` gives a perfect, instantaneous
    instrument: ``value`` is the truth exactly, no lag, noise, bias, drift, quantisation,
    clipping, latency or faults (handy for tests of everything downstream).
    """

    def __init__(self, network: SensorNetwork, catalogue: Mapping[str, SensorType], seed: int,
                 duration_s: float, *, ideal: bool = False) -> None:
        if not np.isfinite(duration_s) or duration_s < 0:
            raise InputError("MeasurementModel", f"must be a finite number ≥ 0, got "
                             f"{duration_s!r}", field="duration_s")
        self.network = network
        self.seed = int(seed)
        self.duration_s = float(duration_s)
        self.ideal = bool(ideal)
        ids = network.table["sensor_id"].tolist()
        type_ids = network.table["type_id"].tolist()
        unknown = sorted(set(type_ids) - set(catalogue))
        if unknown:
            first = ids[type_ids.index(unknown[0])]
            raise InputError(network.source, f"unknown sensor type(s) {unknown} (catalogue "
                             f"has {sorted(catalogue)})", field="type_id", feature_id=first)
        types = [catalogue[t] for t in type_ids]
        n = len(ids)
        self.bias = np.zeros(n)
        self.drift_per_s = np.zeros(n)
        self._offline: list[np.ndarray] = []
        self._stuck: list[np.ndarray] = []
        for i, (sid, st) in enumerate(zip(ids, types, strict=True)):
            g = rng_for(self.seed, "sensor", sid)
            z_bias, z_drift = g.standard_normal(2)
            self.bias[i] = st.bias_sd * z_bias
            self.drift_per_s[i] = st.drift_per_day_sd * z_drift / SECONDS_PER_DAY
            self._offline.append(draw_episodes(g, st.offline_rate_per_day,
                                               st.offline_mean_duration_s, self.duration_s))
            self._stuck.append(draw_episodes(g, st.stuck_rate_per_day,
                                             st.stuck_mean_duration_s, self.duration_s))
        self.bias.flags.writeable = False
        self.drift_per_s.flags.writeable = False
        self._states = {g.group_id: _GroupState(self, g, [types[i] for i in g.indices])
                        for g in network.groups()}

    def offline_episodes(self, sensor: str | int) -> np.ndarray:
        """Offline periods (k, 2) of [start_s, end_s) of one sensor (id or table position)."""
        return self._offline[self._position(sensor)].copy()

    def stuck_episodes(self, sensor: str | int) -> np.ndarray:
        """Stuck-value episodes (k, 2) of [start_s, end_s) of one sensor."""
        return self._stuck[self._position(sensor)].copy()

    def _position(self, sensor: str | int) -> int:
        if isinstance(sensor, str):
            return int(self.network.index_of(sensor)[0])
        return int(sensor)

    def measure(self, group: CadenceGroup, t_s: float, true_values: np.ndarray) -> MeasuredBatch:
        """Measure ``group`` at ``t_s`` given the truth at its sensors (group order).

        Times must not decrease from one call to the next for a group (the lag and the fault
        schedules move forward). The lag uses the exact first-order step
        ``y += (x − y)(1 − exp(−Δt/τ))`` with the truth held over Δt; the first sample
        sets ``y`` to the truth. ``true_values`` must be finite (a NaN from a hazard engine
        is a bug to surface, not a reading).
        """
        st = self._states.get(group.group_id)
        if st is None or not (group.indices is st.group.indices
                              or np.array_equal(group.indices, st.group.indices)):
            raise ValueError(f"cadence group {group.group_id!r} is not one of this model's "
                             "network.groups()")
        x = np.asarray(true_values, dtype=np.float64)
        if x.shape != (st.n,):
            raise ValueError(f"true_values has shape {x.shape}, group {group.group_id!r} "
                             f"needs ({st.n},)")
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x))[0])
            raise ValueError(f"true_values is not finite for sensor "
                             f"{self.network.sensor_ids[group.indices[bad]]!r} at {t_s:g} s")
        t = float(t_s)
        if st.last_t is not None and t < st.last_t:
            raise ValueError(f"time went backwards for group {group.group_id!r}: "
                             f"{t:g} s after {st.last_t:g} s")
        n = st.n
        time = np.full(n, t)
        if self.ideal:
            st.last_t = t
            return MeasuredBatch(group.indices, time, time.copy(), x.copy(),
                                 np.ones(n, dtype=bool), np.zeros(n, dtype=np.int8))
        # first-order lag (exact for truth held constant over the step)
        if st.last_t is None:
            st.lag[:] = x
        else:
            dt = t - st.last_t
            if dt != st.alpha_dt:
                with np.errstate(invalid="ignore"):
                    alpha = -np.expm1(-dt * st.inv_tau)
                st.alpha = _compact(np.where(st.tau_zero, 1.0, alpha))
                st.alpha_dt = dt
            np.subtract(x, st.lag, out=st.tmp)
            st.tmp *= st.alpha
            st.lag += st.tmp
        st.last_t = t
        # bias + drift·t + noise
        v = np.multiply(st.drift_per_s, t, out=np.empty(n)) if isinstance(
            st.drift_per_s, np.ndarray) else np.full(n, st.drift_per_s * t)
        v += st.bias
        v += st.lag
        if st.has_noise:
            st.rng.standard_normal(out=st.z)
            st.z *= st.noise_sd
            v += st.z
        # quantise, then clip to the range
        v *= st.inv_resolution
        np.rint(v, out=v)
        v *= st.resolution
        clipped = v < st.range_min
        clipped |= v > st.range_max
        np.clip(v, st.range_min, st.range_max, out=v)
        quality = clipped.view(np.int8).copy()
        # fault schedules
        st.advance_faults(t)
        if st.has_stuck:
            if st.n_active[_STUCK] > 0:
                stuck = st.count[_STUCK] > 0
                new = stuck & np.isnan(st.frozen)
                if new.any():
                    start = np.where(np.isnan(st.last_value), v, st.last_value)
                    st.frozen[new] = start[new]
                np.copyto(v, st.frozen, where=stuck)
                st.frozen[~stuck] = np.nan
                st.frozen_dirty = True
                quality[stuck] = QUALITY_STUCK
            elif st.frozen_dirty:
                st.frozen.fill(np.nan)
                st.frozen_dirty = False
            st.last_value[:] = v
        lost = None
        if st.has_drops:
            st.rng.random(out=st.u)
            lost = st.u < st.drop_p
            quality[lost] = QUALITY_DROPPED
        if st.n_active[_OFFLINE] > 0:
            offline = st.count[_OFFLINE] > 0
            quality[offline] = QUALITY_OFFLINE
            lost = offline if lost is None else (lost | offline)
        if lost is None:
            valid = np.ones(n, dtype=bool)
        else:
            valid = ~lost
            v[lost] = np.nan
        received = np.add(time, st.latency_s)
        return MeasuredBatch(group.indices, time, received, v, valid, quality)
