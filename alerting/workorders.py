"""Work orders: created from warnings, handled through their states, chased on the clock.

States: created → assigned → in_progress → resolved → reviewed → closed (a failed review
sends an order back to in_progress; a cancelled warning closes its order). Every change is a
``WorkOrderEvent`` with who and when (times: when the platform knew, ``known_at_s``). Overdue
rules run on the *simulation* clock (``advance_to``), from the operating rules in
../shared/design/MISSION.md:
- an order with no assigned handler ``unassigned_overdue_s`` (1 h) after creation is overdue
  and escalated one unit up (owner → department → district → city);
- an order still open ``escalate_after_deadline_s`` (2 days) past its deadline is escalated.
Actions (assign, start, resolve, review, close, and a manual escalate) arrive as events from
a drill player, a script or the API; an action that does not fit the order's state is
refused with a message naming the order, its state and the action.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from citytwin.alerting.events import WarningEvent
from citytwin.alerting.routing import RoutingTable
from citytwin.twin.errors import InputError

#: action → (states it may be taken in, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "assign": (("created", "assigned"), "assigned"),
    "start": (("assigned",), "in_progress"),
    "resolve": (("in_progress",), "resolved"),
    "review": (("resolved",), "reviewed"),
    "reject": (("resolved",), "in_progress"),
    "close": (("reviewed",), "closed"),
}
#: A player may also escalate an open order by hand, one rung up the routing ladder.
ACTIONS = (*TRANSITIONS, "escalate")


class WorkOrderPolicy(BaseModel):
    """Deadlines by level and the overdue rules (seconds)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    create_from_level: str | None = None      # lowest level that opens an order (None: any)
    #: time to resolve by level (s); every level of the rulebook needs one
    deadline_s: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=lambda: {
        "blue": 259200.0, "yellow": 86400.0, "orange": 14400.0, "red": 7200.0})
    unassigned_overdue_s: float = Field(3600.0, gt=0)
    escalate_after_deadline_s: float = Field(172800.0, gt=0)
    actions: dict[str, list[str]] = Field(default_factory=dict)  # hazard → actions to take

    def check_levels(self, levels: list[str], source: str) -> None:
        """InputError naming ``source`` and the field if a level is not the rulebook's."""
        if self.create_from_level is not None and self.create_from_level not in levels:
            raise InputError(source, f"level {self.create_from_level!r} is not one of the "
                             f"rulebook's levels {levels}",
                             field="work_orders.create_from_level")
        # (a policy may list more levels than a rulebook uses: a shared 4-level table
        # serves a 3-level rulebook; a misspelt level leaves its real one without a deadline)
        missing = [lv for lv in levels if lv not in self.deadline_s]
        if missing:
            raise InputError(source, f"no deadline for level {missing[0]!r} (deadlines are "
                             f"given for {sorted(self.deadline_s)})",
                             field=f"work_orders.deadline_s.{missing[0]}")


@dataclass(frozen=True)
class WorkOrderEvent:
    time_s: float
    work_order_id: str
    event: str      # created | assigned | started | resolved | reviewed | rejected | closed
                    # | overdue_unassigned | overdue_deadline | escalated | level_changed
    state: str
    actor: str
    note: str


@dataclass
class WorkOrder:
    work_order_id: str
    warning_id: str
    created_s: float
    hazard: str
    level_name: str
    lead_unit: str
    actions: tuple[str, ...]
    deadline_s: float
    state: str = "created"
    handler: str = ""
    escalated_to: list[str] = field(default_factory=list)
    history: list[WorkOrderEvent] = field(default_factory=list)


_PAST = {"assign": "assigned", "start": "started", "resolve": "resolved",
         "review": "reviewed", "reject": "rejected", "close": "closed"}


