"""Hazard ``dam_break``: a breach of the twin's reservoir dam, its outflow routed over the
valley below. Engine: ``physics.dambreak.DamBreakFlood`` (breach growth by Froehlich 2008
unless given, storage routing of the pool, the 2-D flood model downstream).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from citytwin.physics.dambreak import DamBreakFlood
from citytwin.physics.flood_impact import report_flood_impact
from citytwin.physics.hazard import (
    BuildContext,
    CapInfo,
    HazardDescriptor,
    HazardSpec,
    register_hazard,
)
from citytwin.physics.urban_flood import WATER_DEPTH_STYLE, FloodModel, flood_kwargs
from citytwin.twin.errors import InputError

KIND = "dam_break"


class DamBreakSpec(HazardSpec):
    """A breach of the twin's reservoir dam at ``start_s``, flooding the valley below."""

    kind: Literal["dam_break"]
    start_s: float = Field(ge=0)
    dam: str = "R-dam"
    pool: str = "R-pool"
    mode: Literal["overtopping", "piping"] = "piping"
    growth: Literal["linear", "sine"] = "sine"
    initial_level_m: float | None = None
    #: the breach's final bottom width and formation time; None: Froehlich (2008) estimates
    breach_width_m: float | None = Field(None, gt=0)
    formation_time_s: float | None = Field(None, gt=0)
    model: FloodModel = FloodModel(drains=False)


def build(spec: DamBreakSpec, ctx: BuildContext) -> tuple[DamBreakFlood, dict]:
    """A dam-break flood: the twin's reservoir breaches at ``start_s``."""
    try:
        engine = DamBreakFlood.from_twin(
            ctx.twin, dam_id=spec.dam, pool_id=spec.pool, mode=spec.mode, growth=spec.growth,
            start_s=spec.start_s, initial_level_m=spec.initial_level_m,
            final_bottom_width_m=spec.breach_width_m, formation_time_s=spec.formation_time_s,
            duration_s=max(ctx.duration_s - spec.start_s, 60.0),
            source=f"{ctx.source}: {ctx.field}", **flood_kwargs(spec.model))
    except InputError as exc:
        raise ctx.error(exc.reason, exc.field or "dam") from exc
    b = engine.breach
    bands = engine.regressions
    band, outside = "", None
    if bands:
        lo, hi = min(bands.values()), max(bands.values())
        band = f"; regression band {lo:,.0f}–{hi:,.0f} m³/s"
        # a figure outside its own reference range says so (and by how much)
        if b.peak_q_m3_s < lo:
            outside = "below"
            band += (f" — OUTSIDE: {b.peak_q_m3_s / lo:.0%} of its lowest; check the breach "
                     "width and formation time")
        elif b.peak_q_m3_s > hi:
            outside = "above"
            band += (f" — OUTSIDE: {b.peak_q_m3_s / hi:.0%} of its highest; check the breach "
                     "width and formation time")
    note = {"id": spec.id, "kind": spec.kind, "start_s": spec.start_s, "mode": spec.mode,
            "breach_width_m": b.breach.bottom_width_m,
            "formation_time_s": b.breach.formation_time_s,
            "peak_outflow_m3_s": b.peak_q_m3_s, "peak_t_s": b.peak_t_s,
            "released_m3": b.released_m3, "regressions": bands,
            "outside_regression_band": outside,
            "summary": f"{spec.dam} breach starts ({spec.mode}, {spec.growth} growth): peak "
                       f"outflow {b.peak_q_m3_s:,.0f} m³/s at T+{b.peak_t_s / 60:.0f} min{band}"}
    return engine, note


def breach_chain(spec: DamBreakSpec) -> tuple[str, str, str, str]:
    """The cascade link written when the breach starts: breach → flood of the valley."""
    return (f"{spec.id}:breach of {spec.dam}", f"{spec.id}:flood",
            "breach outflow routed over the terrain",
            f"{spec.mode} breach of {spec.dam} releases {spec.pool} into the valley")


DESCRIPTOR = register_hazard(HazardDescriptor(
    kind=KIND,
    title="Dam break",
    spec=DamBreakSpec,
    engine=DamBreakFlood,
    from_spec=build,
    cap=CapInfo(
        categories=("Safety", "Met"),  # a flood, but not a weather product: Safety first
        event="Dam break",
        public_responses=("Evacuate", "Evacuate", "Prepare", "Monitor"),
        instruction="Move to high ground now, away from the river valley; follow evacuation "
                    "routes to the shelters."),
    style=WATER_DEPTH_STYLE,
    example={"id": "breach", "kind": KIND, "start_s": 0.0, "breach_width_m": 20.0,
             "formation_time_s": 600.0},
    impact_summary=report_flood_impact,
    start_chain=breach_chain,
))
