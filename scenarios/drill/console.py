"""The drill console: player commands typed at a terminal, executed on the drill clock.

A reader thread parses each line of input into a :class:`Command` and puts it (or the parse
error) into a ``queue.Queue``; a SimPy process polls the queue every ``poll_s`` of simulated
time and executes what it finds at that time. ``pause`` blocks the console process (so the
whole drill clock stops) until ``resume``; the real-time clock is then re-synchronised so
the drill does not race to catch up. The same :func:`make_command` checks the commands of a
scripted player file, so a rehearsal and a live drill accept exactly the same actions.

Commands (``help`` prints them)::

    ack W-0001                     acknowledge a warning (also: cancel, confirm, publish)
    assign WO-W-0001 gas_company   assign a work order to a handler unit
    escalate WO-W-0001             escalate one rung up (also: start, resolve, review,
                                   reject, close)
    evacuate P-plaza | x,y,r       evacuate a place, or a circle (metres, twin CRS)
    measure x,y [quantity=…]       send a field team to measure at a point
    pause | resume | speed N | status | help | quit
    Arguments: key=value after the target, and 'by NAME' (the acting unit, default
    player): note=TEXT on any player command (quote spaces: note="faulty cell"),
    handler=UNIT (assign), quantity=Q height_m=M delay_s=S (measure).

Every line is checked before it runs (:func:`parse_command`, :func:`make_command`): a bad
one gets a one-line ``? …`` answer naming what is wrong, and the drill goes on.
"""

from __future__ import annotations

import difflib
import math
import queue
import re
import shlex
import threading
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import simpy
import simpy.rt

from citytwin.scenarios.spec.scenario import clock_text

