"""Observations: one record type and its columnar batch form.

Close in spirit to OGC SensorThings *Observation* (phenomenonTime, resultTime, result),
with the Datastream collapsed into ``sensor_id`` + ``unit``. ``source`` says where it came
from (simulated / drill / archive / live); nothing downstream branches on anything else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Quality codes shared with sensors_sim.measurement.
QUALITY_OK = 0
QUALITY_CLIPPED = 1
QUALITY_DROPPED = 2
QUALITY_OFFLINE = 3
QUALITY_STUCK = 4
#: Codes whose value is usable for detection (a clipped reading is at the range limit, a stuck
#: one is what the platform would really receive: both are evaluated).
USABLE_QUALITIES = (QUALITY_OK, QUALITY_CLIPPED, QUALITY_STUCK)

SOURCES = ("simulated", "drill", "archive", "live")


@dataclass(frozen=True)
class Observation:
    """One reading: ``value`` in ``unit`` of ``sensor_id`` at ``time_s`` (s from start)."""

    sensor_id: str
    time_s: float
    value: float
    unit: str
    received_s: float | None = None
    quality: int = QUALITY_OK
    source: str = "simulated"


@dataclass
class ObservationBatch:
    """Many observations as parallel arrays (the fast path).

    ``sensor_id`` is an array of str; ``unit`` a single unit for all rows or an array.
    ``received_s`` defaults to ``time_s`` (no reporting latency).
    """

    sensor_id: np.ndarray
    time_s: np.ndarray
    value: np.ndarray
    unit: str | np.ndarray
    received_s: np.ndarray | None = None
    quality: np.ndarray | None = None
    source: str = "simulated"

    def __post_init__(self) -> None:
        self.sensor_id = np.asarray(self.sensor_id, dtype=object)
        self.time_s = np.asarray(self.time_s, dtype=np.float64)
        self.value = np.asarray(self.value, dtype=np.float64)
        n = len(self.sensor_id)
        if self.received_s is None:
            self.received_s = self.time_s
        self.received_s = np.asarray(self.received_s, dtype=np.float64)
        if self.quality is None:
            self.quality = np.zeros(n, dtype=np.int8)
        self.quality = np.asarray(self.quality, dtype=np.int8)
        for name in ("time_s", "value", "received_s", "quality"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ObservationBatch.{name} has {len(getattr(self, name))} rows, "
                                 f"sensor_id has {n}")
        if not isinstance(self.unit, str):
            self.unit = np.asarray(self.unit, dtype=object)
        if self.source not in SOURCES:
            raise ValueError(f"ObservationBatch.source {self.source!r} is not one of {SOURCES}")

    def __len__(self) -> int:
        return len(self.sensor_id)

    @classmethod
    def from_observations(cls, observations: list[Observation]) -> ObservationBatch:
        """Pack records (all from one source) into a batch."""
        sources = {o.source for o in observations}
        if len(sources) > 1:
            raise ValueError(f"a batch holds one source, got {sorted(sources)}")
        return cls(
            sensor_id=np.array([o.sensor_id for o in observations], dtype=object),
            time_s=np.array([o.time_s for o in observations], dtype=np.float64),
            value=np.array([o.value for o in observations], dtype=np.float64),
            unit=np.array([o.unit for o in observations], dtype=object),
            received_s=np.array([o.time_s if o.received_s is None else o.received_s
                                 for o in observations], dtype=np.float64),
            quality=np.array([o.quality for o in observations], dtype=np.int8),
            source=sources.pop() if sources else "simulated",
        )

    def slice(self, start: int, stop: int) -> ObservationBatch:
        """Rows [start, stop) as a new batch."""
        unit = self.unit if isinstance(self.unit, str) else self.unit[start:stop]
        return ObservationBatch(self.sensor_id[start:stop], self.time_s[start:stop],
                                self.value[start:stop], unit, self.received_s[start:stop],
                                self.quality[start:stop], self.source)
