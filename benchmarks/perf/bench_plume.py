"""Sample points/s of the Gaussian puff plume (``gas_plume``), with and without puff merging.

Two 1-hour releases with 1 s puffs, each built with ``merge=False`` (one puff per second) and
with merging on (the default), reporting the live puff count at 1 h:
- "urban D": 50 g/s, 4 m/s from the west veering to 200° after 30 min; 10 000 points
  uniform over 2 × 2 km around the source;
- "urban E": the demo drill's dawn air (class E, 1.5 → 1.2 m/s veering 270° → 180°, release
  from 300 s), 10 000 points uniform over the 4.8 × 4.8 km large synthetic city.
Timed after JIT warm-up, median of 30 calls; points on one height (a rendered field, sensors
at one mounting height) and points each at its own height (0–3 m). Also times the 1-hour
``advance_to`` and one call of the NumPy reference path.

    python benchmarks/perf/bench_plume.py
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np
from _common import machine_line

from citytwin.physics import puffsum
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.plume import GaussianPuffPlume

N_POINTS = 10_000
REPEATS = 30

SCENARIOS: dict[str, dict] = {
    "urban D": dict(
        plume=dict(
            source_height_m=1.0,
            release=ReleaseSchedule.constant(0.0, 3600.0, 0.05),
            wind=WindSeries(
                np.array([0.0, 1800.0, 1900.0]),
                np.array([4.0, 4.0, 4.0]),
                np.array([270.0, 270.0, 200.0]),
            ),
            stability="D",
        ),
        half_width_m=1000.0,
        height_m=1.5,
    ),
    "urban E": dict(
        plume=dict(
            source_height_m=0.5,
            release=ReleaseSchedule.constant(300.0, math.inf, 5.0),
            wind=WindSeries(
                np.array([0.0, 1500.0, 2400.0, 3600.0]),
                np.array([1.5, 1.5, 1.2, 1.2]),
                np.array([270.0, 270.0, 190.0, 180.0]),
            ),
            stability="E",
        ),
        half_width_m=2400.0,
        height_m=0.3,
    ),
}


def build_plume(scenario: dict, merge: bool) -> tuple[GaussianPuffPlume, float]:
    plume = GaussianPuffPlume(
        source_xy_m=(0.0, 0.0), terrain="urban", merge=merge, **scenario["plume"]
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
    threads = puffsum.numba.get_num_threads() if puffsum.HAVE_NUMBA else 1
    print(machine_line())
    for name, scenario in SCENARIOS.items():
        rng = np.random.default_rng(0)
        w = scenario["half_width_m"]
        xy = rng.uniform(-w, w, (N_POINTS, 2))
        one_height = np.column_stack([xy, np.full(N_POINTS, scenario["height_m"])])
        own_height = np.column_stack([xy, rng.uniform(0.0, 3.0, N_POINTS)])
        per_call = {}
        for merge in (False, True):
            plume, advance_s = build_plume(scenario, merge)
            tag = f"{name}, merge {'on' if merge else 'off'}"
            print(
                f"plume [{tag}]: {plume.puff_count} live puffs at 1 h, "
                f"advance_to(3600 s) took {advance_s:.2f} s"
            )
            for label, pts in (("one height", one_height), ("own heights", own_height)):
                t = time_sample(plume, pts, REPEATS)
                per_call[merge, label] = t
                layer = "n/a"
                if puffsum.HAVE_NUMBA:
                    try:
                        layer = puffsum.numba.threading_layer()
                    except ValueError:
                        layer = "none"
                print(
                    f"RESULT gas_plume sample [{tag}, {label}]: {N_POINTS} points in "
                    f"{t * 1e3:.3f} ms (median of {REPEATS}) = {N_POINTS / t:,.0f} points/s "
                    f"[numba, {threads} threads, layer {layer}; {plume.puff_count} puffs]"
                )
            plume.backend = "numpy"
            t = time_sample(plume, one_height, 1)
            print(
                f"reference NumPy path [{tag}]: {t * 1e3:.1f} ms per call = "
                f"{N_POINTS / t:,.0f} points/s"
            )
        for label in ("one height", "own heights"):
            speedup = per_call[False, label] / per_call[True, label]
            print(f"speed-up from merging [{name}, {label}]: {speedup:.1f}x")


if __name__ == "__main__":
    main()
