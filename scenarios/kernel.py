"""The SimPy kernel: SimPy decides *when*, NumPy computes *what*.

Processes: one per physics step clock (advancing every hazard engine), one per sensor
cadence group (one event per tick for the whole group, never one per sensor), one for the
scripted hazard timeline and one for progress reports. Each group tick samples the hazards at
all the group's sensors at once, applies the vectorised measurement model, feeds the received
observations to the alerting engine, and writes the tick to the archive in one transaction.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import shapely
import simpy

from alerting.events import WarningEvent
from alerting.observation import ObservationBatch
from physics.base import FieldGrid
from scenarios.archive import Archive
from scenarios.prepare import PreparedRun, inventory_frame, make_engine
from twin.seeding import stable_key

LIBRARIES = ("citytwin", "numpy", "scipy", "simpy", "numba", "pandas", "shapely", "pyproj",
             "geopandas", "pydantic")
#: Height (m above ground) at which warning footprints are drawn: breathing height.
FOOTPRINT_HEIGHT_M = 1.5


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
    snapshot: dict[str, FieldGrid] = field(default_factory=dict)
    snapshot_t_s: float = 0.0
    wall_s: float = 0.0


Progress = Callable[[float, float, int], None]  # (sim time s, duration s, observations)


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
             progress: Progress | None = None, progress_every_s: float = 300.0) -> RunResult:
    """Run a prepared scenario into ``run_dir`` (archive.sqlite and a field snapshot)."""
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
    with Archive(result.archive_path) as archive:
        archive.set_manifest({
            "run_id": run_id_for(run), "scenario": sc.model_dump(mode="json"),
            "scenario_file": Path(run.source).name, "seed": sc.seed,
            "start": sc.start.isoformat(), "duration_s": sc.duration_s,
            "rulebook": run.rulebook.model_dump(mode="json"),
            "twin": run.twin.summary(), "hazards": run.hazard_notes,
            "libraries": library_versions(), "status": "running",
        })
        archive.write_sensors(sensors)
        env = simpy.Environment()
        duration = sc.duration_s
        best_level = [0]
        # The render shows the hazard when its warning area is largest (most severe extent).
        largest_area_m2 = [0.0]

        def log(t_s: float, kind: str, message: str, data: dict) -> None:
            entry = (float(t_s), kind, message, data)
            result.timeline.append(entry)
            archive.write_tick(timeline=[entry])

        def snapshot(t_s: float) -> None:
            result.snapshot = {
                f"{i}:{q}": h.field(q, z_m=FOOTPRINT_HEIGHT_M)
                for i, h in enumerate(hazards) for q in h.info if q.endswith("lel_pct")}
            result.snapshot_t_s = t_s

        def physics_clock():
            while env.now <= duration:
                for h in hazards:
                    h.advance_to(env.now)
                yield env.timeout(sc.physics_step_s)

        def hazard_timeline():
            events = []
            for h in sc.hazards:
                note = run.hazard_notes[h.id]
                events.append((h.start_s, "hazard_start",
                               f"{h.id}: {h.kind} release starts at {note['where']} "
                               f"({note['rate_kg_s']:.3f} kg/s)", note))
                if h.stop_s is not None and h.stop_s <= duration:
                    events.append((h.stop_s, "hazard_stop", f"{h.id}: release stops", note))
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
                truth = np.zeros(len(group.indices))
                for h in hazards:
                    if quantity in h.info:
                        h.advance_to(t)
                        truth += h.sample(quantity, xyz)
                m = run.measurement.measure(group, t, truth)
                rx = m.valid
                batch = ObservationBatch(ids[rx], m.time_s[rx], m.value[rx], unit,
                                         m.received_s[rx], m.quality[rx], source)
                out = engine.process(batch)
                entries = []
                if out.alarms and first_detection[0]:
                    a = out.alarms[0]
                    first_detection[0] = False
                    entries.append((a.known_at_s, "first_detection",
                                    f"first detection: {a.sensor_id} at {a.value:g} {unit} "
                                    f"({run.rulebook.level_name(a.to_level)}, rule {a.rule_id})",
                                    {"sensor_id": a.sensor_id, "rule_id": a.rule_id}))
                for w in out.warnings:
                    entries.append((w.known_at_s, f"warning_{w.event}", _describe(w),
                                    {"warning_id": w.warning_id, "level": w.level_name}))
                    best_level[0] = max(best_level[0], w.level)
                    if w.area_m2 > largest_area_m2[0]:
                        largest_area_m2[0] = w.area_m2
                        snapshot(t)
                result.timeline.extend(entries)
                result.warnings.extend(out.warnings)
                result.n_observations += len(batch)
                result.n_alarms += len(out.alarms)
                if sc.outputs.observations == "all":
                    archive.write_tick(sensor_id=batch.sensor_id, time_s=batch.time_s,
                                       received_s=batch.received_s, value=batch.value,
                                       quality=batch.quality, source=source,
                                       alarms=out.alarms, warnings=out.warnings,
                                       timeline=entries)
                else:
                    archive.write_tick(alarms=out.alarms, warnings=out.warnings,
                                       timeline=entries)
                yield env.timeout(group.interval_s)

        def progress_clock():
            while env.now < duration:
                yield env.timeout(min(progress_every_s, duration - env.now))
                progress(float(env.now), duration, result.n_observations)

        env.process(hazard_timeline())
        env.process(physics_clock())
        for group in run.network.groups():
            env.process(group_clock(group))
        if progress is not None:
            env.process(progress_clock())
        env.run(until=duration + 1e-9)
        if largest_area_m2[0] == 0.0:
            snapshot(duration)
        log(duration, "run_end", f"end of run: {result.n_observations} observations, "
            f"{result.n_alarms} alarm changes, {len(result.warnings)} warning events", {})
        archive.set_manifest({"status": "completed", "summary": {
            "observations": result.n_observations, "alarm_changes": result.n_alarms,
            "warning_events": len(result.warnings),
            "warnings": len({w.warning_id for w in result.warnings}),
            "max_level": run.rulebook.level_name(best_level[0]),
        }})
    _save_snapshot(run_dir / "hazard_field.npz", result)
    result.wall_s = time.perf_counter() - wall0
    return result


def _describe(w: WarningEvent) -> str:
    if w.event == "cleared":
        return f"{w.warning_id} cleared (all sensors back below thresholds)"
    targets = ", ".join(w.targets) if w.targets else "none"
    return (f"{w.warning_id} {w.event}: {w.level_name.upper()} {w.hazard}, "
            f"{len(w.sensors)} sensor(s), area {w.area_m2 / 1e4:.2f} ha ({w.area_source}), "
            f"protected targets inside: {targets}; population inside ≈ {w.population}; "
            f"to: {', '.join(w.recipients)}")


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

