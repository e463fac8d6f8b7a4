"""The SimPy kernel: SimPy decides *when*, NumPy computes *what*.

Processes: one per physics step clock (advancing every hazard engine), one per sensor
cadence group (one event per tick for the whole group, never one per sensor), one for the
scripted hazard timeline and one for progress reports. Each group tick samples the hazards at
all the group's sensors at once, applies the vectorised measurement model, feeds the received
observations to the alerting engine, and writes the tick to the archive in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np
import shapely
import simpy

from citytwin.alerting.cap import CapContext, write_cap_files
from citytwin.alerting.engine import Engine
from citytwin.alerting.events import WarningEvent
from citytwin.alerting.impact import ImpactIndex
from citytwin.alerting.observation import ObservationBatch
from citytwin.alerting.platform import Platform, PlatformOutput
from citytwin.alerting.rulebook import Forecast
from citytwin.physics import get_hazard
from citytwin.physics.base import FieldGrid, HazardEngine
from citytwin.physics.flood_impact import footprints_of, ring_points
from citytwin.physics.hazard import sample_hazards
from citytwin.scenarios.run.archive import Archive
from citytwin.scenarios.run.cascade import cascade_processes
from citytwin.scenarios.run.prepare import PreparedRun, inventory_frame, make_engine
from citytwin.sensors_sim.scripted_faults import ScriptedFaults
from citytwin.twin.seeding import rng_for, stable_key

LIBRARIES = ("citytwin", "numpy", "scipy", "simpy", "numba", "pandas", "shapely", "pyproj",
             "geopandas", "pydantic")
#: Height (m above ground) at which warning footprints are drawn: breathing height.
FOOTPRINT_HEIGHT_M = 1.5
#: Forecasts watch each place on a ring this far outside it (m).
FORECAST_RING_M = 4.0


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a run's numbers (recorded in the manifest)."""
    out = {"python": ".".join(map(str, sys.version_info[:2]))}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class RunResult:
    run_dir: Path
    archive_path: Path
    timeline: list[tuple[float, str, str, dict]] = field(default_factory=list)
    warnings: list[WarningEvent] = field(default_factory=list)
    n_observations: int = 0
    n_alarms: int = 0
    n_work_order_events: int = 0
    n_escalations: int = 0
    cap_files: list[Path] = field(default_factory=list)
    snapshot: dict[str, FieldGrid] = field(default_factory=dict)
    snapshot_t_s: float = 0.0
    wall_s: float = 0.0


Progress = Callable[[float, float, int], None]  # (sim time s, duration s, observations)

#: A field team's default travel time before a requested measurement is taken (s).
MEASURE_DELAY_S = 600.0


class ObservationFeed(Protocol):
    """Archived observations delivered on logical time instead of sampled ones (replay)."""

    def streams(self) -> list[tuple[str, np.ndarray]]:
        """(stream name, increasing ingestion times s): one SimPy process per stream."""

    def batch(self, stream: str, k: int) -> ObservationBatch:
        """The observations delivered at the ``k``-th time of ``stream`` (may be empty)."""


