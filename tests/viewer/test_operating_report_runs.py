"""The operating report over a runs/ folder as users glob it: non-run folders, the same run
archived twice, and drills / what-ifs / replays counted apart (issue 11, item 6)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from citytwin.scenarios.cli.main import main
from citytwin.viewer.operating_report import operating_report, write_operating_report
from tests.viewer.test_dossier import make_archive


def _set_mode(path: Path, mode: str) -> None:
    with closing(sqlite3.connect(path)) as db:
        (text,) = db.execute("SELECT value FROM manifest WHERE key = 'scenario'").fetchone()
        scenario = {**json.loads(text), "mode": mode}
        db.execute("UPDATE manifest SET value = ? WHERE key = 'scenario'",
                   (json.dumps(scenario, sort_keys=True),))
        db.execute("INSERT OR REPLACE INTO manifest VALUES ('mode', ?)", (json.dumps(mode),))
        db.commit()


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """runs/: a drill, the same drill archived again, a replay, an exported incident folder."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("drill", "replay"):
        (root / name).mkdir()
    make_archive(root / "drill" / "archive.sqlite", run_id="drill-0001")
    shutil.copytree(root / "drill", root / "drill_again")
    make_archive(root / "replay" / "archive.sqlite", run_id="replay-0001")
    _set_mode(root / "replay" / "archive.sqlite", "replay")
    (root / "incident").mkdir()
    (root / "incident" / "incident.json").write_text("{}\n")
    return root


def _folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_non_run_folders_are_skipped_and_each_run_counts_once(runs):
    rep = operating_report(_folders(runs))
    assert sorted(a["run_id"] for a in rep["archives"]) == ["drill-0001", "replay-0001"]
    reasons = {Path(s["path"]).parts[-1 if "incident" in s["path"] else -2]: s["reason"]
               for s in rep["skipped"]}
    assert set(reasons) == {"incident", "drill_again"}
    assert "without archive.sqlite" in reasons["incident"]
    assert "same run id" in reasons["drill_again"]
    one = operating_report([runs / "drill"])["totals"]["warnings"]["count"]
    assert rep["totals"]["warnings"]["count"] == 2 * one  # the drill and the replay, once each


def test_modes_are_counted_apart_and_can_be_filtered(runs, tmp_path):
    rep = operating_report(_folders(runs))
    assert rep["modes"] == ["drill", "replay"]
    one = operating_report([runs / "drill"])["totals"]["warnings"]["count"]
    assert {m: v["warnings"]["count"] for m, v in rep["by_mode"].items()} == {
        "drill": one, "replay": one}
    replays = operating_report(_folders(runs), mode="replay")
    assert [a["run_id"] for a in replays["archives"]] == ["replay-0001"]
    assert replays["totals"]["warnings"]["count"] == one
    text = write_operating_report(_folders(runs), tmp_path / "op.html").read_text()
    assert "<h2>By mode</h2>" in text and "Left out" in text


def test_the_readme_command_runs_over_a_runs_folder(runs, tmp_path, capsys):
    out = tmp_path / "week.html"
    args = [str(p) for p in _folders(runs)]
    assert main(["report", *args, "--period", "week", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "runs: 2 (1 drill, 1 replay)" in captured.out
    assert "incident left out" in captured.err
    assert main(["report", *args, "--mode", "drill", "--out", str(out)]) == 0
    assert "runs: 1 (1 drill)" in capsys.readouterr().out


def test_a_run_that_did_not_complete_is_left_out_of_the_figures(runs, tmp_path):
    """An interrupted or killed run is listed with why and counts in no headline figure
    (issue 12: a partial run turned a 14 % false-alarm rate into 100 %)."""
    partial = tmp_path / "partial"
    partial.mkdir()
    make_archive(partial / "archive.sqlite", run_id="drill-0002")
    with closing(sqlite3.connect(partial / "archive.sqlite")) as db:
        db.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?)",
                       [("status", '"interrupted"'), ("abort_reason", '"interrupted (SIGTERM)"'),
                        ("aborted_at_s", "600.0")])
        db.commit()
    rep = operating_report([runs / "drill", partial])
    assert [a["run_id"] for a in rep["archives"]] == ["drill-0001"]
    [left] = rep["skipped"]
    assert "did not complete (status interrupted)" in left["reason"]
    assert "RUN INTERRUPTED at T+00:10:00" in left["reason"]
    assert rep["totals"] == operating_report([runs / "drill"])["totals"]
