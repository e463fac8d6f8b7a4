"""Drill mode: run an exercise plan (MSEL) with live or scripted players, then score it.

``run_drill`` loads and checks the plan (``scenarios.drill.plan``), prepares the compiled
scenario (mode ``drill``: every CAP message carries status ``Exercise``), and runs the one
kernel with a :class:`DrillDirector` process that fires the injects on the drill clock,
checks contingencies at their deadlines, and executes player commands — from a scripted
player file (rehearsals, tests) or from the terminal console (``scenarios.drill.console``).
Players act only through ``RunContext.act``, so every command is archived (``actions``) with
its outcome. Pacing: scripted drills run as fast as possible unless a speed is asked for;
live drills run on a ``simpy.rt.RealtimeEnvironment`` (real time or ×N, as the plan's
``pacing`` or the command line says). The run folder gets ``archive.sqlite``, ``cap/`` and
``drill_plan.json``; ``citytwin drill`` (:mod:`scenarios.cli.drill`) then scores it into the
after-action report (``after_action.html``, ``aar.json``).
"""

from __future__ import annotations

import json
import math
import queue
import sys
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import simpy
import simpy.rt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from citytwin.scenarios.drill.console import (
    Command,
    CommandError,
    DrillConsole,
    make_command,
    start_reader,
)
from citytwin.scenarios.drill.plan import (
    FAULT_INJECTS,
    DrillPlan,
    Inject,
    LoadedPlan,
    check_places,
    check_sensors,
    load_plan,
)
from citytwin.scenarios.drill.score import (
    ActionSeen,
    WarningSeen,
    judge,
    open_warnings,
    resolve_target,
    warning_for,
)
from citytwin.scenarios.spec.scenario import clock_text
from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import input_error_from, read_yaml

#: How often (s of drill time) the director looks for new warnings to trigger players.
WATCH_S = 1.0


# --- scripted players ------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class After(_Strict):
    """Trigger of a scripted step: an inject firing, or a warning event (``raised``,
    ``escalated``, ``updated``, ``cleared``, ``cancelled``; optionally of one warning)."""

    inject: str | None = None
    warning: str | None = None
    warning_id: str | None = None

    @model_validator(mode="after")
    def _one(self) -> After:
        if (self.inject is None) == (self.warning is None):
            raise ValueError("give exactly one of 'inject' or 'warning'")
        return self


class PlayerStep(_Strict):
    """One scripted player command, at ``at_s`` or ``delay_s`` after a trigger."""

    at_s: float | None = Field(None, ge=0)
    after: After | None = None
    delay_s: float = Field(0.0, ge=0)
    action: str
    target: str
    actor: str = "player"
    args: dict[str, Any] = Field(default_factory=dict)
    note: str = ""

    @model_validator(mode="after")
    def _when(self) -> PlayerStep:
        if (self.at_s is None) == (self.after is None):
            raise ValueError("give exactly one of 'at_s' or 'after'")
        return self

    def command(self) -> Command:
        """The step as a checked command (its ``note`` and an ``args`` note joined)."""
        return make_command(self.action, self.target, self.args, self.actor, self.note)


def parse_players(data: object, plan: DrillPlan, source: str) -> list[PlayerStep]:
    """Validate a scripted player list (a YAML list, or a mapping with ``players:``)."""
    if isinstance(data, dict) and set(data) == {"players"}:
        data = data["players"]
    if not isinstance(data, list):
        raise InputError(source, "a player script must be a YAML list of steps")
    injects = {i.id for i in plan.msel}
    steps = []
    for k, item in enumerate(data):
        try:
            step = PlayerStep.model_validate(item)
        except ValidationError as exc:
            err = input_error_from(source, exc)
            raise InputError(source, err.reason, field=f"{k}.{err.field}" if err.field
                             else str(k)) from exc
        try:
            step.command()
        except CommandError as exc:
            raise InputError(source, str(exc), field=f"{k}.{exc.field}") from exc
        if step.after is not None and step.after.inject is not None \
                and step.after.inject not in injects:
            raise InputError(source, f"no inject {step.after.inject!r} in the plan (injects: "
                             f"{sorted(injects)})", field=f"{k}.after.inject")
        steps.append(step)
    return steps


