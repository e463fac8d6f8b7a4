"""The SimPy kernel: SimPy decides *when*, NumPy computes *what*.

A ``Run`` holds one run in progress and has one method per clock: ``physics_clock`` (every
hazard engine stepped on the physics grid), ``sensor_clock`` (one event per cadence group
tick, never one per sensor: the hazards are sampled at all the group's sensors at once,
measured by the vectorised model and fed to the platform), ``feed_clock`` (a replay's
archived observations instead), ``platform_clock`` (situation updates, work-order overdue
rules, self-checks), ``forecast_clock`` (hazard models run ahead), plus the scripted hazard
timeline, scripted actions and progress reports. Every tick is one archive transaction.
``simulate`` is the facade that builds a ``Run``, starts its clocks and closes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import shapely
import simpy

from citytwin.alerting.cap import CapContext, write_cap_files
from citytwin.alerting.events import WarningEvent
from citytwin.alerting.observation import ObservationBatch
from citytwin.alerting.platform import Platform, PlatformOutput
from citytwin.alerting.rulebook import Forecast
from citytwin.physics import get_hazard
from citytwin.physics.base import HazardEngine
from citytwin.physics.flood_impact import footprints_of, ring_points
from citytwin.physics.hazard import sample_hazards
from citytwin.scenarios.run.archive import Archive
from citytwin.scenarios.run.cascade import cascade_processes
from citytwin.scenarios.run.context import RunContext, RunResult
from citytwin.scenarios.run.prepare import PreparedRun, inventory_frame, make_engine
from citytwin.scenarios.run.run_files import (
    library_versions,
    prepare_run_dir,
    run_id_for,
    save_snapshot,
    token,
)
from citytwin.sensors_sim.network import CadenceGroup
from citytwin.sensors_sim.scripted_faults import ScriptedFaults
from citytwin.twin.seeding import rng_for

#: Height (m above ground) at which warning footprints are drawn: breathing height.
FOOTPRINT_HEIGHT_M = 1.5
#: Forecasts watch each place on a ring this far outside it (m).
FORECAST_RING_M = 4.0
#: Work-order events that get a timeline line.
ORDER_LINES = ("created", "overdue_unassigned", "overdue_deadline", "escalated", "closed")


Progress = Callable[[float, float, int], None]  # (sim time s, duration s, observations)


class ObservationFeed(Protocol):
    """Archived observations delivered on logical time instead of sampled ones (replay)."""

    def streams(self) -> list[tuple[str, np.ndarray]]:
        """(stream name, increasing ingestion times s): one SimPy process per stream."""

    def batch(self, stream: str, k: int) -> ObservationBatch:
        """The observations delivered at the ``k``-th time of ``stream`` (may be empty)."""


class FootprintCache:
    """The warning-area provider: the union of the footprints of a quantity above a
    threshold of the run's engines *of the warning's hazard kind* (a rain flood's water is
    not a dam-break area), computed once per (hazard, quantity, threshold, tick); the
    warning board clips every area to the twin. None when no engine of that kind produces
    the quantity (the rule's buffer is used); an empty geometry when one does but nothing
    reaches the threshold (the model says: nowhere yet — not a buffer that would come and
    go with it)."""

    def __init__(self, hazards: list[HazardEngine], kinds: Sequence[str] | None = None
                 ) -> None:
        self.hazards = hazards
        self.kinds = list(kinds) if kinds is not None else [None] * len(hazards)
        self._cache: dict[tuple[str, str, float, float], object] = {}

    def __call__(self, hazard: str, quantity: str, threshold: float, t_s: float):
        key = (hazard, quantity, threshold, t_s)
        if key not in self._cache:
            if self._cache and next(iter(self._cache))[3] != t_s:
                self._cache.clear()  # a new tick: the hazard has moved on
            models = [h for h, kind in zip(self.hazards, self.kinds, strict=True)
                      if quantity in h.info and kind in (None, hazard)]
            area = None
            if models:
                geoms = [h.footprint(quantity, threshold, z_m=FOOTPRINT_HEIGHT_M)
                         for h in models]
                area = shapely.unary_union([g for g in geoms if not g.is_empty]
                                           or [shapely.Polygon()])
            self._cache[key] = area
        return self._cache[key]


class Run:
    """One run in progress: its clocks (SimPy processes), what they share, and the archive.

    State a newcomer may look for: ``best_level`` (highest warning level so far),
    ``largest_area_m2`` (the render shows the hazard when its warning area was largest),
    ``first_detection`` (whether the first alarm is still to come)."""

    def __init__(self, run: PreparedRun, result: RunResult, archive: Archive,
                 env: simpy.Environment, platform: Platform, faults: ScriptedFaults, *,
                 feed: ObservationFeed | None, snapshot: bool) -> None:
        self.run, self.sc, self.hazards = run, run.scenario, run.hazards
        self.result, self.archive, self.env = result, archive, env
        self.platform, self.faults, self.feed = platform, faults, feed
        self.snapshot = snapshot
        self.duration = run.scenario.duration_s
        self.source = "drill" if run.scenario.mode == "drill" else "simulated"
        self.best_level = 0
        self.largest_area_m2 = 0.0
        self.first_detection = True

    # --- what every clock uses ------------------------------------------------------------

    def log(self, t_s: float, kind: str, message: str, data: dict) -> None:
        """A timeline line, archived at once."""
        entry = (float(t_s), kind, message, data)
        self.result.timeline.append(entry)
        self.archive.write_tick(timeline=[entry])

    def take_snapshot(self, t_s: float) -> None:
        """Each hazard's render quantity now (the render reads it from the npz), keyed
        ``<index>:<kind>:<quantity>`` so the render finds the hazard's registered style."""
        if not self.snapshot:
            return  # nothing will read it (ensembles)
        self.result.snapshot = {}
        for i, (spec, h) in enumerate(zip(self.sc.hazards, self.hazards, strict=True)):
            q = h.render_quantity or next(iter(h.info))
            self.result.snapshot[f"{i}:{spec.kind}:{q}"] = h.field(q, z_m=FOOTPRINT_HEIGHT_M)
        self.result.snapshot_t_s = t_s

    def record(self, t: float, out: PlatformOutput, entries: list, **observations) -> None:
        """Timeline lines for what the platform did, CAP files, and one archive write."""
        result = self.result
        for w in out.warnings:
            entries.append((w.known_at_s, f"warning_{w.event}", _describe(w),
                            {"warning_id": w.warning_id, "level": w.level_name}))
            self.best_level = max(self.best_level, w.level)
            if w.area_m2 > self.largest_area_m2:
                self.largest_area_m2 = w.area_m2
                self.take_snapshot(t)
        for e in out.work_order_events:
            if e.event in ORDER_LINES:
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
            paths = write_cap_files(out.cap_messages, result.run_dir / "cap")
            result.cap_files.extend(paths)
            # write_cap_files writes exactly m.xml: hash the bytes, not the files
            files = [(p.name, hashlib.sha256(m.xml).hexdigest())
                     for p, m in zip(paths, out.cap_messages, strict=True)]
        result.timeline.extend(entries)
        result.warnings.extend(out.warnings)
        result.n_alarms += len(out.alarms)
        result.n_work_order_events += len(out.work_order_events)
        self.archive.write_tick(out=out, cap_files=files, timeline=entries, **observations)

    def ingest(self, t: float, batch: ObservationBatch) -> None:
        """Feed a batch to the platform; archive it with what the platform did."""
        out = self.platform.ingest(batch)
        entries = []
        if out.alarms and self.first_detection:
            a = out.alarms[0]
            self.first_detection = False
            entries.append((a.known_at_s, "first_detection",
                            f"first detection: {a.sensor_id} at {a.value:g} "
                            f"({self.run.rulebook.level_name(a.to_level)}, rule {a.rule_id})",
                            {"sensor_id": a.sensor_id, "rule_id": a.rule_id}))
        self.result.n_observations += len(batch)
        if self.sc.outputs.observations == "all":
            self.record(t, out, entries, sensor_id=batch.sensor_id, time_s=batch.time_s,
                        received_s=batch.received_s, value=batch.value,
                        quality=batch.quality, source=batch.source)
        else:
            self.record(t, out, entries)

    # --- the clocks ------------------------------------------------------------------------

    def physics_clock(self) -> Generator:
        """Every hazard engine stepped to each time of the physics grid."""
        env = self.env
        while env.now <= self.duration:
            for h in self.hazards:
                h.advance_to(env.now)
            yield env.timeout(self.sc.physics_step_s)

    def hazard_timeline(self) -> Generator:
        """Each hazard's start (and stop, if it has one) as timeline lines at their times."""
        events = []
        for h in self.sc.hazards:
            note = self.run.hazard_notes[h.id]
            events.append((h.start_s, "hazard_start", f"{h.id}: {note['summary']}", note))
            stop_s = h.stop_time_s()
            if stop_s is not None and stop_s <= self.duration:
                events.append((stop_s, "hazard_stop", f"{h.id}: release stops", note))
        for t_s, kind, message, data in sorted(events, key=lambda e: e[0]):
            yield self.env.timeout(t_s - self.env.now)
            self.log(t_s, kind, message, data)

    def sensor_clock(self, group: CadenceGroup) -> Generator:
        """One cadence group: each tick samples the hazards at all its sensors at once."""
        net = self.run.network
        xyz = net.xyz_m(group.indices)
        quantity = str(net.table["quantity"].iloc[group.indices[0]])
        unit = str(net.table["unit"].iloc[group.indices[0]])
        ids = net.table["sensor_id"].to_numpy(dtype=object)[group.indices]
        while self.env.now <= self.duration:
            t = float(self.env.now)
            truth = sample_hazards(self.hazards, quantity, xyz, t_s=t)
            m = self.run.measurement.measure(group, t, truth)
            if self.faults.faults:
                self.faults.apply(group.indices, t, m.value, m.valid, m.quality)
            rx = m.valid
            self.ingest(t, ObservationBatch(ids[rx], m.time_s[rx], m.value[rx], unit,
                                            m.received_s[rx], m.quality[rx], self.source))
            yield self.env.timeout(group.interval_s)

    def feed_clock(self, stream: str, times_s: np.ndarray) -> Generator:
        """Replay: deliver a stream's archived observations at their logical times."""
        for k, t in enumerate(np.asarray(times_s, dtype=float)):
            if t > self.duration:
                break
            yield self.env.timeout(max(t - self.env.now, 0.0))
            self.ingest(float(t), self.feed.batch(stream, k))

    def platform_clock(self) -> Generator:
        """Situation updates, work-order overdue rules and self-checks on the sim clock."""
        env, platform = self.env, self.platform
        while env.now < self.duration:
            due = min(platform.next_due_s(float(env.now)), self.duration)
            yield env.timeout(max(due - env.now, 0.0))
            self.record(float(env.now), platform.advance_to(float(env.now)), [])
            if platform.next_due_s(float(env.now)) <= env.now:
                raise RuntimeError(f"platform clock stuck at t = {env.now} s: work due "
                                   "now remained after advancing to it")

    def forecast_clock(self, rule: Forecast) -> Generator:
        """Run the hazard models ahead; pre-warn the places they will reach."""
        targets = self.platform.engine.forecast_targets(rule.id)
        if len(targets) == 0:
            return
        # Each place is watched on a ring around it (around its building when the place is
        # a point inside one: the water or gas that matters is at the walls).
        ring_x, ring_y = ring_points(footprints_of(
            shapely.points(targets["x_m"], targets["y_m"]), self.run.twin), FORECAST_RING_M)
        xyz = np.column_stack([ring_x, ring_y, np.full(len(ring_x), rule.height_m)])
        # only the rule's own hazard's models: a rain flood is no dam-break forecast
        models = [h for spec, h in zip(self.sc.hazards, self.hazards, strict=True)
                  if spec.kind == rule.hazard and rule.quantity in h.info]
        while self.env.now <= self.duration and models:
            t = float(self.env.now)
            if any(h.is_active() for h in models):
                predicted = forecast_targets(models, rule, t, xyz,
                                             targets["id"].astype(str).tolist())
                self.record(t, self.platform.forecast(rule.id, t, predicted), [])
            yield self.env.timeout(rule.interval_s)

    def scripted_actions(self, ctx: RunContext) -> Generator:
        """Player/script actions from the scenario, at their times (through ``ctx.act``)."""
        # stable sort: actions at the same time keep their file order
        for k, act in sorted(enumerate(self.sc.actions), key=lambda e: e[1].at_s):
            if act.at_s > self.duration:
                break
            yield self.env.timeout(act.at_s - self.env.now)
            args = {"handler": act.handler} if act.handler else {}
            ctx.act(act.at_s, act.action, act.target, act.actor, act.note,
                    ref=f"actions.{k}", **args)

    def progress_clock(self, progress: Progress, every_s: float) -> Generator:
        """Progress reports to the caller (wall-clock pacing never enters the archive)."""
        while self.env.now < self.duration:
            yield self.env.timeout(min(every_s, self.duration - self.env.now))
            progress(float(self.env.now), self.duration, self.result.n_observations)

    # --- start and finish -----------------------------------------------------------------

    def start(self, processes: Sequence[Callable[[RunContext], Generator]],
              progress: Progress | None, progress_every_s: float) -> RunContext:
        """Register every clock (in a fixed order: same-time events keep it) and the extra
        processes; returns the context those processes get."""
        env = self.env
        ctx = RunContext(env=env, run=self.run, platform=self.platform,
                         engine=self.platform.engine, hazards=self.hazards,
                         hazard_by_id={h.id: e for h, e in zip(self.sc.hazards, self.hazards,
                                                               strict=True)},
                         result=self.result, faults=self.faults, duration_s=self.duration,
                         log=self.log, _archive=self.archive, _record=self.record)
        env.process(self.hazard_timeline())
        env.process(self.physics_clock())
        if self.feed is None:
            for group in self.run.network.groups():
                env.process(self.sensor_clock(group))
        else:
            for stream, times_s in self.feed.streams():
                env.process(self.feed_clock(stream, times_s))
        env.process(self.platform_clock())
        for rule in self.run.rulebook.forecasts:
            env.process(self.forecast_clock(rule))
        env.process(self.scripted_actions(ctx))
        if progress is not None:
            env.process(self.progress_clock(progress, progress_every_s))
        for make_process in [*cascade_processes(self.run.cascades, self.sc), *processes]:
            env.process(make_process(ctx))
        return ctx

    def finish(self) -> None:
        """End of run: the last snapshot, each hazard's impact summary, the run_end line and
        the completed manifest."""
        result, duration = self.result, self.duration
        if self.largest_area_m2 == 0.0 or any(
                (h.render_quantity or "").startswith("max_") for h in self.hazards):
            self.take_snapshot(duration)  # envelopes (maximum depth) tell most at the end
        impacts = {}
        for spec, h in zip(self.sc.hazards, self.hazards, strict=True):
            summarise = get_hazard(spec.kind).impact_summary
            if summarise is not None:
                impacts[spec.id], line = summarise(h, self.run.twin, spec.id, result.run_dir)
                self.log(duration, "impact", line, impacts[spec.id])
        orders = self.platform.desk.orders
        self.log(duration, "run_end", f"end of run: {result.n_observations} observations, "
                 f"{result.n_alarms} alarm changes, {len(result.warnings)} warning events, "
                 f"{len(orders)} work orders ({result.n_escalations} escalations), "
                 f"{len(result.cap_files)} CAP messages", {})
        self.archive.set_manifest({"status": "completed", "summary": {
            "observations": result.n_observations, "alarm_changes": result.n_alarms,
            "warning_events": len(result.warnings),
            "warnings": len({w.warning_id for w in result.warnings}),
            "max_level": self.run.rulebook.level_name(self.best_level),
            "work_orders": len(orders), "work_order_events": result.n_work_order_events,
            "escalations": result.n_escalations, "cap_messages": len(result.cap_files),
            "impact": impacts,
        }})


def _manifest(run: PreparedRun, run_id: str) -> dict:
    """What the archive records about a run before it starts (status running)."""
    sc = run.scenario
    return {
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
    }


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

    The manifest's ``status`` is ``running`` until the run ends ``completed``; an exception
    (or Ctrl-C) on the way marks it ``aborted`` with ``abort_reason`` and ``aborted_at_s``
    and is re-raised (a killed process leaves ``running``).
    """
    wall0 = time.perf_counter()  # for the caller's information only; never enters the archive
    sc = run.scenario
    run_dir = Path(run_dir)
    prepare_run_dir(run_dir, overwrite)
    result = RunResult(run_dir=run_dir, archive_path=run_dir / "archive.sqlite")
    engine = make_engine(run, area_provider=FootprintCache(
        run.hazards, [h.kind for h in sc.hazards]))
    if sc.hazards:  # simulated, or a replay with its hazards rebuilt: they are all there is
        engine.attribute_to({h.kind: set(e.info) for h, e in zip(sc.hazards, run.hazards,
                                                                strict=True)})
    sensors = inventory_frame(run.network)
    if faults is None:
        faults = ScriptedFaults(sensors["sensor_id"].astype(str).tolist())
    run_id = run_id_for(run)
    cap_ctx = (CapContext(sender=f"citytwin@{token(run.twin.name)}", mode=sc.mode,
                          anchor=sc.start, crs=run.twin.crs, run_id=run_id,
                          hazards=run.hazard_descriptions())
               if sc.outputs.cap else None)
    platform = Platform(engine, sensors, run.operations, rng=rng_for(sc.seed, "platform"),
                        cap=cap_ctx)
    with Archive(result.archive_path) as archive:
        archive.set_anchor(sc.start.timestamp())
        archive.set_manifest(_manifest(run, run_id))
        archive.write_sensors(sensors)
        env = simpy.Environment() if env is None else env
        kernel = Run(run, result, archive, env, platform, faults, feed=feed, snapshot=snapshot)
        try:
            kernel.start(processes, progress, progress_every_s)
            env.run(until=sc.duration_s + 1e-9)
            kernel.finish()
        except BaseException as exc:  # a crash, Ctrl-C or SIGTERM: the archive says so
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "aborted"
            with contextlib.suppress(sqlite3.Error):
                archive.set_manifest({"status": status, "aborted_at_s": float(env.now),
                                      "abort_reason": abort_reason(exc)})
            raise
    if snapshot:
        save_snapshot(run_dir / "hazard_field.npz", result.snapshot, result.snapshot_t_s)
    result.wall_s = time.perf_counter() - wall0
    return result


def abort_reason(exc: BaseException) -> str:
    """What the manifest records about why a run stopped early (one line)."""
    if isinstance(exc, KeyboardInterrupt):
        return str(exc) or "interrupted (Ctrl-C)"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
