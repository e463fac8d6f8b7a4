"""Cell updates/s of the local-inertial flood engine (``flood``).

A 1024 × 1024 grid (2 m cells, 1.05 M cells) of sloping, undulating terrain with 0.05 m of
water and 50 mm/h of rain, so every cell is wet and every face carries flow; free edges.
One "cell update" is one cell advanced by one time step (momentum on its faces, limiter,
continuity, rain, running maxima and arrival times). Timed after JIT warm-up: best of
``REPEATS`` windows of ``STEPS`` steps each (the VM is shared; best-of shows the machine's
speed, the median its variability), numba on 1 and 2 threads (``numba.set_num_threads``),
the same with ``advection=True``, and the NumPy reference path on 256 × 256.

    python benchmarks/perf/bench_flood.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from _common import machine_line
from affine import Affine

from citytwin.physics import flood_kernels as fk
from citytwin.physics.flood import LocalInertialFlood
from citytwin.physics.rainfall import RainSeries

N = 1024
N_NUMPY = 256
DX_M = 2.0
STEPS = 10
REPEATS = 5


def build(n: int, backend: str = "numba", **kwargs) -> LocalInertialFlood:
    yy, xx = np.mgrid[0:n, 0:n]
    z = 0.01 * xx * DX_M + 0.005 * yy * DX_M + 0.2 * np.sin(xx / 15.0) * np.cos(yy / 23.0)
    model = LocalInertialFlood(z, Affine(DX_M, 0, 0, 0, -DX_M, n * DX_M), manning_n=0.03,
                               initial_depth_m=0.05, rain=RainSeries.constant(50.0),
                               boundaries="free", max_dt_s=1.0, backend=backend, **kwargs)
    model.advance_to(1.0)  # JIT compile / cache load, first touch of every array
    return model


def time_steps(model: LocalInertialFlood, steps: int, repeats: int) -> list[float]:
    """Cell updates/s of ``repeats`` windows of ``steps`` steps each."""
    rates = []
    cells = model.shape[0] * model.shape[1]
    for _ in range(repeats):
        s0 = model.steps
        t0 = time.perf_counter()
        while model.steps - s0 < steps:
            model.advance_to(model.t_s + model.max_dt_s)
        rates.append(cells * (model.steps - s0) / (time.perf_counter() - t0))
    return rates


def row(label: str, n: int, threads: int | str, rates: list[float]) -> str:
    return (f"| {label} | {n} × {n} | {threads} | **{max(rates) / 1e6:.0f} M/s** "
            f"(median {statistics.median(rates) / 1e6:.0f} M/s) |")


def main() -> None:
    print(machine_line())
    print("| engine path | grid | threads | cell updates/s (best of 5; median) |")
    print("|---|---|---|---|")
    if fk.HAVE_NUMBA:
        before = fk.get_num_threads()
        try:
            for advection in (False, True):
                model = build(N, advection=advection)
                label = "numba, local inertial" + (" + advection" if advection else "")
                wet = float(np.mean(model.depth_m > model.dry_depth_m))
                for threads in (1, min(2, fk.numba.config.NUMBA_NUM_THREADS)):
                    fk.set_num_threads(threads)
                    print(row(label, N, threads, time_steps(model, STEPS, REPEATS)),
                          flush=True)
                fk.set_num_threads(before)
                print(f"  ({label}: {wet:.1%} of cells wet, threading layer "
                      f"{fk.numba.threading_layer()})")
        finally:
            fk.set_num_threads(before)
    model = build(N_NUMPY, backend="numpy")
    print(row("NumPy reference", N_NUMPY, "1 (NumPy)", time_steps(model, STEPS, 3)))


if __name__ == "__main__":
    main()
