"""Scenario files: YAML validated with pydantic; errors name the file and the field path."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from citytwin.physics import HAZARDS
from citytwin.physics.hazard import HazardSpec
from citytwin.physics.weather import Weather, WindPoint
from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import input_error_from, read_yaml_mapping

__all__ = ["HazardSpec", "Scenario", "Weather", "WindPoint", "load_scenario", "parse_scenario"]


class _Strict(BaseModel):
    """Unknown fields are errors: a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SyntheticTwin(_Strict):
    seed: int = 0
    size: str | float = "small"


class TwinSource(_Strict):
    """Either a synthetic city or a saved twin folder (relative to the scenario file)."""

    synthetic: SyntheticTwin | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _one(self) -> TwinSource:
        if (self.synthetic is None) == (self.path is None):
            raise ValueError("give exactly one of 'synthetic' or 'path'")
        return self


def _hazard_union() -> Any:
    """The scenario's hazard entry: one of the registered hazards' specs, told apart by
    ``kind`` (an unknown kind is refused with the registered kinds listed)."""
    specs = tuple(d.spec for d in HAZARDS.values())
    return Annotated[Union[specs], Field(discriminator="kind")]  # noqa: UP007


HazardEntry = _hazard_union()


class PointSpec(_Strict):
    id: str
    xy_m: tuple[float, float]