@dataclass(frozen=True)
class ActionOutcome:
    """What a player command did: ``ok`` False means refused, ``detail`` says why."""

    ok: bool
    detail: str
    data: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """What an extra SimPy process (a drill's injects, a player console, an ensemble's field
    recorder) may use during a run. Everything it does goes through the platform and the
    archive like the run's own processes."""

    env: simpy.Environment
    run: PreparedRun
    platform: Platform
    engine: Engine
    hazards: list[HazardEngine]
    hazard_by_id: dict[str, HazardEngine]
    result: RunResult
    faults: ScriptedFaults
    duration_s: float
    log: Callable[[float, str, str, dict], None]
    _archive: Archive
    _record: Callable
    _impact: ImpactIndex | None = None
    #: every command so far, from players and the scenario's ``actions``:
    #: (time s, action, target, done, actor)
    actions_taken: list[tuple[float, str, str, bool, str]] = field(default_factory=list)

    def inject(self, t_s: float, inject_id: str, kind: str, message: str,
               data: dict | None = None) -> None:
        """Archive a scenario event (MSEL inject) as it fires, with a timeline line."""
        self._archive.write_record("injects", float(t_s), inject_id, kind, message,
                                   data or {})
        self.log(t_s, "inject", f"inject {inject_id} ({kind}): {message}",
                 {"inject_id": inject_id, **(data or {})})

    def record_chain(self, t_s: float, parent: str, child: str, rule: str,
                     detail: str) -> None:
        """Archive a cascade link (a hazard triggering another) with a timeline line."""
        self._archive.write_record("hazard_chain", float(t_s), parent, child, rule, detail)
        self.log(t_s, "hazard_chain", f"cascade {parent} → {child} ({rule})",
                 {"parent": parent, "child": child, "rule": rule})

    def sample(self, quantity: str, xyz_m: np.ndarray, t_s: float | None = None) -> np.ndarray:
        """True hazard value of ``quantity`` at points (n × 3, m), the hazards' values
        combined by the quantity's declared rule (sum, max or min).

        With ``t_s`` the hazards are first advanced to the last physics step at or before it
        (the ``physics_step_s`` grid the physics clock runs on), never to ``t_s`` itself: an
        adaptive-step engine (the flood) cuts its step at every time it is advanced to, so
        sampling at other times would change the run."""
        xyz_m = np.atleast_2d(np.asarray(xyz_m, dtype=float))
        if t_s is not None:
            step = self.run.scenario.physics_step_s
            t_s = math.floor(float(t_s) / step + 1e-9) * step
            for h in self.hazards:
                if quantity in h.info and t_s > h.t_s:
                    h.advance_to(t_s)
        return sample_hazards(self.hazards, quantity, xyz_m)

    def act(self, t_s: float, action: str, target: str, actor: str = "player",
            note: str = "", *, ref: str = "", **args) -> ActionOutcome:
        """A player command through the platform (see ``scenarios.scenario.ACTION_NAMES``),
        archived in ``actions`` whether done or refused; never raises for a refused one.
        ``ref`` names where the command came from (e.g. ``actions.2`` of the scenario) in
        the timeline line."""
        try:
            if action == "evacuate":
                out, outcome = PlatformOutput(), self._evacuate(target)
            elif action == "measure":
                out, outcome = PlatformOutput(), self._measure(t_s, target, actor, **args)
            else:
                out = self.platform.act(t_s, action, target, actor, note, args.get("handler"))
                detail = ", ".join(m.identifier for m in out.cap_messages)
                outcome = ActionOutcome(True, f"CAP {detail}" if detail else "done",
                                        {"cap": [m.identifier for m in out.cap_messages]}
                                        if detail else {})
        except (KeyError, ValueError, TypeError) as exc:
            out = PlatformOutput()
            outcome = ActionOutcome(False, str(exc).strip("'\""))
        self._archive.write_record("actions", float(t_s), actor, action, target,
                                   {**args, **({"note": note} if note else {})},
                                   "done" if outcome.ok else "refused", outcome.detail)
        self.actions_taken.append((float(t_s), action, target, outcome.ok, actor))
        line = ((f"{ref}: " if ref else "") + f"{actor}: {action} {target}"
                + (f" ({note})" if note else "")
                + ("" if outcome.ok else f" — refused: {outcome.detail}"))
        self._record(float(t_s), out, [(float(t_s), "action" if outcome.ok else
                                        "action_refused", line,
                                        {"action": action, "target": target,
                                         **outcome.data})])
        return ActionOutcome(outcome.ok, outcome.detail, outcome.data)

    def _area(self, target: str):
        """A place id, or ``"x,y,radius_m"`` in the twin's CRS."""
        places = self.run.twin.places
        hit = places[places["id"].astype(str) == target] if len(places) else places
        if len(hit):
            geom = hit.geometry.iloc[0]
            return geom if geom.area > 0 else geom.buffer(50.0)
        parts = target.split(",")
        if len(parts) != 3:
            raise ValueError(f"evacuate needs a place id or 'x,y,radius_m', got {target!r}")
        x, y, r = (float(p) for p in parts)
        if not r > 0:
            raise ValueError(f"evacuation radius must be > 0 m, got {r:g}")
        return shapely.Point(x, y).buffer(r)

    @property
    def impact(self) -> ImpactIndex:
        """The twin's index of buildings, occupants and protected targets (built once)."""
        if self._impact is None:
            self._impact = ImpactIndex(self.run.twin)
        return self._impact

    def _evacuate(self, target: str) -> ActionOutcome:
        area = self._area(target)
        n_buildings = self.impact.buildings_inside(area)
        data = {"area_m2": round(float(area.area), 1), "buildings": n_buildings,
                "population": self.impact.population_inside(area),
                "targets": self.impact.targets_inside(area)}
        return ActionOutcome(True, f"evacuation of {data['population']} people in "
                                   f"{n_buildings} buildings ordered", data)

    def _measure(self, t_s: float, target: str, actor: str, quantity: str | None = None,
                 height_m: float = 1.5, delay_s: float = MEASURE_DELAY_S) -> ActionOutcome:
        try:
            x, y = (float(p) for p in target.split(","))
        except ValueError:
            raise ValueError(f"measure needs 'x,y' in metres, got {target!r}") from None
        quantities = [q for h in self.hazards for q in h.info]
        if quantity is None:  # what the run's sensors measure, else the hazard's first
            sensed = set(self.run.network.table["quantity"].astype(str))
            quantity = next((q for q in quantities if q in sensed),
                            quantities[0] if quantities else None)
        if quantity is None or quantity not in quantities:
            raise ValueError(f"no hazard of this run produces {quantity!r} (known: "
                             f"{sorted(set(quantities))})")
        if not delay_s >= 0:
            raise ValueError(f"delay_s must be ≥ 0, got {delay_s}")
        due = float(t_s) + float(delay_s)

        def field_team():
            yield self.env.timeout(max(due - self.env.now, 0.0))
            value = float(self.sample(quantity, [[x, y, height_m]], t_s=due)[0])
            self._archive.write_record("actions", due, actor, "measure_result", target,
                                       {"quantity": quantity, "height_m": height_m,
                                        "value": value}, "done", f"{quantity} = {value:.4g}")
            self.log(due, "measurement", f"{actor}: field measurement at ({x:.0f}, {y:.0f}) "
                     f"m: {quantity} = {value:.4g}", {"quantity": quantity, "value": value,
                                                     "x_m": x, "y_m": y})

        if due <= self.duration_s:
            self.env.process(field_team())
        return ActionOutcome(True, f"field team sent, measuring {quantity} at T+{due:g} s",
                             {"due_s": due, "quantity": quantity})


