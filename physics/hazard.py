"""The hazard descriptor and its registry: everything citytwin needs to know about a hazard
kind, declared once in the hazard's own module.

A hazard is one module in ``physics/`` that builds a ``HazardDescriptor`` and passes it to
``register_hazard``. The descriptor carries, under one ``kind`` name used everywhere
(scenario files, engine registry, rulebook ``hazard``, CAP event, render style, study
metrics):

- ``spec``: the scenario entry (a pydantic model derived from ``HazardSpec``);
- ``from_spec(spec, ctx)``: the engine and a note for the archive, built from the twin, the
  scenario clock, the weather and the hazard's own seeded random stream (``BuildContext``);
- the engine class, whose ``info`` declares each quantity with its units and how values of
  several hazards combine at one point (``sum`` for concentrations and depths, ``max`` for
  temperatures, densities and levels, ``min`` for visibility);
- ``cap``: CAP 1.2 category, event text, public responses and the instruction to people;
- ``style``: how a render draws its field;
- optional hooks: an end-of-run impact summary, drill injects it accepts, a cascade link
  written when it starts, a source fit for replay counterfactuals.

Modelled on Landlab's ``Component._info``: the declaration is checked when registered, and
one parametrised test (``tests/test_hazard_contract.py``) runs every registered hazard from a
scenario entry through the kernel, archive, CAP and render.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from citytwin.physics.base import ENGINES, HazardEngine, register_engine
from citytwin.physics.weather import Weather
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import rng_for

if TYPE_CHECKING:
    from citytwin.twin.model import CityTwin

Combine = Literal["sum", "max", "min"]

#: CAP 1.2 ``<category>`` values (3.3.2).
CAP_CATEGORIES = ("Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env",
                  "Transport", "Infra", "CBRNE", "Other")
#: CAP 1.2 ``<responseType>`` values (3.3.2).
CAP_RESPONSES = ("Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess",
                 "AllClear", "None")


class HazardSpec(BaseModel):
    """A hazard entry of a scenario file. Subclasses add their fields and narrow ``kind``
    to ``Literal["<their kind>"]``; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    id: str
    kind: str
    start_s: float = Field(0.0, ge=0)

    def stop_time_s(self) -> float | None:
        """When the hazard stops being fed (s), if it does; ``None``: runs to the end."""
        return None


@dataclass(frozen=True)
class BuildContext:
    """What ``from_spec`` may use: the twin, the scenario clock, the weather, the hazard's
    own random stream, and where the entry stands (for error messages)."""

    twin: CityTwin
    start: datetime
    duration_s: float
    physics_step_s: float
    weather: Weather
    seed: int
    source: str
    field: str

    def rng(self, hazard_id: str) -> np.random.Generator:
        """The hazard's own stream: keyed by the scenario seed and the hazard id, never by
        creation order."""
        return rng_for(self.seed, "hazard", hazard_id)

    def error(self, reason: str, field: str | None = None) -> InputError:
        """An InputError naming the scenario file and the field under this hazard entry."""
        return InputError(self.source, reason,
                          field=self.field if field is None else f"{self.field}.{field}")


@dataclass(frozen=True)
class CapInfo:
    """How warnings of a hazard read in CAP 1.2 and in public messages."""

    categories: tuple[str, ...]
    event: str
    #: public ``<responseType>`` by level rank from the top (Extreme, Severe, Moderate, Minor)
    public_responses: tuple[str, str, str, str]
    instruction: str


@dataclass(frozen=True)
class RenderStyle:
    """How a render draws a hazard's field (``quantity``, the engine's ``render_quantity``):
    values below ``floor`` are not drawn; ``top`` None means the field's maximum; the field
    floats ``lift_m`` above ground (None: at its own value, a water surface); ``crop_m`` None
    frames the whole twin."""

    quantity: str
    floor: float
    top: float | None
    log: bool
    cmap: str
    label: str
    lift_m: float | None = None
    crop_m: float | None = 500.0


