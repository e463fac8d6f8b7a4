"""Scoring a drill: was each expected player action met, late or missed; objective ratings.

The same functions serve the running drill (contingency checks on what has happened so far)
and the after-action report (the archive's ``injects``, ``warnings`` and ``actions`` tables),
so a contingency fires exactly when the report would call its action missing.

``{warning}`` in an expected target is the warning the inject concerns (``Inject.warning``):
``next`` — the first warning raised at or after the inject (for a ``false_alarm``, the first
warning event naming one of its sensors); ``open`` — the latest warning raised at or before
the inject and not yet cleared or cancelled (else the next one); another inject's id — the
warning of that inject. ``{work_order}`` is that
warning's work order (``WO-<warning id>``). A matching action is a *done* (not refused)
player action with the same action name and target (any target when the expected target is
empty), at any time — acting before the inject counts (delay 0).

Objective rating (HSEEP scale) over its applicable expected actions (those whose inject
fired and whose reference warning, if any, was raised):
- **P** (performed without challenges): all met on time;
- **S** (performed with some challenges): all done, at least one late;
- **M** (performed with major challenges): at least one missed, but at least half done
  (on time or late);
- **U** (unable to be performed): fewer than half done;
- not rated when no expected action of the objective applied.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from citytwin.alerting.events import CLOSING
from citytwin.scenarios.drill.plan import DrillPlan, Expected, Inject, expected_ref

RATINGS = {"P": "Performed without challenges", "S": "Performed with some challenges",
           "M": "Performed with major challenges", "U": "Unable to be performed",
           "N/A": "Not rated (no expected action applied)"}


@dataclass(frozen=True)
class WarningSeen:
    known_at_s: float
    warning_id: str
    event: str
    sensors: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionSeen:
    time_s: float
    action: str
    target: str
    done: bool
    actor: str = ""


@dataclass
class ExpectedOutcome:
    """The verdict on one expected action."""

    ref: str
    inject_id: str
    objective: str
    action: str
    target: str
    within_s: float
    after: str
    unit: str
    fired_s: float | None = None
    reference_s: float | None = None
    due_s: float | None = None
    done_s: float | None = None
    actor: str = ""
    delay_s: float | None = None
    late_by_s: float | None = None
    outcome: str = "n/a"            # met | late | missed | n/a
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def open_warnings(warnings: Sequence[WarningSeen],
                  until_s: float = math.inf) -> list[WarningSeen]:
    """The ``raised`` events, in time order, of the warnings raised by ``until_s`` and not
    cleared or cancelled by then (the last one is what ``open`` and a console's
    ``{warning}`` mean)."""
    rows = sorted(warnings, key=lambda w: w.known_at_s)
    ended = {w.warning_id for w in rows if w.event in CLOSING and w.known_at_s <= until_s}
    return [w for w in rows if w.event == "raised" and w.known_at_s <= until_s
            and w.warning_id not in ended]


def warning_for(inject: Inject, fired_s: float, warnings: Sequence[WarningSeen],
                plan: DrillPlan | None = None,
                fired: dict[str, float] | None = None) -> WarningSeen | None:
    """The warning an inject fired at ``fired_s`` concerns (see the module docstring);
    ``plan`` and ``fired`` (inject id → time) resolve a reference to another inject."""
    rows = sorted(warnings, key=lambda w: w.known_at_s)
    if inject.warning_rule not in ("next", "open"):
        other = next((i for i in (plan.msel if plan else ()) if i.id == inject.warning), None)
        if other is None or other.id == inject.id or (fired or {}).get(other.id) is None:
            return None
        return warning_for(other, fired[other.id], warnings, None, None)
    if inject.warning_rule == "open":
        before = open_warnings(rows, fired_s)
        if before:
            return before[-1]
    if inject.kind == "false_alarm":
        mine = set(inject.sensors or ())
        for w in rows:
            if w.known_at_s >= fired_s and w.event not in CLOSING and mine & set(w.sensors):
                return w
        return None
    return next((w for w in rows if w.event == "raised" and w.known_at_s >= fired_s), None)


def resolve_target(target: str, warning_id: str | None) -> str | None:
    """Fill ``{warning}`` / ``{work_order}``; None when a placeholder has no warning."""
    if "{" not in target:
        return target
    if warning_id is None:
        return None
    return target.replace("{warning}", warning_id).replace("{work_order}", f"WO-{warning_id}")


def first_match(action: str, target: str, actions: Sequence[ActionSeen],
                until_s: float = math.inf) -> ActionSeen | None:
    """The first done action ``action`` on ``target`` (any target if empty) by ``until_s``."""
    for a in sorted(actions, key=lambda a: a.time_s):
        if a.time_s > until_s:
            break
        if a.done and a.action == action and (not target or a.target == target):
            return a
    return None


def judge(inject: Inject, k: int, e: Expected, fired_s: float | None,
          warnings: Sequence[WarningSeen], actions: Sequence[ActionSeen],
          unit: str = "", until_s: float = math.inf, plan: DrillPlan | None = None,
          fired: dict[str, float] | None = None) -> ExpectedOutcome:
    """Met / late / missed / n/a for one expected action, from what happened by
    ``until_s`` (``plan`` and ``fired`` resolve ``warning: <inject id>``)."""
    o = ExpectedOutcome(expected_ref(inject, k, e), inject.id, e.objective, e.action,
                        e.target, e.within_s, e.after, e.unit or unit, fired_s)
    if fired_s is None:
        o.note = "inject did not fire"
        return o
    w = warning_for(inject, fired_s, warnings, plan, fired)
    target = resolve_target(e.target, w.warning_id if w else None)
    if target is None or (e.after == "warning" and w is None):
        o.note = "no warning to act on"
        return o
    o.target = target
    o.reference_s = max(fired_s, w.known_at_s) if e.after == "warning" else fired_s
    o.due_s = o.reference_s + e.within_s
    hit = first_match(e.action, target, actions, until_s)
    if hit is None:
        o.outcome, o.note = "missed", "not done by the end of the drill"
        return o
    o.done_s, o.actor = hit.time_s, hit.actor
    o.delay_s = max(hit.time_s - o.reference_s, 0.0)
    o.late_by_s = max(hit.time_s - o.due_s, 0.0)
    o.outcome = "met" if hit.time_s <= o.due_s + 1e-9 else "late"
    if hit.time_s < fired_s:
        o.note = "done before the inject"
    return o


def score(plan: DrillPlan, fired: dict[str, float], warnings: Sequence[WarningSeen],
          actions: Sequence[ActionSeen]) -> list[ExpectedOutcome]:
    """Every expected action of the plan, judged on the whole drill."""
    units = {o.id: o.unit for o in plan.objectives}
    return [judge(inj, k, e, fired.get(inj.id), warnings, actions, units[e.objective],
                  plan=plan, fired=fired) for inj, k, e in plan.expected_items()]


def rate(outcomes: Sequence[ExpectedOutcome]) -> str:
    """P / S / M / U (or N/A) for one objective's outcomes (rule in the module docstring)."""
    applied = [o for o in outcomes if o.outcome != "n/a"]
    if not applied:
        return "N/A"
    met = sum(o.outcome == "met" for o in applied)
    done = met + sum(o.outcome == "late" for o in applied)
    if met == len(applied):
        return "P"
    if done == len(applied):
        return "S"
    return "M" if 2 * done >= len(applied) else "U"


def ratings(plan: DrillPlan, outcomes: Sequence[ExpectedOutcome]) -> dict[str, str]:
    """Objective id → rating."""
    return {obj.id: rate([o for o in outcomes if o.objective == obj.id])
            for obj in plan.objectives}
