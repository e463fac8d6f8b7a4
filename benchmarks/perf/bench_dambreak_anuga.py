"""The same dam break run side by side with citytwin's local-inertial flood model and ANUGA.

Problem: Ritter's (1892) dry-bed dam break — a frictionless, flat, 2000 m × 20 m channel with
reflective walls all round, water h0 = 1 m deep for x < 1000 m and dry beyond, released at
t = 0 and run to t = 60 s (the rarefaction reaches x = 812 m and the front x = 1376 m; the
walls are never reached). The exact depth (Ritter 1892; e.g. Chanson 2009, Eur. J. Mech. B
28:191–210) with c0 = sqrt(g h0), ξ = (x − x0)/t:

    h = h0                          ξ ≤ −c0
    h = (2 c0 − ξ)² / (9 g)         −c0 < ξ < 2 c0
    h = 0                           ξ ≥ 2 c0

Both tools get the same square resolution: citytwin ``LocalInertialFlood`` (numba backend,
θ = 0.7 default, cfl 0.7, Manning n = 0) on Δx-square cells; ANUGA (``anuga`` from PyPI,
``rectangular_cross_domain``: every Δx square cut into 4 triangles, flow algorithms DE0 —
ANUGA's default, first order in time — and DE1, second order). Reported per run: cells or
triangles, wall time (model construction + run; numba JIT warmed up beforehand), the L1
depth error (mean |h − h_exact| over 600 m ≤ x ≤ 1600 m, cell centres or triangle
centroids), and the front error: the farthest x with h ≥ 1 cm minus the exact position of
the 1 cm depth, x0 + (2 c0 − 3 sqrt(g · 0.01 m)) t.

The local-inertial scheme drops the advective acceleration (Bates et al. 2010), so it is not
expected to reproduce Ritter's supercritical rarefaction as well as a shock-capturing
finite-volume solver such as ANUGA; the comparison shows by how much, and what it costs.
Without advection the equations are h_t + q_x = 0, q_t + (g h²/2)_x = 0, whose dry-bed
Riemann problem has no rarefaction down to h = 0 (the speed sqrt(g h) vanishes there while
the flux q = (2/3) sqrt(g) (h0^1.5 − h^1.5) does not): the front is a bore of depth h_b with
(2/3) sqrt(g) (h0^1.5 − h_b^1.5) = h_b sqrt(g h_b / 2), moving at s = sqrt(g h_b / 2) —
h_b = 0.62 h0 at 0.28 of Ritter's front speed 2 c0. The citytwin rows also give their front
error against that bore: the distance to Ritter is the model's, not the solver's.

ANUGA is a benchmark-only dependency: if it cannot be imported it is installed into the
running interpreter's environment with ``python -m pip install anuga``.

    python benchmarks/perf/bench_dambreak_anuga.py
"""

from __future__ import annotations

import importlib
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import machine_line
from affine import Affine

from citytwin.physics.flood import LocalInertialFlood

VALIDATION_DIR = Path(__file__).resolve().parents[1] / "validation"
if str(VALIDATION_DIR) not in sys.path:
    sys.path.insert(0, str(VALIDATION_DIR))

from flood_validation import G, ritter_depth_m  # noqa: E402

LENGTH_M, WIDTH_M, X0_M, H0_M, T_END_S = 2000.0, 20.0, 1000.0, 1.0, 60.0
FRONT_DEPTH_M = 0.01
ERROR_WINDOW_M = (600.0, 1600.0)
RESOLUTIONS_M = (5.0, 2.0)


def exact_front_m(t: float) -> float:
    return X0_M + (2 * math.sqrt(G * H0_M) - 3 * math.sqrt(G * FRONT_DEPTH_M)) * t


def local_inertial_bore() -> tuple[float, float]:
    """(depth, front position at T_END_S) of the exact dry-bed bore of the local-inertial
    equations (module docstring)."""
    a, c = 2.0 / 3.0 * math.sqrt(G), math.sqrt(G / 2.0)
    h_b = (a * H0_M**1.5 / (a + c)) ** (2.0 / 3.0)
    return h_b, X0_M + math.sqrt(G * h_b / 2.0) * T_END_S


def _errors(x: np.ndarray, h: np.ndarray) -> tuple[float, float]:
    sel = (x >= ERROR_WINDOW_M[0]) & (x <= ERROR_WINDOW_M[1])
    l1 = float(np.mean(np.abs(h[sel] - ritter_depth_m(x[sel] - X0_M, T_END_S, H0_M))))
    wet = h >= FRONT_DEPTH_M
    front = float(np.max(x[wet])) if wet.any() else X0_M
    return l1, front - exact_front_m(T_END_S)