class FittedSource(Protocol):
    """A hazard source fitted to an incident's readings (``SourceFit``): the model a
    replay's counterfactual sensors read, and how to report it."""

    quantity: str

    def engine(self) -> HazardEngine:
        """The fitted hazard engine, fresh at t = 0."""

    def summary(self) -> str:
        """One line for the terminal."""

    def method(self) -> str:
        """How it was fitted, a sentence for a report."""

    def ranking_table(self) -> tuple[list[str], list[list[str]]]:
        """The best candidates: headers and rows of text, best first."""

    def scale_note(self) -> str:
        """What the misfit is measured against."""

    def as_dict(self) -> dict: ...


@dataclass(frozen=True)
class SourceFit:
    """A hazard's source fit for incident replays: ``fit(obs, sensors, weather, *, twin)``
    explains readings of ``quantity`` (``obs``: sensor_id, time_s, value, usable, clipped;
    ``sensors``: the inventory) with the hazard's own model; ValueError when nothing fits."""

    quantity: str
    fit: Callable[..., FittedSource]


BuildFn = Callable[[Any, BuildContext], tuple[HazardEngine, dict]]
ImpactFn = Callable[[HazardEngine, "CityTwin", str, Path], tuple[dict, str]]
#: Drill inject on a hazard entry: (entry mapping, drill time s, inject) → new entry mapping.
InjectFn = Callable[[dict, float, Any], dict]
#: A cascade link when the hazard starts: spec → (parent, child, rule, detail).
ChainFn = Callable[[Any], tuple[str, str, str, str]]


@dataclass(frozen=True)
class HazardDescriptor:
    """One hazard kind, declared in one place (see the module docstring)."""

    kind: str
    title: str
    spec: type[HazardSpec]
    engine: type[HazardEngine]
    from_spec: BuildFn
    cap: CapInfo
    style: RenderStyle
    #: a scenario entry that builds on the small synthetic city (contract test, docs)
    example: Mapping[str, Any]
    impact_summary: ImpactFn | None = None
    injects: Mapping[str, InjectFn] = field(default_factory=dict)
    start_chain: ChainFn | None = None
    source_fit: SourceFit | None = None

    @property
    def quantities(self) -> dict[str, Any]:
        """The engine's declared quantities (``QuantityInfo`` by name)."""
        return dict(self.engine.info)


HAZARDS: dict[str, HazardDescriptor] = {}
"""Registered hazards by kind, in registration order."""


def _fail(kind: str, reason: str) -> TypeError:
    return TypeError(f"hazard {kind!r}: {reason}")


def _check(d: HazardDescriptor) -> None:
    """The declaration is complete and consistent with every hazard registered before."""
    if not (d.kind.isidentifier() and d.kind == d.kind.lower()):
        raise _fail(d.kind, "kind must be a lower-case identifier")
    tag = d.spec.model_fields.get("kind")
    if tag is None or getattr(tag.annotation, "__args__", None) != (d.kind,):
        raise _fail(d.kind, f"{d.spec.__name__}.kind must be Literal[{d.kind!r}]")
    engine_kind = getattr(d.engine, "kind", None)
    if engine_kind != d.kind:
        raise _fail(d.kind, f"engine {d.engine.__name__}.kind is {engine_kind!r}")
    info = getattr(d.engine, "info", None)
    if not isinstance(info, dict) or not info:
        raise _fail(d.kind, f"engine {d.engine.__name__} declares no quantities in 'info'")
    render_q = d.engine.render_quantity or next(iter(info))
    if d.style.quantity != render_q:
        raise _fail(d.kind, f"render style draws {d.style.quantity!r}, but the engine renders "
                            f"{render_q!r} (its render_quantity)")
    bad = [c for c in d.cap.categories if c not in CAP_CATEGORIES]
    bad += [r for r in d.cap.public_responses if r not in CAP_RESPONSES]
    if bad or not d.cap.categories or not d.cap.event or not d.cap.instruction:
        raise _fail(d.kind, f"CAP declaration incomplete or not CAP 1.2 values: {bad}")
    if len(d.cap.public_responses) != 4:
        raise _fail(d.kind, "public_responses needs one response per level rank from the "
                            f"top (4), got {len(d.cap.public_responses)}")
    for name, q in d.engine.info.items():
        if q.combine not in ("sum", "max", "min"):
            raise _fail(d.kind, f"quantity {name!r} combines by {q.combine!r}; "
                                "use sum, max or min")
        for other in HAZARDS.values():
            o = other.engine.info.get(name)
            if o is not None and other.kind != d.kind and (o.units, o.combine) != (
                    q.units, q.combine):
                raise _fail(d.kind, f"quantity {name!r} is {q.units} combined by {q.combine}"
                                    f", but {other.kind} declares {o.units} by {o.combine}")
    try:
        d.spec.model_validate(dict(d.example))
    except ValidationError as exc:
        raise _fail(d.kind, f"its example entry does not validate: {exc}") from None


