"""Scripted sensor faults: a drill's injects forcing sensors offline, stuck or into a false
alarm for a time window, on top of the measurement model.

They are applied after the measurement model (``MeasurementModel.measure``), so they draw no
random numbers and leave every other sensor's readings, and the run's random streams,
exactly as they would have been.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from citytwin.sensors_sim.measurement import QUALITY_OFFLINE, QUALITY_OK, QUALITY_STUCK

FAULT_KINDS = ("offline", "stuck", "false_alarm")
FaultKind = Literal["offline", "stuck", "false_alarm"]


@dataclass(frozen=True)
class ScriptedFault:
    kind: FaultKind
    positions: np.ndarray  #: rows of the sensor table
    start_s: float
    end_s: float
    value: float | None


class ScriptedFaults:
    """Faults by sensor id and time window [start_s, end_s); see the module docstring."""

    def __init__(self, sensor_ids: Sequence[str]) -> None:
        self._index = pd.Index(np.asarray(sensor_ids, dtype=object))
        self.faults: list[ScriptedFault] = []
        self._last = np.full(len(self._index), np.nan)  # last value received per sensor

    def add(self, kind: FaultKind, sensor_ids: Sequence[str], start_s: float,
            end_s: float = math.inf, value: float | None = None) -> None:
        """Schedule a fault; KeyError naming an unknown sensor, ValueError for bad values."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; kinds are {list(FAULT_KINDS)}")
        if not end_s > start_s:
            raise ValueError(f"fault end_s {end_s:g} must be after start_s {start_s:g}")
        if kind == "false_alarm" and (value is None or not math.isfinite(value)):
            raise ValueError("a false_alarm fault needs the (finite) value it reports")
        ids = np.asarray(list(sensor_ids), dtype=object)
        positions = self._index.get_indexer(ids)
        if len(ids) == 0:
            raise ValueError("a fault needs at least one sensor id")
        if (positions < 0).any():
            raise KeyError(f"unknown sensor id(s) {sorted(map(str, ids[positions < 0]))[:5]}")
        self.faults.append(ScriptedFault(kind, positions, float(start_s), float(end_s),
                                         None if value is None else float(value)))

    def apply(self, indices: np.ndarray, t_s: float, value: np.ndarray, valid: np.ndarray,
              quality: np.ndarray) -> None:
        """Apply the faults active at ``t_s`` in place to one group's readings (``indices``
        are the group's rows of the sensor table; ``value``/``valid``/``quality`` its
        measured readings)."""
        for f in self.faults:
            if not f.start_s <= t_s < f.end_s:
                continue
            hit = np.isin(indices, f.positions)
            if not hit.any():
                continue
            if f.kind == "offline":
                valid[hit] = False
                value[hit] = np.nan
                quality[hit] = QUALITY_OFFLINE
            elif f.kind == "stuck":
                frozen = (np.full(hit.sum(), f.value) if f.value is not None
                          else self._last[indices[hit]])
                keep = np.isfinite(frozen)  # stuck before any reading: reads what it reads
                rows = np.flatnonzero(hit)[keep]
                value[rows] = frozen[keep]
                valid[rows] = True
                quality[rows] = QUALITY_STUCK
            else:  # a good-looking reading, whatever the sensor really did this tick
                value[hit] = f.value
                valid[hit] = True
                quality[hit] = QUALITY_OK
        ok = valid & np.isfinite(value)
        self._last[indices[ok]] = value[ok]
