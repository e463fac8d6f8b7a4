"""Validation of the local-inertial flood engine (``flood``) on UK Environment Agency 2D
benchmark Test 4, "speed of flood propagation over an extended floodplain" (Néelz & Pender
2013, EA report SC120002).

Set-up from the LISFLOOD-FP 8.0 reproducibility files (Shaw et al. 2021, GMD 14, 3577–3602,
Zenodo 10.5281/zenodo.4066824), read by ``ea_benchmarks.load_ea4``: flat bed 1000 × 2000 m,
n = 0.05, dry start, inflow 0 → 20 m³/s (0.3 → 1 h) held to 4 h, → 0 at 5 h on the west edge
y = 990–1010 m, east/south/north edges free (normal-depth outflow), rest of the west edge
closed, 5 h. Reference: LISFLOOD-FP 8.0 local-inertial ("ACC") at 1 m,
``reference/ea4-1m-acc.stage`` (same scheme family as this engine, 25× finer cells).

Rows per output point (1–6) and grid size:
- peak depth − reference peak (m), criterion ±0.02 m;
- arrival time − reference arrival (s), criterion ±300 s (the EA report's inter-model spread
  of about 5 minutes); arrival = first time the depth reaches ``ARRIVAL_DEPTH_M`` = 0.01 m,
  linearly interpolated between samples, the same rule for both series;
- RMSE of the depth series on the reference times (m), criterion ≤ 0.02 m;
plus the inflow volume against the exact hydrograph integral and the engine's volume
balance. Depths at a point are bilinear in the four surrounding cell centres (the points sit
on cell corners of a 5 m or 10 m grid; the flow is symmetric about y = 1000 m).

    python benchmarks/validation/ea4_validation.py [cell_m ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from affine import Affine

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from ea_benchmarks import (  # noqa: E402
    ARRIVAL_DEPTH_M,
    EA4Case,
    arrival_time_s,
    load_ea4,
    read_stage_output,
    rmse_on_reference,
)
from run_all import row  # noqa: E402

ENGINE = "urban_flood"  # the hazard kind (physics/urban_flood.py)
SHARED_DIR = HERE.parents[2] / "shared"
TEST4_DIR = SHARED_DIR / "benchmarks" / "ea2d" / "test4"
REFERENCE = "reference/ea4-1m-acc.stage"
CELLS_M = (5.0, 10.0)
RECORD_STEP_S = 20.0
PEAK_TOL_M = 0.02
ARRIVAL_TOL_S = 300.0
RMSE_TOL_M = 0.02
EDGE_NAMES = {"N": "north", "E": "east", "S": "south", "W": "west"}


def skipped_rows(reason: str) -> list[dict]:
    """One row saying the case did not run (``passed`` None: neither pass nor fail)."""
    return [row(ENGINE, "EA 2D Test 4", f"SKIPPED: {reason}", "n/a", "needs ../shared", None)]


def build_engine(case: EA4Case, cell_m: float, **kwargs):
    """The flood engine on a ``cell_m`` grid of the Test 4 floodplain."""
    from citytwin.physics.flood import Hydrograph, LineInflow, LocalInertialFlood

    cols = round(case.width_m / cell_m)
    rows = round(case.height_m / cell_m)
    transform = Affine(cell_m, 0.0, 0.0, 0.0, -cell_m, case.height_m)
    y0, y1 = case.inflow_y_m
    eps = 1e-6 * cell_m  # keep the segment off the cell edges at its ends
    inflow = LineInflow(0.5 * cell_m, y0 + eps, 0.5 * cell_m, y1 - eps,
                        Hydrograph(case.inflow_times_s, case.inflow_q_m3_s), name="west breach")
    boundaries = {"west": "closed"}
    for edge, kind in case.edges.items():
        boundaries[EDGE_NAMES[edge]] = {"FREE": "free", "CLOSED": "closed"}[kind]
    return LocalInertialFlood(np.zeros((rows, cols)), transform, manning_n=case.manning_n,
                              inflows=(inflow,), boundaries=boundaries,
                              source="EA test 4", **kwargs)


def engine_config(engine) -> str:
    """The scheme options a run used, for the row text."""
    parts = [f"θ {engine.theta:g}", f"cfl {engine.cfl:g}"]
    for name in ("theta_weighting", "friction"):
        if hasattr(engine, name):
            parts.append(f"{name} {getattr(engine, name)}")
    if getattr(engine, "froude_limit", 0.0):
        parts.append(f"Froude cap {engine.froude_limit:g}")
    return ", ".join(parts)


def bilinear_depth_m(engine, xy_m: np.ndarray, cell_m: float) -> np.ndarray:
    """Depth at points, bilinear in the four nearest cell centres (via ``engine.sample``)."""
    xy_m = np.asarray(xy_m, dtype=float)
    fx = xy_m[:, 0] / cell_m - 0.5
    fy = xy_m[:, 1] / cell_m - 0.5
    x0 = (np.floor(fx) + 0.5) * cell_m
    y0 = (np.floor(fy) + 0.5) * cell_m
    tx = fx - np.floor(fx)
    ty = fy - np.floor(fy)
    out = np.zeros(len(xy_m))
    for dx, dy, w in ((0, 0, (1 - tx) * (1 - ty)), (1, 0, tx * (1 - ty)),
                      (0, 1, (1 - tx) * ty), (1, 1, tx * ty)):
        pts = np.column_stack([x0 + dx * cell_m, y0 + dy * cell_m, np.zeros(len(xy_m))])
        out += w * engine.sample("depth_m", pts)
    return out


def run_case(case: EA4Case, cell_m: float, record_step_s: float = RECORD_STEP_S,
             t_end_s: float | None = None, **kwargs) -> dict:
    """Run Test 4 and record depth series at the output points every ``record_step_s``."""
    t_end_s = case.sim_time_s if t_end_s is None else t_end_s
    engine = build_engine(case, cell_m, **kwargs)
    times = np.arange(0.0, t_end_s + 0.5 * record_step_s, record_step_s)
    depth = np.zeros((times.size, len(case.points_xy_m)))
    start = time.perf_counter()
    for k, t in enumerate(times):
        engine.advance_to(float(t))
        depth[k] = bilinear_depth_m(engine, case.points_xy_m, cell_m)
    wall_s = time.perf_counter() - start
    return {"engine": engine, "times_s": times, "depth_m": depth, "wall_s": wall_s}


def compare(case: EA4Case, result: dict, reference) -> list[dict]:
    """Per-point peak, arrival and RMSE differences against the reference series."""
    rows = []
    t, h = result["times_s"], result["depth_m"]
    for i, pid in enumerate(case.point_ids):
        rows.append({
            "point": pid,
            "peak_m": float(h[:, i].max()),
            "ref_peak_m": float(reference.depth_m[:, i].max()),
            "arrival_s": arrival_time_s(t, h[:, i]),
            "ref_arrival_s": arrival_time_s(reference.times_s, reference.depth_m[:, i]),
            "rmse_m": rmse_on_reference(reference.times_s, reference.depth_m[:, i], t, h[:, i]),
        })
    return rows


def rows_for(case: EA4Case, cell_m: float, reference) -> list[dict]:
    result = run_case(case, cell_m)
    label = f"EA 2D Test 4, {cell_m:g} m grid, engine defaults [{engine_config(result['engine'])}]"
    rows = []
    for c in compare(case, result, reference):
        p = c["point"]
        dpk = c["peak_m"] - c["ref_peak_m"]
        rows.append(row(ENGINE, label, f"pt {p}: peak depth − LISFLOOD-FP ACC 1 m "
                        f"({c['ref_peak_m']:.4f} m), m", dpk, f"abs ≤ {PEAK_TOL_M} m",
                        abs(dpk) <= PEAK_TOL_M))
        darr = c["arrival_s"] - c["ref_arrival_s"]
        rows.append(row(ENGINE, label, f"pt {p}: arrival (h ≥ {ARRIVAL_DEPTH_M} m) − ACC 1 m "
                        f"({c['ref_arrival_s']:.0f} s), s", darr, f"abs ≤ {ARRIVAL_TOL_S:.0f} s",
                        bool(abs(darr) <= ARRIVAL_TOL_S)))
        rows.append(row(ENGINE, label, f"pt {p}: RMSE of depth series vs ACC 1 m, m", c["rmse_m"],
                        f"≤ {RMSE_TOL_M} m", c["rmse_m"] <= RMSE_TOL_M))
    engine = result["engine"]
    mb = engine.mass_balance()
    hyd_m3 = float(np.trapezoid(case.inflow_q_m3_s, case.inflow_times_s))
    err = abs(mb.inflow_m3 / hyd_m3 - 1.0)
    rows.append(row(ENGINE, label, "inflow volume vs hydrograph integral (285,000 m³), rel. error",
                    err, "≤ 1e-6", err <= 1e-6))
    rel = abs(mb.relative_error)
    rows.append(row(ENGINE, label, "volume balance (in − out − storage) / in", rel, "≤ 1e-6",
                    rel <= 1e-6))
    return [{**r, "wall_s": result["wall_s"]} for r in rows]


def run(cells_m: tuple[float, ...] = CELLS_M) -> list[dict]:
    if not (TEST4_DIR / "ea4.bdy").is_file():
        return skipped_rows(f"{TEST4_DIR} not present (a user's clone has no ../shared)")
    case = load_ea4(TEST4_DIR)
    reference = read_stage_output(TEST4_DIR / REFERENCE)
    rows = []
    for cell_m in cells_m:
        rows.extend(rows_for(case, cell_m, reference))
    return rows


if __name__ == "__main__":
    cells = tuple(float(a) for a in sys.argv[1:]) or CELLS_M
    for r in run(cells):
        v = r["value"]
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        print(f"{r['case']} | {r['metric']} | {text} | {r['criterion']} | {r['passed']}")