WORK_ORDER_ACTIONS = ("assign", "start", "resolve", "review", "reject", "close", "escalate")
WARNING_ACTIONS = ("acknowledge", "cancel", "confirm", "publish")
FIELD_ACTIONS = ("evacuate", "measure")
#: Every action a player may take (the kernel's ``ctx.act`` names).
PLAYER_ACTIONS = WORK_ORDER_ACTIONS + WARNING_ACTIONS + FIELD_ACTIONS
CONTROL_COMMANDS = ("pause", "resume", "speed", "status", "help", "quit")
ALIASES = {"ack": "acknowledge", "evac": "evacuate", "q": "quit", "?": "help"}
PLACEHOLDERS = ("{warning}", "{work_order}")
#: The ``key=value`` arguments each action takes, with their types; ``note`` (any action) is
#: the command's note, archived with it (never a keyword of the action itself).
ACTION_ARGS: dict[str, dict[str, type]] = {
    "assign": {"handler": str},
    "measure": {"quantity": str, "height_m": float, "delay_s": float},
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_XY = re.compile(rf"^\s*{_NUMBER}\s*,\s*{_NUMBER}\s*$")
_XYR = re.compile(rf"^\s*{_NUMBER}\s*,\s*{_NUMBER}\s*,\s*{_NUMBER}\s*$")
_ID = re.compile(r"^[A-Za-z0-9_.:\-]+$")

HELP = __doc__.split("Commands (``help`` prints them)::", 1)[1].split("Every line", 1)[0]


class CommandError(ValueError):
    """A command that cannot be executed as written (the drill goes on); ``field`` names
    the part that is wrong (``action``, ``target``, ``args.<key>``, ``note``, ``actor``)."""

    def __init__(self, message: str, field: str = "target") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Command:
    """One player or control command."""

    action: str
    target: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    actor: str | None = None
    note: str = ""

    def text(self) -> str:
        """The command as a player would type it."""
        parts = [self.action, self.target, *(f"{k}={v}" for k, v in self.args.items())]
        if self.note:
            parts.append(f"note={shlex.quote(self.note)}")
        if self.actor:
            parts += ["by", self.actor]
        return " ".join(p for p in parts if p != "")


def _numbers(text: str) -> list[float]:
    return [float(p) for p in text.split(",")]


def check_args(action: str, args: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The action's ``key=value`` arguments converted to their types, and the note; a
    CommandError names an argument the action does not take or a value of the wrong kind."""
    allowed = ACTION_ARGS.get(action, {})
    out: dict[str, Any] = {}
    note = ""
    for key, value in args.items():
        if key == "note":
            if isinstance(value, dict | list):
                raise CommandError(f"{action} note must be text", field="note")
            note = "" if value is None else str(value).strip()
            continue
        if key not in allowed:
            takes = ", ".join([*allowed, "note"])
            raise CommandError(f"{action} takes no argument {key!r} (it takes: {takes})",
                               field=f"args.{key}")
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            raise CommandError(f"{action} {key}: bad value {value!r}", field=f"args.{key}")
        if allowed[key] is float:
            try:
                number = float(value)
            except ValueError:
                raise CommandError(f"{action} {key} must be a number, got {value!r}",
                                   field=f"args.{key}") from None
            if not math.isfinite(number) or number < 0:
                raise CommandError(f"{action} {key} must be a number ≥ 0, got {value!r}",
                                   field=f"args.{key}")
            out[key] = number
        else:
            text = str(value).strip()
            if not text:
                raise CommandError(f"{action} {key} needs a value", field=f"args.{key}")
            out[key] = text
    return out, note


def make_command(action: str, target: str = "", args: dict[str, Any] | None = None,
                 actor: str | None = None, note: str = "") -> Command:
    """A checked player command (arguments by :func:`check_args`; an ``args`` note joins
    ``note``); CommandError naming what is wrong otherwise."""
    action = ALIASES.get(action, action)
    target = str(target or "").strip()
    if action not in PLAYER_ACTIONS:
        raise CommandError(f"unknown action {action!r}; actions are {list(PLAYER_ACTIONS)}",
                           field="action")
    args, arg_note = check_args(action, dict(args or {}))
    note = "; ".join(n for n in (str(note or "").strip(), arg_note) if n)
    if not target:
        raise CommandError(f"{action} needs a target")
    placeholder = target in PLACEHOLDERS
    if action in WORK_ORDER_ACTIONS and not (target.startswith("WO-") or
                                             target == "{work_order}"):
        raise CommandError(f"{action} takes a work order id (WO-…), got {target!r}")
    if action in WARNING_ACTIONS and not (target.startswith("W-") or target == "{warning}"):
        raise CommandError(f"{action} takes a warning id (W-…), got {target!r}")
    if action == "assign" and not args.get("handler"):
        raise CommandError("assign needs a handler unit, e.g. 'assign WO-W-0001 gas_company'",
                           field="args.handler")
    if action == "evacuate" and not (_XYR.match(target) or _ID.match(target)):
        raise CommandError(f"evacuate takes a place id or 'x,y,radius_m', got {target!r}")
    if action == "evacuate" and _XYR.match(target):
        *xy, radius = _numbers(target)
        if not all(math.isfinite(v) for v in (*xy, radius)) or not radius > 0:
            raise CommandError(f"evacuate: the radius must be > 0 m (and every number "
                               f"finite), got {target!r}")
    if action == "measure" and not _XY.match(target):
        raise CommandError(f"measure takes a point 'x,y' (metres), got {target!r}")
    if action == "measure" and not all(math.isfinite(v) for v in _numbers(target)):
        raise CommandError(f"measure takes finite numbers 'x,y', got {target!r}")
    if not placeholder and action not in FIELD_ACTIONS and not _ID.match(target):
        raise CommandError(f"bad target {target!r}")
    if actor is not None and not str(actor).strip():
        raise CommandError(f"{action}: 'by' needs the acting unit's name", field="actor")
    return Command(action, target.replace(" ", ""), args, actor, note)


def parse_command(line: str) -> Command | None:
    """Parse one console line; None for a blank line or a comment; CommandError if bad.
    Words are split like a shell's (quotes keep spaces: ``note="faulty cell"``)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:  # an unbalanced quote
        raise CommandError(f"cannot read the line: {str(exc).lower()}") from None
    if not tokens:
        return None
    head = ALIASES.get(tokens[0].lower(), tokens[0].lower())
    rest = tokens[1:]
    if head in CONTROL_COMMANDS:
        if head == "speed":
            if len(rest) != 1 or not re.fullmatch(_NUMBER, rest[0]) or float(rest[0]) <= 0:
                raise CommandError("speed takes one positive number, e.g. 'speed 60'")
            return Command("speed", args={"factor": float(rest[0])})
        if rest:
            raise CommandError(f"{head} takes no arguments")
        return Command(head)
    if head not in PLAYER_ACTIONS:
        close = difflib.get_close_matches(head, [*PLAYER_ACTIONS, *CONTROL_COMMANDS, *ALIASES],
                                          n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise CommandError(f"unknown command {tokens[0]!r}; {hint}type 'help' for the "
                           "commands")
    actor = None
    by = [k for k, tok in enumerate(rest) if tok.lower() == "by"]
    if len(by) > 1:
        raise CommandError(f"{head}: 'by' given twice", field="actor")
    if by:
        k = by[0]
        if k + 1 >= len(rest) or "=" in rest[k + 1]:
            raise CommandError(f"{head}: 'by' needs the acting unit's name, e.g. 'by duty'",
                               field="actor")
        actor, rest = rest[k + 1], rest[:k] + rest[k + 2:]
    args: dict[str, Any] = {}
    positional = []
    for tok in rest:
        if "=" in tok:
            key, _, value = tok.partition("=")
            if not key:
                raise CommandError(f"bad argument {tok!r}")
            if key in args:
                raise CommandError(f"{head}: {key} given twice")
            args[key] = value
        else:
            positional.append(tok)
    if not positional:
        raise CommandError(f"{head} needs a target")
    target, extra = positional[0], positional[1:]
    slot = {"assign": "handler", "measure": "quantity"}.get(head)
    if slot is not None and extra:
        if slot in args:
            raise CommandError(f"{head}: {slot} given twice ({extra[0]!r} and "
                               f"{slot}={args[slot]})")
        args[slot] = extra.pop(0)
    if extra:
        raise CommandError(f"unexpected {' '.join(extra)!r} after {head} {target}")
    return make_command(head, target, args, actor)


def start_reader(stream: TextIO, commands: queue.Queue) -> threading.Thread:
    """A daemon thread parsing ``stream`` line by line into ``commands`` (a parse error goes
    in as a CommandError); end of input puts a ``quit``."""
    def read() -> None:
        for line in stream:
            try:
                cmd = parse_command(line)
            except CommandError as exc:
                commands.put(exc)
                continue
            if cmd is not None:
                commands.put(cmd)
        commands.put(Command("quit", args={"eof": True}))

    thread = threading.Thread(target=read, name="drill-console", daemon=True)
    thread.start()
    return thread


def set_pace(env: simpy.Environment, speed: float | None) -> None:
    """Re-synchronise a real-time environment to the wall clock now, optionally at a new
    speed (×N; ``None`` keeps it; ``inf`` runs as fast as possible)."""
    if not isinstance(env, simpy.rt.RealtimeEnvironment):
        return
    if speed is not None:
        env._factor = 0.0 if speed == float("inf") else 1.0 / speed  # no public setter
    env.env_start = env.now
    env.sync()


class DrillConsole:
    """The console's SimPy process: polls the command queue and executes commands.

    ``execute(command, t_s)`` runs a player command and returns a line to print;
    ``status(t_s)`` returns the status text; ``feed()`` returns new lines of the drill's
    log to show since the last poll (injects, warnings, work orders, results).
    """

    def __init__(self, commands: queue.Queue, *, execute: Callable[[Command, float], str],
                 status: Callable[[float], str], feed: Callable[[], Iterable[str]] = tuple,
                 poll_s: float = 5.0, paused: bool = False,
                 write: Callable[[str], None] = print) -> None:
        self.commands = commands
        self.execute = execute
        self.status = status
        self.feed = feed
        self.poll_s = poll_s
        self.paused = paused
        self.write = write
        self.quit = False
        self.speed: float | None = None

    def process(self, env: simpy.Environment) -> Generator:
        """Poll every ``poll_s`` of drill time until ``quit``."""
        self.write("Drill console ready — type 'help' for commands.")
        if self.paused:
            self._hold(env)
        while not self.quit:
            yield env.timeout(self.poll_s)
            self._show_feed()
            while not self.quit:
                try:
                    item = self.commands.get_nowait()
                except queue.Empty:
                    break
                self.handle(item, env)
                if self.paused:
                    self._hold(env)

    def _show_feed(self) -> None:
        for line in self.feed():
            self.write(line)

    def _hold(self, env: simpy.Environment) -> None:
        """Paused: block the drill clock, still answering commands, until resume/quit."""
        self.write(f"[{clock_text(env.now)}] paused — 'resume' to continue")
        while self.paused and not self.quit:
            self.handle(self.commands.get(), env)
        set_pace(env, None)

    def handle(self, item: Command | Exception, env: simpy.Environment) -> None:
        """Execute one queued item (a parse error is reported; the drill continues)."""
        t = float(env.now)
        if isinstance(item, Exception):
            self.write(f"? {item}")
            return
        name = item.action
        if name == "help":
            self.write(HELP.rstrip())
        elif name == "status":
            self.write(self.status(t))
        elif name == "pause":
            if self.paused:
                self.write("? already paused — 'resume' to continue")
            self.paused = True
        elif name == "resume":
            self.write(f"[{clock_text(t)}] resumed" if self.paused else "? not paused")
            self.paused = False
        elif name == "speed":
            if not isinstance(env, simpy.rt.RealtimeEnvironment):
                self.write("? speed applies to paced drills only (this one runs unpaced)")
                return
            self.speed = float(item.args["factor"])
            set_pace(env, self.speed)
            self.write(f"[{clock_text(t)}] speed ×{self.speed:g}")
        elif name == "quit":
            self.quit, self.paused = True, False
            set_pace(env, float("inf"))
            self.write(f"[{clock_text(t)}] players stop; the drill runs to its end unpaced")
        else:
            try:
                self.write(self.execute(item, t))
            except CommandError as exc:  # checked again where it runs: still not fatal
                self.write(f"? {exc}")