def run_id_for(run: PreparedRun) -> str:
    """A run id that depends only on the scenario content and seed."""
    text = json.dumps(run.scenario.model_dump(mode="json"), sort_keys=True)
    return f"{run.scenario.name}-{stable_key(text, run.scenario.seed):016x}"


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Create an empty run folder; refuse to clobber a previous run unless asked."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{run_dir}: run folder is not empty; choose another --out "
                                  "or pass --overwrite")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def simulate(run: PreparedRun, run_dir: Path, *, overwrite: bool = False,
             progress: Progress | None = None, progress_every_s: float = 300.0,
             env: simpy.Environment | None = None,
             processes: Sequence[Callable[[RunContext], Generator]] = (),
             feed: ObservationFeed | None = None, faults: ScriptedFaults | None = None,
             snapshot: bool = True) -> RunResult:
    """Run a prepared scenario into ``run_dir`` (archive.sqlite and a field snapshot).

    The three modes feed this one kernel: ``env`` a ``simpy.rt.RealtimeEnvironment`` paces
    a drill; ``processes`` (each given a ``RunContext``) add a drill's injects and players
    or an ensemble's recorders; ``feed`` replaces sampled observations with archived ones
    (replay); ``faults`` are scripted sensor faults; ``snapshot`` False skips the
    hazard-field file (ensembles).
    """
    wall0 = time.perf_counter()  # for the caller's information only; never enters the archive
    sc = run.scenario
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite)
    result = RunResult(run_dir=run_dir, archive_path=run_dir / "archive.sqlite")
    hazards = run.hazards

    footprints: dict[tuple[str, float, float], object] = {}

    def area_provider(hazard: str, quantity: str, threshold: float, t_s: float):
        """Union of the engines' footprints; one evaluation per (quantity, level, tick)."""
        key = (quantity, threshold, t_s)
        if key not in footprints:
            if footprints and next(iter(footprints))[2] != t_s:
                footprints.clear()  # a new tick: the hazard has moved on
            geoms = [h.footprint(quantity, threshold, z_m=FOOTPRINT_HEIGHT_M)
                     for h in hazards if quantity in h.info]
            geoms = [g for g in geoms if not g.is_empty]
            footprints[key] = shapely.unary_union(geoms) if geoms else None
        return footprints[key]

    engine = make_engine(run, area_provider=area_provider)
    source = "drill" if sc.mode == "drill" else "simulated"
    sensors = inventory_frame(run.network)
    if faults is None:
        faults = ScriptedFaults(sensors["sensor_id"].astype(str).tolist())
    run_id = run_id_for(run)
    cap_ctx = (CapContext(sender=f"citytwin@{_token(run.twin.name)}", mode=sc.mode,
                          anchor=sc.start, crs=run.twin.crs, run_id=run_id,
                          hazards=run.hazard_descriptions())
               if sc.outputs.cap else None)
    platform = Platform(engine, sensors, run.operations, rng=rng_for(sc.seed, "platform"),
                        cap=cap_ctx)
    with Archive(result.archive_path) as archive:
        archive.set_anchor(sc.start.timestamp())
        archive.set_manifest({
            "run_id": run_id, "scenario": sc.model_dump(mode="json"),
            "scenario_file": Path(run.source).name, "seed": sc.seed, "mode": sc.mode,
            "start": sc.start.isoformat(), "duration_s": sc.duration_s,
            "rulebook": run.rulebook.model_dump(mode="json"),
            "routing": run.routing.model_dump(mode="json"),
            "operations": run.operations.model_dump(mode="json"),
            "twin": run.twin.summary(), "hazards": run.hazard_notes,
            # each cadence group's interval (a replay ticks its streams on them)
            "group_intervals_s": {g.group_id: g.interval_s for g in run.network.groups()},
            "libraries": library_versions(), "status": "running",
        })
        archive.write_sensors(sensors)
        env = simpy.Environment() if env is None else env
        duration = sc.duration_s
        best_level = [0]
        # The render shows the hazard when its warning area is largest (most severe extent).
        largest_area_m2 = [0.0]

        def log(t_s: float, kind: str, message: str, data: dict) -> None:
            entry = (float(t_s), kind, message, data)
            result.timeline.append(entry)
            archive.write_tick(timeline=[entry])

        def take_snapshot(t_s: float) -> None:
            """Each hazard's render quantity now (the render reads it from the npz)."""
            if not snapshot:
                return  # nothing will read it (ensembles)
            result.snapshot = {}
            for i, (spec, h) in enumerate(zip(sc.hazards, hazards, strict=True)):
                q = h.render_quantity or next(iter(h.info))
                result.snapshot[f"{i}:{spec.kind}:{q}"] = h.field(q, z_m=FOOTPRINT_HEIGHT_M)
            result.snapshot_t_s = t_s

        def record(t: float, out: PlatformOutput, entries: list, **observations) -> None:
            """Timeline lines for what the platform did, CAP files, and one archive write."""
            for w in out.warnings:
                entries.append((w.known_at_s, f"warning_{w.event}", _describe(w),
                                {"warning_id": w.warning_id, "level": w.level_name}))
                best_level[0] = max(best_level[0], w.level)
                if w.area_m2 > largest_area_m2[0]:
                    largest_area_m2[0] = w.area_m2
                    take_snapshot(t)
            for e in out.work_order_events:
                if e.event in ("created", "overdue_unassigned", "overdue_deadline",
                               "escalated", "closed"):
                    entries.append((e.time_s, f"work_order_{e.event}",
                                    f"{e.work_order_id} {e.event.replace('_', ' ')}: {e.note}",
                                    {"work_order_id": e.work_order_id}))
                result.n_escalations += e.event == "escalated"
            for c in out.self_checks:
                entries.append((c.time_s, f"self_check_{c.status}",
                                f"self-check {c.check_id} {c.status} for {c.subject}: "
                                f"{c.detail}", {"check_id": c.check_id, "subject": c.subject}))
            for d in out.dropped:
                entries.append((t, "observation_dropped",
                                f"{d.reason} observation of {d.sensor_id} at {d.time_s:g} s "
                                "dropped", {"sensor_id": d.sensor_id}))
            if not (entries or observations or any(getattr(out, f) for f in
                                                   out.__dataclass_fields__)):
                return  # nothing happened: no empty transaction
            files = []
            if out.cap_messages:
                paths = write_cap_files(out.cap_messages, run_dir / "cap")
                result.cap_files.extend(paths)
                # write_cap_files writes exactly m.xml: hash the bytes, not the files
                files = [(p.name, hashlib.sha256(m.xml).hexdigest())
                         for p, m in zip(paths, out.cap_messages, strict=True)]
            result.timeline.extend(entries)
            result.warnings.extend(out.warnings)
            result.n_alarms += len(out.alarms)
            result.n_work_order_events += len(out.work_order_events)
            archive.write_tick(out=out, cap_files=files, timeline=entries, **observations)

        def physics_clock():
            while env.now <= duration:
                for h in hazards:
                    h.advance_to(env.now)
                yield env.timeout(sc.physics_step_s)

        def hazard_timeline():
            events = []
            for h in sc.hazards:
                note = run.hazard_notes[h.id]
                events.append((h.start_s, "hazard_start", f"{h.id}: {note['summary']}", note))
                stop_s = h.stop_time_s()
                if stop_s is not None and stop_s <= duration:
                    events.append((stop_s, "hazard_stop", f"{h.id}: release stops", note))
            for t_s, kind, message, data in sorted(events, key=lambda e: e[0]):
                yield env.timeout(t_s - env.now)
                log(t_s, kind, message, data)

        first_detection = [True]

        def group_clock(group):
            xyz = run.network.xyz_m(group.indices)
            quantity = str(run.network.table["quantity"].iloc[group.indices[0]])
            unit = str(run.network.table["unit"].iloc[group.indices[0]])
            ids = run.network.table["sensor_id"].to_numpy(dtype=object)[group.indices]
            while env.now <= duration:
                t = float(env.now)
                truth = sample_hazards(hazards, quantity, xyz, t_s=t)
                m = run.measurement.measure(group, t, truth)
                if faults.faults:
                    faults.apply(group.indices, t, m.value, m.valid, m.quality)
                rx = m.valid
                batch = ObservationBatch(ids[rx], m.time_s[rx], m.value[rx], unit,
                                         m.received_s[rx], m.quality[rx], source)
                ingest(t, batch)
                yield env.timeout(group.interval_s)

        def ingest(t: float, batch: ObservationBatch) -> None:
            """Feed a batch to the platform; archive it with what the platform did."""
            out = platform.ingest(batch)
            entries = []
            if out.alarms and first_detection[0]:
                a = out.alarms[0]
                first_detection[0] = False
                entries.append((a.known_at_s, "first_detection",
                                f"first detection: {a.sensor_id} at {a.value:g} "
                                f"({run.rulebook.level_name(a.to_level)}, rule {a.rule_id})",
                                {"sensor_id": a.sensor_id, "rule_id": a.rule_id}))
            result.n_observations += len(batch)
            if sc.outputs.observations == "all":
                record(t, out, entries, sensor_id=batch.sensor_id, time_s=batch.time_s,
                       received_s=batch.received_s, value=batch.value,
                       quality=batch.quality, source=batch.source)
            else:
                record(t, out, entries)

        def feed_clock(stream: str, times_s: np.ndarray):
            """Replay: deliver a stream's archived observations at their logical times."""
            for k, t in enumerate(np.asarray(times_s, dtype=float)):
                if t > duration:
                    break
                yield env.timeout(max(t - env.now, 0.0))
                ingest(float(t), feed.batch(stream, k))

        def platform_clock():
            """Situation updates, work-order overdue rules and self-checks on the sim clock."""
            while env.now < duration:
                due = min(platform.next_due_s(float(env.now)), duration)
                yield env.timeout(max(due - env.now, 0.0))
                out = platform.advance_to(float(env.now))
                record(float(env.now), out, [])
                if platform.next_due_s(float(env.now)) <= env.now:
                    raise RuntimeError(f"platform clock stuck at t = {env.now} s: work due "
                                       "now remained after advancing to it")

        def forecast_clock(rule: Forecast):
            """Run the hazard models ahead; pre-warn the places they will reach."""
            targets = engine.forecast_targets(rule.id)
            if len(targets) == 0:
                return
            # Each place is watched on a ring around it (around its building when the
            # place is a point inside one: the water or gas that matters is at the walls).
            ring_x, ring_y = ring_points(footprints_of(
                shapely.points(targets["x_m"], targets["y_m"]), run.twin), FORECAST_RING_M)
            xyz = np.column_stack([ring_x, ring_y, np.full(len(ring_x), rule.height_m)])
            models = [h for h in hazards if rule.quantity in h.info]
            while env.now <= duration and models:
                t = float(env.now)
                if any(h.is_active() for h in models):
                    predicted = forecast_targets(models, rule, t, xyz,
                                                 targets["id"].astype(str).tolist())
                    record(t, platform.forecast(rule.id, t, predicted), [])
                yield env.timeout(rule.interval_s)

        def scripted_actions():
            """Player/script actions from the scenario, at their times (through ``act``)."""
            # stable sort: actions at the same time keep their file order
            for k, act in sorted(enumerate(sc.actions), key=lambda e: e[1].at_s):
                if act.at_s > duration:
                    break
                yield env.timeout(act.at_s - env.now)
                args = {"handler": act.handler} if act.handler else {}
                ctx.act(act.at_s, act.action, act.target, act.actor, act.note,
                        ref=f"actions.{k}", **args)

        def progress_clock():
            while env.now < duration:
                yield env.timeout(min(progress_every_s, duration - env.now))
                progress(float(env.now), duration, result.n_observations)

        env.process(hazard_timeline())
        env.process(physics_clock())
        if feed is None:
            for group in run.network.groups():
                env.process(group_clock(group))
        else:
            for stream, times_s in feed.streams():
                env.process(feed_clock(stream, times_s))
        env.process(platform_clock())
        for rule in run.rulebook.forecasts:
            env.process(forecast_clock(rule))
        env.process(scripted_actions())
        if progress is not None:
            env.process(progress_clock())
        ctx = RunContext(env=env, run=run, platform=platform, engine=engine, hazards=hazards,
                         hazard_by_id={h.id: e for h, e in zip(sc.hazards, hazards,
                                                               strict=True)},
                         result=result, faults=faults, duration_s=duration, log=log,
                         _archive=archive, _record=record)
        for make_process in [*cascade_processes(run.cascades, sc), *processes]:
            env.process(make_process(ctx))
        env.run(until=duration + 1e-9)
        if largest_area_m2[0] == 0.0 or any(
                (h.render_quantity or "").startswith("max_") for h in hazards):
            take_snapshot(duration)  # envelopes (maximum depth) are most telling at the end
        impacts = {}
        for spec, h in zip(sc.hazards, hazards, strict=True):
            summarise = get_hazard(spec.kind).impact_summary
            if summarise is not None:
                impacts[spec.id], line = summarise(h, run.twin, spec.id, run_dir)
                log(duration, "flood_impact", line, impacts[spec.id])
        log(duration, "run_end", f"end of run: {result.n_observations} observations, "
            f"{result.n_alarms} alarm changes, {len(result.warnings)} warning events, "
            f"{len(platform.desk.orders)} work orders ({result.n_escalations} escalations), "
            f"{len(result.cap_files)} CAP messages", {})
        archive.set_manifest({"status": "completed", "summary": {
            "observations": result.n_observations, "alarm_changes": result.n_alarms,
            "warning_events": len(result.warnings),
            "warnings": len({w.warning_id for w in result.warnings}),
            "max_level": run.rulebook.level_name(best_level[0]),
            "work_orders": len(platform.desk.orders),
            "work_order_events": result.n_work_order_events,
            "escalations": result.n_escalations, "cap_messages": len(result.cap_files),
            "flood_impact": impacts,
        }})
    if snapshot:
        _save_snapshot(run_dir / "hazard_field.npz", result)
    result.wall_s = time.perf_counter() - wall0
    return result