def register_hazard(d: HazardDescriptor) -> HazardDescriptor:
    """Check ``d`` and add it (and its engine) to the registries; returns it."""
    existing = HAZARDS.get(d.kind)
    if existing is not None and existing is not d:
        if (existing.spec.__module__, existing.spec.__qualname__) != (
                d.spec.__module__, d.spec.__qualname__):
            raise ValueError(f"hazard kind {d.kind!r} already registered by "
                             f"{existing.spec.__module__}")
    _check(d)
    if ENGINES.get(d.kind) is not d.engine:
        register_engine(d.engine)
    HAZARDS[d.kind] = d
    return d


def unregister_hazard(kind: str) -> None:
    """Remove a hazard (tests that register a toy hazard clean up with this)."""
    HAZARDS.pop(kind, None)
    ENGINES.pop(kind, None)


def get_hazard(kind: str) -> HazardDescriptor:
    """The descriptor of ``kind``; KeyError listing the registered kinds otherwise."""
    try:
        return HAZARDS[kind]
    except KeyError:
        raise KeyError(f"unknown hazard kind {kind!r}; registered: "
                       f"{', '.join(HAZARDS) or '(none)'}") from None


def combine_rule(quantity: str) -> Combine:
    """How values of ``quantity`` from several hazards combine at one point."""
    for d in HAZARDS.values():
        q = d.engine.info.get(quantity)
        if q is not None:
            return q.combine
    for engine in ENGINES.values():
        q = engine.info.get(quantity)
        if q is not None:
            return q.combine
    return "sum"


def combine(quantity: str, values: list[np.ndarray], n: int) -> np.ndarray:
    """Combine per-hazard values of ``quantity`` (each shape (n,)) by its declared rule.
    No hazard producing it: zeros for ``sum``/``max`` (nothing there), +inf for ``min``."""
    rule = combine_rule(quantity)
    if not values:
        return np.full(n, math.inf if rule == "min" else 0.0)
    if len(values) == 1:
        return np.asarray(values[0], dtype=float)
    stack = np.vstack(values)
    if rule == "sum":
        return stack.sum(axis=0)
    return stack.max(axis=0) if rule == "max" else stack.min(axis=0)


def sample_hazards(hazards: list[HazardEngine], quantity: str, xyz_m: np.ndarray,
                   t_s: float | None = None) -> np.ndarray:
    """``quantity`` at points ``xyz_m`` (n × 3, m) from every hazard producing it, combined
    by its rule; with ``t_s`` each is advanced there first."""
    values = []
    for h in hazards:
        if quantity in h.info:
            if t_s is not None:
                h.advance_to(t_s)
            values.append(h.sample(quantity, xyz_m))
    return combine(quantity, values, len(xyz_m))
