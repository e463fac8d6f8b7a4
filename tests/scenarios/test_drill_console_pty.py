"""The drill console at a real terminal: ``citytwin drill run`` under a pseudo-terminal, every
console command typed with good and bad arguments (a bad line gets a one-line answer and the
drill goes on to exit 0, status completed); and a drill killed by a fatal error is archived
``aborted`` and its after-action report says so first."""

from __future__ import annotations

import json
import os
import pty
import re
import sqlite3
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from citytwin.scenarios.cli.main import main
from citytwin.scenarios.run.archive_reader import read_manifest, read_table

from .test_drill import PLAYERS_GOOD, base_plan, write_yaml

TIMEOUT_S = 30.0  # generous: only a broken drill ever waits this long


class Terminal:
    """A child process on a pseudo-terminal (stdin, stdout and stderr): ``type`` a line,
    ``expect`` a pattern in what it prints next."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO            # the test reads answers, not its own typing
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     env=env, close_fds=True)
        os.close(slave)
        self.master = master
        self.text = ""
        self.pos = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:                  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            with self._lock:
                self.text += chunk.decode("utf-8", "replace").replace("\r\n", "\n")

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode("utf-8"))

    def expect(self, pattern: str) -> re.Match:
        """Wait for ``pattern`` (a regex) after what was matched before; consume it."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            with self._lock:
                m = re.compile(pattern).search(self.text, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                if self.proc.poll() is not None and not self._reader.is_alive():
                    break
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)
        pytest.fail(f"no {pattern!r} in the drill's output after position {self.pos}:\n"
                    f"{self.text[self.pos:][-3000:]}")

    def ask(self, line: str, answer: str) -> str:
        """Type ``line``; the console's next answer line must be ``answer`` (a regex for the
        whole line; the drill's feed lines in between are skipped)."""
        self.type(line)
        got = self.expect(ANSWER).group(0)
        assert re.fullmatch(answer, got), f"{line!r} answered {got!r}"
        return got

    def close(self, wait: bool = True) -> int | None:
        """The exit code (``wait`` False: kill the child at once, e.g. after a failure)."""
        try:
            return self.proc.wait(timeout=TIMEOUT_S) if wait else None
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self._reader.join(timeout=5)
            os.close(self.master)


def _q(text: str) -> str:
    return re.escape(text)


T = r"\[T\+\d\d:\d\d:\d\d\] "   # the drill clock at the start of a console answer
#: A console answer line (not the drill's feed): an error, or what a command did.
ANSWER = rf"(?m)^(\? |{T}(ok: |refused: |speed ×|resumed|paused —|players stop|of T\+|\? )).*$"