def forecast_targets(models: list[HazardEngine], rule: Forecast, t_s: float,
                     xyz_m: np.ndarray, ids: list[str]) -> dict[str, tuple[float, float]]:
    """Run forecast copies of the hazard models ``rule.horizon_s`` ahead in ``rule.step_s``
    steps (each engine's ``forecast_copy``: e.g. the plume holds the wind observed now).

    ``xyz_m`` holds the same number of points for each target, target by target. Returns
    per target the highest predicted value over its points and the first predicted time any
    of them reaches the rule's lowest threshold (NaN if never). The real engines are not
    touched.
    """
    lowest = min(rule.thresholds.values())
    copies = [h.forecast_copy() for h in models]
    best = np.zeros(len(ids))
    eta = np.full(len(ids), np.nan)
    steps = max(1, math.ceil(rule.horizon_s / rule.step_s))
    for k in range(1, steps + 1):
        t = t_s + min(k * rule.step_s, rule.horizon_s)
        value = sample_hazards(copies, rule.quantity, xyz_m, t_s=t)
        value = value.reshape(len(ids), -1).max(axis=1)
        eta = np.where(np.isnan(eta) & (value >= lowest), t, eta)
        best = np.maximum(best, value)
    return {i: (float(b), float(e)) for i, b, e in zip(ids, best, eta, strict=True)}


