"""Observations/s through the alerting engine with the default rulebook.

Two feeds: batches of 10 000 (one cadence-group tick of 10 000 sensors) and one observation
at a time. Values are mostly background with a cluster of sensors in alarm, as in a real leak.

    python benchmarks/perf/bench_engine.py
"""

from __future__ import annotations

import platform
import time

import numpy as np
import pandas as pd

from alerting import Engine, Observation, ObservationBatch, load_rulebook


def inventory(n: int) -> pd.DataFrame:
    side = int(np.ceil(np.sqrt(n)))
    k = np.arange(n)
    return pd.DataFrame({"sensor_id": [f"CH4-{i:05d}" for i in k], "type_id": "methane_detector",
                         "quantity": "ch4_lel_pct", "unit": "%LEL",
                         "x_m": (k % side) * 50.0, "y_m": (k // side) * 50.0})


def values(rng: np.random.Generator, n: int, tick: int) -> np.ndarray:
    v = np.abs(rng.normal(0.5, 0.5, n))  # background: ~0.5 %LEL
    v[:40] = np.clip(5.0 + tick * 0.5, 0, 100)  # a leak cluster rising through every level
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


if __name__ == "__main__":
    print(f"machine: {platform.platform()}, {platform.processor() or 'cpu'}, "
          f"Python {platform.python_version()}")
    print(f"engine, batches of 10 000: {bench_batches():,.0f} observations/s")
    print(f"engine, one at a time:    {bench_one_at_a_time():,.0f} observations/s")
