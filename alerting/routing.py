"""The routing table: from hazard × level × area to recipient units, lead unit and loop.

Loaded from YAML (``alerting/data/default_routing.yaml`` is the shipped default). Units have
a kind (owner, department, district, city, public); each hazard names its owner unit and
sector department; a *loop* (small / middle / big) names the lead role and the roles told;
routes (first match wins) pick the loop from the level and the area's facts (protected targets
inside, population inside).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import load_yaml_model

DEFAULT_ROUTING = "default"
ROLES = ("owner", "department", "district", "city", "public")
LOOPS = ("small", "middle", "big")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Unit(_Strict):
    name: str
    kind: str = Field(pattern="^(owner|department|district|city|public)$")
    channels: list[str] = Field(default_factory=lambda: ["platform"])


class HazardUnits(_Strict):
    owner: str
    department: str


class Loop(_Strict):
    lead: str = Field(pattern="^(owner|department|district|city)$")
    recipients: list[str] = Field(min_length=1)


class Route(_Strict):
    loop: str = Field(pattern="^(small|middle|big)$")
    hazards: list[str] = Field(default_factory=list)
    levels: list[str] = Field(default_factory=list)
    protected_targets: bool | None = None
    min_population: int = Field(0, ge=0)


class RoutingTable(_Strict):
    """Units, per-hazard owner and department, loops and routes (first match wins)."""

    name: str
    version: int = 1
    units: dict[str, Unit]
    hazards: dict[str, HazardUnits]
    loops: dict[str, Loop]
    routes: list[Route] = Field(min_length=1)
    downstream: str = "downstream"

    @model_validator(mode="after")
    def _consistent(self) -> RoutingTable:
        for hz, hu in self.hazards.items():
            for role in ("owner", "department"):
                unit = getattr(hu, role)
                if unit not in self.units:
                    raise ValueError(f"hazards.{hz}.{role}: unknown unit {unit!r}")
        missing = [lp for lp in LOOPS if lp not in self.loops]
        if missing:
            raise ValueError(f"loops: missing {missing}")
        for name, loop in self.loops.items():
            bad = [r for r in loop.recipients if r not in ROLES]
            if bad:
                raise ValueError(f"loops.{name}.recipients: unknown role(s) {bad}; "
                                 f"roles are {list(ROLES)}")
        for kind in ("district", "city", "public"):
            if not any(u.kind == kind for u in self.units.values()):
                raise ValueError(f"units: no unit of kind {kind!r}")
        return self

    def check_covers(self, hazards: list[str], levels: list[str], source: str) -> None:
        """Raise InputError if some hazard has no units or some level matches no route."""
        for hz in sorted(set(hazards)):
            if hz not in self.hazards:
                raise InputError(source, f"no owner/department for hazard {hz!r}; known: "
                                 f"{sorted(self.hazards)}", field="hazards")
            for lv in levels:
                if not any(self._matches(r, hz, lv, None, None) for r in self.routes):
                    raise InputError(source, f"no route for hazard {hz!r} at level {lv!r} "
                                     "(add a route without area conditions)", field="routes")

    @staticmethod
    def _matches(route: Route, hazard: str, level: str, has_targets: bool | None,
                 population: int | None) -> bool:
        if route.hazards and hazard not in route.hazards:
            return False
        if route.levels and level not in route.levels:
            return False
        if route.protected_targets is not None and has_targets is not route.protected_targets:
            return False
        return not (route.min_population and (population is None
                                              or population < route.min_population))

    def route(self, hazard: str, level: str, *, targets: tuple[str, ...] = (),
              population: int = 0) -> Routing:
        """Loop, lead unit and recipient units for a warning (first matching route)."""
        for r in self.routes:
            if self._matches(r, hazard, level, bool(targets), population):
                loop = self.loops[r.loop]
                units = [self.unit_for(hazard, role) for role in loop.recipients]
                return Routing(r.loop, self.unit_for(hazard, loop.lead),
                               tuple(dict.fromkeys(units)), "public" in loop.recipients)
        raise KeyError(f"no route for hazard {hazard!r} at level {level!r}")

    def unit_for(self, hazard: str, role: str) -> str:
        """The unit id playing ``role`` for ``hazard``."""
        if role in ("owner", "department"):
            return getattr(self.hazards[hazard], role)
        return next(uid for uid, u in self.units.items() if u.kind == role)

    def escalation_unit(self, hazard: str, lead_unit: str) -> str:
        """The unit one step up from ``lead_unit``: owner → department → district → city."""
        ladder = [self.unit_for(hazard, r) for r in ("owner", "department", "district", "city")]
        if lead_unit in ladder:
            return ladder[min(ladder.index(lead_unit) + 1, len(ladder) - 1)]
        return ladder[-1]


@dataclass(frozen=True)
class Routing:
    loop: str
    lead_unit: str
    recipients: tuple[str, ...]
    public: bool


def load_routing(source: str | Path = DEFAULT_ROUTING) -> RoutingTable:
    """Load a routing table from a YAML path, or the shipped default for ``"default"``."""
    return load_yaml_model(source, RoutingTable, "routing table", package="citytwin.alerting",
                           default_resource="data/default_routing.yaml")