def load_players(path: str | Path, plan: DrillPlan) -> list[PlayerStep]:
    """Read and validate a scripted player file."""
    path = Path(path)
    return parse_players(read_yaml(path, "player script"), plan, str(path))


# --- the director --------------------------------------------------------------------------

def describe_inject(inj: Inject) -> str:
    """The inject's message as players see it (its own ``message`` when given)."""
    if inj.message:
        text = inj.message
    elif inj.kind == "hazard_start":
        text = f"hazard {inj.hazard} begins"
    elif inj.kind == "hazard_stop":
        text = f"hazard {inj.hazard} release stops"
    elif inj.kind == "rain_change":
        text = f"rain over {inj.hazard} changes ×{inj.scale:g}"
    elif inj.kind in FAULT_INJECTS:
        span = f" for {inj.duration_s:g} s" if inj.duration_s else ""
        text = f"{inj.kind.replace('_', ' ')} on {', '.join(inj.sensors or [])}{span}"
    else:
        text = inj.kind.replace("_", " ")
    if inj.source:
        text = f"{inj.source}: {text}"
    if inj.location is not None:
        where = inj.location if isinstance(inj.location, str) else \
            f"({inj.location[0]:g}, {inj.location[1]:g}) m"
        text += f" [at {where}]"
    return text


