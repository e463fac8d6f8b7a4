"""Cascades: a primary hazard triggering a secondary one, recorded as a chain in the archive.

- **Gas explosion** (``cascades: [{kind: gas_explosion, ...}]``): every ``check_interval_s``
  the gas concentration is sampled in the watched confined spaces (valve wells, junction
  chambers); each space in methane's explosive range (100–300 %LEL) ignites with
  probability 1 − exp(−λ Δt) (λ = ``ignition_rate_per_h``), one vectorised draw per check
  from the cascade's own random stream. The first ignition is an explosion: the fuel in the
  space gives a TNT-equivalent charge and blast zones by overpressure
  (physics/explosion.py), and the buildings, people and protected targets inside each zone.
- **Start chains**: a hazard may declare a link written when it starts
  (``HazardDescriptor.start_chain``; a dam breach's outflow floods the valley).

Each link is a ``hazard_chain`` row (parent → child, by which rule) and a timeline line.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import shapely

from citytwin.alerting.impact import ImpactIndex
from citytwin.physics import get_hazard
from citytwin.physics.explosion import (
    DAMAGE_LEVELS_KPA,
    EXPLOSIVE_RANGE_LEL_PCT,
    distance_for_overpressure_m,
    methane_in_space_kg,
    tnt_equivalent_kg,
)
from citytwin.physics.gas import CH4_LEL_QUANTITY
from citytwin.physics.hazard import HazardSpec
from citytwin.scenarios.spec.scenario import GasExplosionCascade, Scenario
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin
from citytwin.twin.seeding import rng_for

#: The quantity a gas-explosion cascade watches.
GAS_QUANTITY = CH4_LEL_QUANTITY


@dataclass(frozen=True)
class PreparedCascade:
    """A gas-explosion rule with its confined spaces located (ids and xyz, m)."""

    rule: GasExplosionCascade
    space_ids: np.ndarray
    xyz_m: np.ndarray


def prepare_cascades(scenario: Scenario, twin: CityTwin, source: str) -> list[PreparedCascade]:
    """Check each cascade rule against the scenario and the twin; locate its spaces."""
    hazards = {h.id: h for h in scenario.hazards}
    out = []
    for k, rule in enumerate(scenario.cascades):
        field = f"cascades.{k}"
        if rule.hazard not in hazards:
            raise InputError(source, f"no hazard {rule.hazard!r} in the scenario (hazards: "
                             f"{sorted(hazards)})", field=f"{field}.hazard")
        kind = hazards[rule.hazard].kind
        if GAS_QUANTITY not in get_hazard(kind).engine.info:
            raise InputError(source, f"hazard {rule.hazard!r} is a {kind}, which makes no "
                             f"{GAS_QUANTITY}; a gas explosion needs a hazard that does",
                             field=f"{field}.hazard")
        if rule.spaces.network not in twin.networks:
            raise InputError(source, f"the twin has no {rule.spaces.network!r} network",
                             field=f"{field}.spaces.network")
        nodes = twin.networks[rule.spaces.network].nodes
        nodes = nodes[nodes["kind"].isin(rule.spaces.node_kinds)]
        if nodes.empty:
            raise InputError(source, f"no {rule.spaces.node_kinds} nodes in the "
                             f"{rule.spaces.network} network", field=f"{field}.spaces.node_kinds")
        x, y = shapely.get_x(nodes.geometry.to_numpy()), shapely.get_y(nodes.geometry.to_numpy())
        z = np.full(len(x), rule.spaces.height_m)  # above ground, as sensor heights are
        out.append(PreparedCascade(rule, nodes["id"].astype(str).to_numpy(dtype=object),
                                   np.column_stack([x, y, z])))
    return out


def cascade_processes(cascades: list[PreparedCascade],
                      scenario: Scenario) -> list[Callable[..., Generator]]:
    """SimPy process factories (each takes the kernel's RunContext) for a run's cascades."""
    procs: list[Callable[..., Generator]] = [_gas_explosion_watch(c) for c in cascades]
    procs += [_start_chain(h) for h in scenario.hazards
              if get_hazard(h.kind).start_chain is not None]
    return procs


def blast_zones(twin: CityTwin, xy_m: tuple[float, float], tnt_kg: float,
                impact: ImpactIndex | None = None) -> dict[str, dict]:
    """Per damage level: radius (m), buildings, population and protected targets inside."""
    impact = impact or ImpactIndex(twin)
    centre = shapely.Point(*xy_m)
    zones = {}
    for level, p_kpa in DAMAGE_LEVELS_KPA.items():
        r = distance_for_overpressure_m(p_kpa, tnt_kg)
        area = centre.buffer(r, quad_segs=32)
        zones[level] = {"overpressure_kpa": p_kpa, "radius_m": round(r, 2),
                        "buildings": impact.buildings_inside(area),
                        "population": impact.population_inside(area),
                        "targets": impact.targets_inside(area)}
    return zones


def _gas_explosion_watch(c: PreparedCascade):
    rule = c.rule
    lo, hi = EXPLOSIVE_RANGE_LEL_PCT

    def watch(ctx) -> Generator:
        rng = rng_for(ctx.run.scenario.seed, "cascade", rule.id)
        p_step = -np.expm1(-rule.ignition_rate_per_h / 3600.0 * rule.check_interval_s)
        hazard = ctx.hazard_by_id[rule.hazard]
        while ctx.env.now <= ctx.duration_s:
            t = float(ctx.env.now)
            hazard.advance_to(t)
            conc = hazard.sample(GAS_QUANTITY, c.xyz_m)
            u = rng.random(len(conc))  # one draw per space per check: a fixed stream
            lit = np.flatnonzero((conc >= lo) & (conc <= hi) & (u < p_step))
            if len(lit):
                k = int(lit[np.argmax(conc[lit])])  # the richest space among those lit
                _explode(ctx, c, k, float(conc[k]), t)
                return
            yield ctx.env.timeout(rule.check_interval_s)

    return watch


def _explode(ctx, c: PreparedCascade, k: int, conc_lel_pct: float, t_s: float) -> None:
    rule = c.rule
    sc = ctx.run.scenario
    fuel_kg = methane_in_space_kg(rule.volume_m3, conc_lel_pct,
                                  sc.weather.air_temperature_c + 273.15, sc.weather.pressure_pa)
    tnt_kg = tnt_equivalent_kg(fuel_kg, rule.efficiency)
    xy = (float(c.xyz_m[k, 0]), float(c.xyz_m[k, 1]))
    zones = blast_zones(ctx.run.twin, xy, tnt_kg, impact=ctx.impact)
    space = str(c.space_ids[k])
    heavy, windows = zones["heavy_building_damage"], zones["window_breakage"]
    detail = (f"explosion in {space} at {conc_lel_pct:.0f} %LEL ({fuel_kg:.3f} kg CH4, "
              f"{tnt_kg:.3f} kg TNT eq.): heavy damage within {heavy['radius_m']:.1f} m "
              f"({heavy['buildings']} buildings, ≈{heavy['population']} people), windows "
              f"within {windows['radius_m']:.1f} m ({windows['buildings']} buildings, "
              f"≈{windows['population']} people, targets {windows['targets'] or 'none'})")
    ctx.record_chain(t_s, rule.hazard, f"{rule.id}:{space}", rule.id, detail)
    ctx.log(t_s, "explosion", detail, {"cascade": rule.id, "space": space, "x_m": xy[0],
                                      "y_m": xy[1], "conc_lel_pct": conc_lel_pct,
                                      "fuel_kg": fuel_kg, "tnt_kg": tnt_kg, "zones": zones})


def _start_chain(h: HazardSpec):
    """The link a hazard declares for its start (``HazardDescriptor.start_chain``: a dam
    breach floods the valley), written when it starts."""
    parent, child, rule, detail = get_hazard(h.kind).start_chain(h)

    def chain(ctx) -> Generator:
        if h.start_s > ctx.duration_s:
            return
        yield ctx.env.timeout(h.start_s - ctx.env.now)
        ctx.record_chain(h.start_s, parent, child, rule, detail)

    return chain
