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


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc: the study's forkserver, resource tracker and
    workers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_study_leaves_no_worker_behind(tmp_path):
    """SIGKILL on `citytwin study run` (which cannot shut its pool down): its forkserver,
    resource tracker and workers end by themselves within seconds."""
    import time

    study = Path(str(resources.files("citytwin.scenarios").joinpath(
        "data/study_gas_leak.yaml")))
    cli = Path(sys.executable).with_name("citytwin")
    proc = subprocess.Popen([str(cli), "study", "run", str(study), "--out",
                             str(tmp_path / "study"), "--workers", "2"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        while line and "done" not in line:  # the first finished member: the pool is up
            line = proc.stderr.readline()
        assert "done" in line, "the study ended before it could be killed"
        below = _descendants(proc.pid)
        assert len(below) >= 2  # at least the forkserver and a worker
        proc.kill()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for _ in range(150):  # up to 15 s; each worker checks every second
        left = {p for p in below if _alive(p)}
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"processes left behind: {sorted(left)}"
