"""A run stopped by SIGINT, SIGTERM or SIGKILL (issue 12, item 2): the archive stays
readable with every tick up to then; SIGINT and SIGTERM mark it 'interrupted' with one line
to the user (exit 130, no traceback); a SIGKILLed run stays 'running'. Every report says the
run did not complete, and a replay stops at the last complete tick instead of reading the
silence after it as sensors going offline."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from citytwin.scenarios.replay.incident import read_archive_incident
from citytwin.scenarios.run.archive_reader import read_manifest
from citytwin.viewer.html import run_status_text

RAIN = Path(str(resources.files("citytwin.scenarios").joinpath(
    "data/rainstorm_waterlogging.yaml")))


@pytest.mark.parametrize(("sig", "status", "words"), [
    (signal.SIGINT, "interrupted", "RUN INTERRUPTED"),
    (signal.SIGTERM, "interrupted", "RUN INTERRUPTED"),
    (signal.SIGKILL, "running", "RUN INCOMPLETE"),
])
def test_a_signalled_run_leaves_a_readable_archive_that_says_so(tmp_path, sig, status, words):
    out = tmp_path / "run"
    cli = Path(sys.executable).with_name("citytwin")
    proc = subprocess.Popen([str(cli), "run", str(RAIN), "--out", str(out), "--no-render"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()  # the first progress line: the run is under way
        while line and "simulated" not in line:
            line = proc.stderr.readline()
        assert "simulated" in line, "the run ended before it could be signalled"
        proc.send_signal(sig)
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not Path(f"/proc/{proc.pid}").exists()  # no orphan left behind
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 130 and "Traceback" not in err
        assert "a run in progress is marked 'interrupted'" in err
    archive = out / "archive.sqlite"
    with sqlite3.connect(archive) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        last = db.execute("SELECT MAX(time_s) FROM observations").fetchone()[0]
    manifest = read_manifest(archive)
    assert manifest["status"] == status
    if status == "interrupted":
        reason = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
        assert reason in manifest["abort_reason"]
    assert run_status_text(manifest).startswith(words)
    inc = read_archive_incident(archive)
    assert last is not None and inc.manifest["replayed_to_s"] == pytest.approx(last)
    assert inc.manifest["scenario"]["duration_s"] == pytest.approx(last) and last < 10800
