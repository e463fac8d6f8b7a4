"""Hazard ``urban_flood``: rain on the city — runoff, ponding in low streets and
underpasses, drains taking their share (waterlogging). Engine: the 2-D local-inertial flood
model on the twin's DEM (``physics.flood.LocalInertialFlood``); rain from a Chicago design
storm or a given series (``physics.rainfall``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from citytwin.physics.flood import LocalInertialFlood
from citytwin.physics.flood_impact import report_flood_impact
from citytwin.physics.hazard import (
    BuildContext,
    CapInfo,
    HazardDescriptor,
    HazardSpec,
    RenderStyle,
    register_hazard,
)
from citytwin.physics.rainfall import RainSeries, chicago_storm
from citytwin.twin.errors import InputError

KIND = "urban_flood"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ChicagoStorm(_Strict):
    """Chicago design storm from a storm-intensity formula i = A(1 + C lg P)/(t + b)^n
    (i in mm/min, t in min). Defaults: Beijing (GB 50014 commentary)."""

    A: float = Field(10.662, gt=0)
    C: float = 0.811
    b: float = Field(8.0, ge=0)
    n: float = Field(0.711, gt=0, lt=1)
    #: ranges: intensity–duration–frequency formulas are fitted for return periods up to a
    #: few hundred years and storm durations up to a day (GB 50014 commentary)
    return_period_yr: float = Field(50.0, gt=0, le=1000.0)
    duration_s: float = Field(7200.0, gt=0, le=86400.0)
    peak_ratio: float = Field(0.4, ge=0, le=1)
    step_s: float = Field(300.0, gt=0, le=3600.0)


class RainSeriesSpec(_Strict):
    """Uniform rain intensity (mm/h) held from each time to the next (s from hazard start)."""

    times_s: list[float] = Field(min_length=1)
    intensity_mm_h: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> RainSeriesSpec:
        if len(self.times_s) != len(self.intensity_mm_h):
            raise ValueError(f"times_s has {len(self.times_s)} entries, intensity_mm_h "
                             f"{len(self.intensity_mm_h)}")
        if any(b <= a for a, b in zip(self.times_s, self.times_s[1:], strict=False)):
            raise ValueError("times_s must strictly increase")
        bad = [v for v in self.intensity_mm_h if not v >= 0]
        if bad:
            raise ValueError(f"rain intensity must be ≥ 0 mm/h, got {bad[0]}")
        return self


class Rain(_Strict):
    chicago: ChicagoStorm | None = None
    series: RainSeriesSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> Rain:
        if (self.chicago is None) == (self.series is None):
            raise ValueError("give exactly one of 'chicago' or 'series'")
        return self


class FloodModel(_Strict):
    """Settings of the 2D flood engine on the twin's DEM grid."""

    buildings: Literal["blocked", "raised"] = "blocked"
    drains: bool = True
    manning_n: float = Field(0.035, gt=0, le=0.3)
    infiltration_mm_h: float = Field(0.0, ge=0)
    boundaries: Literal["closed", "free"] = "free"
    cfl: float = Field(0.5, gt=0, le=1)


class UrbanFloodSpec(HazardSpec):
    """Rain on the city from ``start_s``: runoff, ponding, drains (waterlogging)."""

    kind: Literal["urban_flood"]
    rain: Rain
    model: FloodModel = FloodModel()


def rain_series(rain: Rain) -> tuple[np.ndarray, np.ndarray, str]:
    """(times s from the hazard's start, intensities mm/h, a description) of a rain spec:
    the Chicago design storm computed, or the series given."""
    if rain.chicago is not None:
        c = rain.chicago
        storm = chicago_storm(c.A, c.C, c.b, c.n, c.return_period_yr, c.duration_s,
                              peak_ratio=c.peak_ratio, step_s=c.step_s)
        return (np.asarray(storm.times_s, float), np.asarray(storm.intensity_mm_h, float),
                f"Chicago design storm, {c.return_period_yr:g}-year return period, "
                f"{c.duration_s / 3600:g} h")
    return (np.asarray(rain.series.times_s, float),
            np.asarray(rain.series.intensity_mm_h, float), "rain series")


def flood_kwargs(m: FloodModel) -> dict:
    """The flood engine's keyword arguments for a model block."""
    return {"buildings": m.buildings, "drains": m.drains, "manning_n": m.manning_n,
            "infiltration_mm_h": m.infiltration_mm_h, "boundaries": m.boundaries,
            "cfl": m.cfl}


def build(spec: UrbanFloodSpec, ctx: BuildContext) -> tuple[LocalInertialFlood, dict]:
    """A 2D flood engine on the twin's DEM with the entry's rain from ``start_s``."""
    try:
        times, mm_h, what = rain_series(spec.rain)
        rain = RainSeries(np.asarray(times, float) + spec.start_s, np.asarray(mm_h, float))
        engine = LocalInertialFlood.from_twin(ctx.twin, rain=rain,
                                              source=f"{ctx.source}: {ctx.field}",
                                              **flood_kwargs(spec.model))
    except (ValueError, InputError) as exc:
        raise ctx.error(str(exc), "rain") from exc
    total_mm = float(rain.depth_m(float(rain.times_s[0]), float(rain.times_s[-1]))) * 1e3
    peak = float(np.max(rain.intensity_mm_h))
    note = {"id": spec.id, "kind": spec.kind, "start_s": spec.start_s, "rain_total_mm": total_mm,
            "rain_peak_mm_h": peak,
            "summary": f"rain starts: {what}, {total_mm:.0f} mm, peak {peak:.0f} mm/h"}
    return engine, note


def scaled_rain(entry: dict, at_s: float, scale: float) -> dict:
    """The entry's rain as a series, intensities × ``scale`` from drill time ``at_s``."""
    times, mm_h, _ = rain_series(Rain.model_validate(entry["rain"]))
    rel = at_s - float(entry["start_s"])
    if rel > times[0] and rel not in times:
        k = int(np.searchsorted(times, rel))
        times = np.insert(times, k, rel)
        mm_h = np.insert(mm_h, k, mm_h[k - 1])
    mm_h = np.where(times >= rel, mm_h * scale, mm_h)
    return {"times_s": times.tolist(), "intensity_mm_h": mm_h.tolist()}


def _rain_change(entry: dict, at_s: float, inject) -> dict:
    """Drill inject ``rain_change``: the rain × ``inject.scale`` from drill time ``at_s``."""
    return {**entry, "rain": {"series": scaled_rain(entry, at_s, float(inject.scale))}}


#: Floods are drawn by their maximum depth so far, 5 cm to 1.5 m, over the whole twin.
WATER_DEPTH_STYLE = RenderStyle(quantity="max_depth_m", floor=0.05, top=1.5, log=False,
                                cmap="Blues", label="water depth (m)", lift_m=None, crop_m=None)

DESCRIPTOR = register_hazard(HazardDescriptor(
    kind=KIND,
    title="Urban flood",
    spec=UrbanFloodSpec,
    engine=LocalInertialFlood,
    from_spec=build,
    cap=CapInfo(
        categories=("Met",),
        event="Urban flood",
        public_responses=("Evacuate", "Avoid", "Prepare", "Monitor"),
        instruction="Avoid underpasses, tunnels and low roads; do not drive through water; "
                    "move to higher floors if water rises."),
    style=WATER_DEPTH_STYLE,
    example={"id": "storm", "kind": KIND, "start_s": 0.0,
             "rain": {"series": {"times_s": [0.0, 600.0], "intensity_mm_h": [80.0, 0.0]}}},
    impact_summary=report_flood_impact,
    injects={"rain_change": _rain_change},
))
