"""Model-evaluation statistics for validating engines against references.

Chang & Hanna (2004), "Air quality model performance evaluation", Meteorol. Atmos. Phys.
87, 167-196 (o observed/reference, p predicted):
FB = 2(ō − p̄)/(ō + p̄); NMSE = mean((o − p)²)/(ō p̄); FAC2 = share of pairs with
0.5 ≤ p/o ≤ 2; MG = exp(mean(ln o − ln p)); VG = exp(mean((ln o − ln p)²)).
Acceptance ("good" model): FAC2 ≥ 0.5, |FB| ≤ 0.3, NMSE ≤ 1.5; urban relaxed (Hanna &
Chang 2012): |FB| < 0.67, NMSE < 6.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pair(observed: ArrayLike, predicted: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    o = np.asarray(observed, dtype=np.float64).ravel()
    p = np.asarray(predicted, dtype=np.float64).ravel()
    if o.shape != p.shape or o.size == 0:
        raise ValueError(f"need equal, non-empty sizes; got {o.size} and {p.size}")
    return o, p


def fractional_bias(observed: ArrayLike, predicted: ArrayLike) -> float:
    """FB = 2(ō − p̄)/(ō + p̄); positive when the model under-predicts."""
    o, p = _pair(observed, predicted)
    return float(2.0 * (o.mean() - p.mean()) / (o.mean() + p.mean()))


def nmse(observed: ArrayLike, predicted: ArrayLike) -> float:
    """Normalised mean square error mean((o − p)²)/(ō p̄)."""
    o, p = _pair(observed, predicted)
    return float(np.mean((o - p) ** 2) / (o.mean() * p.mean()))


def fac2(observed: ArrayLike, predicted: ArrayLike) -> float:
    """Fraction of pairs with 0.5 ≤ p/o ≤ 2 (pairs with o = p = 0 count as within)."""
    o, p = _pair(observed, predicted)
    both_zero = (o == 0.0) & (p == 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = p / o
    ok = both_zero | ((ratio >= 0.5) & (ratio <= 2.0))
    return float(np.mean(ok))


def geometric_mean_bias(observed: ArrayLike, predicted: ArrayLike) -> float:
    """MG = exp(mean(ln o − ln p)); needs positive values."""
    o, p = _pair(observed, predicted)
    if np.any(o <= 0) or np.any(p <= 0):
        raise ValueError("MG needs strictly positive values")
    return float(np.exp(np.mean(np.log(o) - np.log(p))))


def geometric_variance(observed: ArrayLike, predicted: ArrayLike) -> float:
    """VG = exp(mean((ln o − ln p)²)); needs positive values."""
    o, p = _pair(observed, predicted)
    if np.any(o <= 0) or np.any(p <= 0):
        raise ValueError("VG needs strictly positive values")
    return float(np.exp(np.mean((np.log(o) - np.log(p)) ** 2)))
