"""Time-varying forcing for the engines: release-rate schedules and wind series.

Times are seconds from scenario start. Wind direction is the meteorological FROM
direction in degrees clockwise from north (0 = from north, 90 = from east); with x east and
y north the wind vector is u = −U sin θ, v = −U cos θ, so wind from 270° blows toward +x.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike


def as_times_s(times_s: ArrayLike, name: str) -> np.ndarray:
    """A series' times as a fresh float64 1-D array: non-empty, finite, strictly increasing;
    ValueError naming ``name`` otherwise. (A copy: callers may freeze it.)"""
    t = np.atleast_1d(np.array(times_s, dtype=np.float64))
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name}.times_s must be a non-empty 1-D array")
    if not np.isfinite(t).all():
        raise ValueError(f"{name}.times_s must be finite")
    if np.any(np.diff(t) <= 0.0):
        raise ValueError(f"{name}.times_s must be strictly increasing")
    return t


def interp_scalar(x: float, xp: tuple[float, ...], fp: tuple[float, ...]) -> float:
    """``np.interp`` for one point, with the same arithmetic (so bit-identical results), at a
    fraction of its call overhead: the engines call it once or twice per time step.
    ``xp`` strictly increasing."""
    if x <= xp[0]:
        return fp[0]
    n = len(xp)
    if x >= xp[n - 1]:
        return fp[n - 1]
    j = bisect.bisect_right(xp, x) - 1
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    value = slope * (x - xp[j]) + fp[j]
    if value != value:  # NaN one way (infinite slope): numpy tries the other end
        value = slope * (x - xp[j + 1]) + fp[j + 1]
        if value != value and fp[j] == fp[j + 1]:
            value = fp[j]
    return value


@dataclass(frozen=True, eq=False)
class ReleaseSchedule:
    """Step schedule of a mass release rate.

    ``rate_kg_s[i]`` holds from ``times_s[i]`` until ``times_s[i+1]`` (the last rate holds for
    ever); before ``times_s[0]`` the rate is 0. End a release with a final rate of 0.
    """

    times_s: np.ndarray
    rate_kg_s: np.ndarray

    def __post_init__(self) -> None:
        t = as_times_s(self.times_s, "release")
        q = np.atleast_1d(np.asarray(self.rate_kg_s, dtype=np.float64))
        if q.shape != t.shape:
            raise ValueError(f"release.rate_kg_s has shape {q.shape}, times_s has shape {t.shape}")
        if not np.isfinite(q).all() or np.any(q < 0.0):
            raise ValueError("release.rate_kg_s must be finite and >= 0")
        t.setflags(write=False)
        q.setflags(write=False)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "rate_kg_s", q)
        # segments as Python floats: the per-step mass integral runs on these
        object.__setattr__(self, "_segments", tuple(zip(
            t.tolist(), [*t[1:].tolist(), math.inf], q.tolist(), strict=True)))

    @classmethod
    def constant(cls, start_s: float, stop_s: float, rate_kg_s: float) -> ReleaseSchedule:
        """Rate ``rate_kg_s`` from ``start_s`` to ``stop_s`` (use ``math.inf`` for no stop)."""
        if math.isinf(stop_s) and stop_s > 0:
            return cls(np.array([start_s]), np.array([rate_kg_s]))
        if not stop_s > start_s:
            raise ValueError(f"stop_s ({stop_s}) must be after start_s ({start_s})")
        return cls(np.array([start_s, stop_s]), np.array([rate_kg_s, 0.0]))

    def rate_at(self, t_s: ArrayLike) -> np.ndarray:
        """Release rate (kg/s) at ``t_s`` (right-continuous steps)."""
        t = np.asarray(t_s, dtype=np.float64)
        idx = np.searchsorted(self.times_s, t, side="right") - 1
        rate = np.where(idx >= 0, self.rate_kg_s[np.maximum(idx, 0)], 0.0)
        return rate

    def mass_between(self, t0_s: float, t1_s: float) -> float:
        """Exact ∫ rate dt over [t0_s, t1_s] in kg (piecewise-constant integral)."""
        if t1_s <= t0_s:
            return 0.0
        starts = self.times_s
        ends = np.append(self.times_s[1:], np.inf)
        overlap = np.minimum(ends, t1_s) - np.maximum(starts, t0_s)
        return float(np.sum(self.rate_kg_s * np.maximum(overlap, 0.0)))

    def mass_and_centroid(self, t0_s: float, t1_s: float) -> tuple[float, float]:
        """Released mass over [t0_s, t1_s] and its mass-weighted mean release time.

        The centroid is the interval midpoint when nothing is released.
        """
        if t1_s <= t0_s:
            return 0.0, 0.5 * (t0_s + t1_s)
        if len(self._segments) >= 8:  # (numpy sums 8+ terms pairwise: keep its rounding)
            ends = np.append(self.times_s[1:], np.inf)
            lo = np.maximum(self.times_s, t0_s)
            hi = np.minimum(ends, t1_s)
            seg = self.rate_kg_s * np.maximum(hi - lo, 0.0)
            mass = float(np.sum(seg))
            moment = float(np.sum(seg * 0.5 * (lo + hi)))
        else:  # the same sums, term by term in the same order, on Python floats
            mass = moment = 0.0
            for start, end, rate in self._segments:
                lo, hi = max(start, t0_s), min(end, t1_s)
                seg = rate * max(hi - lo, 0.0)
                mass += seg
                moment += seg * 0.5 * (lo + hi)
        if mass <= 0.0:
            return 0.0, 0.5 * (t0_s + t1_s)
        return mass, min(max(moment / mass, t0_s), t1_s)


@dataclass(frozen=True, eq=False)
class WindSeries:
    """Wind speed and FROM direction at given times; constant outside the given span.

    Between samples the direction follows linear interpolation of the u/v components and the
    speed is interpolated separately, so a 90° veer at constant speed keeps the speed.
    """

    times_s: np.ndarray
    speed_m_s: np.ndarray
    from_deg: np.ndarray
    u_m_s: np.ndarray = field(init=False, repr=False)
    v_m_s: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        t = as_times_s(self.times_s, "wind")
        s = np.atleast_1d(np.asarray(self.speed_m_s, dtype=np.float64))
        d = np.atleast_1d(np.asarray(self.from_deg, dtype=np.float64))
        if s.shape != t.shape or d.shape != t.shape:
            raise ValueError(
                f"wind arrays must have equal shapes: times_s {t.shape}, "
                f"speed_m_s {s.shape}, from_deg {d.shape}"
            )
        if not np.isfinite(s).all() or np.any(s < 0.0):
            raise ValueError("wind.speed_m_s must be finite and >= 0")
        if not np.isfinite(d).all():
            raise ValueError("wind.from_deg must be finite")
        theta = np.deg2rad(d)
        u = -s * np.sin(theta)
        v = -s * np.cos(theta)
        named = (("times_s", t), ("speed_m_s", s), ("from_deg", d), ("u_m_s", u), ("v_m_s", v))
        for name, arr in named:
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        # Python copies for the scalar lookups the engines make every step
        object.__setattr__(self, "_lists", tuple(tuple(a.tolist()) for a in (t, s, u, v)))

    @classmethod
    def constant(cls, speed_m_s: float, from_deg: float) -> WindSeries:
        """Steady wind."""
        return cls(np.array([0.0]), np.array([speed_m_s]), np.array([from_deg]))

    def speed_at(self, t_s: float) -> float:
        """Wind speed (m/s) at ``t_s`` (linear in time, held outside the series)."""
        times, speed, _, _ = self._lists
        return float(interp_scalar(float(t_s), times, speed))

    def velocity_at(self, t_s: float) -> tuple[float, float]:
        """Wind vector (u east, v north) in m/s at ``t_s``.

        Direction from linearly interpolated u/v, magnitude from the interpolated speed. When
        the interpolated u/v vanish (calm, or an exact reversal) the vector is (0, 0).
        """
        times, speeds, us, vs = self._lists
        t_s = float(t_s)
        speed = interp_scalar(t_s, times, speeds)
        u = interp_scalar(t_s, times, us)
        v = interp_scalar(t_s, times, vs)
        norm = math.hypot(u, v)
        if norm <= 1e-12 * max(speed, 1.0) or speed == 0.0:
            return 0.0, 0.0
        return speed * u / norm, speed * v / norm