@dataclass
class DrillDirector:
    """The drill's SimPy processes: injects, contingency checks, players, console."""

    loaded: LoadedPlan
    steps: Sequence[PlayerStep] = ()
    console: DrillConsole | None = None
    write: Callable[[str], None] = print
    fired: dict[str, float] = field(default_factory=dict)
    ctx: Any = None
    _fire_events: dict[str, simpy.Event] = field(default_factory=dict)
    _waiters: list[tuple[After, simpy.Event]] = field(default_factory=list)
    _n_seen: int = 0
    _n_shown: int = 0

    # the process the kernel starts
    def process(self, ctx) -> Generator:
        """Start one process per inject, per player step, the watcher and the console."""
        self.ctx = ctx
        env = ctx.env
        self._fire_events = {i.id: env.event() for i in self.loaded.plan.msel}
        for inj in sorted(self.loaded.plan.msel, key=lambda i: i.at_s):
            env.process(self._inject(inj))
        for step in self.steps:
            env.process(self._step(step))
        if any(s.after is not None and s.after.warning is not None for s in self.steps):
            env.process(self._watch())
        if self.console is not None:
            self.console.execute = self.execute_console
            self.console.status = self.status
            self.console.feed = self.feed
            env.process(self.console.process(env))
        yield env.timeout(0)

    def actions_now(self) -> list[ActionSeen]:
        """Every command so far (players and the scenario's own ``actions``), as archived:
        contingencies are judged on what the after-action report will read."""
        return [ActionSeen(*a) for a in self.ctx.actions_taken]

    def warnings_now(self) -> list[WarningSeen]:
        return [WarningSeen(w.known_at_s, w.warning_id, w.event, tuple(w.sensors))
                for w in self.ctx.result.warnings]

    def _inject(self, inj: Inject) -> Generator:
        env = self.ctx.env
        c = inj.contingency
        if c is not None:
            by_s = inj.at_s if c.by_s is None else c.by_s
            yield env.timeout(by_s - env.now)
            yield env.timeout(0)  # after every action scheduled for this very moment
            parent, k, e = self.loaded.expected_by_ref()[c.if_missing]
            o = judge(parent, k, e, self.fired.get(parent.id), self.warnings_now(),
                      self.actions_now(), until_s=by_s, plan=self.loaded.plan,
                      fired=self.fired)
            if o.outcome in ("met", "late"):
                self.ctx.log(env.now, "contingency_skipped",
                             f"contingency inject {inj.id} not needed: {c.if_missing} "
                             f"({e.action} {o.target}) done at T+{o.done_s:g} s", {
                                 "inject_id": inj.id, "if_missing": c.if_missing})
                return
        yield env.timeout(inj.at_s - env.now)
        self.fire(inj)

    def fire(self, inj: Inject) -> None:
        """Apply an inject now and archive it."""
        t = float(self.ctx.env.now)
        data: dict[str, Any] = {"source": inj.source} if inj.source else {}
        if inj.location is not None:
            data["location"] = inj.location if isinstance(inj.location, str) \
                else list(inj.location)
        if inj.hazard:
            data["hazard"] = inj.hazard
        if inj.kind in FAULT_INJECTS:
            end = t + inj.duration_s if inj.duration_s else math.inf
            self.ctx.faults.add(FAULT_INJECTS[inj.kind], list(inj.sensors), t, end, inj.value)
            data.update(sensors=list(inj.sensors), end_s=None if math.isinf(end) else end,
                        value=inj.value)
        if inj.kind == "rain_change":
            data["scale"] = inj.scale
        if inj.contingency is not None:
            data["contingency"] = inj.contingency.if_missing
        self.ctx.inject(t, inj.id, inj.kind, describe_inject(inj), data)
        self.fired[inj.id] = t
        self._fire_events[inj.id].succeed(t)

    def _watch(self) -> Generator:
        """Poll the run's warning events; wake the players waiting for one."""
        env = self.ctx.env
        while env.now <= self.ctx.duration_s:
            ws = self.ctx.result.warnings
            for w in ws[self._n_seen:]:
                seen = WarningSeen(w.known_at_s, w.warning_id, w.event, tuple(w.sensors))
                for after, ev in list(self._waiters):
                    if after.warning == w.event and after.warning_id in (None, w.warning_id):
                        self._waiters.remove((after, ev))
                        ev.succeed(seen)
            self._n_seen = len(ws)
            yield env.timeout(WATCH_S)

    def _step(self, step: PlayerStep) -> Generator:
        env = self.ctx.env
        warning_id = None
        if step.at_s is not None:
            yield env.timeout(step.at_s - env.now)
        elif step.after.inject is not None:
            fired_s = yield self._fire_events[step.after.inject]
            yield env.timeout(max(fired_s + step.delay_s - env.now, 0.0))
            inj = next(i for i in self.loaded.plan.msel if i.id == step.after.inject)
            w = warning_for(inj, fired_s, self.warnings_now(), self.loaded.plan, self.fired)
            if w is None and "{" in step.target:
                # the inject's warning has not been raised: never act on another one
                self.ctx.log(float(env.now), "action_skipped",
                             f"{step.action} {step.target} skipped: inject {inj.id} has "
                             "raised no warning yet", {"inject_id": inj.id})
                return
            warning_id = w.warning_id if w else None
        else:
            ev = env.event()
            self._waiters.append((step.after, ev))
            w = yield ev
            warning_id = w.warning_id
            yield env.timeout(max(w.known_at_s + step.delay_s - env.now, 0.0))
        self.execute(step.command(), float(env.now), warning_id)

    # -- player commands ------------------------------------------------------------------
    def latest_warning(self) -> str | None:
        """The latest warning raised and still open (what ``{warning}`` means at a console)."""
        open_ = open_warnings(self.warnings_now())
        return open_[-1].warning_id if open_ else None

    def execute(self, cmd: Command, t_s: float, warning_id: str | None = None) -> str:
        """Run a checked player command (:func:`make_command`) through ``ctx.act``; a line
        saying what happened."""
        actor = cmd.actor or "player"
        target = resolve_target(cmd.target, warning_id or self.latest_warning())
        if target is None:
            self.ctx.log(t_s, "action_skipped", f"{actor}: {cmd.action} {cmd.target} skipped: "
                         "no warning to act on", {"action": cmd.action})
            return f"[{clock_text(t_s)}] ? {cmd.action} {cmd.target}: no warning to act on"
        out = self.ctx.act(t_s, cmd.action, target, actor=actor, note=cmd.note, **cmd.args)
        verdict = "ok" if out.ok else "refused"
        return f"[{clock_text(t_s)}] {verdict}: {cmd.action} {target} — {out.detail}"

    def execute_console(self, cmd: Command, t_s: float) -> str:
        return self.execute(cmd, t_s)

    def status(self, t_s: float) -> str:
        """The console's ``status``: clock, injects, warnings and work orders."""
        lines = [f"[{clock_text(t_s)}] of {clock_text(self.ctx.duration_s)}; injects fired "
                 f"{len(self.fired)}/{len(self.loaded.plan.msel)}"]
        last: dict[str, WarningSeen] = {}
        for w in self.warnings_now():
            last[w.warning_id] = w
        for wid, w in last.items():
            lines.append(f"  {wid}: last event {w.event} at {clock_text(w.known_at_s)}")
        for order in self.ctx.platform.desk.orders.values():
            up = f", escalated to {order.escalated_to[-1]}" if order.escalated_to else ""
            lines.append(f"  {order.work_order_id}: {order.state}, lead {order.lead_unit}"
                         f"{', handler ' + order.handler if order.handler else ''}{up}")
        return "\n".join(lines)

    def feed(self) -> Iterable[str]:
        """New lines of the drill's timeline since the last call."""
        timeline = self.ctx.result.timeline
        new, self._n_shown = timeline[self._n_shown:], len(timeline)
        return [f"[{clock_text(t)}] {msg}" for t, kind, msg, _ in sorted(new, key=lambda e: e[0])
                if kind not in ("observation_dropped",)]


