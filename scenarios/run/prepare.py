"""Turn a validated scenario into the objects a run needs, checking everything first.

All input checks happen here, before a run folder or archive exists, so bad input never
leaves a partial archive behind.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from citytwin.alerting.engine import Engine
from citytwin.alerting.platform import OperationsPolicy, load_operations
from citytwin.alerting.routing import RoutingTable, load_routing
from citytwin.alerting.rulebook import Rulebook, load_rulebook
from citytwin.physics.base import HazardEngine
from citytwin.physics.dambreak import DamBreakFlood
from citytwin.physics.flood import LocalInertialFlood
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.leak import orifice_mass_rate_kg_s
from citytwin.physics.plume import GaussianPuffPlume
from citytwin.physics.rainfall import RainSeries, chicago_storm
from citytwin.scenarios.run.cascade import PreparedCascade, prepare_cascades
from citytwin.scenarios.spec.scenario import (
    DamBreakHazard,
    FloodModel,
    GasPlumeHazard,
    Rain,
    Scenario,
    SourceLocation,
    UrbanFloodHazard,
    Weather,
)
from citytwin.sensors_sim.catalogue import SensorType, load_catalogue
from citytwin.sensors_sim.measurement import MeasurementModel
from citytwin.sensors_sim.network import SensorNetwork, place_at_points, place_on_network_nodes
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin
from citytwin.twin.store import load_twin
from citytwin.twin.synthetic import synthetic_city


@dataclass
class PreparedRun:
    """Everything a run needs, built and validated."""

    scenario: Scenario
    source: str
    twin: CityTwin
    hazards: list[HazardEngine]
    hazard_notes: dict[str, dict]
    network: SensorNetwork
    catalogue: dict[str, SensorType]
    measurement: MeasurementModel | None  #: None in a replay (observations are given)
    rulebook: Rulebook
    rulebook_source: str
    routing: RoutingTable
    operations: OperationsPolicy
    cascades: list[PreparedCascade] = field(default_factory=list)


def load_scenario_twin(scenario: Scenario, base_dir: Path, source: str) -> CityTwin:
    """The twin the scenario names: a synthetic city, or a saved twin folder."""
    if scenario.twin.synthetic is not None:
        try:
            return synthetic_city(scenario.twin.synthetic.seed, scenario.twin.synthetic.size)
        except ValueError as exc:
            raise InputError(source, str(exc), field="twin.synthetic.size") from exc
    path = Path(scenario.twin.path)
    if not path.is_absolute():
        path = base_dir / path
    if not path.exists():
        raise InputError(source, f"twin folder {path} does not exist", field="twin.path")
    return load_twin(path)


def resolve_source_xy(twin: CityTwin, loc: SourceLocation, source: str,
                      field: str) -> tuple[tuple[float, float], str]:
    """Position of a release and a description of where it is."""
    if loc.xy_m is not None:
        x, y = loc.xy_m
        if not bool(twin.terrain.contains(np.array([x]), np.array([y]))[0]):
            raise InputError(source, f"point {loc.xy_m} lies outside the terrain "
                             f"{twin.terrain.bounds}", field=f"{field}.xy_m")
        return (float(x), float(y)), f"point ({x:.1f}, {y:.1f})"
    if loc.network not in twin.networks:
        raise InputError(source, f"the twin has no {loc.network!r} network "
                         f"(it has {sorted(twin.networks)})", field=f"{field}.network")
    nodes = twin.networks[loc.network].nodes
    if loc.node is not None:
        hit = nodes[nodes["id"].astype(str) == loc.node]
        if hit.empty:
            raise InputError(source, f"no node {loc.node!r} in the {loc.network} network",
                             field=f"{field}.node")
        p = hit.geometry.iloc[0]
        return (p.x, p.y), f"{hit['kind'].iloc[0]} {loc.node}"
    places = twin.places[twin.places["id"].astype(str) == loc.near_place]
    if places.empty:
        raise InputError(source, f"no place {loc.near_place!r} in the twin",
                         field=f"{field}.near_place")
    cand = nodes if loc.node_kind is None else nodes[nodes["kind"] == loc.node_kind]
    if cand.empty:
        raise InputError(source, f"no {loc.node_kind!r} nodes in the {loc.network} network",
                         field=f"{field}.node_kind")
    target = places.geometry.iloc[0]
    d = shapely.distance(cand.geometry.to_numpy(), target)
    k = int(np.argmin(d))  # ties resolved by row order: deterministic
    p = cand.geometry.iloc[k]
    return (p.x, p.y), f"{cand['kind'].iloc[k]} {cand['id'].iloc[k]} near {loc.near_place}"


def wind_series(weather: Weather) -> WindSeries:
    """The scenario's wind points as a forcing series."""
    w = weather.wind
    return WindSeries(times_s=np.array([p.t_s for p in w], float),
                      speed_m_s=np.array([p.speed_m_s for p in w], float),
                      from_deg=np.array([p.from_deg for p in w], float))


