"""Incident replay: archived observations through the warning engine on logical time.

A replay is an ordinary kernel run (``simulate(..., feed=...)``) whose observations come
from an incident (``scenarios.replay_io``) instead of the measurement model:

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
against the warnings of the time (``diff_warnings``; matching rule in its docstring).
"""

from __future__ import annotations

import argparse
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
from citytwin.scenarios.replay.readers import (
    Incident,
    cadence_ticks,
    normalise_warnings,
    read_incident,
)
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


# --- diff -----------------------------------------------------------------------------------

def _per_warning(w: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    rows = []
    for wid, g in w.groupby("warning_id", sort=True):
        g = g.sort_values("known_at_s", kind="stable")
        end = g[g["event"].isin(["cleared", "cancelled"])]
        live = g[~g["event"].isin(["cleared", "cancelled"])]
        rows.append({
            "warning_id": wid, "hazard": str(g["hazard"].iloc[0]),
            "raised_s": float(g["known_at_s"].iloc[0]),
            "end_s": float(end["known_at_s"].iloc[0]) if len(end) else math.inf,
            "max_level": int(live["level"].max()) if len(live) else 0,
            "sensors": set().union(*map(set, g["sensors"])),
            "targets": set().union(*map(set, g["targets"])),
            "cancelled": bool((g["event"] == "cancelled").any()),
            "level_first": level_first(levels, live["known_at_s"], live["level"])})
    return pd.DataFrame(rows)


def diff_warnings(archived: pd.DataFrame, replayed: pd.DataFrame,
                  levels: list[str]) -> list[dict[str, Any]]:
    """Per warning: same, earlier, later, different level, missed or extra, with deltas.

    Matching rule: warnings are summarised per ``warning_id`` (hazard, union of sensors and
    targets over its events, active from its first event to its all-clear/cancellation).
    An archived and a replayed warning *may match* when they have the same hazard, overlap
    in time, and share at least one sensor — or, when either has no sensors (a model-based
    pre-warning), at least one protected target. Pairs are taken greedily, most shared
    sensors + targets first, then smallest difference in raise time; each warning is used
    once. Unmatched archived warnings are *missed*, unmatched replayed ones *extra*.
    Times are ``known_at_s`` (when the warning was issued); deltas are replay − archived.
    """
    a = _per_warning(archived, levels)
    r = _per_warning(replayed, levels)
    pairs = []
    for i, x in enumerate(a.to_dict(orient="records")):
        for j, y in enumerate(r.to_dict(orient="records")):
            if x["hazard"] != y["hazard"]:
                continue
            if x["raised_s"] > y["end_s"] or y["raised_s"] > x["end_s"]:
                continue
            shared = len(x["sensors"] & y["sensors"])
            if not (x["sensors"] and y["sensors"]):
                shared = len(x["targets"] & y["targets"])
            if shared == 0:
                continue
            pairs.append((-shared, abs(x["raised_s"] - y["raised_s"]), i, j))
    used_a, used_r, out = set(), set(), []
    for _, _, i, j in sorted(pairs):
        if i in used_a or j in used_r:
            continue
        used_a.add(i)
        used_r.add(j)
        out.append(_compare(a.iloc[i], r.iloc[j], levels))
    for i in range(len(a)):
        if i not in used_a:
            out.append(_row(a.iloc[i], None, levels, "missed"))
    for j in range(len(r)):
        if j not in used_r:
            out.append(_row(None, r.iloc[j], levels, "extra"))
    return sorted(out, key=lambda d: min(v for v in (d["archived_raised_s"],
                                                      d["replay_raised_s"]) if v is not None))


def _row(x, y, levels: list[str], status: str) -> dict[str, Any]:
    def lv(k: int) -> str | None:
        return levels[k - 1] if k else None

    level_deltas = {}
    for name in levels:
        ta = None if x is None else x["level_first"][name]
        tb = None if y is None else y["level_first"][name]
        level_deltas[name] = {"archived_s": ta, "replay_s": tb,
                              "delta_s": None if ta is None or tb is None else tb - ta}
    return {
        "status": status, "hazard": (x if x is not None else y)["hazard"],
        "archived_id": None if x is None else x["warning_id"],
        "replay_id": None if y is None else y["warning_id"],
        "archived_raised_s": None if x is None else float(x["raised_s"]),
        "replay_raised_s": None if y is None else float(y["raised_s"]),
        "delta_raised_s": (None if x is None or y is None
                           else float(y["raised_s"] - x["raised_s"])),
        "archived_max_level": None if x is None else lv(int(x["max_level"])),
        "replay_max_level": None if y is None else lv(int(y["max_level"])),
        "levels": level_deltas,
        "sensors": sorted((set() if x is None else x["sensors"])
                          | (set() if y is None else y["sensors"])),
    }


def _compare(x, y, levels: list[str]) -> dict[str, Any]:
    parts = []
    d = y["raised_s"] - x["raised_s"]
    if d < 0:
        parts.append("earlier")
    elif d > 0:
        parts.append("later")
    if x["max_level"] != y["max_level"]:
        parts.append("different level")
    elif any(x["level_first"][n] != y["level_first"][n] for n in levels):
        parts.append("level timing differs")
    return _row(x, y, levels, ", ".join(parts) or "same")


# --- CLI ------------------------------------------------------------------------------------

def _xy(text: str, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(what, f"{text!r} is not x,y[,z] in metres") from None
    if len(vals) not in (2, 3) or not all(math.isfinite(v) for v in vals):
        raise InputError(what, f"{text!r} is not x,y[,z] in metres")
    return vals


def cmd_replay_run(args: argparse.Namespace) -> int:
    """`citytwin replay run`: replay, diff, counterfactuals, report.

    Every input is checked before the output folder is touched: the incident is read, the
    counterfactuals parsed and checked against the inventory, the rulebooks and the twin's
    terrain, the source fitted when a counterfactual needs it — only then is ``--out``
    cleared (``--overwrite``) and written.
    """
    from citytwin.scenarios.replay.counterfactual import Counterfactual, plan_investigation
    from citytwin.viewer.investigation_report import write_investigation_report

    out = Path(args.out) if args.out else Path("runs") / "replay"
    inputs = [args.source, args.inventory, args.warnings, args.work_orders, args.twin,
              args.rulebook]
    _check_out(out, inputs, args.overwrite)
    twin = None
    if args.twin is not None:  # loaded once: the inventory's CRS and the replay's twin
        from citytwin.twin.store import load_twin

        twin = load_twin(args.twin)
    inc = read_incident(args.source, inventory=args.inventory, warnings=args.warnings,
                        twin_crs=None if twin is None else twin.crs.to_string(),
                        work_orders=args.work_orders)
    cfs: list[Counterfactual] = []
    if args.rulebook:
        cfs.append(Counterfactual(f"rulebook {Path(args.rulebook).name}",
                                  rulebook=args.rulebook))
    if args.remove:
        ids = [s.strip() for s in args.remove.split(",") if s.strip()]
        cfs.append(Counterfactual(f"remove {', '.join(ids)}", remove=ids))
    if args.add:
        pts = [_xy(a, "--add") for a in args.add]
        cfs.append(Counterfactual("add " + "; ".join(",".join(f"{v:.10g}" for v in p)
                                                     for p in pts), add=pts))
    if args.move:
        moves = {}
        for m in args.move:
            sid, _, pos = m.partition("=")
            if not pos:
                raise InputError("--move", f"{m!r} is not ID=x,y")
            moves[sid] = _xy(pos, "--move")
        cfs.append(Counterfactual("move " + ", ".join(moves), move=moves))
    if args.combined and len(cfs) > 1:
        cfs.append(Counterfactual(
            "all together", rulebook=args.rulebook,
            remove=[c for cf in cfs for c in cf.remove],
            add=[p for cf in cfs for p in cf.add],
            move={k: v for cf in cfs for k, v in cf.move.items()}))
    wind = _xy(args.wind, "--wind")[:2] if args.wind else None
    plan = plan_investigation(inc, counterfactuals=cfs, twin_dir=args.twin,
                              with_model=False if args.no_model else None, wind=wind,
                              twin=twin)
    _fresh_out(out, inputs, args.overwrite)
    inv = plan.run(out)
    html = write_investigation_report(inv, out / "investigation.html")
    print(inv.text_summary())
    print(f"\nInvestigation report: {html}")
    return 0


def _check_out(out: Path, inputs: list[str | None], overwrite: bool) -> None:
    """Refuse (touching nothing) an output folder holding an input, or a non-empty one
    without ``overwrite``."""
    for given in filter(None, inputs):
        if given == "default":
            continue
        path = Path(given).resolve()
        if path == out.resolve() or out.resolve() in path.parents:
            raise InputError("--out", f"{out} holds the input {given}; choose another folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: run folder is not empty; choose another --out or pass "
                              "--overwrite")


def _fresh_out(out: Path, inputs: list[str | None], overwrite: bool) -> None:
    """An empty output folder: refuse a non-empty one unless ``overwrite`` (then clear it),
    and never one holding an input. Call it once every input has been checked."""
    from citytwin.scenarios.run.kernel import prepare_run_dir

    _check_out(out, inputs, overwrite)
    prepare_run_dir(out, overwrite)


def cmd_replay_export(args: argparse.Namespace) -> int:
    """`citytwin replay export`: a run archive as an incident folder."""
    from citytwin.scenarios.replay.readers import export_incident, read_archive_incident

    _check_out(Path(args.out), [args.archive], args.overwrite)
    inc = read_archive_incident(args.archive)  # a bad archive leaves --out untouched
    _fresh_out(Path(args.out), [args.archive], args.overwrite)
    out = export_incident(args.archive, args.out, args.format, incident=inc)
    files = sorted(p.name for p in out.iterdir())
    print(f"Incident folder {out}: {', '.join(files)}")
    return 0


def add_replay_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``citytwin replay run|export`` on the top-level subparsers."""
    p = sub.add_parser("replay", help="replay an incident through the warning engine",
                       description="Replay archived observations on logical time, diff the "
                                   "warnings against those of the time, run counterfactuals.")
    rsub = p.add_subparsers(dest="replay_command", required=True, metavar="SUBCOMMAND")
    r = rsub.add_parser(
        "run", help="replay an incident, diff its warnings, run counterfactuals",
        description="SOURCE: a citytwin archive.sqlite / run folder, an incident folder "
                    "(replay export), or an observations file (with --inventory and --twin). "
                    "Each of --rulebook, --remove, --add, --move is one counterfactual "
                    "(--combined adds one with all of them), reported side by side with the "
                    "replay in OUT/investigation.html.")
    r.add_argument("source", help="archive.sqlite, run folder, incident folder or file")
    r.add_argument("--inventory", help="sensor inventory (GeoJSON or GeoPackage)")
    r.add_argument("--warnings", help="warnings issued at the time (CSV/JSONL or archive)")
    r.add_argument("--work-orders", help="work-order events of the time (CSV/JSONL/Parquet "
                                         "or archive): shown beside the replay's")
    r.add_argument("--twin", help="twin folder (external incidents; overrides a run's twin)")
    r.add_argument("--rulebook", help="counterfactual rulebook YAML (or 'default')")
    r.add_argument("--no-model", action="store_true",
                   help="do not rebuild the scenario's hazard model (buffer areas only)")
    r.add_argument("--remove", help="counterfactual: sensors removed, S1,S2")
    r.add_argument("--add", action="append", metavar="x,y[,z]",
                   help="counterfactual: a sensor added here (fitted model, repeatable)")
    r.add_argument("--move", action="append", metavar="ID=x,y",
                   help="counterfactual: a sensor moved here (fitted model, repeatable)")
    r.add_argument("--combined", action="store_true",
                   help="also run one counterfactual with all the changes together")
    r.add_argument("--wind", metavar="SPEED,FROM_DEG",
                   help="wind for the source fit when the incident has no weather")
    r.add_argument("--out", help="output folder (default runs/replay)")
    r.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    r.set_defaults(func=cmd_replay_run)
    e = rsub.add_parser("export", help="write a run archive as an incident folder",
                        description="observations.<format> + sensors.geojson + warnings.csv "
                                    "+ work_orders.csv + incident.json from a citytwin "
                                    "archive.")
    e.add_argument("archive", help="archive.sqlite or run folder")
    e.add_argument("--out", required=True, help="incident folder to write")
    e.add_argument("--format", choices=["parquet", "csv", "jsonl"], default="parquet")
    e.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    e.set_defaults(func=cmd_replay_export)