# --- running -------------------------------------------------------------------------------

@dataclass
class DrillRun:
    """A drill run: its folder and archive, the kernel's result, when each inject fired."""

    run_dir: Path
    archive_path: Path
    result: Any                      # the kernel's RunResult
    fired: dict[str, float]
    plan: DrillPlan


def make_env(speed: float | None) -> simpy.Environment:
    """A real-time environment at ×``speed``, or a plain one (as fast as possible)."""
    if speed is None:
        return simpy.Environment()
    return simpy.rt.RealtimeEnvironment(factor=1.0 / speed, strict=False)


def run_drill(plan_path: str | Path, out_dir: str | Path, *,
              players: str | Path | None = None, overwrite: bool = False,
              speed: float | None = None, real_time: bool = False, paused: bool | None = None,
              console_input: TextIO | None = None, out: TextIO | None = None,
              quiet: bool = False) -> DrillRun:
    """Run a drill plan into ``out_dir`` (the archive, ``cap/`` and ``drill_plan.json``);
    the after-action report is scored from the archive afterwards (``citytwin drill``).

    With ``players`` the run is scripted (as fast as possible unless ``speed`` /
    ``real_time`` is given); without, it is live: commands are read from
    ``console_input`` (default stdin) at the plan's pace (default real time).
    """
    from citytwin.scenarios.run.kernel import simulate
    from citytwin.scenarios.run.prepare import prepare

    out = out or sys.stdout

    def write(line: str) -> None:
        if not quiet:
            print(line, file=out, flush=True)

    loaded = load_plan(plan_path)
    steps = load_players(players, loaded.plan) if players is not None else []
    run = prepare(loaded.scenario, source=loaded.scenario_source, base_dir=loaded.scenario_dir)
    check_sensors(loaded, set(run.network.table["sensor_id"].astype(str)))
    check_places(loaded, set(run.twin.places["id"].astype(str)))
    pace = 1.0 if real_time else speed
    console = None
    if players is None:
        pace = pace or loaded.plan.pacing.speed or 1.0
        commands: queue.Queue = queue.Queue()
        start_reader(console_input or sys.stdin, commands)
        console = DrillConsole(commands, execute=lambda c, t: "", status=lambda t: "",
                               poll_s=loaded.plan.pacing.poll_s,
                               paused=loaded.plan.pacing.paused if paused is None else paused,
                               write=lambda line: print(line, file=out, flush=True))
    director = DrillDirector(loaded, steps, console, write)
    write(f"Drill '{loaded.plan.name}': {len(loaded.plan.msel)} injects, "
          f"{len(loaded.plan.objectives)} objectives; "
          f"{'scripted players' if players else 'live console'}; "
          f"{'unpaced' if pace is None else f'×{pace:g} real time'}")
    run_dir = Path(out_dir)
    try:
        result = simulate(run, run_dir, overwrite=overwrite, env=make_env(pace),
                          processes=[director.process], snapshot=False)
    finally:  # an aborted drill's archive can be scored too (``citytwin drill report``)
        if (run_dir / "archive.sqlite").exists():
            save_plan(loaded, run_dir)
    return DrillRun(run_dir, result.archive_path, result, dict(director.fired), loaded.plan)


def save_plan(loaded: LoadedPlan, run_dir: Path) -> Path:
    """``drill_plan.json`` in the run folder: the plan the drill ran (``drill report``)."""
    path = run_dir / "drill_plan.json"
    path.write_text(json.dumps({"source": loaded.source,
                                "plan": loaded.plan.model_dump(mode="json")},
                               indent=1, ensure_ascii=False), encoding="utf-8")
    return path