def _token(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text) or "city"


def _describe(w: WarningEvent) -> str:
    if w.event == "cleared":
        return f"{w.warning_id} cleared: all-clear (all members back below thresholds)"
    if w.event == "cancelled":
        return f"{w.warning_id} {w.reason}"
    targets = ", ".join(w.targets) if w.targets else "none"
    basis = " (model forecast)" if w.basis == "model" else ""
    return (f"{w.warning_id} {w.event}: {w.level_name.upper()} {w.hazard}{basis}, "
            f"{len(w.sensors)} sensor(s), area {w.area_m2 / 1e4:.2f} ha ({w.area_source}), "
            f"protected targets inside: {targets}; population inside ≈ {w.population}; "
            f"{w.loop} loop, lead {w.lead_unit}; to: {', '.join(w.recipients)}"
            + (f" [{w.reason}]" if w.reason else ""))


def _save_snapshot(path: Path, result: RunResult) -> None:
    """The hazard field when the warning area was largest, for renders (viewer reads it)."""
    arrays = {}
    for key, grid in sorted(result.snapshot.items()):
        safe = key.replace(":", "__")
        arrays[f"{safe}__xs"] = grid.xs_m
        arrays[f"{safe}__ys"] = grid.ys_m
        arrays[f"{safe}__values"] = grid.values
    arrays["t_s"] = np.array([result.snapshot_t_s])
    np.savez_compressed(path, **arrays)

