"""Run every physics validation case and print one table (markdown).

Each module here named ``*_validation.py`` exposes ``run() -> list[dict]`` with keys
engine, case, metric, value, criterion, passed. Usage:

    python benchmarks/validation/run_all.py [--out benchmarks/validation/TABLE.md]

A row with ``passed`` None is *skipped* (its reference data, ``../shared``, is absent): shown
as such and not counted as a pass or a failure. Exit code 1 if any case fails its criterion.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent


def row(engine: str, case: str, metric: str, value, criterion: str, passed) -> dict:
    """One row of the table, as every ``*_validation.py`` builds it: ``value`` a number
    (stored as a Python float) or a text such as ``"n/a"``; ``passed`` None for a skipped
    row, else a bool."""
    return {"engine": engine, "case": case, "metric": metric,
            "value": value if isinstance(value, str) else float(value),
            "criterion": criterion, "passed": None if passed is None else bool(passed)}


def collect() -> list[dict]:
    rows: list[dict] = []
    for path in sorted(HERE.glob("*_validation.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.run())
    return rows


def _verdict(passed: bool | None) -> str:
    return "skipped" if passed is None else ("yes" if passed else "**NO**")


def to_markdown(rows: list[dict]) -> str:
    lines = ["| engine | case | metric | value | criterion | pass |", "|---|---|---|---|---|---|"]
    for r in rows:
        value = r["value"]
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| {r['engine']} | {r['case']} | {r['metric']} | {text} | "
                     f"{r['criterion']} | {_verdict(r['passed'])} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "TABLE.md")
    args = parser.parse_args()
    rows = collect()
    table = to_markdown(rows)
    print(table)
    failed = [r for r in rows if r["passed"] is not None and not r["passed"]]
    skipped = [r for r in rows if r["passed"] is None]
    counts = (f"{len(rows) - len(failed) - len(skipped)} passed, {len(failed)} failed, "
              f"{len(skipped)} skipped")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(f"# Validation table\n\nWritten by `make validate` "
                        f"(benchmarks/validation/run_all.py) on {date.today().isoformat()}: "
                        f"{counts}.\n\n{table}\n", encoding="utf-8")
    print(f"\n{counts}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