#: (typed line, whole answer) while paused at T+0, before any warning: every control command
#: and every player command that needs no warning, with good and bad arguments.
BEFORE_THE_LEAK = [
    ("help me", _q("? help takes no arguments")),
    ("status now", _q("? status takes no arguments")),
    ("pause now", _q("? pause takes no arguments")),
    ("pause", _q("? already paused — 'resume' to continue")),
    ("resume 5", _q("? resume takes no arguments")),
    ("quit now", _q("? quit takes no arguments")),
    ("speed", _q("? speed takes one positive number, e.g. 'speed 60'")),
    ("speed fast", _q("? speed takes one positive number, e.g. 'speed 60'")),
    ("speed 0", _q("? speed takes one positive number, e.g. 'speed 60'")),
    ("speed 600 1", _q("? speed takes one positive number, e.g. 'speed 60'")),
    ("speed 120", T + _q("speed ×120")),       # time to type 'pause' after the warning
    ("panic W-0001", _q("? unknown command 'panic'; type 'help' for the commands")),
    ("acknowldge W-0001", _q("? unknown command 'acknowldge'; did you mean 'acknowledge'? "
                             "type 'help' for the commands")),
    ('cancel W-0001 note="faulty', _q("? cannot read the line: no closing quotation")),
    # the original crash: an unknown warning with a note is refused, the drill goes on
    ("cancel W-0002 note=faulty", T + _q("refused: cancel W-0002 — no warning 'W-0002' "
                                         "(known: none)")),
    ("ack {warning}", T + _q("? acknowledge {warning}: no warning to act on")),
    ("confirm W-0001", T + _q("refused: confirm W-0001 — no warning 'W-0001' (known: none)")),
    ("publish W-0001", T + _q("refused: publish W-0001 — no warning 'W-0001' (known: none)")),
    ("start WO-W-0001", T + _q("refused: start WO-W-0001 — no work order 'WO-W-0001' "
                               "(known: none)")),
    # evacuate: a place, a circle; wrong shapes, radius, arguments, place
    ("evacuate P-plaza by police note=\"gas smell reported\"",
     T + r"ok: evacuate P-plaza — evacuation of \d+ people .*"),
    ("evac 400850,3400450,150", T + r"ok: evacuate 400850,3400450,150 — evacuation of \d+ "
                                    r"people .*"),
    ("evacuate 1,2", _q("? evacuate takes a place id or 'x,y,radius_m', got '1,2'")),
    ("evacuate 1,2,0", _q("? evacuate: the radius must be > 0 m (and every number finite), "
                          "got '1,2,0'")),
    ("evacuate", _q("? evacuate needs a target")),
    ("evacuate P-plaza colour=red",
     _q("? evacuate takes no argument 'colour' (it takes: note)")),
    ("evacuate P-nowhere", T + _q("refused: evacuate P-nowhere — evacuate needs a place id "
                                  "or 'x,y,radius_m', got 'P-nowhere'")),
    ("evacuate P-plaza by", _q("? evacuate: 'by' needs the acting unit's name, e.g. 'by duty'")),
    # measure: positional and key=value quantity, delays, heights, wrong points and values
    ("measure 400929,3400429 ch4_lel_pct delay_s=60 by field_team_1",
     T + _q("ok: measure 400929,3400429 — field team sent, measuring ch4_lel_pct at T+60 s")),
    ("measure 400929,3400429 quantity=ch4_lel_pct height_m=0.5",
     T + _q("ok: measure 400929,3400429 — field team sent, measuring ch4_lel_pct at "
            "T+600 s")),
    ("measure P-plaza", _q("? measure takes a point 'x,y' (metres), got 'P-plaza'")),
    ("measure 1,2 delay_s=soon", _q("? measure delay_s must be a number, got 'soon'")),
    ("measure 1,2 delay_s=-5", _q("? measure delay_s must be a number ≥ 0, got '-5'")),
    ("measure 1,2 height_m=abc", _q("? measure height_m must be a number, got 'abc'")),
    ("measure 1,2 ch4_lel_pct quantity=x",
     _q("? measure: quantity given twice ('ch4_lel_pct' and quantity=x)")),
    ("measure 1,2 handler=x", _q("? measure takes no argument 'handler' "
                                 "(it takes: quantity, height_m, delay_s, note)")),
    ("measure 1,2 rain_mm", T + r"refused: measure 1,2 — no hazard of this run produces "
                                r"'rain_mm' \(known: .*\)"),
    ("measure 1,2 ch4_lel_pct extra by field_team_1",
     _q("? unexpected 'extra' after measure 1,2")),
    ("measure 1,2 by a by b", _q("? measure: 'by' given twice")),
]

