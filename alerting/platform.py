"""The warning loop, closed: detection → warnings → pushes → work orders → CAP → self-checks.

``Platform`` wraps the detection ``Engine`` with what a city platform does next: each warning
event is pushed to its recipient units (and to the downstream copy whose sync rate is
self-checked), opens or updates a work order, and — for departmental and public warnings —
becomes a CAP 1.2 message. Clock-driven rules (situation updates, work-order overdue rules,
self-checks) run in ``advance_to(t_s)`` on the simulation clock; player or script actions
arrive through ``act``. Everything is deterministic given the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from citytwin.alerting.cap import (
    CapContext,
    CapInput,
    CapMessage,
    CapPublisher,
    HazardCapInfo,
)
from citytwin.alerting.engine import DroppedObservation, Engine
from citytwin.alerting.events import CLOSING, AlarmChange, WarningEvent
from citytwin.alerting.observation import Observation, ObservationBatch
from citytwin.alerting.selfchecks import SelfCheckEvent, SelfCheckPolicy, SelfChecks
from citytwin.alerting.workorders import WorkOrder, WorkOrderDesk, WorkOrderEvent, WorkOrderPolicy
from citytwin.twin.yamlfile import load_yaml_model

#: Actions taken on a warning (the rest act on work orders).
WARNING_ACTIONS = ("acknowledge", "cancel", "confirm", "publish")


class PushPolicy(BaseModel):
    """Delivery of pushes to units and to the downstream copy (simulated channels)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    delivery_probability: float = Field(0.99, ge=0, le=1)
    downstream_delivery_probability: float = Field(0.99, ge=0, le=1)
    #: (shortest, longest) delay of a delivered push (s)
    delay_s: tuple[float, float] = (2.0, 30.0)

    @model_validator(mode="after")
    def _delays(self) -> PushPolicy:
        lo, hi = self.delay_s
        if not 0 <= lo <= hi:
            raise ValueError(f"delay_s must be (shortest, longest) with 0 ≤ shortest ≤ "
                             f"longest, got {self.delay_s}")
        return self


