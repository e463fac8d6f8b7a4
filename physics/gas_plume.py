"""Hazard ``gas_plume``: natural gas released at a point (a leaking main, a valve well)
dispersing downwind as Gaussian puffs (engine: ``physics.plume.GaussianPuffPlume``).

The release is a constant mass rate, given or computed from the pipe's gauge pressure and
the hole size by choked/subsonic orifice flow (``physics.leak``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from citytwin.physics.forcing import ReleaseSchedule
from citytwin.physics.gas_plume_fit import GAS_QUANTITY, fit_gas_source
from citytwin.physics.hazard import (
    BuildContext,
    CapInfo,
    HazardDescriptor,
    HazardSpec,
    RenderStyle,
    SourceFit,
    register_hazard,
)
from citytwin.physics.leak import orifice_mass_rate_kg_s
from citytwin.physics.locate import SourceLocation, resolve_source_xy
from citytwin.physics.plume import GaussianPuffPlume
from citytwin.physics.weather import Weather

KIND = "gas_plume"


class Release(BaseModel):
    """Constant release: a mass rate, or a leak from pipe pressure and hole size."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    #: ranges: up to a full-bore rupture of a large transmission main (≈1 000 kg/s at
    #: 7 MPa through 1 m; assumption from the orifice law of physics.leak), gauge pressures
    #: of city networks up to transmission (10 MPa), holes up to the largest mains (1.5 m)
    rate_kg_s: float | None = Field(None, gt=0, le=1000.0)
    pressure_kpa_gauge: float | None = Field(None, gt=0, le=10_000.0)
    hole_diameter_mm: float | None = Field(None, gt=0, le=1500.0)
    discharge_coefficient: float = Field(0.61, gt=0, le=1)

    @model_validator(mode="after")
    def _one(self) -> Release:
        leak = self.pressure_kpa_gauge is not None and self.hole_diameter_mm is not None
        if (self.rate_kg_s is not None) == leak:
            raise ValueError("give either rate_kg_s, or pressure_kpa_gauge with hole_diameter_mm")
        return self


class GasPlumeSpec(HazardSpec):
    """A gas release from ``start_s`` (to ``stop_s``, if given) at ``source``."""

    kind: Literal["gas_plume"]
    start_s: float = Field(ge=0)
    stop_s: float | None = None
    source: SourceLocation
    release: Release
    height_m: float = Field(0.5, ge=0)

    @model_validator(mode="after")
    def _times(self) -> GasPlumeSpec:
        if self.stop_s is not None and self.stop_s <= self.start_s:
            raise ValueError("stop_s must be after start_s")
        return self

    def stop_time_s(self) -> float | None:
        return self.stop_s


def release_rate_kg_s(release: Release, weather: Weather) -> float:
    """The release's mass rate (kg/s): as given, or by orifice flow at the air's state."""
    if release.rate_kg_s is not None:
        return release.rate_kg_s
    return float(orifice_mass_rate_kg_s(
        release.pressure_kpa_gauge * 1e3, release.hole_diameter_mm * 1e-3,
        temperature_k=weather.temperature_k,
        discharge_coefficient=release.discharge_coefficient, ambient_pa=weather.pressure_pa))


def build(spec: GasPlumeSpec, ctx: BuildContext) -> tuple[GaussianPuffPlume, dict]:
    """A puff-plume engine for one gas release, and its note."""
    xy, where = resolve_source_xy(ctx.twin, spec.source, ctx.source, f"{ctx.field}.source")
    rate = release_rate_kg_s(spec.release, ctx.weather)
    release = ReleaseSchedule.constant(
        spec.start_s, math.inf if spec.stop_s is None else spec.stop_s, rate)
    engine = GaussianPuffPlume.in_weather(ctx.weather, xy, spec.height_m, release)
    note = {"id": spec.id, "kind": spec.kind, "where": where,
            "xy_m": [round(xy[0], 2), round(xy[1], 2)], "rate_kg_s": rate,
            "start_s": spec.start_s, "stop_s": spec.stop_s,
            "summary": f"gas_plume release starts at {where} ({rate:.3f} kg/s)"}
    return engine, note


def _stop(entry: dict, at_s: float, inject) -> dict:
    """Drill inject ``hazard_stop``: the release ends at drill time ``at_s``."""
    return {**entry, "stop_s": at_s}


DESCRIPTOR = register_hazard(HazardDescriptor(
    kind=KIND,
    title="Gas leak",
    spec=GasPlumeSpec,
    engine=GaussianPuffPlume,
    from_spec=build,
    cap=CapInfo(
        categories=("Safety", "Fire"),  # flammable gas: the threat is fire / explosion
        event="Gas leak",
        public_responses=("Evacuate", "Avoid", "Prepare", "Monitor"),
        instruction="Keep away from the area; no flames, no switching of electrical "
                    "devices; follow instructions of the gas company and the fire service."),
    style=RenderStyle(quantity="ch4_lel_pct", floor=1.0, top=100.0, log=True,
                      cmap="inferno_r", label="methane %LEL (1.5 m)", lift_m=1.5,
                      crop_m=500.0),
    example={"id": "leak", "kind": KIND, "start_s": 0.0,
             "source": {"node_kind": "valve_well", "near_place": "P-plaza"},
             "release": {"rate_kg_s": 0.5}},
    injects={"hazard_stop": _stop},
    source_fit=SourceFit(quantity=GAS_QUANTITY, fit=fit_gas_source),
))
