"""Incident replay: archived observations through the warning engine on logical time.

A replay is an ordinary kernel run (``simulate(..., feed=...)``) whose observations come
from an incident (``scenarios.replay.incident``) instead of the measurement model:

- a **citytwin run** (its archive or an exported incident folder): the twin, scenario,
  rulebook, routing and operations come from the manifest; each sensor group is one stream
  ticking at the group's cadence, so batches interleave with the platform and forecast
  clocks exactly as in the original run. The scenario's hazard model is rebuilt by default
  (model-based areas and forecasts as at the time): the replay reproduces its own warnings
  exactly. ``with_model=False`` uses buffer areas only, like a real incident.
- an **external incident**: a twin folder (or synthetic spec) and the inventory; one stream
  per ``group_id``, ticking at the distinct received times of its readings; the current
  (default) rulebook unless one is given; no hazard model. With numeric times and no anchor
  the wall clock is unknown (``ReplaySetup.anchor`` None): the kernel runs from a
  placeholder start (``PLACEHOLDER_START``, the Unix epoch) and reports show T+ times only.

Outputs: the replay archive, a "what was known when" timeline (``known_when``) and a diff
against the warnings of the time (``replay.diff.diff_warnings``; matching rule in its
docstring).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.alerting.observation import ObservationBatch
from citytwin.alerting.platform import OperationsPolicy, load_operations
from citytwin.alerting.routing import RoutingTable, load_routing
from citytwin.alerting.rulebook import Rulebook, load_rulebook
from citytwin.scenarios.replay.cadence import cadence_ticks
from citytwin.scenarios.replay.events import normalise_warnings
from citytwin.scenarios.replay.incident import Incident
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.scenarios.run.prepare import (
    PreparedRun,
    build_hazards,
    catalogue_for,
    load_scenario_twin,
)
from citytwin.scenarios.spec.scenario import (
    Outputs,
    Placement,
    Scenario,
    SensorGroup,
    Sensors,
    SyntheticTwin,
    TwinSource,
    Weather,
    WindPoint,
    parse_scenario,
)
from citytwin.sensors_sim.network import SensorNetwork
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin

#: Stream name of counterfactual (model-derived) sensors.
COUNTERFACTUAL_STREAM = "counterfactual"
#: The kernel's start for an incident with no wall-clock anchor (never shown as a time).
PLACEHOLDER_START = datetime(1970, 1, 1, tzinfo=UTC)


# --- the feed ------------------------------------------------------------------------------

class IncidentFeed:
    """An ``ObservationFeed`` over a frame of observations with ``stream`` and ``tick_s``.

    ``streams`` gives each stream's ingestion times; every row's ``tick_s`` must be one of its
    stream's times (the importers snap citytwin readings onto their cadence and name the
    file and row of one that is off it; this is the safety net for frames built by hand).
    Rows keep their frame order within a tick (the original batch order).
    """

    def __init__(self, obs: pd.DataFrame, streams: list[tuple[str, np.ndarray]],
                 source: str = "archive") -> None:
        self._streams = [(name, np.asarray(t, dtype=float)) for name, t in streams]
        self.source = source
        self._data: dict[str, tuple] = {}
        stream_col = obs["stream"].to_numpy(dtype=object)
        for name, times in self._streams:
            rows = obs[stream_col == name]
            tick = rows["tick_s"].to_numpy(dtype=float)
            k = np.searchsorted(times, tick)
            bad = (k >= len(times)) | (times[np.minimum(k, len(times) - 1)] != tick)
            if bad.any():
                raise InputError("<replay feed>", f"stream {name!r}: observation at "
                                 f"{tick[bad][0]:g} s is not on the stream's ticks",
                                 field="time_s")
            order = np.argsort(k, kind="stable")
            k = k[order]
            rows = rows.iloc[order]
            units = rows["unit"].astype(str).to_numpy(dtype=object)
            unit: str | np.ndarray = (str(units[0]) if len(units) and (units == units[0]).all()
                                      else units)
            offsets = np.searchsorted(k, np.arange(len(times) + 1))
            self._data[name] = (
                rows["sensor_id"].to_numpy(dtype=object), rows["time_s"].to_numpy(float),
                rows["value"].to_numpy(float), unit, rows["received_s"].to_numpy(float),
                rows["quality"].to_numpy(np.int8), offsets)
        self.n_observations = int(sum(len(d[0]) for d in self._data.values()))

    def streams(self) -> list[tuple[str, np.ndarray]]:
        """(stream name, increasing ingestion times s)."""
        return list(self._streams)

    def batch(self, stream: str, k: int) -> ObservationBatch:
        """The observations delivered at the k-th time of ``stream``."""
        sid, t, v, unit, rx, q, off = self._data[stream]
        a, b = int(off[k]), int(off[k + 1])
        u = unit if isinstance(unit, str) else unit[a:b]
        return ObservationBatch(sid[a:b], t[a:b], v[a:b], u, rx[a:b], q[a:b], self.source)


def assign_streams(inc: Incident, sensors: pd.DataFrame,
                   duration_s: float) -> tuple[pd.DataFrame, list[tuple[str, np.ndarray]]]:
    """Observations with ``stream``/``tick_s`` columns, and the streams in start order.

    citytwin runs: one stream per cadence group on its clock ticks (a reading is delivered
    at its phenomenon time = the tick; the importers snapped it there). External incidents:
    one stream per group at the distinct received times of its readings.
    """
    gid = sensors.set_index("sensor_id")["group_id"]
    obs = inc.observations.copy()
    obs["stream"] = gid.reindex(obs["sensor_id"]).to_numpy(dtype=object)
    obs = obs[obs["stream"].notna()].reset_index(drop=True)
    streams = []
    if inc.from_citytwin:
        obs["tick_s"] = obs["time_s"]
        interval = sensors.groupby("group_id", sort=True)["interval_s"].first()
        for g, dt in interval.items():
            streams.append((str(g), cadence_ticks(float(dt), duration_s)))
    else:
        obs["tick_s"] = obs["received_s"]
        for g in sorted(set(sensors["group_id"].astype(str))):
            streams.append((g, np.unique(obs.loc[obs["stream"] == g, "tick_s"].to_numpy())))
    return obs, streams


# --- building the run ----------------------------------------------------------------------

@dataclass
class ReplaySetup:
    """What a replay runs: the prepared run and the observations with their streams."""

    run: PreparedRun
    obs: pd.DataFrame
    streams: list[tuple[str, np.ndarray]]
    rulebook_label: str
    with_model: bool
    notes: list[str] = field(default_factory=list)
    #: wall clock of t = 0, None when unknown (numeric times, no anchor): show T+ times only
    anchor: datetime | None = None


def incident_scenario(inc: Incident, twin_dir: str | None, *, wind: tuple[float, float] | None,
                      synthetic: tuple[int, str] | None = None) -> Scenario:
    """The scenario of a replay: the run's own (mode replay) or one made for an incident."""
    if inc.from_citytwin:
        sc = parse_scenario(inc.manifest["scenario"], f"{inc.source}: manifest.scenario")
        update: dict[str, Any] = {"mode": "replay"}
        if twin_dir is not None:
            update["twin"] = TwinSource(path=str(Path(twin_dir).resolve()))
        return sc.model_copy(update=update)
    if twin_dir is None and synthetic is None:
        raise InputError(inc.source, "an external incident needs the twin: --twin DIR or "
                         "--synthetic SEED,SIZE", field="--twin")
    twin = (TwinSource(path=str(Path(twin_dir).resolve())) if twin_dir is not None else
            TwinSource(synthetic=SyntheticTwin(seed=synthetic[0], size=synthetic[1])))
    speed, from_deg = wind if wind is not None else (1.0, 270.0)
    last = float(max(inc.observations["received_s"].max(), inc.observations["time_s"].max()))
    groups = inc.sensors.groupby("group_id", sort=True).agg(
        type_id=("type_id", "first"), interval_s=("interval_s", "first"))
    return Scenario(
        name=f"replay-{Path(inc.source).stem}", mode="replay", twin=twin,
        start=inc.anchor or PLACEHOLDER_START,
        duration_s=math.floor(last) + 1.0, seed=0,
        weather=Weather(wind=[WindPoint(t_s=0, speed_m_s=speed, from_deg=from_deg)]),
        sensors=Sensors(groups=[SensorGroup(id=str(g), type=str(r.type_id),
                                            interval_s=float(r.interval_s),
                                            placement=Placement())
                                for g, r in groups.iterrows()]),
        outputs=Outputs(report=False, render=False, dossiers=False))