#: (typed line, whole answer) paused after the leak's warning W-0001 and its work order:
#: every warning and work-order action, good and bad, the order through its whole life.
AFTER_THE_LEAK = [
    ('ack W-0001 by duty note="seen on the wall screen"', T + _q("ok: acknowledge W-0001 — done")),
    ("ack WO-W-0001", _q("? acknowledge takes a warning id (W-…), got 'WO-W-0001'")),
    ("ack W-0001 extra", _q("? unexpected 'extra' after acknowledge W-0001")),
    ("ack W-0001 delay_s=5", _q("? acknowledge takes no argument 'delay_s' (it takes: note)")),
    ("confirm W-0001 by duty", T + _q("ok: confirm W-0001 — done")),
    ("confirm W-9", T + _q("refused: confirm W-9 — no warning 'W-9' (known: W-0001") + ".*"),
    ("publish", _q("? publish needs a target")),
    ("publish P-plaza", _q("? publish takes a warning id (W-…), got 'P-plaza'")),
    ("publish W-0001 by press note=faulty", T + r"ok: publish W-0001 — CAP \S+"),
    ("cancel W-0001 handler=x", _q("? cancel takes no argument 'handler' (it takes: note)")),
    ("cancel W-0009 note=faulty", T + _q("refused: cancel W-0009 — no warning 'W-0009' "
                                         "(known: W-0001") + ".*"),
    ("assign WO-W-0001", _q("? assign needs a handler unit, e.g. 'assign WO-W-0001 "
                            "gas_company'")),
    ("assign W-0001 gas_company", _q("? assign takes a work order id (WO-…), got 'W-0001'")),
    ("assign WO-W-0001 gas_company handler=x",
     _q("? assign: handler given twice ('gas_company' and handler=x)")),
    ("assign WO-W-0001 handler= by dispatcher", _q("? assign handler needs a value")),
    ("close WO-W-0001", T + _q("refused: close WO-W-0001 — WO-W-0001: cannot close in state "
                               "'created' (allowed in ['reviewed'])")),
    ("assign WO-W-0001 gas_company by dispatcher", T + _q("ok: assign WO-W-0001 — done")),
    ("escalate W-0001", _q("? escalate takes a work order id (WO-…), got 'W-0001'")),
    ("escalate WO-W-0001 district_government",
     _q("? unexpected 'district_government' after escalate WO-W-0001")),
    ("escalate WO-W-0001 by duty note=\"needs the district\"",
     T + _q("ok: escalate WO-W-0001 — done")),
    ("start WO-W-0001 gas", _q("? unexpected 'gas' after start WO-W-0001")),
    ("start WO-W-9", T + _q("refused: start WO-W-9 — no work order 'WO-W-9' "
                            "(known: WO-W-0001") + ".*"),
    ("start WO-W-0001 by gas_company", T + _q("ok: start WO-W-0001 — done")),
    ("resolve WO-W-0001 handler=x", _q("? resolve takes no argument 'handler' (it takes: note)")),
    ("resolve WO-W-0001 by gas_company", T + _q("ok: resolve WO-W-0001 — done")),
    ("reject WO-W-0001 note='no photos of the repair'", T + _q("ok: reject WO-W-0001 — done")),
    ("reject WO-W-0001", T + _q("refused: reject WO-W-0001 — WO-W-0001: cannot reject in "
                                "state 'in_progress' (allowed in ['resolved'])")),
    ("resolve WO-W-0001", T + _q("ok: resolve WO-W-0001 — done")),
    ("review W-0001", _q("? review takes a work order id (WO-…), got 'W-0001'")),
    ("review WO-W-0001 by duty", T + _q("ok: review WO-W-0001 — done")),
    ("close WO-W-0001 by duty", T + _q("ok: close WO-W-0001 — done")),
    ("cancel {warning} by duty note=\"field check: detector fault\"",
     T + _q("ok: cancel W-0001 — CAP ") + r"\S+\.W-0001\.\d+"),
]


