"""Drill plans: the exercise's MSEL (timed injects), objectives and pacing, as YAML.

A plan names a scenario (a YAML path relative to the plan, or an inline mapping, with
optional ``overrides``: dotted path → value, the paths of a study's ``overrides``, e.g.
``weather.stability`` or ``hazards.main-strike.start_s``) and lists injects. Hazard
injects (``hazard_start``, ``hazard_stop``, ``rain_change``) are compiled into the scenario
before it is prepared; sensor-fault injects (``sensor_offline``, ``sensor_stuck``,
``false_alarm``) and information injects (``hotline_call``, ``media_report``, ``message``)
act at their time. Each inject may list the player actions it expects (action, target, time
allowed, objective). A contingency inject fires only if an expected action is still missing
at its deadline. Every check runs before anything is written; errors name the plan file and
the field.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from citytwin.physics import HAZARDS, get_hazard
from citytwin.scenarios.drill.console import PLAYER_ACTIONS, CommandError, make_command
from citytwin.scenarios.spec.scenario import (
    PathError,
    Scenario,
    apply_path,
    parse_scenario,
    split_path,
)
from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import input_error_from, read_yaml_mapping

#: Injects that change a hazard before the run: its start, and those the registered hazards
#: declare (``HazardDescriptor.injects``: a gas release's stop, a storm's rain change).
HAZARD_INJECTS = ("hazard_start",
                  *sorted({k for d in HAZARDS.values() for k in d.injects}))
#: Sensor-fault inject kind → ``ScriptedFaults`` kind.
FAULT_INJECTS = {"sensor_offline": "offline", "sensor_stuck": "stuck",
                 "false_alarm": "false_alarm"}
INFO_INJECTS = ("hotline_call", "media_report", "message")
INJECT_KINDS = HAZARD_INJECTS + tuple(FAULT_INJECTS) + INFO_INJECTS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Objective(_Strict):
    """An exercise objective the after-action report rates (P/S/M/U)."""

    id: str
    title: str
    capability: str = ""       # e.g. the HSEEP core capability it exercises
    unit: str = ""             # unit responsible for corrective actions


class Expected(_Strict):
    """A player action an inject expects, ``within_s`` after the inject (``after: inject``)
    or after the warning it concerns (``after: warning``). ``target`` may use
    ``{warning}`` / ``{work_order}``; empty means any target."""

    id: str | None = None
    action: Literal[PLAYER_ACTIONS]  # type: ignore[valid-type]
    target: str = ""
    within_s: float = Field(gt=0)
    after: Literal["inject", "warning"] = "inject"
    objective: str
    unit: str | None = None    # responsible unit (default: the objective's)


class Contingency(_Strict):
    """Fire the inject only if the expected action ``if_missing`` (an expected ``id``, or
    ``<inject id>.<n>`` for the n-th expected action of an inject, from 1) has not been
    done by ``by_s`` (default: the inject's ``at_s``)."""

    if_missing: str
    by_s: float | None = Field(None, ge=0)


class Inject(_Strict):
    """One MSEL line (see the module docstring for the kinds and their fields)."""

    id: str
    at_s: float = Field(ge=0)
    kind: Literal[INJECT_KINDS]  # type: ignore[valid-type]
    message: str = ""
    source: str = ""                                   # caller, newspaper, …
    location: str | tuple[float, float] | None = None  # place id or [x, y] (m)
    hazard: str | None = None                          # hazard injects
    scale: float | None = Field(None, ge=0)            # rain_change: intensity factor
    sensors: list[str] | None = None                   # sensor faults
    duration_s: float | None = Field(None, gt=0)       # sensor faults (default: to the end)
    value: float | None = None                         # false_alarm / sensor_stuck value
    #: Which warning ``{warning}`` means: ``next`` = the first raised at or after the
    #: inject (for a false alarm: the first naming one of its sensors), ``open`` = the one
    #: open when it fires, or another inject's id = that inject's warning. Default:
    #: ``next`` for hazard and fault injects, else ``open``.
    warning: str | None = None
    expected: list[Expected] = Field(default_factory=list)
    contingency: Contingency | None = None

    @property
    def warning_rule(self) -> str:
        if self.warning is not None:
            return self.warning
        return "next" if self.kind in HAZARD_INJECTS or self.kind in FAULT_INJECTS else "open"


class Pacing(_Strict):
    """How fast the drill clock runs for live players: ``real_time`` or ``accelerated: N``
    (×N); ``paused`` starts it paused; the console is polled every ``poll_s`` of drill
    time."""

    real_time: bool = False
    accelerated: float | None = Field(None, gt=0)
    paused: bool = False
    poll_s: float = Field(5.0, gt=0)

    @model_validator(mode="after")
    def _one(self) -> Pacing:
        if self.real_time and self.accelerated is not None:
            raise ValueError("give at most one of 'real_time' or 'accelerated'")
        return self

    @property
    def speed(self) -> float | None:
        """×N of real time, or None when the plan does not ask for pacing."""
        return 1.0 if self.real_time else self.accelerated


class DrillPlan(_Strict):
    name: str
    description: str = ""
    scenario: str | dict[str, Any]
    overrides: dict[str, Any] = Field(default_factory=dict)
    objectives: list[Objective] = Field(min_length=1)
    msel: list[Inject] = Field(min_length=1)
    pacing: Pacing = Pacing()

    def expected_items(self) -> list[tuple[Inject, int, Expected]]:
        """Every expected action with its inject and position (0-based)."""
        return [(inj, k, e) for inj in self.msel for k, e in enumerate(inj.expected)]


def expected_ref(inject: Inject, k: int, e: Expected) -> str:
    """The reference of an expected action: its ``id``, else ``<inject id>.<k + 1>``."""
    return e.id or f"{inject.id}.{k + 1}"


@dataclass
class LoadedPlan:
    """A validated plan with its compiled scenario (hazard injects applied, mode drill)."""

    plan: DrillPlan
    source: str
    base_dir: Path
    scenario: Scenario
    scenario_source: str
    scenario_dir: Path          # where the scenario's relative paths start

    def expected_by_ref(self) -> dict[str, tuple[Inject, int, Expected]]:
        return {expected_ref(i, k, e): (i, k, e) for i, k, e in self.plan.expected_items()}


def parse_plan(data: object, source: str = "<drill plan>") -> DrillPlan:
    """Validate a plan mapping (schema and internal references)."""
    if not isinstance(data, dict):
        raise InputError(source, "a drill plan must be a YAML mapping")
    try:
        plan = DrillPlan.model_validate(data)
    except ValidationError as exc:
        raise input_error_from(source, exc) from exc
    check_references(plan, source)
    return plan


def check_references(plan: DrillPlan, source: str) -> None:
    """Unique ids, known objectives, contingency references, fields each kind needs."""
    seen: set[str] = set()
    for k, inj in enumerate(plan.msel):
        if inj.id in seen:
            raise InputError(source, f"duplicate inject id {inj.id!r}", field=f"msel.{k}.id")
        seen.add(inj.id)
    objectives = {o.id for o in plan.objectives}
    refs: dict[str, Inject] = {}
    for k, inj in enumerate(plan.msel):
        where = f"msel.{k}"
        need = {"hazard_start": ["hazard"], "hazard_stop": ["hazard"],
                "rain_change": ["hazard", "scale"], "sensor_offline": ["sensors"],
                "sensor_stuck": ["sensors"], "false_alarm": ["sensors", "value"]}
        for name in need.get(inj.kind, []):
            if getattr(inj, name) in (None, []):
                raise InputError(source, f"a {inj.kind} inject needs {name!r}",
                                 field=f"{where}.{name}")
        if inj.kind in HAZARD_INJECTS and inj.contingency is not None:
            raise InputError(source, "a hazard inject cannot be a contingency (hazards are "
                             "compiled into the scenario before the run)",
                             field=f"{where}.contingency")
        if inj.warning not in (None, "next", "open"):
            others = {i.id for i in plan.msel if i.id != inj.id}
            if inj.warning not in others:
                raise InputError(source, f"warning must be 'next', 'open' or the id of "
                                 f"another inject, got {inj.warning!r}",
                                 field=f"{where}.warning")
        for j, e in enumerate(inj.expected):
            if e.objective not in objectives:
                raise InputError(source, f"unknown objective {e.objective!r} (objectives: "
                                 f"{sorted(objectives)})",
                                 field=f"{where}.expected.{j}.objective")
            if e.target:
                try:
                    # (a plan names no handler: any will do for checking the target)
                    make_command(e.action, e.target,
                                 {"handler": "x"} if e.action == "assign" else {})
                except CommandError as exc:
                    raise InputError(source, str(exc),
                                     field=f"{where}.expected.{j}.target") from exc
            ref = expected_ref(inj, j, e)
            if ref in refs:
                raise InputError(source, f"duplicate expected action id {ref!r}",
                                 field=f"{where}.expected.{j}.id")
            refs[ref] = inj
    for k, inj in enumerate(plan.msel):
        c = inj.contingency
        if c is None:
            continue
        if c.if_missing not in refs:
            raise InputError(source, f"no expected action {c.if_missing!r} (known: "
                             f"{sorted(refs)})", field=f"msel.{k}.contingency.if_missing")
        if c.by_s is not None and c.by_s > inj.at_s:
            raise InputError(source, f"by_s {c.by_s:g} is after the inject's at_s "
                             f"{inj.at_s:g}", field=f"msel.{k}.contingency.by_s")


def load_plan(path: str | Path) -> LoadedPlan:
    """Read a plan file, validate it and compile its scenario (nothing is written)."""
    path = Path(path)
    plan = parse_plan(read_yaml_mapping(path, "drill plan"), str(path))
    return compile_plan(plan, str(path), path.parent)


def compile_plan(plan: DrillPlan, source: str, base_dir: Path) -> LoadedPlan:
    """The plan's scenario with its hazard injects applied and mode ``drill``."""
    if isinstance(plan.scenario, str):
        sc_path = Path(plan.scenario)
        if not sc_path.is_absolute():
            sc_path = base_dir / sc_path
        if not sc_path.exists():
            raise InputError(source, f"scenario file {sc_path} does not exist",
                             field="scenario")
        data = read_yaml_mapping(sc_path, "scenario")
        sc_source, sc_base = str(sc_path), sc_path.parent
    else:
        data, sc_source, sc_base = copy.deepcopy(plan.scenario), f"{source}: scenario", base_dir
    data = apply_overrides(data, plan.overrides, source)
    data["mode"] = "drill"
    base = parse_scenario(data, sc_source)
    data = base.model_dump(mode="json")
    ids = [h["id"] for h in data["hazards"]]
    started: set[str] = set()
    for k, inj in enumerate(plan.msel):
        where = f"msel.{k}"
        if inj.at_s > base.duration_s:
            raise InputError(source, f"at_s {inj.at_s:g} is after the end of the drill "
                             f"(duration_s {base.duration_s:g})", field=f"{where}.at_s")
        if inj.kind not in HAZARD_INJECTS:
            continue
        if inj.hazard not in ids:
            raise InputError(source, f"unknown hazard {inj.hazard!r} (the scenario has "
                             f"{ids})", field=f"{where}.hazard")
        h = data["hazards"][ids.index(inj.hazard)]
        if inj.kind == "hazard_start":
            if inj.hazard in started:
                raise InputError(source, f"hazard {inj.hazard!r} is started twice",
                                 field=f"{where}.hazard")
            started.add(inj.hazard)
            h["start_s"] = inj.at_s
        else:  # an inject the hazard's own module declares (its descriptor's ``injects``)
            accepts = get_hazard(h["kind"]).injects
            if inj.kind not in accepts:
                raise InputError(source, f"hazard {inj.hazard!r} ({h['kind']}) does not take "
                                 f"a {inj.kind} inject (it takes: "
                                 f"{', '.join(['hazard_start', *accepts])})",
                                 field=f"{where}.hazard")
            data["hazards"][ids.index(inj.hazard)] = accepts[inj.kind](h, inj.at_s, inj)
    try:
        scenario = parse_scenario(data, sc_source)
    except InputError as exc:
        raise InputError(source, f"after applying the injects: {exc.reason}",
                         field=exc.field) from exc
    return LoadedPlan(plan, source, base_dir, scenario, sc_source, sc_base)


def apply_overrides(data: dict, overrides: dict[str, Any], source: str) -> dict:
    """A copy of the scenario mapping with the plan's ``overrides`` (dotted path → value,
    as in a study's ``overrides``) set; errors name the plan file and ``overrides.<path>``."""
    data = copy.deepcopy(data)
    for path, value in overrides.items():
        try:
            target, parts = split_path(path)
            if target == "rulebook":
                raise PathError("a drill plan sets scenario fields only; name another "
                                "rulebook file with 'rulebook: FILE'")
            apply_path(data, parts, lambda _old, v=value: copy.deepcopy(v))
        except PathError as exc:
            raise InputError(source, f"cannot set the override: {exc}",
                             field=f"overrides.{path}") from exc
    return data


def check_sensors(loaded: LoadedPlan, sensor_ids: set[str]) -> None:
    """Every sensor a fault inject names exists in the prepared run."""
    for k, inj in enumerate(loaded.plan.msel):
        for j, sid in enumerate(inj.sensors or []):
            if sid not in sensor_ids:
                near = sorted(s for s in sensor_ids if s.split(":")[-1] == sid.split(":")[-1])
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise InputError(loaded.source, f"unknown sensor {sid!r} (the run has "
                                 f"{len(sensor_ids)} sensors{hint})",
                                 field=f"msel.{k}.sensors.{j}")


def check_places(loaded: LoadedPlan, place_ids: set[str]) -> None:
    """Every inject location given as a place id exists in the twin."""
    for k, inj in enumerate(loaded.plan.msel):
        if isinstance(inj.location, str) and inj.location not in place_ids:
            raise InputError(loaded.source, f"no place {inj.location!r} in the twin (places: "
                             f"{sorted(place_ids)})", field=f"msel.{k}.location")
