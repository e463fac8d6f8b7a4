"""What-if ensemble throughput: members/min of the worked gas-leak study on local processes.

Runs ``scenarios/data/study_gas_leak.yaml`` (one-hour gas-leak members on the small synthetic
city, two sensor layouts) with ``--samples`` members per variant over a process pool of
``--workers`` (default 2), from an empty study folder, and reports members/min end to end
(planning, pool start, members, aggregation without the HTML report). Then profiles a few
members in this process and splits member time by where it goes.

    python benchmarks/perf/bench_study.py [--samples 10] [--workers 2] [--profile 4]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from importlib import resources
from pathlib import Path

from _common import machine_line

from citytwin.scenarios.study.executor import local_executor
from citytwin.scenarios.study.members import plan_members
from citytwin.scenarios.study.runner import run_member, run_study
from citytwin.scenarios.study.spec import load_study

STUDY = Path(str(resources.files("citytwin.scenarios").joinpath("data/study_gas_leak.yaml")))

#: Member time by component: (label, (file, function)) — the function's inclusive time. The
#: warning-area and snapshot rows are partly inside the sensor-tick and platform rows (the
#: platform draws a warning's area when it raises or updates one).
BUCKETS = [
    ("forecasts (plume copies run 15 min ahead)", ("kernel.py", "forecast_clock")),
    ("warning areas (plume footprints)", ("kernel.py", "__call__")),
    ("render snapshot (5 m field; unused by studies)", ("kernel.py", "take_snapshot")),
    ("field recorder (grid sampling)", ("metrics.py", "record")),
    ("sensor ticks (sampling, measurement, engine)", ("kernel.py", "sensor_clock")),
    ("physics clock (plume stepping)", ("kernel.py", "physics_clock")),
    ("platform clock (situation refresh)", ("kernel.py", "platform_clock")),
    ("prepare (scenario, twin, sensors, rulebook)", ("runner.py", "prepare_member")),
]


def throughput(study_path: Path, samples: int, workers: int) -> tuple[int, float]:
    study = load_study(study_path, samples=samples)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pool = local_executor(workers)
        try:
            out = run_study(study, Path(tmp) / "study", pool, workers)
        finally:
            pool.shutdown()
        wall = time.perf_counter() - t0
    return len(out.computed), wall


def profile(study_path: Path, n: int) -> tuple[float, list[tuple[str, float]]]:
    """Seconds per member and the split by component over ``n`` members (after a warm-up)."""
    members = plan_members(load_study(study_path, samples=max(n, 2)))
    with tempfile.TemporaryDirectory() as tmp:
        run_member(members[-1], tmp)  # warm-up: imports, numba cache, exposure index
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for m in members[:n]:
            run_member(m, tmp)
        prof.disable()
        wall = time.perf_counter() - t0
    stats = pstats.Stats(prof).stats
    total = {}
    for label, (file, func) in BUCKETS:
        total[label] = sum(v[3] for (f, _line, name), v in stats.items()
                           if f.endswith(file) and name == func)
    rows = [(label, t / n) for label, t in total.items()]
    top = ("forecasts", "field", "sensor", "physics", "platform", "prepare")
    rows.append(("other (archive, run end, metrics, bookkeeping)",
                 max(0.0, wall / n - sum(t for label, t in rows if label.startswith(top)))))
    return wall / n, rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=10, help="members per variant")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile", type=int, default=4, help="members to profile (0: skip)")
    ap.add_argument("--study", type=Path, default=STUDY,
                    help="study file (default: the worked example; "
                         "benchmarks/perf/study_demo_scenario.yaml is the demo scenario as is)")
    args = ap.parse_args()
    print(machine_line(f"study {args.study.name}"))
    n, wall = throughput(args.study, args.samples, args.workers)
    print(f"study throughput: {n} members in {wall:.1f} s on {args.workers} process(es) = "
          f"{n / wall * 60:.1f} members/min")
    if args.profile:
        per, rows = profile(args.study, args.profile)
        print(f"one member in one process: {per:.2f} s (profiled; profiling adds ~10 %)")
        for label, t in rows:
            print(f"  {label:48s} {t:6.2f} s  {100 * t / per:5.1f} %")


if __name__ == "__main__":
    main()
