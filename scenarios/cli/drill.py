"""``citytwin drill run|report``: run a drill, score it into the after-action report, print it."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from citytwin.scenarios.drill.director import DrillRun, run_drill
from citytwin.scenarios.drill.plan import load_plan, parse_plan
from citytwin.scenarios.run.archive_reader import read_manifest
from citytwin.scenarios.spec.scenario import clock_text
from citytwin.twin.errors import InputError
from citytwin.viewer.after_action import write_after_action
from citytwin.viewer.html import run_status_text

#: Timeline entries printed after a drill (players' view of what happened).
SHOWN_KINDS = ("inject", "action", "action_refused", "warning_raised", "work_order_escalated",
               "contingency_skipped", "measurement")


@dataclass
class DrillResult(DrillRun):
    """A scored drill: the run and its after-action report (data and files)."""

    aar: dict
    html_path: Path
    json_path: Path


def run_scored_drill(plan_path: str | Path, out_dir: str | Path, *,
                     out: TextIO | None = None, quiet: bool = False,
                     **options: Any) -> DrillResult:
    """``run_drill`` (``options``: players, overwrite, speed, real_time, paused,
    console_input), then the after-action report in the run folder; unless ``quiet``, the
    drill's timeline, the scores and where everything is are printed to ``out``."""
    out = out or sys.stdout

    def write(line: str) -> None:
        if not quiet:
            print(line, file=out, flush=True)

    run = run_drill(plan_path, out_dir, out=out, quiet=quiet, **options)
    html_path, json_path, aar = write_after_action(run.archive_path, run.plan, run.run_dir)
    for t_s, kind, message, _ in sorted(run.result.timeline, key=lambda e: e[0]):
        if kind in SHOWN_KINDS:
            write(f"  {clock_text(t_s)}  {message}")
    print_summary(aar, write)
    write(f"CAP 1.2: {len(run.result.cap_files)} messages in {run.run_dir / 'cap'} "
          "(status Exercise)")
    write(f"After-action report: {html_path} (data: {json_path})")
    write(f"Archive: {run.archive_path}")
    return DrillResult(**vars(run), aar=aar, html_path=html_path, json_path=json_path)


def print_summary(aar: dict, write: Callable[[str], None]) -> None:
    """Expected actions and objective ratings, as text; first, a line saying so when the
    drill was aborted or did not finish (``run_status_text``)."""
    note = run_status_text(aar)
    if note:
        write(note)
    write("\nExpected actions:")
    width = max((len(o["ref"]) for o in aar["expected"]), default=0)
    for o in aar["expected"]:
        delay = "" if o["delay_s"] is None else f", took {o['delay_s']:g} s"
        what = f"{o['action']} {o['target'] or '(any target)'}"
        write(f"  {o['ref']:<{width}}  {o['outcome'].upper():<6} {what} "
              f"(within {o['within_s']:g} s{delay}) [{o['objective']}]")
    write("Objective ratings:")
    for r in aar["objectives"]:
        write(f"  {r['id']}: {r['rating']} — {r['rating_text']} ({r['title']})")


def report_from_run_dir(path: str | Path,
                        plan_path: str | Path | None = None) -> tuple[Path, Path, dict]:
    """Rewrite the after-action report of a drill run folder (or of its archive)."""
    path = Path(path)
    run_dir = path.parent if path.suffix == ".sqlite" else path
    if plan_path is not None:
        plan = load_plan(plan_path).plan
    else:
        saved = run_dir / "drill_plan.json"
        if not saved.exists():
            raise InputError(str(run_dir), "no drill_plan.json here; give --plan PLAN.yaml",
                             field="--plan")
        plan = parse_plan(json.loads(saved.read_text(encoding="utf-8"))["plan"], str(saved))
    return write_after_action(run_dir / "archive.sqlite", plan, run_dir)


def cmd_drill_run(args: argparse.Namespace) -> int:
    if args.speed is not None and not args.speed > 0:
        raise InputError("drill run", f"--speed must be > 0, got {args.speed:g}",
                         field="--speed")
    out = Path(args.out) if args.out else Path("runs") / Path(args.plan).stem
    try:
        run_scored_drill(args.plan, out, players=args.players, overwrite=args.overwrite,
                         speed=args.speed, real_time=args.real_time,
                         paused=True if args.paused else None, quiet=args.quiet)
    except KeyboardInterrupt:
        print(f"drill interrupted{_aborted_hint(out)}", file=sys.stderr)
        return 130
    except (InputError, FileExistsError):
        raise  # refused before it started: nothing to score
    except Exception as exc:
        print(f"error: drill aborted by {type(exc).__name__}: {exc}{_aborted_hint(out)}",
              file=sys.stderr)
        raise
    return 0


def _aborted_hint(run_dir: Path) -> str:
    """Where the aborted drill's archive is and how to score the part that ran ('' when
    the drill did not get as far as an archive marked aborted)."""
    try:
        status = read_manifest(run_dir / "archive.sqlite").get("status")
    except Exception:  # noqa: BLE001 — no archive, or not a readable one: no hint
        return ""
    if status != "aborted":
        return ""
    return (f"; the archive {run_dir / 'archive.sqlite'} is marked aborted — "
            f"'citytwin drill report {run_dir}' scores the part that ran")


def cmd_drill_report(args: argparse.Namespace) -> int:
    html_path, json_path, aar = report_from_run_dir(args.run, args.plan)
    print_summary(aar, print)
    print(f"After-action report: {html_path} (data: {json_path})")
    return 0


def add_drill_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``citytwin drill run|report`` on the top-level subparsers ``sub``."""
    d = sub.add_parser("drill", help="run an exercise plan (MSEL) with players; after-action "
                                     "report", description="Drill mode: timed injects, live "
                                     "or scripted players, scored after-action report.")
    dsub = d.add_subparsers(dest="drill_command", required=True, metavar="SUBCOMMAND")
    r = dsub.add_parser("run", help="run a drill plan",
                        description="Run a drill plan. Without --players the drill is live: "
                                    "type commands (help lists them) while it runs.")
    r.add_argument("plan", help="drill plan YAML")
    r.add_argument("--players", help="scripted player file (YAML list); omit for a live drill")
    r.add_argument("--out", help="run folder (default runs/<plan name>)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    r.add_argument("--speed", type=float, metavar="N", help="run ×N real time")
    r.add_argument("--real-time", action="store_true", help="run in real time")
    r.add_argument("--paused", action="store_true", help="start paused (live drills)")
    r.add_argument("--quiet", action="store_true", help="print nothing but errors")
    r.set_defaults(func=cmd_drill_run)
    p = dsub.add_parser("report", help="rewrite the after-action report of a drill run",
                        description="Score a drill run again and rewrite after_action.html "
                                    "and aar.json in its folder.")
    p.add_argument("run", help="drill run folder or its archive.sqlite")
    p.add_argument("--plan", help="drill plan YAML (default: the run's drill_plan.json)")
    p.set_defaults(func=cmd_drill_report)
