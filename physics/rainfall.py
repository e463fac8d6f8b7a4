"""Rainfall forcing for the flood engines: step-wise intensity series and design storms.

``RainSeries`` is a block hyetograph: ``intensity_mm_h[k]`` holds from ``times_s[k]`` until
``times_s[k+1]``; the last value holds for ever and the rate is 0 before ``times_s[0]`` (end a
storm with a final 0). Intensities are uniform over the domain (1-D array) or gridded
(3-D array ``[time, row, col]`` on the flood engine's grid).

``chicago_storm`` builds the Keifer & Chu (1957) "Chicago" design hyetograph from a
Chinese-style intensity–duration–frequency (IDF) formula (GB 50014-2021, Code for design of
outdoor wastewater engineering, §4.1.9; PHYSICS.md "Flood"):

    i = A (1 + C lg P) / (t + b)^n        i in mm/min, t in min, P in years

(the code writes the design flow intensity as q = 167 A (1 + C lg P)/(t + b)^n in L/(s·ha);
167 converts mm/min to L/(s·ha), so A here is the mm/min coefficient "A1"). The formula is the
*average* intensity over the most intense t minutes; the Chicago hyetograph distributes it so
that every window of length T that contains the peak, with r·T before and (1 − r)·T after
it, holds exactly the IDF depth a·T/(T + b)^n, a = A (1 + C lg P). Its instantaneous
intensity is i(t_b) = a [(1 − n) t_b/r + b] / (t_b/r + b)^(1+n) before the peak and the same
with t_a/(1 − r) after it (Keifer & Chu 1957, J. Hydraul. Div. ASCE 83(4); Chow, Maidment &
Mays 1988, *Applied Hydrology* §14.4). Block depths here are differences of that cumulative
depth, so the storm total is exactly a·D/(D + b)^n for duration D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from citytwin.physics.forcing import as_times_s
from citytwin.twin.errors import InputError

MM_H_TO_M_S = 1.0 / 3.6e6
"""1 mm/h in m/s."""


@dataclass(frozen=True, eq=False)
class RainSeries:
    """Step-wise rainfall intensity (mm/h): uniform (1-D) or gridded (3-D [time, row, col]).

    ``intensity_mm_h[k]`` holds from ``times_s[k]`` to ``times_s[k+1]``; the last value holds
    for ever; before ``times_s[0]`` it is 0. Intensities must be finite and >= 0.
    """

    times_s: np.ndarray
    intensity_mm_h: np.ndarray

    def __post_init__(self) -> None:
        t = as_times_s(self.times_s, "rain")
        i = np.asarray(self.intensity_mm_h, dtype=np.float64).copy()
        if i.ndim == 0:
            i = i.reshape(1)
        if i.ndim not in (1, 3) or i.shape[0] != t.size:
            raise ValueError(
                f"rain.intensity_mm_h must have shape ({t.size},) or ({t.size}, rows, cols) "
                f"to match times_s, got {i.shape}"
            )
        bad = ~np.isfinite(i)
        if bad.any():
            first = tuple(int(v) for v in np.argwhere(bad)[0])
            raise InputError(
                "rain", f"{int(bad.sum())} non-finite values (first at index {first})",
                field="intensity_mm_h",
            )
        neg = i < 0.0
        if neg.any():
            first = tuple(int(v) for v in np.argwhere(neg)[0])
            raise InputError(
                "rain",
                f"rainfall must be >= 0: {int(neg.sum())} negative values "
                f"(first {float(i[first]):g} mm/h at index {first})",
                field="intensity_mm_h",
            )
        t.setflags(write=False)
        i.setflags(write=False)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "intensity_mm_h", i)

    @classmethod
    def constant(
        cls, intensity_mm_h: float, start_s: float = 0.0, stop_s: float = math.inf
    ) -> RainSeries:
        """Uniform ``intensity_mm_h`` from ``start_s`` to ``stop_s`` (``inf``: never stops)."""
        if math.isinf(stop_s) and stop_s > 0:
            return cls(np.array([start_s]), np.array([intensity_mm_h]))
        if not stop_s > start_s:
            raise ValueError(f"rain stop_s ({stop_s}) must be after start_s ({start_s})")
        return cls(np.array([start_s, stop_s]), np.array([intensity_mm_h, 0.0]))

    @property
    def gridded(self) -> bool:
        """True for a 3-D [time, row, col] series."""
        return self.intensity_mm_h.ndim == 3

    @property
    def breakpoints_s(self) -> np.ndarray:
        """Times at which the intensity may change (the engine never steps across one)."""
        return self.times_s

    def index_at(self, t_s: float) -> int:
        """Index k of the block holding ``t_s`` (``times_s[k] <= t_s``; -1 before the first)."""
        return int(np.searchsorted(self.times_s, float(t_s), side="right")) - 1

    def intensity_at(self, t_s: float) -> float | np.ndarray:
        """Intensity (mm/h) at ``t_s`` (right-continuous); array for a gridded series."""
        k = self.index_at(t_s)
        if k < 0:
            return np.zeros(self.intensity_mm_h.shape[1:]) if self.gridded else 0.0
        value = self.intensity_mm_h[k]
        return value if self.gridded else float(value)

    def rate_m_s_at(self, t_s: float) -> float | np.ndarray:
        """Rainfall rate (m/s of water depth) at ``t_s``; array for a gridded series."""
        return self.intensity_at(t_s) * MM_H_TO_M_S

    def depth_m(self, t0_s: float, t1_s: float) -> float | np.ndarray:
        """Exact rain depth (m) falling over [t0_s, t1_s] (integral of the step series)."""
        if t1_s <= t0_s:
            return np.zeros(self.intensity_mm_h.shape[1:]) if self.gridded else 0.0
        starts = self.times_s
        ends = np.append(self.times_s[1:], np.inf)
        overlap = np.maximum(np.minimum(ends, t1_s) - np.maximum(starts, t0_s), 0.0)
        if self.gridded:
            return np.tensordot(overlap, self.intensity_mm_h, axes=1) * MM_H_TO_M_S
        return float(np.sum(overlap * self.intensity_mm_h)) * MM_H_TO_M_S

    def check_grid(self, shape: tuple[int, int], source: str = "flood engine") -> None:
        """Raise InputError (field "rain"; ``source``: the engine's name) unless a gridded
        series matches the engine grid ``shape``."""
        if self.gridded and self.intensity_mm_h.shape[1:] != tuple(shape):
            raise InputError(source, f"gridded intensity has cells "
                             f"{self.intensity_mm_h.shape[1:]}, the DEM has {tuple(shape)}",
                             field="rain")


def idf_intensity_mm_min(
    A: float, C: float, b: float, n: float, return_period_yr: float, t_min: ArrayLike
) -> np.ndarray:
    """Average intensity (mm/min) over the most intense ``t_min`` minutes,
    i = A (1 + C lg P) / (t + b)^n (GB 50014-2021 §4.1.9, with A in mm/min)."""
    a = A * (1.0 + C * math.log10(return_period_yr))
    return a / (np.asarray(t_min, dtype=np.float64) + b) ** n


def chicago_cumulative_mm(
    A: float,
    C: float,
    b: float,
    n: float,
    return_period_yr: float,
    duration_s: float,
    peak_ratio: float,
    t_s: ArrayLike,
) -> np.ndarray:
    """Cumulative depth (mm) of the Chicago hyetograph from its start to ``t_s``.

    With a = A (1 + C lg P) and the peak at t_p = r D: before the peak the rain still to come
    until the peak is r a T/(T + b)^n with T = (t_p − t)/r (minutes); after it the rain since
    the peak is (1 − r) a T/(T + b)^n with T = (t − t_p)/(1 − r) (Keifer & Chu 1957).
    """
    a = A * (1.0 + C * math.log10(return_period_yr))
    t_min = np.clip(np.asarray(t_s, dtype=np.float64), 0.0, duration_s) / 60.0
    d_min = duration_s / 60.0
    r = peak_ratio
    tp = r * d_min

    def window(T: np.ndarray) -> np.ndarray:
        return a * T / (T + b) ** n

    before_total = r * window(np.asarray(tp / r)) if r > 0.0 else 0.0
    out = np.empty_like(t_min)
    pre = t_min <= tp
    if r > 0.0:
        out[pre] = before_total - r * window((tp - t_min[pre]) / r)
    else:
        out[pre] = 0.0
    if r < 1.0:
        out[~pre] = before_total + (1.0 - r) * window((t_min[~pre] - tp) / (1.0 - r))
    else:
        out[~pre] = before_total
    return out


def chicago_storm(
    A: float,
    C: float,
    b: float,
    n: float,
    return_period_yr: float,
    duration_s: float,
    peak_ratio: float = 0.4,
    step_s: float = 60.0,
) -> RainSeries:
    """Chicago design storm as a block hyetograph (uniform ``RainSeries`` in mm/h).

    IDF formula i = A (1 + C lg P)/(t + b)^n with **i in mm/min and t in minutes** (the
    convention of Chinese storm-intensity formulae; multiply by 60 for mm/h), P =
    ``return_period_yr``. Blocks of ``step_s`` (the last may be shorter) carry the exact
    increments of the Keifer & Chu cumulative depth (``chicago_cumulative_mm``), so the total
    is a·D/(D + b)^n mm. The series ends with intensity 0 at ``duration_s``.
    Example (Beijing, GB 50014 commentary): A = 10.662 (×167 = 1780.6 L/(s·ha)), C = 0.811,
    b = 8, n = 0.711.
    """
    checks = {
        "A": A > 0.0 and math.isfinite(A),
        "C": math.isfinite(C),
        "b": b >= 0.0 and math.isfinite(b),
        "n": 0.0 < n < 1.0,
        "return_period_yr": return_period_yr > 0.0 and math.isfinite(return_period_yr),
        "duration_s": duration_s > 0.0 and math.isfinite(duration_s),
        "peak_ratio": 0.0 <= peak_ratio <= 1.0,
        "step_s": step_s > 0.0 and math.isfinite(step_s),
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        values = dict(A=A, C=C, b=b, n=n, return_period_yr=return_period_yr,
                      duration_s=duration_s, peak_ratio=peak_ratio, step_s=step_s)
        raise ValueError(
            "chicago_storm: invalid " + ", ".join(f"{k}={values[k]!r}" for k in bad)
            + " (need A > 0, b >= 0, 0 < n < 1, P > 0, duration > 0, 0 <= r <= 1, step > 0)"
        )
    if 1.0 + C * math.log10(return_period_yr) <= 0.0:
        raise ValueError(f"chicago_storm: 1 + C lg P <= 0 for C={C}, P={return_period_yr}")
    edges = np.arange(0.0, duration_s, step_s)
    edges = np.append(edges, duration_s)
    cum = chicago_cumulative_mm(A, C, b, n, return_period_yr, duration_s, peak_ratio, edges)
    depth_mm = np.maximum(np.diff(cum), 0.0)
    intensity = depth_mm / np.diff(edges) * 3600.0
    return RainSeries(edges, np.append(intensity, 0.0))


def chicago_total_mm(
    A: float, C: float, b: float, n: float, return_period_yr: float, duration_s: float
) -> float:
    """Storm total a·D/(D + b)^n (mm) of a Chicago storm of duration D (IDF depth)."""
    d_min = duration_s / 60.0
    return float(idf_intensity_mm_min(A, C, b, n, return_period_yr, d_min) * d_min)
