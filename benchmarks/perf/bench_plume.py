"""Sample points/s of the Gaussian puff plume (``gas_plume``).

A 1-hour release (50 g/s, urban D, 1 s puffs) in 4 m/s wind from the west that veers to
200° after 30 min; 10 000 points spread uniformly over 2 × 2 km around the source. Timed
after JIT warm-up, median of 30 calls; points on one height (a rendered field, sensors at
one mounting height) and points each at its own height (0–3 m). Also times the 1-hour
``advance_to`` and one call of the NumPy reference path.

    python benchmarks/perf/bench_plume.py
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np

from physics import puffsum
from physics.forcing import ReleaseSchedule, WindSeries
from physics.plume import GaussianPuffPlume

N_POINTS = 10_000
REPEATS = 30


def build_plume() -> tuple[GaussianPuffPlume, float]:
    wind = WindSeries(
        np.array([0.0, 1800.0, 1900.0]), np.array([4.0, 4.0, 4.0]), np.array([270.0, 270.0, 200.0])
    )
    plume = GaussianPuffPlume(
        source_xy_m=(0.0, 0.0),
        source_height_m=1.0,
        release=ReleaseSchedule.constant(0.0, 3600.0, 0.05),
        wind=wind,
        stability="D",
        terrain="urban",
    )
    t0 = time.perf_counter()
    plume.advance_to(3600.0)
    return plume, time.perf_counter() - t0


def time_sample(plume: GaussianPuffPlume, pts: np.ndarray, repeats: int) -> float:
    plume.sample("ch4_ppm", pts)  # warm-up (JIT compile or cache load)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        plume.sample("ch4_ppm", pts)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    plume, advance_s = build_plume()
    rng = np.random.default_rng(0)
    xy = rng.uniform(-1000.0, 1000.0, (N_POINTS, 2))
    one_height = np.column_stack([xy, np.full(N_POINTS, 1.5)])
    own_height = np.column_stack([xy, rng.uniform(0.0, 3.0, N_POINTS)])

    threads = puffsum.numba.get_num_threads() if puffsum.HAVE_NUMBA else 1
    layer = "n/a"
    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"plume: 1 h release, {plume.puff_count} live puffs, advance_to(3600 s) took "
        f"{advance_s:.2f} s"
    )
    for label, pts in (("one height", one_height), ("own heights", own_height)):
        t = time_sample(plume, pts, REPEATS)
        if puffsum.HAVE_NUMBA and layer == "n/a":
            try:
                layer = puffsum.numba.threading_layer()
            except ValueError:
                layer = "none"
        print(
            f"RESULT gas_plume sample [{label}]: {N_POINTS} points in {t * 1e3:.2f} ms "
            f"(median of {REPEATS}) = {N_POINTS / t:,.0f} points/s "
            f"[numba, {threads} threads, layer {layer}]"
        )
    plume.backend = "numpy"
    t = time_sample(plume, one_height, 1)
    print(f"reference NumPy path: {t * 1e3:.1f} ms per call = {N_POINTS / t:,.0f} points/s")


if __name__ == "__main__":
    main()