class Placement(_Strict):
    """Where a group's sensors go: at every node of the given kinds of a network (optionally
    only on old mains, or only the ``lowest`` N nodes: where water ponds first), at named
    places, or at explicit points (river gauges, a reservoir gauge)."""

    network: str = "gas"
    node_kinds: list[str] = Field(default_factory=lambda: ["valve_well"])
    min_link_age_years: float | None = Field(None, ge=0)
    lowest: int | None = Field(None, ge=1)
    places: list[str] | None = None
    points: list[PointSpec] | None = None
    height_m: float = Field(0.5, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Placement:
        if self.places is not None and self.points is not None:
            raise ValueError("give at most one of 'places' or 'points'")
        return self


class SensorGroup(_Strict):
    id: str
    type: str
    interval_s: float | None = Field(None, gt=0)
    placement: Placement


def _unique_ids(items: list) -> list:
    ids = [i.id for i in items]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate id(s) {dupes}")
    return items


class Sensors(_Strict):
    catalogue: str | None = None
    groups: list[SensorGroup] = Field(min_length=1)

    _unique = field_validator("groups")(_unique_ids)


class Outputs(_Strict):
    observations: Literal["all", "none"] = "all"
    report: bool = True
    render: bool = True
    cap: bool = True        # CAP 1.2 files for departmental and public warnings, in cap/
    dossiers: bool = True   # one dossier (JSON + HTML) per incident, in dossiers/


#: Actions a player or script may take: on a work order, on a warning, or on the city
#: (evacuate an area, send a field team to measure).
ACTION_NAMES = ("assign", "start", "resolve", "review", "reject", "close", "escalate",
                "acknowledge", "cancel", "confirm", "publish", "evacuate", "measure")


class Action(_Strict):
    """A scripted player action at ``at_s``: a work-order action on ``WO-<warning id>``, or
    ``cancel`` / ``confirm`` on a warning id (e.g. ``W-0001``)."""

    at_s: float = Field(ge=0)
    action: Literal[ACTION_NAMES]  # type: ignore[valid-type]
    target: str
    actor: str = "player"
    note: str = ""
    handler: str | None = None


class ConfinedSpaces(_Strict):
    """The confined spaces a gas-explosion cascade watches: network nodes of these kinds."""

    network: str = "gas"
    node_kinds: list[str] = Field(default_factory=lambda: ["valve_well", "junction"])
    height_m: float = Field(0.3, ge=0)


class GasExplosionCascade(_Strict):
    """A gas hazard triggering an explosion: while a confined space holds gas in the
    explosive range (100–300 %LEL), it ignites at ``ignition_rate_per_h`` (a Poisson rate:
    sparks, pumps, a smoker); the blast zones follow from the space's fuel (see
    physics/explosion.py). At most one explosion per cascade rule."""

    id: str
    kind: Literal["gas_explosion"]
    hazard: str
    spaces: ConfinedSpaces = ConfinedSpaces()
    ignition_rate_per_h: float = Field(gt=0)
    volume_m3: float = Field(2.0, gt=0)
    efficiency: float = Field(0.1, gt=0, le=1)
    check_interval_s: float = Field(10.0, gt=0)


class Scenario(_Strict):
    name: str
    description: str = ""
    mode: Literal["drill", "what-if", "replay"] = "drill"
    twin: TwinSource
    start: datetime
    duration_s: float = Field(gt=0, le=30 * 86400)
    seed: int = Field(ge=0)
    physics_step_s: float = Field(10.0, gt=0)
    weather: Weather
    hazards: list[HazardEntry] = Field(default_factory=list)
    sensors: Sensors
    rulebook: str = "default"
    routing: str = "default"
    operations: str = "default"
    actions: list[Action] = Field(default_factory=list)
    #: Extra places forecasts watch (with every place of the twin): e.g. the bridges and
    #: hamlets of a dam's emergency plan.
    places_of_concern: list[PointSpec] = Field(default_factory=list)
    #: Secondary hazards a primary one may trigger (recorded as a chain in the archive).
    cascades: list[GasExplosionCascade] = Field(default_factory=list)
    outputs: Outputs = Outputs()

    _unique = field_validator("hazards")(_unique_ids)
    _unique_cascades = field_validator("cascades")(_unique_ids)

    @field_validator("start")
    @classmethod
    def _aware(cls, start: datetime) -> datetime:
        if start.tzinfo is None:
            raise ValueError("needs a UTC offset, e.g. 2026-06-01T08:00:00+08:00")
        return start

    @model_validator(mode="after")
    def _within_the_run(self) -> Scenario:
        """Scripted actions happen within the run (one after its end would silently never
        happen)."""
        for k, act in enumerate(self.actions):
            if act.at_s > self.duration_s:
                raise PydanticCustomError("after_the_run", "{msg}", {
                    "msg": f"actions.{k}.at_s: {act.at_s:g} s is after the end of the run "
                           f"(duration_s {self.duration_s:g})"})
        return self


# --- dotted parameter paths (study overrides and variations, drill overrides) -----------

class PathError(ValueError):
    """A dotted path that does not lead anywhere in the mapping."""


def split_path(path: str) -> tuple[str, list[str]]:
    """(``"rulebook"`` or ``"scenario"``, segments) of a dotted parameter path."""
    parts = path.split(".")
    if any(p == "" for p in parts):
        raise PathError(f"empty segment in {path!r}")
    if parts[0] == "rulebook" and len(parts) > 1:
        return "rulebook", parts[1:]
    return "scenario", parts


def apply_path(root: dict, parts: list[str], fn: Callable[[Any], Any]) -> int:
    """Replace the value(s) at ``parts`` in ``root`` (in place) by ``fn(old)``.

    Segments: a mapping key; a list index; ``*`` for every list element; or, in a list of
    mappings, the element whose ``id`` is the segment (``rules.ch4_site_risk``). A missing
    last key of a mapping is created (``fn`` gets ``None``; the scenario schema still checks
    it). Returns the number of places set.
    """
    def walk(node: Any, k: int, trail: str) -> int:
        seg, last = parts[k], k == len(parts) - 1
        where = trail or "the top level"
        if isinstance(node, dict):
            if seg not in node:
                if not last:
                    raise PathError(f"no field {seg!r} at {where} (has "
                                    f"{sorted(map(str, node))})")
                node[seg] = fn(None)
                return 1
            if last:
                node[seg] = fn(node[seg])
                return 1
            return walk(node[seg], k + 1, f"{trail}.{seg}".lstrip("."))
        if isinstance(node, list):
            if seg == "*":
                idx = list(range(len(node)))
            elif seg.lstrip("-").isdigit():
                i = int(seg)
                if not 0 <= i < len(node):
                    raise PathError(f"index {i} out of range at {where} ({len(node)} items)")
                idx = [i]
            else:
                idx = [i for i, e in enumerate(node) if isinstance(e, dict)
                       and str(e.get("id")) == seg]
                if not idx:
                    raise PathError(f"no item with id {seg!r} at {where}")
            n = 0
            for i in idx:
                if last:
                    node[i] = fn(node[i])
                    n += 1
                else:
                    n += walk(node[i], k + 1, f"{trail}.{i}".lstrip("."))
            return n
        raise PathError(f"{where} is a value ({node!r}), not a mapping or list")

    return walk(root, 0, "")


def clock_text(t_s: float | None, prefix: str = "T+") -> str:
    """Seconds from scenario start as ``T+HH:MM:SS`` (rounded to the second; "—" for None)."""
    if t_s is None:
        return "—"
    t = int(round(t_s))
    return f"{prefix}{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


_REGISTERED: tuple[type[HazardSpec], ...] = tuple(d.spec for d in HAZARDS.values())


def _follow_registry() -> None:
    """Rebuild the schema's hazard entry when hazards were registered after import (a
    plug-in, a test's toy hazard)."""
    global _REGISTERED
    now = tuple(d.spec for d in HAZARDS.values())
    if now != _REGISTERED:
        Scenario.model_fields["hazards"] = FieldInfo.from_annotated_attribute(
            list[_hazard_union()], Field(default_factory=list))
        Scenario.model_rebuild(force=True)
        _REGISTERED = now


def parse_scenario(data: object, source: str = "<scenario>") -> Scenario:
    """Validate a scenario mapping; raise InputError naming ``source`` and the field path."""
    if not isinstance(data, dict):
        raise InputError(source, "a scenario must be a YAML mapping")
    _follow_registry()
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        # pydantic puts the hazard's kind tag in error paths; drop it
        raise input_error_from(source, exc, drop=tuple(HAZARDS)) from exc


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    return parse_scenario(read_yaml_mapping(path, "scenario"), str(Path(path)))
