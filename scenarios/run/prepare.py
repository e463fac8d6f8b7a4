"""Turn a validated scenario into the objects a run needs, checking everything first.

All input checks happen here, before a run folder or archive exists, so bad input never
leaves a partial archive behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.alerting.cap import HazardCapInfo
from citytwin.alerting.engine import Engine
from citytwin.alerting.platform import OperationsPolicy, load_operations
from citytwin.alerting.routing import RoutingTable, load_routing
from citytwin.alerting.rulebook import Rulebook, load_rulebook
from citytwin.physics import HAZARDS, get_hazard
from citytwin.physics.base import HazardEngine
from citytwin.physics.hazard import BuildContext
from citytwin.scenarios.run.cascade import PreparedCascade, prepare_cascades
from citytwin.scenarios.spec.scenario import Scenario
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

    def hazard_descriptions(self) -> dict[str, HazardCapInfo]:
        """How warnings of each hazard the rulebook names read (CAP, public instruction)."""
        return hazard_descriptions(self.rulebook, self.rulebook_source)


def hazard_descriptions(rulebook: Rulebook, source: str) -> dict[str, HazardCapInfo]:
    """Every registered hazard's own CAP description, overridden by the rulebook's
    ``hazard_info``; InputError naming the rulebook if one of its hazards has neither."""
    info: dict[str, HazardCapInfo] = {kind: d.cap for kind, d in HAZARDS.items()}
    info.update(rulebook.hazard_info)
    missing = [h for h in rulebook.hazards if h not in info]
    if missing:
        raise InputError(source, f"hazard(s) {missing} have no physics module and no entry in "
                         f"hazard_info (registered hazards: {', '.join(HAZARDS)})",
                         field="hazard_info")
    return info


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
    """Fresh hazard engines for the scenario's hazards (in order) and a note on each, each
    built by its registered hazard's ``from_spec``."""
    hazards: list[HazardEngine] = []
    notes: dict[str, dict] = {}
    for k, h in enumerate(scenario.hazards):
        if h.start_s >= scenario.duration_s:
            raise InputError(source, f"start_s {h.start_s:g} is not within the run "
                             f"(duration_s {scenario.duration_s:g})", field=f"hazards.{k}.start_s")
        ctx = BuildContext(twin=twin, start=scenario.start, duration_s=scenario.duration_s,
                           physics_step_s=scenario.physics_step_s, weather=scenario.weather,
                           seed=scenario.seed, source=source, field=f"hazards.{k}")
        engine, note = get_hazard(h.kind).from_spec(h, ctx)
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
    hazard_descriptions(rulebook, rulebook_source)
    check_rule_quantities(rulebook, catalogue, rulebook_source)
    routing.check_covers(rulebook.hazards, rulebook.levels, scenario.routing)
    operations = load_operations(settings_path(scenario.operations, base_dir))
    operations.work_orders.check_levels(rulebook.levels, scenario.operations)
    measurement = MeasurementModel(network, catalogue, seed=scenario.seed,
                                   duration_s=scenario.duration_s)
    cascades = prepare_cascades(scenario, twin, source)
    return PreparedRun(scenario, source, twin, hazards, notes, network, catalogue, measurement,
                       rulebook, rulebook_source, routing, operations, cascades)


def check_rule_quantities(rulebook: Rulebook, catalogue: dict[str, SensorType],
                          source: str) -> None:
    """Every sensor type a rule reads measures the rule's quantity: a rule on a quantity its
    sensors do not measure would never see a reading (silently dead)."""
    for k, rule in enumerate(rulebook.rules):
        for t in rule.sensor_types:
            st = catalogue.get(t)
            if st is not None and st.quantity != rule.quantity:
                raise InputError(source, f"rule {rule.id!r} grades {rule.quantity} but its "
                                 f"sensor type {t!r} measures {st.quantity}: it would never "
                                 "see a reading", field=f"rules.{k}.quantity")


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
