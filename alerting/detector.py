"""Per-sensor level state for one rule, updated for many sensors at once.

Semantics (per sensor, readings in time order, K levels with increasing thresholds T_k):
- a reading *exceeds* level k when value ≥ T_k, and *holds* level k when value ≥ T_k − h
  (h = hysteresis);
- the new level is the highest k such that at least n of the last m readings exceed k, or
  the current level is ≥ k and at least n of the last m readings hold k.
So a level is raised by n-of-m exceedances and clears after m − n + 1 readings below
T_k − h: debounced both ways, without chatter around a threshold.

The last m flags per level are kept as bits of a uint32 per sensor; counts are popcounts.
"""

from __future__ import annotations

import numpy as np


class LevelDetector:
    """Level state of ``n_sensors`` under one rule (thresholds by level number 1..K)."""

    def __init__(self, thresholds: np.ndarray, hysteresis: float, n: int, m: int,
                 n_sensors: int) -> None:
        self.thresholds = np.asarray(thresholds, dtype=np.float64)  # NaN: level not used
        self.hold_thresholds = self.thresholds - float(hysteresis)
        self.n = int(n)
        self.mask = np.uint32((1 << int(m)) - 1)
        k = len(self.thresholds)
        self.level = np.zeros(n_sensors, dtype=np.int8)
        self.exceed_bits = np.zeros((k, n_sensors), dtype=np.uint32)
        self.hold_bits = np.zeros((k, n_sensors), dtype=np.uint32)
        # Time of the first reading above the lowest threshold in the current episode (NaN: none).
        self.exceed_since_s = np.full(n_sensors, np.nan)
        self._lowest = float(np.nanmin(self.thresholds))

    def update(self, idx: np.ndarray, value: np.ndarray,
               time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Apply one reading to each sensor in ``idx`` (distinct); return (old, new) levels."""
        old = self.level[idx]
        new = np.zeros_like(old)
        for k in range(len(self.thresholds)):  # K ≤ 4 levels: a loop over levels, not sensors
            thr = self.thresholds[k]
            if np.isnan(thr):
                continue
            ex = ((self.exceed_bits[k, idx] << np.uint32(1))
                  | (value >= thr).astype(np.uint32)) & self.mask
            ho = ((self.hold_bits[k, idx] << np.uint32(1))
                  | (value >= self.hold_thresholds[k]).astype(np.uint32)) & self.mask
            self.exceed_bits[k, idx] = ex
            self.hold_bits[k, idx] = ho
            at_k = (np.bitwise_count(ex) >= self.n) | (
                (old >= k + 1) & (np.bitwise_count(ho) >= self.n))
            new = np.where(at_k, np.int8(k + 1), new)
        self.level[idx] = new
        above = value >= self._lowest
        since = self.exceed_since_s[idx]
        since = np.where(above & np.isnan(since), time_s, since)
        self.exceed_since_s[idx] = np.where((new == 0) & ~above, np.nan, since)
        return old, new
