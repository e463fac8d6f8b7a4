"""The `citytwin` command line: demo, run, validate, twin build/info."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from importlib import resources
from pathlib import Path

from citytwin.twin.errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
#: 128 + SIGINT, as a shell reports an interrupted command
EXIT_INTERRUPTED = 130


def print_timeline(result, scenario, out=sys.stdout) -> None:
    """A readable timeline: simulated time, wall-clock time of the scenario, what happened;
    minor warning updates folded (``viewer.timeline.condense_timeline``: the archive keeps
    every line)."""
    from datetime import timedelta

    from citytwin.scenarios.spec.scenario import clock_text
    from citytwin.viewer.timeline import condense_timeline

    print(f"\nTimeline of '{scenario.name}' (start {scenario.start.isoformat()})", file=out)
    lines = condense_timeline(sorted(result.timeline, key=lambda e: e[0]), result.warnings)
    for line in lines:
        wall = (scenario.start + timedelta(seconds=line.t_s)).strftime("%H:%M:%S")
        print(f"  {clock_text(line.t_s)}  {wall}  {line.message}", file=out)
    folded = sum(line.folded for line in lines)
    if folded:
        print(f"  ({folded} minor warning update(s) folded; the archive's timeline has every "
              "line)", file=out)


def _progress_printer(stream=sys.stderr):
    from citytwin.scenarios.spec.scenario import clock_text

    wall0 = time.perf_counter()

    def show(t_s: float, duration_s: float, n_obs: int) -> None:
        wall = max(time.perf_counter() - wall0, 1e-9)
        print(f"  [{100 * t_s / duration_s:5.1f} %] simulated {clock_text(t_s, prefix='')} of "
              f"{clock_text(duration_s, prefix='')}, {t_s / wall:,.0f}× real time, "
              f"{n_obs / wall:,.0f} observations/s", file=stream, flush=True)

    return show


def run_scenario_file(path: Path, out_dir: Path, *, overwrite: bool, report: bool | None = None,
                      render: bool | None = None, quiet: bool = False):
    """Validate, prepare, simulate and write outputs for one scenario file."""
    from citytwin.alerting.cap import STATUS_BY_MODE
    from citytwin.scenarios.run.kernel import simulate
    from citytwin.scenarios.run.prepare import prepare
    from citytwin.scenarios.spec.scenario import load_scenario

    scenario = load_scenario(path)
    run = prepare(scenario, source=str(path), base_dir=path.parent)
    print(f"Twin {run.twin.name}: {len(run.twin.buildings)} buildings, population "
          f"{run.twin.population:,}; {len(run.network.table)} sensors; "
          f"{len(run.hazards)} hazard(s)")
    result = simulate(run, out_dir, overwrite=overwrite,
                      progress=None if quiet else _progress_printer())
    print_timeline(result, scenario)
    if report if report is not None else scenario.outputs.report:
        from citytwin.viewer.report import write_report

        path_html = write_report(result.archive_path, run.twin, out_dir / "report.html")
        print(f"\nReport: {path_html}")
    if render if render is not None else scenario.outputs.render:
        from citytwin.viewer.render import render_run

        png = render_run(run.twin, out_dir / "hazard_field.npz", out_dir / "render.png")
        print(f"Render: {png}")
    if scenario.outputs.dossiers:
        from citytwin.viewer.dossier import build_dossiers

        dossiers = build_dossiers(result.archive_path, out_dir / "dossiers", twin=run.twin)
        print(f"Dossiers: {len(dossiers)} files in {out_dir / 'dossiers'}")
    if result.cap_files:
        print(f"CAP 1.2: {len(result.cap_files)} messages in {out_dir / 'cap'} "
              f"(status {STATUS_BY_MODE[scenario.mode]})")
    print(f"Work orders: {result.n_work_order_events} events, {result.n_escalations} "
          "escalation(s)")
    print(f"Archive: {result.archive_path} ({result.n_observations:,} observations, "
          f"{result.n_alarms} alarm changes, {len(result.warnings)} warning events; "
          f"run took {result.wall_s:.1f} s)")
    return result


def cmd_demo(args) -> int:
    path = Path(str(resources.files("citytwin.scenarios").joinpath("data/gas_leak_drill.yaml")))
    print("citytwin demo: gas-leak drill on the synthetic city\n")
    run_scenario_file(path, Path(args.out), overwrite=True, quiet=args.quiet)
    return EXIT_OK


def cmd_run(args) -> int:
    out = Path(args.out) if args.out else Path("runs") / Path(args.scenario).stem
    run_scenario_file(Path(args.scenario), out, overwrite=args.overwrite, quiet=args.quiet,
                      report=False if args.no_report else None,
                      render=False if args.no_render else None)
    return EXIT_OK


def cmd_twin_build(args) -> int:
    from citytwin.twin.realcity import build_twin_from_files
    from citytwin.twin.store import save_twin
    from citytwin.twin.synthetic import synthetic_city

    if args.synthetic is not None:
        size = float(args.size) if args.size.replace(".", "", 1).isdigit() else args.size
        twin, warnings = synthetic_city(args.synthetic, size), []
    else:
        if not args.dem:
            raise InputError("twin build", "give --dem (or --synthetic SEED)", field="--dem")
        twin, warnings = build_twin_from_files(
            args.dem, buildings_path=args.buildings, dsm_path=args.dsm, crs=args.crs,
            name=args.name, height_column=args.height_column)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    folder = save_twin(twin, args.out)
    print(f"Twin '{twin.name}' saved to {folder}")
    print(json.dumps(twin.summary(), indent=2))
    return EXIT_OK


def cmd_twin_info(args) -> int:
    from citytwin.twin.store import load_twin

    twin = load_twin(args.folder)
    print(json.dumps(twin.summary(), indent=2))
    return EXIT_OK


def cmd_report(args) -> int:
    from citytwin.viewer.operating_report import operating_report, report_html

    out = Path(args.out)
    report = operating_report(args.archives, period=args.period, start=args.start,
                              mode=args.mode)
    for note in report["skipped"]:
        print(f"note: {note['path']} left out: {note['reason']}", file=sys.stderr)
    modes = {m: sum(a["mode"] == m for a in report["archives"]) for m in report["modes"]}
    print(f"runs: {len(report['archives'])} ("
          + (", ".join(f"{n} {m}" for m, n in modes.items()) or "none") + ")")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(report), encoding="utf-8")
    t = report["totals"]
    ttw = t["time_to_first_warning_s"]["median"]
    print(f"warnings: {t['warnings']['count']} (by level {t['warnings']['by_max_level']}); "
          f"median time to first warning: {'—' if ttw is None else f'{ttw:g} s'}")
    print(f"work orders: {t['work_orders']['count']}, assigned {t['work_orders']['assigned']}, "
          f"closed {t['work_orders']['closed']}; overdue: {t['overdue']['count']}; "
          f"escalations: {t['escalations']['work_order']}")

    def pct(rate: float | None, digits: int) -> str:
        return "—" if rate is None else f"{rate:.{digits}%}"

    print(f"cancelled warnings: {t['cancelled']['count']}; false-alarm rate: "
          f"{pct(t['false_alarms']['rate'], 0)}; push delivery: {pct(t['pushes']['rate'], 1)}; "
          f"self-check findings: {t['self_checks']['raised']}")
    print(f"Operating report: {out}")
    return EXIT_OK


def cmd_dossier(args) -> int:
    from citytwin.viewer.dossier import build_dossiers

    paths = build_dossiers(args.archive, Path(args.out))
    print(f"{len(paths) // 2} dossier(s) in {args.out}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="citytwin",
        description="citytwin: a city digital twin for urban safety — hazards, sensor "
                    "networks and the warning logic that runs on live data.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="run the gas-leak drill on the synthetic city",
                       description="Build the synthetic city, run the gas-leak drill scenario "
                                   "and write a run folder with the archive, an HTML report "
                                   "and a 3D render.")
    d.add_argument("--out", default="runs/demo", help="run folder (replaced if it exists)")
    d.add_argument("--quiet", action="store_true", help="no progress lines")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run a scenario file",
                       description="Validate and run a scenario YAML into a run folder.")
    r.add_argument("scenario", help="scenario YAML file")
    r.add_argument("--out", help="run folder (default runs/<scenario name>)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing run folder")
    r.add_argument("--no-report", action="store_true", help="skip the HTML report")
    r.add_argument("--no-render", action="store_true", help="skip the 3D render")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_run)

    from citytwin.scenarios.cli.validate import add_validate_command

    add_validate_command(sub)   # every file kind: scenario, drill plan, players, study, ...

    o = sub.add_parser("report", help="weekly/monthly operating report over run archives",
                       description="Counts of warnings by hazard and level, time to first "
                                   "warning, to assignment and to closure, overdue items, "
                                   "false-alarm rates, push delivery and self-checks, as HTML.")
    o.add_argument("archives", nargs="+",
                   help="archive.sqlite files or run folders (folders without an archive are "
                        "skipped; a run archived twice is counted once)")
    o.add_argument("--period", choices=["week", "month"], default="week")
    o.add_argument("--start", help="report only the week/month containing this date")
    o.add_argument("--mode", choices=["drill", "what-if", "replay"],
                   help="report only the runs of this mode (default: all, each mode also "
                        "counted apart)")
    o.add_argument("--out", default="operating_report.html", help="HTML file to write")
    o.set_defaults(func=cmd_report)

    ds = sub.add_parser("dossier", help="event dossiers (JSON + HTML) from a run archive",
                        description="One dossier per incident: abnormal data, alarms, level "
                                    "changes, pushes, work-order history and CAP messages.")
    ds.add_argument("archive", help="archive.sqlite or run folder")
    ds.add_argument("--out", default="dossiers", help="folder to write")
    ds.set_defaults(func=cmd_dossier)

    from citytwin.scenarios.cli.drill import add_drill_commands
    from citytwin.scenarios.cli.replay import add_replay_commands
    from citytwin.scenarios.cli.study import add_study_commands

    add_drill_commands(sub)
    add_study_commands(sub)
    add_replay_commands(sub)

    t = sub.add_parser("twin", help="build or inspect a twin", description="Twin commands.")
    tsub = t.add_subparsers(dest="twin_command", required=True, metavar="SUBCOMMAND")
    b = tsub.add_parser(
        "build", help="build a twin folder from files or the synthetic generator",
        description="Build a twin and save it as a folder (manifest + GeoPackage + GeoTIFF). "
                    "From real data: a DEM GeoTIFF, building footprints (Shapefile, GeoPackage "
                    "or GeoJSON) and optionally a DSM for heights (DSM − DEM), e.g.\n"
                    "  citytwin twin build --dem ../shared/realdata/gothenburg_kronenhuset/"
                    "DEM_KRbig.tif --dsm .../DSM_KRbig.tif --buildings .../buildings.shp "
                    "--out twins/gothenburg\n"
                    "Or synthetic: citytwin twin build --synthetic 7 --size small --out "
                    "twins/synthetic",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--dem", help="ground elevation GeoTIFF (projected CRS, metres)")
    b.add_argument("--dsm", help="surface model GeoTIFF (building heights = DSM − DEM; "
                                 "resampled to the DEM grid)")
    b.add_argument("--buildings", help="building footprints layer")
    b.add_argument("--height-column", help="footprint attribute with heights (m)")
    b.add_argument("--crs", help="CRS to use when a file has none / to reproject to")
    b.add_argument("--name", help="twin name")
    b.add_argument("--synthetic", type=int, metavar="SEED", help="build the synthetic city")
    b.add_argument("--size", default="small", help="synthetic size: tiny|small|medium|large "
                                                   "or an extent in metres")
    b.add_argument("--out", required=True, help="twin folder to write")
    b.set_defaults(func=cmd_twin_build)
    i = tsub.add_parser("info", help="summarise a twin folder", description="Print a summary.")
    i.add_argument("folder", help="twin folder")
    i.set_defaults(func=cmd_twin_info)
    return p


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interruption so a run marks its archive before it ends."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated("interrupted (SIGTERM)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: one line, not a traceback
        reason = str(exc) or "interrupted (Ctrl-C)"
        print(f"{reason}: a run in progress is marked 'interrupted' in its archive, which "
              "keeps every tick up to then", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