def prepare_replay(inc: Incident, *, twin_dir: str | None = None,
                   rulebook: str | None = None, with_model: bool | None = None,
                   wind: tuple[float, float] | None = None,
                   synthetic: tuple[int, str] | None = None,
                   twin: CityTwin | None = None) -> ReplaySetup:
    """A prepared replay run for ``inc``.

    ``rulebook``: None → the rulebook of the time (from a citytwin manifest) or the current
    default; a path or ``default`` → that one. ``with_model``: None → True for citytwin runs
    (rebuild the scenario's hazard model), False otherwise.
    """
    sc = incident_scenario(inc, twin_dir, wind=wind, synthetic=synthetic)
    with_model = inc.from_citytwin if with_model is None else with_model
    if twin is None:
        twin = load_scenario_twin(sc, Path.cwd(), inc.source)
    if twin.crs.to_string() != inc.crs and not inc.from_citytwin:
        raise InputError(inc.source, f"the inventory was read for {inc.crs} but the twin is in "
                         f"{twin.crs.to_string()}", field="crs")
    notes = []
    if inc.anchor is None:
        notes.append("no wall-clock anchor (the observation times are seconds): times are "
                     "T+ from the incident's t = 0; the replay archive's start "
                     f"({PLACEHOLDER_START.isoformat()}) is a placeholder")
    if with_model:
        hazards, hazard_notes = build_hazards(sc, twin, inc.source)
    else:
        hazards, hazard_notes = [], {}
        if sc.hazards:
            notes.append("hazard model not rebuilt: warning areas are sensor buffers")
        sc = sc.model_copy(update={"hazards": []})
    m = inc.manifest
    if rulebook is None and "rulebook" in m:
        rb, label = Rulebook.model_validate(m["rulebook"]), "of the time (archived)"
    else:
        rb, label = load_rulebook(rulebook or "default"), rulebook or "default"
    routing = (RoutingTable.model_validate(m["routing"]) if "routing" in m
               else load_routing("default"))
    operations = (OperationsPolicy.model_validate(m["operations"]) if "operations" in m
                  else load_operations("default"))
    network = SensorNetwork(inc.sensors, source=f"{inc.source}: sensors")
    obs, streams = assign_streams(inc, network.table, sc.duration_s)
    # no measurement model: a run with a feed never samples (the feed brings the readings)
    run = PreparedRun(sc, inc.source, twin, hazards, hazard_notes, network,
                      catalogue_for(sc.sensors.catalogue, Path.cwd()), None, rb,
                      str(rulebook or "archived"), routing, operations)
    return ReplaySetup(run, obs, streams, label, with_model, notes, inc.anchor)


