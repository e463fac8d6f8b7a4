"""Run every physics validation case and print one table (markdown).

Each module here named ``*_validation.py`` exposes ``run() -> list[dict]`` with keys
engine, case, metric, value, criterion, passed. Usage:

    python benchmarks/validation/run_all.py [--out benchmarks/validation/TABLE.md]

A row with ``passed`` None is *skipped* (its reference data, ``../shared``, is absent): shown
as such and not counted as a pass or a failure. A failing row listed in
``known_failures.yaml`` is a *known failure*: shown as such, and it fails the run only when its
value is worse than when it was listed. Exit code 1 if any other case fails its criterion.

``TABLE.md`` (tracked) holds the figures only; how long each case took goes to the untracked
``out/WALL_TIMES.md``, so a re-run with the same results leaves the tracked table unchanged.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
KNOWN_FAILURES = HERE / "known_failures.yaml"


def row(engine: str, case: str, metric: str, value, criterion: str, passed,
        wall_s: float | None = None) -> dict:
    """One row of the table, as every ``*_validation.py`` builds it: ``value`` a number
    (stored as a Python float) or a text such as ``"n/a"``; ``passed`` None for a skipped
    row, else a bool; ``wall_s`` how long the case took (s; reported apart, untracked)."""
    return {"engine": engine, "case": case, "metric": metric,
            "value": value if isinstance(value, str) else float(value),
            "criterion": criterion, "passed": None if passed is None else bool(passed),
            "wall_s": wall_s}


def load_known_failures(path: Path = KNOWN_FAILURES) -> dict[tuple[str, str], dict]:
    """The documented known failures by (engine, metric)."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    out = {}
    for k, e in enumerate(entries):
        missing = {"engine", "metric", "listed_value", "worse", "reason"} - set(e)
        if missing or e["worse"] not in ("above", "below"):
            raise ValueError(f"{path}: entry {k}: needs engine, metric, listed_value, reason "
                             f"and worse: above|below (missing {sorted(missing)})")
        out[(e["engine"], e["metric"])] = e
    return out


def judge(rows: list[dict], known: dict[tuple[str, str], dict]) -> list[dict]:
    """Each row with its ``status``: passed, skipped, failed, known (a listed failure no
    worse than listed), worse (a listed failure that got worse: fails) or fixed (a listed
    failure that now passes: take it off the list)."""
    out = []
    for r in rows:
        entry = known.get((r["engine"], r["metric"]))
        if r["passed"] is None:
            status = "skipped"
        elif entry is None:
            status = "passed" if r["passed"] else "failed"
        elif r["passed"]:
            status = "fixed"
        else:
            listed, value = float(entry["listed_value"]), float(r["value"])
            worse = value > listed if entry["worse"] == "above" else value < listed
            status = "worse" if worse else "known"
        out.append({**r, "status": status, "listed_value": entry and entry["listed_value"]})
    return out


def collect() -> list[dict]:
    rows: list[dict] = []
    for path in sorted(HERE.glob("*_validation.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.run())
    return rows


def _verdict(r: dict) -> str:
    status = r.get("status")
    if status == "known":
        return f"known failure (listed at {r['listed_value']:.4g}; not worse)"
    if status == "worse":
        return f"**NO** (known failure, worse than listed {r['listed_value']:.4g})"
    if status == "fixed":
        return "yes (was a known failure: take it off known_failures.yaml)"
    passed = r["passed"]
    return "skipped" if passed is None else ("yes" if passed else "**NO**")


def to_markdown(rows: list[dict]) -> str:
    lines = ["| engine | case | metric | value | criterion | pass |", "|---|---|---|---|---|---|"]
    for r in rows:
        value = r["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {r['engine']} | {r['case']} | {r['metric']} | {text} | "
                     f"{r['criterion']} | {_verdict(r)} |")
    return "\n".join(lines)


def counts_line(judged: list[dict]) -> str:
    """``N passed, N failed, N known failures, N skipped``."""
    n = {s: sum(r["status"] == s for r in judged)
         for s in ("passed", "fixed", "failed", "worse", "known", "skipped")}
    return (f"{n['passed'] + n['fixed']} passed, {n['failed'] + n['worse']} failed, "
            f"{n['known']} known failure(s), {n['skipped']} skipped")


def wall_times(rows: list[dict]) -> str:
    """How long each case took (one line per case), for the untracked out/WALL_TIMES.md."""
    seen: dict[tuple[str, str], float] = {}
    for r in rows:
        if r.get("wall_s") is not None:
            seen.setdefault((r["engine"], r["case"]), r["wall_s"])
    lines = ["| engine | case | wall time (s) |", "|---|---|---|"]
    lines += [f"| {e} | {c} | {w:.1f} |" for (e, c), w in seen.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "TABLE.md")
    parser.add_argument("--wall-times", type=Path, default=HERE / "out" / "WALL_TIMES.md")
    args = parser.parse_args()
    judged = judge(collect(), load_known_failures())
    table = to_markdown(judged)
    print(table)
    counts = counts_line(judged)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Validation table\n\nWritten by `make validate` "
                        f"(benchmarks/validation/run_all.py): {counts}. Known failures are "
                        "listed, with why, in `known_failures.yaml`; wall times are in the "
                        f"untracked `out/WALL_TIMES.md`.\n\n{table}\n", encoding="utf-8")
    args.wall_times.parent.mkdir(parents=True, exist_ok=True)
    args.wall_times.write_text(f"# Validation wall times\n\n{wall_times(judged)}\n",
                               encoding="utf-8")
    print(f"\n{counts}", file=sys.stderr)
    for r in judged:
        if r["status"] == "fixed":
            print(f"note: {r['engine']} / {r['metric']} passes now: take it off "
                  "known_failures.yaml", file=sys.stderr)
    return 1 if any(r["status"] in ("failed", "worse") for r in judged) else 0


if __name__ == "__main__":
    sys.exit(main())