def plume_engine(weather: Weather, xy_m: tuple[float, float], height_m: float,
                 release: ReleaseSchedule) -> GaussianPuffPlume:
    """A puff-plume engine for a release at ``xy_m`` in the scenario's weather."""
    return GaussianPuffPlume(
        source_xy_m=xy_m, source_height_m=height_m, release=release,
        wind=wind_series(weather), stability=weather.stability, terrain=weather.terrain,
        temperature_k=weather.air_temperature_c + 273.15, pressure_pa=weather.pressure_pa)


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


def build_gas_plume(h: GasPlumeHazard, k: int, scenario: Scenario, twin: CityTwin,
                    source: str) -> tuple[GaussianPuffPlume, dict]:
    """A puff-plume engine for one gas release."""
    xy, where = resolve_source_xy(twin, h.source, source, f"hazards.{k}.source")
    temperature_k = scenario.weather.air_temperature_c + 273.15
    if h.release.rate_kg_s is not None:
        rate = h.release.rate_kg_s
    else:
        rate = float(orifice_mass_rate_kg_s(
            h.release.pressure_kpa_gauge * 1e3, h.release.hole_diameter_mm * 1e-3,
            temperature_k=temperature_k, discharge_coefficient=h.release.discharge_coefficient,
            ambient_pa=scenario.weather.pressure_pa))
    engine = plume_engine(scenario.weather, xy, h.height_m, ReleaseSchedule.constant(
        h.start_s, math.inf if h.stop_s is None else h.stop_s, rate))
    note = {"id": h.id, "kind": h.kind, "where": where, "xy_m": [round(xy[0], 2),
            round(xy[1], 2)], "rate_kg_s": rate, "start_s": h.start_s, "stop_s": h.stop_s,
            "summary": f"gas_plume release starts at {where} ({rate:.3f} kg/s)"}
    return engine, note


def _flood_kwargs(m: FloodModel) -> dict:
    return {"buildings": m.buildings, "drains": m.drains, "manning_n": m.manning_n,
            "infiltration_mm_h": m.infiltration_mm_h, "boundaries": m.boundaries,
            "cfl": m.cfl}


def build_urban_flood(h: UrbanFloodHazard, k: int, twin: CityTwin,
                      source: str) -> tuple[LocalInertialFlood, dict]:
    """A 2D flood engine on the twin's DEM with the scenario's rain from ``start_s``."""
    where = f"hazards.{k}"
    try:
        times, mm_h, what = rain_series(h.rain)
        rain = RainSeries(np.asarray(times, float) + h.start_s, np.asarray(mm_h, float))
        engine = LocalInertialFlood.from_twin(twin, rain=rain, source=f"{source}: {where}",
                                              **_flood_kwargs(h.model))
    except (ValueError, InputError) as exc:
        raise InputError(source, str(exc), field=f"{where}.rain") from exc
    total_mm = float(rain.depth_m(float(rain.times_s[0]), float(rain.times_s[-1]))) * 1e3
    peak = float(np.max(rain.intensity_mm_h))
    note = {"id": h.id, "kind": h.kind, "start_s": h.start_s, "rain_total_mm": total_mm,
            "rain_peak_mm_h": peak,
            "summary": f"rain starts: {what}, {total_mm:.0f} mm, peak {peak:.0f} mm/h"}
    return engine, note