def with_network(setup: ReplaySetup, network: SensorNetwork, obs: pd.DataFrame,
                 streams: list[tuple[str, np.ndarray]], **changes: Any) -> ReplaySetup:
    """A copy of ``setup`` with another sensor network and observations."""
    run = replace(setup.run, network=network, measurement=None, **changes)
    return replace(setup, run=run, obs=obs, streams=streams, notes=list(setup.notes))


# --- running and reading back ---------------------------------------------------------------

@dataclass
class ReplayResult:
    """One replay: its archive, its warnings (``WARNING_FRAME``) and a summary."""

    label: str
    run_dir: Path
    archive_path: Path
    warnings: pd.DataFrame
    summary: dict[str, Any]
    n_observations: int
    wall_s: float


def run_replay(setup: ReplaySetup, run_dir: Path, label: str = "replay", *,
               overwrite: bool = True) -> ReplayResult:
    """Run the kernel with the incident feed into ``run_dir``."""
    from citytwin.scenarios.run.kernel import simulate

    feed = IncidentFeed(setup.obs, setup.streams)
    run = setup.run
    if run.hazards:  # engines are stateful: fresh ones for every run
        hazards, notes = build_hazards(run.scenario, run.twin, run.source)
        run = replace(run, hazards=hazards, hazard_notes=notes)
    result = simulate(run, Path(run_dir), overwrite=overwrite, feed=feed,
                      snapshot=False)
    w = read_table(result.archive_path, "warnings")
    warnings = normalise_warnings(w, str(result.archive_path))
    return ReplayResult(label, Path(run_dir), result.archive_path, warnings,
                        warning_summary(warnings, setup.run.rulebook.levels),
                        result.n_observations, result.wall_s)