def run_citytwin(dx: float, backend: str = "numba", advection: bool = False) -> dict:
    nr, nc = int(round(WIDTH_M / dx)), int(round(LENGTH_M / dx))
    xs = (np.arange(nc) + 0.5) * dx
    t0 = time.perf_counter()
    model = LocalInertialFlood(
        np.zeros((nr, nc)), Affine(dx, 0.0, 0.0, 0.0, -dx, nr * dx), manning_n=0.0,
        initial_depth_m=np.where(xs < X0_M, H0_M, 0.0)[None, :].repeat(nr, axis=0),
        boundaries="closed", backend=backend, output_interval_s=T_END_S, max_dt_s=10.0,
        track_maxima=False, source="ritter", advection=advection,
    )
    model.advance_to(T_END_S)
    wall = time.perf_counter() - t0
    h = model.depth_m[nr // 2]
    l1, front = _errors(xs, h)
    label = f"{backend}, advection on" if advection else backend
    return {"tool": f"citytwin LocalInertialFlood ({label})", "dx": dx, "elements": nr * nc,
            "kind": "cells", "steps": model.steps, "wall_s": wall, "l1_m": l1,
            "front_m": front}


def _import_anuga():
    try:
        return importlib.import_module("anuga")
    except ImportError:
        print("anuga not importable: installing it with pip (benchmark-only dependency)",
              file=sys.stderr, flush=True)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", "anuga"])
        importlib.invalidate_caches()
        return importlib.import_module("anuga")


def run_anuga(anuga, dx: float, algorithm: str) -> dict:
    t0 = time.perf_counter()
    domain = anuga.rectangular_cross_domain(int(round(LENGTH_M / dx)), int(round(WIDTH_M / dx)),
                                            len1=LENGTH_M, len2=WIDTH_M, origin=(0.0, 0.0))
    domain.set_store(False)
    domain.set_flow_algorithm(algorithm)
    domain.set_quantity("elevation", 0.0)
    domain.set_quantity("friction", 0.0)
    domain.set_quantity("stage", lambda x, y: np.where(x < X0_M, H0_M, 0.0))
    wall_bc = anuga.Reflective_boundary(domain)
    domain.set_boundary({"left": wall_bc, "right": wall_bc, "top": wall_bc, "bottom": wall_bc})
    steps = 0
    for _ in domain.evolve(yieldstep=T_END_S, finaltime=T_END_S):
        steps = int(getattr(domain, "number_of_steps", 0) or steps)
    wall = time.perf_counter() - t0
    x = domain.centroid_coordinates[:, 0]
    h = (domain.quantities["stage"].centroid_values
         - domain.quantities["elevation"].centroid_values)
    l1, front = _errors(x, h)
    return {"tool": f"ANUGA {anuga.__version__} ({algorithm})", "dx": dx,
            "elements": int(domain.number_of_triangles), "kind": "triangles",
            "steps": steps, "wall_s": wall, "l1_m": l1, "front_m": front}


def main() -> None:
    import numba

    print(machine_line(f"numba threads {numba.get_num_threads()}"))
    anuga = _import_anuga()
    run_citytwin(20.0)  # JIT warm-up
    rows = []
    for dx in RESOLUTIONS_M:
        rows.append(run_citytwin(dx))
        rows.append(run_citytwin(dx, advection=True))
        if dx == RESOLUTIONS_M[0]:
            rows.append(run_citytwin(dx, backend="numpy"))
        for algorithm in ("DE0", "DE1"):
            rows.append(run_anuga(anuga, dx, algorithm))
    print(f"\nRitter dry-bed dam break, h0 = {H0_M} m, channel {LENGTH_M:.0f} × {WIDTH_M:.0f} m, "
          f"frictionless, reflective walls, t = {T_END_S:.0f} s; exact 1 cm front at "
          f"{exact_front_m(T_END_S):.1f} m; L1 over {ERROR_WINDOW_M[0]:.0f}–"
          f"{ERROR_WINDOW_M[1]:.0f} m\n")
    h_b, x_b = local_inertial_bore()
    print(f"local-inertial equations' exact front: a bore {h_b:.3f} m deep at {x_b:.1f} m\n")
    print("| tool | Δx (m) | cells / triangles | wall time (s) | L1 depth error vs Ritter (m) "
          "| front error vs Ritter (m) | front error vs local-inertial bore (m) |")
    print("|---|---|---|---|---|---|---|")
    x_ritter = exact_front_m(T_END_S)
    for r in rows:
        vs_bore = (f"{r['front_m'] + x_ritter - x_b:+.1f}" if r["tool"].startswith("citytwin")
                   and "advection" not in r["tool"] else "—")
        print(f"| {r['tool']} | {r['dx']:g} | {r['elements']} {r['kind']} | {r['wall_s']:.2f} | "
              f"{r['l1_m']:.4f} | {r['front_m']:+.1f} | {vs_bore} |")


if __name__ == "__main__":
    main()
