"""``citytwin replay run|export``: replay an incident with counterfactuals, write the report."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from citytwin.scenarios.replay.counterfactual import Counterfactual
from citytwin.scenarios.replay.export import export_incident
from citytwin.scenarios.replay.incident import read_archive_incident, read_incident
from citytwin.scenarios.replay.investigation import plan_investigation
from citytwin.scenarios.run.run_files import check_out_dir, prepare_run_dir
from citytwin.twin.errors import InputError
from citytwin.viewer.investigation_report import write_investigation_report


def _xy(text: str, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(what, f"{text!r} is not x,y[,z] in metres") from None
    if len(vals) not in (2, 3) or not all(math.isfinite(v) for v in vals):
        raise InputError(what, f"{text!r} is not x,y[,z] in metres")
    return vals


def cmd_replay_run(args: argparse.Namespace) -> int:
    """`citytwin replay run`: replay, diff, counterfactuals, report.

    Every input is checked before the output folder is touched: the incident is read, the
    counterfactuals parsed and checked against the inventory, the rulebooks and the twin's
    terrain, the source fitted when a counterfactual needs it — only then is ``--out``
    cleared (``--overwrite``) and written.
    """
    out = Path(args.out) if args.out else Path("runs") / "replay"
    inputs = [args.source, args.inventory, args.warnings, args.work_orders, args.twin,
              args.rulebook]
    _check_out(out, inputs, args.overwrite)
    twin = None
    if args.twin is not None:  # loaded once: the inventory's CRS and the replay's twin
        from citytwin.twin.store import load_twin

        twin = load_twin(args.twin)
    inc = read_incident(args.source, inventory=args.inventory, warnings=args.warnings,
                        twin_crs=None if twin is None else twin.crs.to_string(),
                        work_orders=args.work_orders)
    cfs: list[Counterfactual] = []
    if args.rulebook:
        cfs.append(Counterfactual(f"rulebook {Path(args.rulebook).name}",
                                  rulebook=args.rulebook))
    if args.remove:
        ids = [s.strip() for s in args.remove.split(",") if s.strip()]
        cfs.append(Counterfactual(f"remove {', '.join(ids)}", remove=ids))
    if args.add:
        pts = [_xy(a, "--add") for a in args.add]
        cfs.append(Counterfactual("add " + "; ".join(",".join(f"{v:.10g}" for v in p)
                                                     for p in pts), add=pts))
    if args.move:
        moves = {}
        for m in args.move:
            sid, _, pos = m.partition("=")
            if not pos:
                raise InputError("--move", f"{m!r} is not ID=x,y")
            moves[sid] = _xy(pos, "--move")
        cfs.append(Counterfactual("move " + ", ".join(moves), move=moves))
    if args.combined and len(cfs) > 1:
        cfs.append(Counterfactual(
            "all together", rulebook=args.rulebook,
            remove=[c for cf in cfs for c in cf.remove],
            add=[p for cf in cfs for p in cf.add],
            move={k: v for cf in cfs for k, v in cf.move.items()}))
    wind = _xy(args.wind, "--wind")[:2] if args.wind else None
    plan = plan_investigation(inc, counterfactuals=cfs, twin_dir=args.twin,
                              with_model=False if args.no_model else None, wind=wind,
                              twin=twin)
    _fresh_out(out, inputs, args.overwrite)
    inv = plan.run(out)
    html = write_investigation_report(inv, out / "investigation.html")
    print(inv.text_summary())
    print(f"\nInvestigation report: {html}")
    return 0


def _check_out(out: Path, inputs: list[str | None], overwrite: bool) -> None:
    """Refuse (touching nothing) an output folder holding an input, or a non-empty one
    without ``overwrite``."""
    for given in filter(None, inputs):
        if given == "default":
            continue
        path = Path(given).resolve()
        if path == out.resolve() or out.resolve() in path.parents:
            raise InputError("--out", f"{out} holds the input {given}; choose another folder")
    check_out_dir(out, overwrite)


def _fresh_out(out: Path, inputs: list[str | None], overwrite: bool) -> None:
    """An empty output folder: refuse a non-empty one unless ``overwrite`` (then clear it),
    and never one holding an input. Call it once every input has been checked."""
    _check_out(out, inputs, overwrite)
    prepare_run_dir(out, overwrite)


def cmd_replay_export(args: argparse.Namespace) -> int:
    """`citytwin replay export`: a run archive as an incident folder."""
    _check_out(Path(args.out), [args.archive], args.overwrite)
    inc = read_archive_incident(args.archive)  # a bad archive leaves --out untouched
    _fresh_out(Path(args.out), [args.archive], args.overwrite)
    out = export_incident(args.archive, args.out, args.format, incident=inc)
    files = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    print(f"Incident folder {out}: {', '.join(files)}")
    return 0


def add_replay_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``citytwin replay run|export`` on the top-level subparsers."""
    p = sub.add_parser("replay", help="replay an incident through the warning engine",
                       description="Replay archived observations on logical time, diff the "
                                   "warnings against those of the time, run counterfactuals.")
    rsub = p.add_subparsers(dest="replay_command", required=True, metavar="SUBCOMMAND")
    r = rsub.add_parser(
        "run", help="replay an incident, diff its warnings, run counterfactuals",
        description="SOURCE: a citytwin archive.sqlite / run folder, an incident folder "
                    "(replay export), or an observations file (with --inventory and --twin). "
                    "Each of --rulebook, --remove, --add, --move is one counterfactual "
                    "(--combined adds one with all of them), reported side by side with the "
                    "replay in OUT/investigation.html.")
    r.add_argument("source", help="archive.sqlite, run folder, incident folder or file")
    r.add_argument("--inventory", help="sensor inventory (GeoJSON or GeoPackage)")
    r.add_argument("--warnings", help="warnings issued at the time (CSV/JSONL or archive)")
    r.add_argument("--work-orders", help="work-order events of the time (CSV/JSONL/Parquet "
                                         "or archive): shown beside the replay's")
    r.add_argument("--twin", help="twin folder (external incidents; overrides a run's twin)")
    r.add_argument("--rulebook", help="counterfactual rulebook YAML (or 'default')")
    r.add_argument("--no-model", action="store_true",
                   help="do not rebuild the scenario's hazard model (buffer areas only)")
    r.add_argument("--remove", help="counterfactual: sensors removed, S1,S2")
    r.add_argument("--add", action="append", metavar="x,y[,z]",
                   help="counterfactual: a sensor added here (fitted model, repeatable)")
    r.add_argument("--move", action="append", metavar="ID=x,y",
                   help="counterfactual: a sensor moved here (fitted model, repeatable)")
    r.add_argument("--combined", action="store_true",
                   help="also run one counterfactual with all the changes together")
    r.add_argument("--wind", metavar="SPEED,FROM_DEG",
                   help="wind for the source fit when the incident has no weather")
    r.add_argument("--out", help="output folder (default runs/replay)")
    r.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    r.set_defaults(func=cmd_replay_run)
    e = rsub.add_parser("export", help="write a run archive as an incident folder",
                        description="observations.<format> + sensors.geojson + warnings.csv "
                                    "+ work_orders.csv + incident.json from a citytwin "
                                    "archive.")
    e.add_argument("archive", help="archive.sqlite or run folder")
    e.add_argument("--out", required=True, help="incident folder to write")
    e.add_argument("--format", choices=["parquet", "csv", "jsonl"], default="parquet")
    e.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    e.set_defaults(func=cmd_replay_export)