def warning_summary(warnings: pd.DataFrame, levels: list[str]) -> dict[str, Any]:
    """Time to the first warning, first time each level was reached, counts."""
    raised = warnings[warnings["event"] != "cancelled"]
    first = float(raised["known_at_s"].min()) if len(raised) else None
    by_level = level_first(levels, raised["known_at_s"], raised["level"])
    max_level = int(raised["level"].max()) if len(raised) else 0
    return {"first_warning_s": first, "level_first_s": by_level,
            "max_level": levels[max_level - 1] if max_level else None,
            "warnings": int(warnings["warning_id"].nunique()),
            "warning_events": len(warnings),
            "first_sensors": (list(raised.sort_values("known_at_s")["sensors"].iloc[0])
                              if len(raised) else [])}


def level_first(levels: Sequence[str], known_at_s: Sequence[float] | np.ndarray,
                level: Sequence[int] | np.ndarray) -> dict[str, float | None]:
    """Per level name: the first time (``known_at_s``) a warning event was at that level or
    above, None if never. ``level`` holds the events' level numbers (1 = ``levels[0]``)."""
    t = np.asarray(known_at_s, dtype=float)
    lv = np.asarray(level, dtype=int)
    return {name: (float(t[lv >= k].min()) if (lv >= k).any() else None)
            for k, name in enumerate(levels, start=1)}


def work_order_summary(events: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per work order (``WORK_ORDER_FRAME`` events): its warning, when it was created, first
    assigned and closed (None if never), and its escalations as (time s, note)."""
    out: dict[str, dict[str, Any]] = {}
    for e in events.sort_values("time_s", kind="stable").itertuples(index=False):
        o = out.setdefault(e.work_order_id, {
            "warning_id": e.warning_id, "created_s": None, "assigned_s": None,
            "closed_s": None, "escalations": []})
        t = float(e.time_s)
        if e.event in ("created", "assigned", "closed") and o[f"{e.event}_s"] is None:
            o[f"{e.event}_s"] = t
        elif e.event == "escalated":
            o["escalations"].append((t, str(e.note)))
    return out


def known_when(archive_path: Path) -> list[dict[str, Any]]:
    """For each warning event of a replay archive: what was known at that moment —
    observations received so far, sensors alarming (rule, level, value) and the warning's
    level, area and targets."""
    w = read_table(archive_path, "warnings").sort_values("seq")
    alarms = read_table(archive_path, "alarms").sort_values("seq")
    obs = read_table(archive_path, "observations")
    rx = np.sort(obs["received_s"].to_numpy())
    sensors_first = obs.groupby("sensor_id")["received_s"].min().sort_values()
    out = []
    for r in w.itertuples(index=False):
        t = float(r.known_at_s)
        known = alarms[alarms["known_at_s"] <= t]
        last = known.groupby(["sensor_id", "rule_id"], sort=True).tail(1)
        active = last[last["to_level"] > 0]
        out.append({
            "known_at_s": t, "time_s": float(r.time_s), "warning_id": r.warning_id,
            "event": r.event, "level_name": r.level_name, "basis": r.basis,
            "area_m2": float(r.area_m2), "area_source": r.area_source,
            "targets": json.loads(r.targets), "sensors": json.loads(r.sensors),
            "observations_received": int(np.searchsorted(rx, t, side="right")),
            "sensors_reporting": int(np.searchsorted(sensors_first.to_numpy(), t,
                                                     side="right")),
            "alarming": [{"sensor_id": a.sensor_id, "rule_id": a.rule_id,
                          "level": int(a.to_level), "value": float(a.value)}
                         for a in active.itertuples(index=False)],
        })
    return out
