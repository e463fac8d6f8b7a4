"""``citytwin study run|report``: run or re-aggregate a study, print it, write its report."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from citytwin.scenarios.study.aggregate import aggregate
from citytwin.scenarios.study.executor import executor_for
from citytwin.scenarios.study.members import MemberSpec
from citytwin.scenarios.study.runner import StudyProgress, run_study
from citytwin.scenarios.study.spec import load_study
from citytwin.twin.errors import InputError
from citytwin.viewer.study_report import write_study_report


def add_study_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``citytwin study run|report`` on an argparse subparsers object."""
    s = sub.add_parser("study", help="what-if ensembles: many members, probability maps",
                       description="Run a study file (base scenario + variations + samples + "
                                   "metrics) as an ensemble, resumable, on local processes "
                                   "or a Dask cluster; aggregate into CSV, JSON, maps and an "
                                   "HTML report.")
    ssub = s.add_subparsers(dest="study_command", required=True, metavar="SUBCOMMAND")
    r = ssub.add_parser("run", help="run (or resume) a study",
                        description="Run every unfinished member of a study and aggregate. "
                                    "Re-running the same command resumes an interrupted "
                                    "study.")
    r.add_argument("study", help="study YAML file")
    r.add_argument("--out", help="study folder (default runs/<study name>)")
    r.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (e.g. tcp://10.0.0.5:8786): run members on "
                        "that cluster instead of local processes")
    r.add_argument("--samples", type=int, help="override the study's samples")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_study_run)
    p = ssub.add_parser("report", help="re-aggregate a study folder and write its report",
                        description="Aggregate the finished members of a study folder and "
                                    "write study_results.csv, summary.json, maps and "
                                    "study_report.html.")
    p.add_argument("folder", help="study folder")
    p.set_defaults(func=cmd_study_report)


def cmd_study_run(args: argparse.Namespace) -> int:
    study = load_study(Path(args.study), samples=args.samples)
    out = Path(args.out) if args.out else Path("runs") / study.spec.name
    n = study.member_count
    where = args.scheduler or f"{args.workers or os.cpu_count()} local process(es)"
    print(f"Study {study.spec.name}: {n} members ({len(study.variant_names)} variant(s)) on "
          f"{where} → {out}")
    wall0 = time.perf_counter()
    progress = StudyProgress()  # members done, elapsed and time left: the terminal only

    def show(k: int, total: int, m: MemberSpec) -> None:
        if not args.quiet:
            print(f"  {progress.line(k, total, m.member_id)}", file=sys.stderr, flush=True)

    try:
        with executor_for(args.workers, args.scheduler) as (executor, workers):
            outcome = run_study(study, out, executor, workers, progress=show)
    except KeyboardInterrupt:
        print(f"interrupted: finished members are kept in {out}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # members failed: the others are kept
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = write_study_report(out)
    print(f"{len(outcome.computed)} member(s) run, {len(outcome.reused)} reused; "
          f"{time.perf_counter() - wall0:.1f} s")
    _print_summary(outcome.summary)
    print(f"Results: {out / 'study_results.csv'}; summary: {out / 'summary.json'}")
    print(f"Report: {report}")
    return 0


def cmd_study_report(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    if not (folder / "study.json").exists():
        raise InputError(str(folder), "not a study folder (no study.json)")
    summary = aggregate(folder)
    _print_summary(summary)
    print(f"Report: {write_study_report(folder)}")
    return 0


def _print_summary(summary: dict) -> None:
    for name, v in summary.get("variants", {}).items():
        t = v["time_to_first_warning_s"]
        miss = v["missed_detection"]
        med = "—" if t["median"] is None else f"{t['median']:.0f} s"
        ci = ("" if miss["p"] is None else
              f"{miss['p']:.0%} [{miss['ci95'][0]:.0%}, {miss['ci95'][1]:.0%}]")
        print(f"  {name}: {v['members']} members; time to first warning median {med} "
              f"(5–95 %: {_fmt(t['p5'])}–{_fmt(t['p95'])}); P(missed detection) {ci or '—'}")
    for c in summary.get("comparisons", []):
        d = c["median_time_to_first_warning_diff_s"]
        pm = c["p_miss_diff"]
        print(f"  {c['variant']} − {c['reference']}: Δ median time to first warning "
              f"{_fmt(d['estimate'])} s [{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]; "
              f"Δ P(miss) {_fmt(pm['estimate'], '.2f')} [{_fmt(pm['ci95'][0], '.2f')}, "
              f"{_fmt(pm['ci95'][1], '.2f')}] (paired)")


def _fmt(v: Any, spec: str = ".0f") -> str:
    return "—" if v is None else format(v, spec)
