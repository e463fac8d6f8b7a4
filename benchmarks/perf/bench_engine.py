"""Observations/s through the alerting engine with the default rulebook.

Three feeds: batches of 10 000 (one cadence-group tick of 10 000 sensors), one observation at
a time, and a day — 10 000 sensors at 1-minute cadence for 24 h (14.4 M observations) —
through the whole platform (engine + warnings + work orders + pushes + self-checks + CAP).
Values are mostly background with a cluster of sensors in alarm, as in a real leak.

    python benchmarks/perf/bench_engine.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _common import machine_line

from citytwin.alerting import Engine, Observation, ObservationBatch, load_rulebook
from citytwin.alerting.platform import Platform, load_operations


def inventory(n: int) -> pd.DataFrame:
    side = int(np.ceil(np.sqrt(n)))
    k = np.arange(n)
    return pd.DataFrame({"sensor_id": [f"CH4-{i:05d}" for i in k], "type_id": "methane_detector",
                         "quantity": "ch4_lel_pct", "unit": "%LEL",
                         "x_m": (k % side) * 50.0, "y_m": (k // side) * 50.0})


def values(rng: np.random.Generator, n: int, tick: int) -> np.ndarray:
    v = np.abs(rng.normal(0.5, 0.5, n))  # background: ~0.5 %LEL
    v[:40] = np.clip(5.0 + (tick % 400) * 0.5, 0, 100)  # a leak cluster rising through levels
    return v


def bench_batches(n: int = 10_000, ticks: int = 360) -> float:
    inv = inventory(n)
    eng = Engine(load_rulebook(), inv)
    ids = inv["sensor_id"].to_numpy(dtype=object)
    rng = np.random.default_rng(0)
    data = [values(rng, n, k) for k in range(ticks)]
    t0 = time.perf_counter()
    for k in range(ticks):
        eng.process(ObservationBatch(ids, np.full(n, k * 10.0), data[k], "%LEL"))
    return n * ticks / (time.perf_counter() - t0)


def bench_one_at_a_time(n: int = 1000, ticks: int = 100) -> float:
    inv = inventory(n)
    eng = Engine(load_rulebook(), inv)
    rng = np.random.default_rng(0)
    obs = [Observation(sid, k * 10.0, float(v), "%LEL")
           for k in range(ticks) for sid, v in zip(inv["sensor_id"], values(rng, n, k),
                                                   strict=True)]
    t0 = time.perf_counter()
    for o in obs:
        eng.process_one(o)
    return len(obs) / (time.perf_counter() - t0)


def bench_day(n: int = 10_000, cadence_s: float = 60.0, hours: float = 24.0) -> tuple[float, int]:
    """The platform over a day of 1-minute readings from ``n`` sensors; returns (s, obs)."""
    inv = inventory(n)
    inv["interval_s"] = cadence_s
    platform = Platform(Engine(load_rulebook(), inv), inv, load_operations(),
                        rng=np.random.default_rng(0))
    ids = inv["sensor_id"].to_numpy(dtype=object)
    rng = np.random.default_rng(1)
    ticks = int(hours * 3600 / cadence_s)
    t0 = time.perf_counter()
    for k in range(ticks):
        t = k * cadence_s
        platform.ingest(ObservationBatch(ids, np.full(n, t), values(rng, n, k), "%LEL"))
        platform.advance_to(t)
    return time.perf_counter() - t0, n * ticks


if __name__ == "__main__":
    print(machine_line())
    print(f"engine, batches of 10 000: {bench_batches():,.0f} observations/s")
    print(f"engine, one at a time:    {bench_one_at_a_time():,.0f} observations/s")
    wall, n_obs = bench_day()
    print(f"platform, 10 000 sensors x 24 h at 1 min ({n_obs / 1e6:.1f} M observations, incl. "
          f"generating them): {wall:.1f} s = {n_obs / wall:,.0f} observations/s")