class OperationsPolicy(BaseModel):
    """How the platform operates: work orders, self-checks, pushes, situation updates."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "operations"
    situation_interval_s: float = Field(60.0, gt=0)
    work_orders: WorkOrderPolicy = WorkOrderPolicy()
    self_checks: SelfCheckPolicy = SelfCheckPolicy()
    pushes: PushPolicy = PushPolicy()


def load_operations(source: str = "default") -> OperationsPolicy:
    """Load an operations policy from YAML, or the shipped default for ``"default"``."""
    return load_yaml_model(source, OperationsPolicy, "operations policy",
                           package="citytwin.alerting",
                           default_resource="data/default_operations.yaml")


@dataclass(frozen=True)
class Push:
    time_s: float
    warning_id: str
    warning_index: int | None  # position of the warning event in this run's stream
    unit: str
    channel: str
    delivered: bool
    received_s: float | None


@dataclass
class PlatformOutput:
    alarms: list[AlarmChange] = field(default_factory=list)
    warnings: list[WarningEvent] = field(default_factory=list)
    dropped: list[DroppedObservation] = field(default_factory=list)
    pushes: list[Push] = field(default_factory=list)
    work_orders: list[WorkOrder] = field(default_factory=list)   # newly created
    work_order_events: list[WorkOrderEvent] = field(default_factory=list)
    cap_messages: list[CapMessage] = field(default_factory=list)
    self_checks: list[SelfCheckEvent] = field(default_factory=list)

    def extend(self, other: PlatformOutput) -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))


class Platform:
    """One city platform instance over a sensor inventory (see module docstring)."""

    def __init__(self, engine: Engine, inventory: pd.DataFrame, policy: OperationsPolicy, *,
                 rng: np.random.Generator, cap: CapContext | None = None,
                 start_s: float = 0.0) -> None:
        self.engine = engine
        self.policy = policy
        self.routing = engine.routing
        self.rulebook = engine.rulebook
        self.rng = rng
        policy.work_orders.check_levels(self.rulebook.levels, "<operations policy>")
        self.desk = WorkOrderDesk(policy.work_orders, self.routing, self.rulebook.levels)
        self.cap = CapPublisher(cap) if cap is not None else None
        hazards = self.rulebook.hazards
        if cap is not None:
            for name in hazards:  # a warning never meets a hazard CAP cannot describe
                cap.hazard(name)
        interval = (inventory["interval_s"].astype(float).to_numpy()
                    if "interval_s" in inventory.columns else np.full(len(inventory), 60.0))
        self.checks = SelfChecks(engine.sensor_ids, interval, hazards, policy.self_checks,
                                 start_s=start_s)
        self._next_situation_s = start_s + policy.situation_interval_s
        self._n_warning_events = 0
        self._cap_open: set[str] = set()
        self._cap_last_s: dict[str, float] = {}
        self._members: dict[str, set[str]] = {}
        self._last_alarm_s: dict[str, float] = {}
        self._last_event: dict[str, WarningEvent] = {}
        #: warning id → (time s, actor) of its first acknowledgement by a player
        self.acknowledged: dict[str, tuple[float, str]] = {}

    # -- observations -----------------------------------------------------------------------
    def ingest(self, batch: ObservationBatch) -> PlatformOutput:
        """Feed a batch of observations through detection and the warning loop."""
        got = self.engine.process(batch)
        if len(batch):
            keep = got.accepted
            self.checks.observed(got.sensor_index[keep], batch.received_s[keep],
                                 quality=batch.quality[keep])
        return self._follow(got.alarms, got.warnings, got.dropped)

    def ingest_one(self, observation: Observation) -> PlatformOutput:
        """Feed one observation (same result as a batch of one)."""
        got = self.engine.process_one(observation)
        if not got.dropped:
            received = (observation.time_s if observation.received_s is None
                        else observation.received_s)
            self.checks.observed(np.array([self.engine.position(observation.sensor_id)]),
                                 np.array([float(received)]),
                                 quality=np.array([observation.quality], dtype=np.int8))
        return self._follow(got.alarms, got.warnings, got.dropped)

    def forecast(self, rule_id: str, t_s: float,
                 predicted: dict[str, tuple[float, float]]) -> PlatformOutput:
        """Model-based pre-warning input (see ``Engine.forecast``)."""
        got = self.engine.forecast(rule_id, t_s, predicted)
        return self._follow(got.alarms, got.warnings, [])

    # -- clock and actions ------------------------------------------------------------------
    def next_due_s(self, t_s: float) -> float:
        """When the platform next has clock work to do (situation, overdue, self-checks);
        ``t_s`` itself when something is due now (``advance_to(t_s)`` then clears it)."""
        return min(self._next_situation_s, self.desk.next_due_s(),
                   self.checks.next_due_s(t_s))

    def advance_to(self, t_s: float) -> PlatformOutput:
        """Run the clock-driven rules due at or before ``t_s``."""
        out = PlatformOutput()
        if t_s >= self._next_situation_s:
            while self._next_situation_s <= t_s:
                self._next_situation_s += self.policy.situation_interval_s
            out.extend(self._follow([], self.engine.refresh(t_s), []))
        events = self.desk.advance_to(t_s)
        out.work_order_events.extend(events)
        for e in events:
            if e.event == "escalated":
                order = self.desk.orders[e.work_order_id]
                out.pushes.extend(self._push_units(e.time_s, order.warning_id, None,
                                                   [order.escalated_to[-1]]))
        if self.checks.next_due_s(t_s) <= t_s:  # a self-check changes state now
            out.self_checks.extend(self.checks.check(t_s))
        return out

    def act(self, t_s: float, action: str, target: str, actor: str, note: str = "",
            handler: str | None = None) -> PlatformOutput:
        """A player's or script's action: a work-order action on ``WO-…`` (assign, start,
        resolve, review, reject, close, escalate), or on a warning id: ``acknowledge``,
        ``cancel``, ``confirm`` (an outcome confirming its sensors' alarms) or ``publish`` (a
        public CAP message now, whatever the warning's loop). KeyError for an unknown target,
        ValueError for an action that does not fit its state."""
        out = PlatformOutput()
        if action in WARNING_ACTIONS and target not in self._last_event:
            known = ", ".join(sorted(self._last_event)) or "none"
            raise KeyError(f"no warning {target!r} (known: {known})")
        if action == "cancel":
            event = self.engine.cancel(target, t_s, note or f"cancelled by {actor}")
            out.extend(self._follow([], [event], []))
        elif action == "confirm":
            for sensor in sorted(self._members.get(target, ())):
                self.checks.confirm(sensor, t_s, "outcome")
        elif action == "acknowledge":
            self.acknowledged.setdefault(target, (float(t_s), actor))
        elif action == "publish":
            last = self._last_event[target]
            if last.event in CLOSING:
                raise ValueError(f"{target}: cannot publish, the warning is {last.event}")
            if self.cap is None:
                raise ValueError("CAP publishing is off for this run (outputs.cap: false)")
            message = self._cap_message(replace(last, known_at_s=float(t_s)), public=True)
            out.cap_messages.append(message)
        else:
            out.work_order_events.append(self.desk.act(t_s, target, action, actor, note,
                                                       handler))
        return out

    # -- following warnings -----------------------------------------------------------------
    def _follow(self, alarms: list[AlarmChange], warnings: list[WarningEvent],
                dropped: list[DroppedObservation]) -> PlatformOutput:
        out = PlatformOutput(alarms=list(alarms), warnings=list(warnings), dropped=list(dropped))
        for a in alarms:
            if a.from_level == 0 and a.to_level > 0 and self.engine.has_sensor(a.sensor_id):
                self.checks.alarm(a.sensor_id, a.hazard, a.time_s)
                self._last_alarm_s[a.sensor_id] = a.time_s
        for w in warnings:
            self._last_event[w.warning_id] = w
            index = self._n_warning_events
            self._n_warning_events += 1
            self.checks.warning_issued(w.hazard, w.time_s)
            self._confirm_neighbours(w)
            out.pushes.extend(self._push_units(w.known_at_s, w.warning_id, index,
                                               list(w.recipients)))
            delivered = bool(self.rng.random() < self.policy.pushes.
                             downstream_delivery_probability)
            out.pushes.append(Push(w.known_at_s, w.warning_id, index, self.routing.downstream,
                                   "sync", delivered, w.known_at_s if delivered else None))
            self.checks.push_result(w.known_at_s, delivered, self.routing.downstream)
            events = self.desk.on_warning(w)
            out.work_order_events.extend(events)
            out.work_orders.extend(self.desk.orders[e.work_order_id] for e in events
                                   if e.event == "created")
            message = self._cap_message(w)
            if message is not None:
                out.cap_messages.append(message)
        return out

    def _confirm_neighbours(self, w: WarningEvent) -> None:
        """Two or more sensors in one warning confirm each other's alarms."""
        members = self._members.setdefault(w.warning_id, set())
        members.update(s for s in w.sensors if self.engine.has_sensor(s))
        if len(members) >= 2 and w.event not in CLOSING:
            for s in sorted(members):
                if s in self._last_alarm_s:  # readings reach the platform out of time order
                    self.checks.confirm(s, max(w.time_s, self._last_alarm_s[s]), "neighbour")

    def _push_units(self, t_s: float, warning_id: str, index: int | None,
                    units: list[str]) -> list[Push]:
        out = []
        lo, hi = self.policy.pushes.delay_s
        for unit in units:
            for channel in self.routing.units[unit].channels:
                delivered = bool(self.rng.random() < self.policy.pushes.delivery_probability)
                delay = float(self.rng.uniform(lo, hi))
                out.append(Push(t_s, warning_id, index, unit, channel, delivered,
                                round(t_s + delay, 3) if delivered else None))
        return out

    def _cap_message(self, w: WarningEvent, public: bool = False) -> CapMessage | None:
        """CAP for departmental and public warnings (not the owner-only small loop, unless
        ``public``: a player publishing the warning by hand)."""
        if self.cap is None:
            return None
        opened = w.warning_id in self._cap_open
        if not opened and not public and (w.loop == "small" or w.event in CLOSING):
            return None
        public = public or any(self.routing.units[u].kind == "public" for u in w.recipients)
        names = ", ".join(self.routing.units[u].name for u in w.recipients)
        level_text = w.level_name.upper() if w.level else "ALL CLEAR"
        what = self.cap.ctx.hazard(w.hazard).event.lower()  # as its CAP <event> names it
        targets = ", ".join(w.targets) or "none"
        # Readings from different sensors may reach the platform out of time order; a
        # warning's messages are sent in order, never dated before the previous one.
        sent_s = max(w.known_at_s, self._cap_last_s.get(w.warning_id, -math.inf))
        self._cap_last_s[w.warning_id] = sent_s
        item = CapInput(
            # a warning whose departmental message went out is published by hand as an
            # update of that message, even while its last event is still "raised"
            warning_id=w.warning_id,
            event=("updated" if w.event == "raised" else w.event) if opened else "raised",
            time_s=sent_s, hazard=w.hazard, level=w.level, level_name=w.level_name,
            n_levels=len(self.rulebook.levels),
            headline=f"{level_text} {what} warning {w.warning_id}"[:160],
            description=(f"{what.capitalize()}: level {w.level_name} ({w.reason}). "
                         f"Sensors: {', '.join(w.sensors) or 'none (model forecast)'}. "
                         f"Protected targets inside: {targets}; about {w.population} people "
                         f"inside {w.area_m2 / 1e4:.2f} ha."),
            instruction=_instruction(w, self.cap.ctx.hazard(w.hazard)),
            area_wkt=w.area_wkt, area_desc=f"{what} warning area {w.warning_id}",
            targets=w.targets, population=w.population, recipients=(names,) if names else (),
            public=public, certainty=w.certainty,
            onset_s=w.first_exceedance_s if math.isfinite(w.first_exceedance_s) else None)
        self._cap_open.add(w.warning_id)
        return self.cap.publish(item)


def _instruction(w: WarningEvent, info: HazardCapInfo) -> str:
    if w.event == "cleared":
        return "The danger has passed; follow any remaining instructions of the authorities."
    if w.event == "cancelled":
        return "This warning is withdrawn; no action is needed."
    return info.instruction