class WorkOrderDesk:
    """All work orders of a run, with the overdue timers on the simulation clock."""

    def __init__(self, policy: WorkOrderPolicy, routing: RoutingTable,
                 levels: list[str]) -> None:
        self.policy = policy
        self.routing = routing
        self.levels = levels
        self.orders: dict[str, WorkOrder] = {}
        self.by_warning: dict[str, str] = {}
        self._timers: list[tuple[float, int, str, str]] = []  # (due, seq, order id, rule)
        self._seq = 0
        self.now_s = 0.0

    # -- from warnings ----------------------------------------------------------------------
    def on_warning(self, w: WarningEvent) -> list[WorkOrderEvent]:
        """Open an order when a warning is raised; follow level changes and cancellations."""
        wo_id = self.by_warning.get(w.warning_id)
        if wo_id is None:
            if w.event not in ("raised", "escalated", "updated", "deescalated"):
                return []
            floor = self.policy.create_from_level
            if floor is not None and w.level < self.levels.index(floor) + 1:
                return []
            return [self._create(w)]
        order = self.orders[wo_id]
        if w.event == "cancelled" and order.state != "closed":
            order.state = "closed"
            return [self._log(order, w.known_at_s, "closed", "platform",
                              f"warning cancelled: {w.reason}")]
        if w.event in ("escalated", "deescalated") and order.state != "closed":
            order.level_name = w.level_name
            deadline = order.created_s + self.policy.deadline_s.get(w.level_name, math.inf)
            note = f"warning now {w.level_name}"
            if deadline < order.deadline_s:
                order.deadline_s = deadline
                self._schedule(deadline + self.policy.escalate_after_deadline_s, wo_id,
                               "deadline")
                note += f"; deadline brought forward to {deadline:g} s"
            return [self._log(order, w.known_at_s, "level_changed", "platform", note)]
        return []

    def _create(self, w: WarningEvent) -> WorkOrderEvent:
        wo_id = f"WO-{w.warning_id}"
        deadline = w.known_at_s + self.policy.deadline_s.get(w.level_name, math.inf)
        actions = tuple(self.policy.actions.get(w.hazard, ["investigate on site",
                                                            "make safe", "report back"]))
        lead = w.lead_unit
        if self.routing.units[lead].kind == "city":
            # The city command coordinates a big-loop incident; the sector department still
            # leads the handling, so the order is its to close (and escalates above it).
            lead = self.routing.unit_for(w.hazard, "department")
        order = WorkOrder(wo_id, w.warning_id, w.known_at_s, w.hazard, w.level_name, lead,
                          actions, deadline)
        self.orders[wo_id] = order
        self.by_warning[w.warning_id] = wo_id
        self._schedule(w.known_at_s + self.policy.unassigned_overdue_s, wo_id, "unassigned")
        if math.isfinite(deadline):
            self._schedule(deadline + self.policy.escalate_after_deadline_s, wo_id, "deadline")
        return self._log(order, w.known_at_s, "created", "platform",
                         f"lead {lead}; deadline {deadline:g} s; "
                         f"actions: {', '.join(actions)}")

    # -- actions ----------------------------------------------------------------------------
    def act(self, t_s: float, work_order_id: str, action: str, actor: str,
            note: str = "", handler: str | None = None) -> WorkOrderEvent:
        """Apply a player's/script's action; ValueError if it does not fit the state."""
        order = self.orders.get(work_order_id)
        if order is None:
            known = ", ".join(sorted(self.orders)) or "none"
            raise KeyError(f"no work order {work_order_id!r} (known: {known})")
        if action not in ACTIONS:
            raise ValueError(f"{work_order_id}: unknown action {action!r}; actions are "
                             f"{list(ACTIONS)}")
        if action == "escalate":
            if order.state == "closed":
                raise ValueError(f"{work_order_id}: cannot escalate a closed order")
            return self._escalate(order, t_s, actor, note)
        allowed, to_state = TRANSITIONS[action]
        if order.state not in allowed:
            raise ValueError(f"{work_order_id}: cannot {action} in state {order.state!r} "
                             f"(allowed in {list(allowed)})")
        order.state = to_state
        if action == "assign":
            order.handler = handler or actor
        return self._log(order, t_s, _PAST[action], actor, note)

    # -- clock ------------------------------------------------------------------------------
    def next_due_s(self) -> float:
        """When the next overdue rule may fire (inf if none)."""
        return self._timers[0][0] if self._timers else math.inf

    def advance_to(self, t_s: float) -> list[WorkOrderEvent]:
        """Fire every overdue rule due at or before ``t_s``, in time order."""
        if t_s < self.now_s:
            raise ValueError(f"work-order clock cannot go back from {self.now_s:g} s to "
                             f"{t_s:g} s")
        self.now_s = t_s
        out: list[WorkOrderEvent] = []
        while self._timers and self._timers[0][0] <= t_s:
            due, _, wo_id, rule = heapq.heappop(self._timers)
            order = self.orders[wo_id]
            if rule == "unassigned" and order.state == "created":
                out.append(self._log(order, due, "overdue_unassigned", "platform",
                                     f"no handler assigned "
                                     f"{self.policy.unassigned_overdue_s / 3600:g} h after "
                                     "creation"))
                out.append(self._escalate(order, due))
            elif rule == "deadline" and order.state not in ("reviewed", "closed") and \
                    due == order.deadline_s + self.policy.escalate_after_deadline_s:
                # (a timer left from a deadline since brought forward does not match)
                out.append(self._log(order, due, "overdue_deadline", "platform",
                                     f"open {self.policy.escalate_after_deadline_s / 86400:g} "
                                     "days past its deadline"))
                out.append(self._escalate(order, due))
        return out

    def _escalate(self, order: WorkOrder, t_s: float,
                  actor: str = "platform", note: str = "") -> WorkOrderEvent:
        current = order.escalated_to[-1] if order.escalated_to else order.lead_unit
        up = self.routing.escalation_unit(order.hazard, current)
        order.escalated_to.append(up)
        return self._log(order, t_s, "escalated", actor,
                         f"escalated to {up}" + (f" ({note})" if note else ""))

    def _schedule(self, due_s: float, wo_id: str, rule: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due_s, self._seq, wo_id, rule))

    def _log(self, order: WorkOrder, t_s: float, event: str, actor: str,
             note: str) -> WorkOrderEvent:
        e = WorkOrderEvent(float(t_s), order.work_order_id, event, order.state, actor, note)
        order.history.append(e)
        return e