def test_every_console_command_at_a_terminal(tmp_path):
    plan = base_plan()
    plan["pacing"] = {"accelerated": 600, "poll_s": 2}
    plan_path = write_yaml(tmp_path / "plan.yaml", plan)
    out = tmp_path / "live"
    term = Terminal([sys.executable, "-m", "citytwin.scenarios.cli.main", "drill", "run",
                     str(plan_path), "--out", str(out), "--speed", "600", "--paused"], tmp_path)
    try:
        term.expect(_q("Drill console ready — type 'help' for commands."))
        term.expect(r"\[T\+00:00:00\] paused — 'resume' to continue")
        term.type("?")
        term.expect(r"ack W-0001 +acknowledge a warning")
        term.expect(r"pause \| resume \| speed N \| status \| help \| quit")
        term.expect(_q('note=TEXT on any player command (quote spaces: note="faulty cell"),'))
        term.ask("status", _q("[T+00:00:00] of T+00:10:00; injects fired 0/5"))
        for line, answer in BEFORE_THE_LEAK:
            term.ask(line, answer)
        # run until the leak's warning is raised, then pause again
        term.ask("resume", _q("[T+00:00:00] resumed"))
        term.expect(r"W-0001 raised: ")
        term.expect(r"W-0001 updated: ")
        term.type("pause")
        term.expect(T + _q("paused — 'resume' to continue"))
        term.ask("resume", T + "resumed")
        term.ask("resume", _q("? not paused"))
        term.type("pause")
        term.expect(T + _q("paused — 'resume' to continue"))
        for line, answer in AFTER_THE_LEAK:
            term.ask(line, answer)
        term.type("status")
        term.expect(T + r"of T\+00:10:00; injects fired \d/5")
        term.expect(r"  W-0001: last event cancelled at T\+\d\d:\d\d:\d\d")
        term.expect(r"  WO-W-0001: closed, lead \S+, handler gas_company, escalated to \S+")
        term.ask("q", T + _q("players stop; the drill runs to its end unpaced"))
        term.expect(_q("Objective ratings:"))
        term.expect(r"After-action report: .*after_action\.html")
    except BaseException:
        term.close(wait=False)
        raise
    rc = term.close()
    assert rc == 0, term.text[-3000:]
    assert "Traceback" not in term.text
    manifest = read_manifest(out / "archive.sqlite")
    assert manifest["status"] == "completed" and "abort_reason" not in manifest
    acts = read_table(out / "archive.sqlite", "actions")
    acts = acts[acts["action"] != "measure_result"]
    # only commands that passed the console's checks reached the archive, each once
    assert len(acts) == sum(1 for _, a in BEFORE_THE_LEAK + AFTER_THE_LEAK
                            if a.startswith(T + "ok:") or a.startswith(T + "refused:"))
    notes = {(r.action, r.target, r.outcome): json.loads(r.args).get("note")
             for r in acts.itertuples()}
    assert notes[("cancel", "W-0002", "refused")] == "faulty"
    assert notes[("cancel", "W-0001", "done")] == "field check: detector fault"
    assert notes[("acknowledge", "W-0001", "done")] == "seen on the wall screen"
    measured = json.loads(acts[acts["action"] == "measure"]["args"].iloc[1])
    assert measured == {"quantity": "ch4_lel_pct", "height_m": 0.5}
    wo = read_table(out / "archive.sqlite", "work_order_events")
    assert list(wo.loc[wo["actor"] != "platform", "event"])[-3:] == [
        "resolved", "reviewed", "closed"]
    html = (out / "after_action.html").read_text(encoding="utf-8")
    assert 'class="run-status"' not in html     # a completed drill has no banner


# --- a fatal error ---------------------------------------------------------------------------

def test_a_fatal_error_aborts_the_drill_and_every_report_says_so(tmp_path, monkeypatch,
                                                                  capsys):
    import citytwin.scenarios.drill.director as director

    real_fire = director.DrillDirector.fire

    def fire(self, inj):
        if inj.id == "call":
            raise RuntimeError("hotline feed lost")
        real_fire(self, inj)

    monkeypatch.setattr(director.DrillDirector, "fire", fire)
    plan_path = write_yaml(tmp_path / "plan.yaml", base_plan())
    players = write_yaml(tmp_path / "players.yaml", PLAYERS_GOOD)
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="hotline feed lost"):
        main(["drill", "run", str(plan_path), "--players", str(players), "--out", str(out),
              "--quiet"])
    err = capsys.readouterr().err
    assert (f"error: drill aborted by RuntimeError: hotline feed lost; the archive "
            f"{out / 'archive.sqlite'} is marked aborted — 'citytwin drill report {out}' "
            "scores the part that ran") in err
    manifest = read_manifest(out / "archive.sqlite")
    assert manifest["status"] == "aborted"
    assert manifest["abort_reason"] == "RuntimeError: hotline feed lost"
    assert manifest["aborted_at_s"] == 100.0 and "summary" not in manifest
    # the plan was saved beside the archive: the aborted drill can be scored
    assert main(["drill", "report", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("RUN ABORTED at T+00:01:40: RuntimeError: hotline feed lost. "
                        "Everything here covers only the part that ran; what was due later "
                        "counts as not done.")
    aar = json.loads((out / "aar.json").read_text(encoding="utf-8"))
    assert aar["status"] == "aborted" and aar["abort_reason"] == manifest["abort_reason"]
    html = (out / "after_action.html").read_text(encoding="utf-8")
    banner = html.index('class="run-status"')
    assert banner < html.index("Objective ratings") and "RUN ABORTED at T+00:01:40" in html
    # a drill killed outright (the manifest still says running) is reported as incomplete
    with sqlite3.connect(out / "archive.sqlite") as db:
        db.execute("UPDATE manifest SET value = '\"running\"' WHERE key = 'status'")
    db.close()
    assert main(["drill", "report", str(out)]) == 0
    assert capsys.readouterr().out.startswith("RUN INCOMPLETE: the archive still says "
                                              "'running'")
    assert "RUN INCOMPLETE" in (out / "after_action.html").read_text(encoding="utf-8")