def build_dam_break(h: DamBreakHazard, k: int, scenario: Scenario, twin: CityTwin,
                    source: str) -> tuple[DamBreakFlood, dict]:
    """A dam-break flood: the twin's reservoir breaches at ``start_s``."""
    try:
        engine = DamBreakFlood.from_twin(
            twin, dam_id=h.dam, pool_id=h.pool, mode=h.mode, growth=h.growth,
            start_s=h.start_s, initial_level_m=h.initial_level_m,
            final_bottom_width_m=h.breach_width_m, formation_time_s=h.formation_time_s,
            duration_s=max(scenario.duration_s - h.start_s, 60.0),
            source=f"{source}: hazards.{k}", **_flood_kwargs(h.model))
    except InputError as exc:
        raise InputError(source, exc.reason, field=f"hazards.{k}.{exc.field or 'dam'}") from exc
    b = engine.breach
    bands = engine.regressions
    band = (f"; regression band {min(bands.values()):,.0f}–{max(bands.values()):,.0f} m³/s"
            if bands else "")
    note = {"id": h.id, "kind": h.kind, "start_s": h.start_s, "mode": h.mode,
            "breach_width_m": b.breach.bottom_width_m,
            "formation_time_s": b.breach.formation_time_s,
            "peak_outflow_m3_s": b.peak_q_m3_s, "peak_t_s": b.peak_t_s,
            "released_m3": b.released_m3, "regressions": bands,
            "summary": f"{h.dam} breach starts ({h.mode}, {h.growth} growth): peak outflow "
                       f"{b.peak_q_m3_s:,.0f} m³/s at T+{b.peak_t_s / 60:.0f} min{band}"}
    return engine, note


def build_network(scenario: Scenario, twin: CityTwin, catalogue: dict[str, SensorType],
                  source: str) -> SensorNetwork:
    """Place every sensor group of the scenario on the twin."""
    parts = []
    for k, g in enumerate(scenario.sensors.groups):
        field = f"sensors.groups.{k}"
        if g.type not in catalogue:
            raise InputError(source, f"unknown sensor type {g.type!r} (catalogue has "
                             f"{sorted(catalogue)})", field=f"{field}.type")
        pl = g.placement
        if pl.points is not None or pl.places is not None:
            if pl.points is not None:
                ids = [p.id for p in pl.points]
                xy = np.array([p.xy_m for p in pl.points], dtype=float).reshape(-1, 2)
            else:
                known = twin.places.set_index(twin.places["id"].astype(str))
                missing = [p for p in pl.places if p not in known.index]
                if missing:
                    raise InputError(source, f"no place(s) {missing} in the twin",
                                     field=f"{field}.placement.places")
                pts = known.loc[pl.places].geometry.representative_point()
                ids, xy = list(pl.places), np.column_stack([pts.x, pts.y])
            outside = ~twin.terrain.contains(xy[:, 0], xy[:, 1]) if len(xy) else []
            if np.any(outside):
                raise InputError(source, f"sensor {ids[int(np.flatnonzero(outside)[0])]!r} "
                                 "lies outside the twin's terrain",
                                 field=f"{field}.placement")
            net = place_at_points(ids, xy[:, 0], xy[:, 1], type_id=g.type, group_id=g.id,
                                  interval_s=g.interval_s, height_m=pl.height_m,
                                  id_prefix=f"{g.id}:", catalogue=catalogue,
                                  source=f"{source}: {field}")
            parts.append(net)
            continue
        if pl.network not in twin.networks:
            raise InputError(source, f"the twin has no {pl.network!r} network",
                             field=f"{field}.placement.network")
        net = place_on_network_nodes(
            twin, network=pl.network, node_kinds=tuple(pl.node_kinds),
            type_id=g.type, group_id=g.id, interval_s=g.interval_s,
            height_m=pl.height_m, min_link_age_years=pl.min_link_age_years,
            year=scenario.start.year, id_prefix=f"{g.id}:", catalogue=catalogue,
            lowest=pl.lowest)
        if len(net) == 0:
            raise InputError(source, "placement matches no node of the twin",
                             field=f"{field}.placement")
        parts.append(net)
    return SensorNetwork.concat(*parts)


def inventory_frame(network: SensorNetwork) -> pd.DataFrame:
    """The sensor table the alerting engine and the archive read."""
    return network.table.copy()


def build_hazards(scenario: Scenario, twin: CityTwin,
                  source: str) -> tuple[list[HazardEngine], dict[str, dict]]:
    """Fresh hazard engines for the scenario's hazards (in order) and a note on each."""
    hazards: list[HazardEngine] = []
    notes: dict[str, dict] = {}
    for k, h in enumerate(scenario.hazards):
        if h.start_s >= scenario.duration_s:
            raise InputError(source, f"start_s {h.start_s:g} is not within the run "
                             f"(duration_s {scenario.duration_s:g})", field=f"hazards.{k}.start_s")
        if h.kind == "gas_plume":
            engine, note = build_gas_plume(h, k, scenario, twin, source)
        elif h.kind == "urban_flood":
            engine, note = build_urban_flood(h, k, twin, source)
        else:
            engine, note = build_dam_break(h, k, scenario, twin, source)
        hazards.append(engine)
        notes[h.id] = note
    return hazards, notes


def prepare(scenario: Scenario, *, source: str = "<scenario>",
            base_dir: Path | None = None) -> PreparedRun:
    """Build and check everything for a run; raise InputError before anything is written."""
    base_dir = base_dir or Path.cwd()
    twin = load_scenario_twin(scenario, base_dir, source)
    hazards, notes = build_hazards(scenario, twin, source)
    catalogue = catalogue_for(scenario.sensors.catalogue, base_dir)
    network = build_network(scenario, twin, catalogue, source)
    rulebook_source = settings_path(scenario.rulebook, base_dir)
    rulebook = load_rulebook(rulebook_source)
    routing = load_routing(settings_path(scenario.routing, base_dir))
    routing.check_covers(rulebook.hazards, rulebook.levels, scenario.routing)
    operations = load_operations(settings_path(scenario.operations, base_dir))
    operations.work_orders.check_levels(rulebook.levels, scenario.operations)
    measurement = MeasurementModel(network, catalogue, seed=scenario.seed,
                                   duration_s=scenario.duration_s)
    cascades = prepare_cascades(scenario, twin, source)
    return PreparedRun(scenario, source, twin, hazards, notes, network, catalogue, measurement,
                       rulebook, rulebook_source, routing, operations, cascades)


def settings_path(name: str, base_dir: Path) -> str:
    """A settings file named in a scenario (rulebook, routing, operations, sensor
    catalogue): ``default`` stays ``default``; a path is taken relative to ``base_dir`` (the
    scenario's folder) unless absolute."""
    if name == "default" or Path(name).is_absolute():
        return name
    return str(Path(base_dir) / name)


def catalogue_for(name: str | None, base_dir: Path) -> dict[str, SensorType]:
    """The sensor catalogue a scenario names (``sensors.catalogue``; None or ``default``:
    the packaged one), resolved like the other settings files."""
    path = settings_path(name or "default", base_dir)
    return load_catalogue(None if path == "default" else path)


def sensor_segments(twin: CityTwin, sensors: pd.DataFrame) -> dict[str, frozenset[str]]:
    """For sensors on network nodes: the ids of the pipe links touching their node.

    Two sensors share a segment when they sit on the two end nodes of one link (or on one
    node), which is what corroboration rules mean by "on the same network segment".
    """
    out: dict[str, frozenset[str]] = {}
    for net_name, group in sensors.groupby("asset_network", sort=True):
        net = twin.networks.get(str(net_name))
        if net is None or len(net.links) == 0:
            continue
        links = net.links
        touching: dict[str, set[str]] = {}
        for lid, a, b in zip(links["id"].astype(str), links["from_node"].astype(str),
                             links["to_node"].astype(str), strict=True):
            touching.setdefault(a, set()).add(f"{net_name}:{lid}")
            touching.setdefault(b, set()).add(f"{net_name}:{lid}")
        for sid, node in zip(group["sensor_id"].astype(str), group["asset_id"].astype(str),
                             strict=True):
            out[sid] = frozenset(touching.get(node, ()))
    return out


def make_engine(run: PreparedRun, area_provider=None) -> Engine:
    """The alerting engine for a prepared run."""
    sensors = inventory_frame(run.network)
    watch = pd.DataFrame({"id": [p.id for p in run.scenario.places_of_concern],
                          "x_m": [p.xy_m[0] for p in run.scenario.places_of_concern],
                          "y_m": [p.xy_m[1] for p in run.scenario.places_of_concern]})
    return Engine(run.rulebook, sensors, twin=run.twin, area_provider=area_provider,
                  routing=run.routing, segments=sensor_segments(run.twin, sensors),
                  extra_places=watch, source=run.source)
