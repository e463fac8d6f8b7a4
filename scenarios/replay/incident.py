"""An incident to replay: a citytwin run archive, an incident folder or an observation file.

Readers per part: observations (``replay.observations``), sensor inventory
(``replay.inventory``), warnings and work orders of the time (``replay.events``); cadences of a
citytwin run (``replay.cadence``).

Times are seconds from the incident's *anchor* (its wall clock of t = 0): the run's start,
``incident.json``'s ``anchor``, or the earliest ISO 8601 time read. Numeric times with no
anchor leave ``Incident.anchor`` None — the wall clock is unknown, and reports show T+
times only; warnings with ISO times are then refused (they cannot be placed on t).

An *incident folder* (``export_incident``) holds ``observations.(csv|parquet|jsonl)``,
``sensors.geojson``, ``warnings.csv`` and ``incident.json`` (anchor, CRS and — for a
citytwin run — the run's scenario, rulebook and routing so the replay rebuilds its twin).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.scenarios.replay.cadence import group_intervals, intervals_of, snap_to_cadence
from citytwin.scenarios.replay.events import (
    normalise_warnings,
    read_warnings_file,
    read_work_orders_file,
)
from citytwin.scenarios.replay.inventory import fill_intervals, read_inventory
from citytwin.scenarios.replay.observations import observation_file, read_observations
from citytwin.scenarios.run.archive_reader import read_manifest, read_table
from citytwin.sensors_sim.network import COLUMNS as SENSOR_TABLE_COLUMNS
from citytwin.twin.errors import InputError

#: What an incident folder's ``incident.json`` keeps of a citytwin run's manifest.
MANIFEST_KEYS = ("run_id", "scenario", "rulebook", "routing", "operations", "start",
                 "duration_s", "twin", "hazards", "group_intervals_s")


@dataclass
class Incident:
    """Everything a replay reads: observations (seconds from ``anchor``), the inventory,
    the warnings of the time and, for citytwin runs, the manifest."""

    observations: pd.DataFrame  #: sensor_id, time_s, received_s, value, unit, quality
    sensors: pd.DataFrame  #: sensors_sim.network.COLUMNS, in the twin's CRS
    warnings: pd.DataFrame | None  #: WARNING_FRAME columns, or None when not given
    anchor: datetime | None  #: wall clock of t = 0; None: unknown (numeric times, no anchor)
    crs: str  #: CRS of the sensor coordinates (the twin's)
    source: str  #: file or folder read
    manifest: dict[str, Any] = field(default_factory=dict)  #: citytwin run manifest, if any
    #: work-order events of the time (``WORK_ORDER_FRAME``), or None when not given
    work_orders: pd.DataFrame | None = None

    @property
    def from_citytwin(self) -> bool:
        """True when the incident is a citytwin run (its scenario is known)."""
        return "scenario" in self.manifest


def read_archive_incident(path: str | Path) -> Incident:
    """A citytwin run archive (``archive.sqlite`` or its run folder) as an incident."""
    path = Path(path)
    if path.is_dir():
        path = path / "archive.sqlite"
    if not path.is_file():
        raise InputError(str(path), "no such archive")
    try:
        manifest = read_manifest(path)
        sensors = read_table(path, "sensors").sort_values("sensor_key", kind="stable")
        # the view is a full scan of observation_rows: rowid order = the order the platform
        # ingested them (kernel batch order), which the replay keeps within each tick
        obs = read_table(path, "observations")
        warnings = read_table(path, "warnings").sort_values("seq", kind="stable")
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise InputError(str(path), f"not a readable citytwin archive ({exc})") from exc
    if "scenario" not in manifest:
        raise InputError(str(path), "manifest has no scenario", field="manifest.scenario")
    if obs.empty:
        raise InputError(str(path), "the archive holds no observations (was the run made "
                         "with outputs.observations: none?)", field="observations")
    sensors = sensors.reset_index(drop=True)
    unit = sensors.set_index("sensor_id")["unit"]
    obs = pd.DataFrame({
        "sensor_id": obs["sensor_id"], "time_s": obs["time_s"].astype(float),
        "received_s": obs["received_s"].astype(float), "value": obs["value"].astype(float),
        "quality": obs["quality"].astype(np.int8),
        "unit": unit.reindex(obs["sensor_id"]).to_numpy(dtype=object)})
    scenario = manifest["scenario"]
    if manifest.get("status", "completed") != "completed":
        # a run that was interrupted, crashed or is still going: its record ends at its last
        # complete tick; replaying past it would read the silence as sensors going offline
        last = float(obs["time_s"].max())
        scenario = {**scenario, "duration_s": min(float(scenario["duration_s"]), last)}
        manifest = {**manifest, "scenario": scenario, "replayed_to_s": last}
    sensors["interval_s"] = np.nan
    sensors = group_intervals(sensors, manifest, str(path))
    obs["time_s"], obs["received_s"] = snap_to_cadence(
        obs["time_s"].to_numpy(), obs["received_s"].to_numpy(),
        intervals_of(obs["sensor_id"], sensors), float(scenario["duration_s"]), str(path),
        "observations.time_s")
    anchor = datetime.fromisoformat(str(manifest["start"]))
    return Incident(obs, sensors[list(SENSOR_TABLE_COLUMNS)], normalise_warnings(
        warnings.reset_index(drop=True), str(path)), anchor, str(manifest["twin"]["crs"]),
        str(path), manifest, work_orders=read_work_orders_file(path, anchor=anchor))


def read_incident(source: str | Path, *, inventory: str | Path | None = None,
                  warnings: str | Path | None = None, twin_crs: str | None = None,
                  anchor: datetime | None = None,
                  work_orders: str | Path | None = None) -> Incident:
    """An incident from a citytwin archive, an incident folder or an observation file.

    ``inventory``/``warnings``/``work_orders`` override the folder's ``sensors.geojson``/
    ``warnings.csv``/``work_orders.csv``;
    ``twin_crs`` is the CRS to reproject the inventory to (default: the folder's
    ``incident.json`` CRS).
    """
    source = Path(source)
    if source.suffix == ".sqlite" or (source.is_dir() and (source / "archive.sqlite").is_file()):
        inc = read_archive_incident(source)
        if warnings is not None:
            inc.warnings = read_warnings_file(warnings, anchor=inc.anchor)
        if work_orders is not None:
            inc.work_orders = read_work_orders_file(work_orders, anchor=inc.anchor)
        return inc
    meta: dict[str, Any] = {}
    if source.is_dir():
        if (source / "incident.json").is_file():
            meta = json.loads((source / "incident.json").read_text(encoding="utf-8"))
        obs_path = observation_file(source)
        inventory = inventory or (source / "sensors.geojson")
        if warnings is None and (source / "warnings.csv").is_file():
            warnings = source / "warnings.csv"
        if work_orders is None and (source / "work_orders.csv").is_file():
            work_orders = source / "work_orders.csv"
    elif source.is_file():
        obs_path = source
    else:
        raise InputError(str(source), "no such file or folder")
    if inventory is None:
        raise InputError(str(source), "a sensor inventory is needed (--inventory FILE)",
                         field="--inventory")
    crs = twin_crs or meta.get("crs")
    if crs is None:
        raise InputError(str(source), "the twin's CRS is unknown: give --twin (or an "
                         "incident.json with 'crs')", field="--twin")
    if anchor is None and meta.get("anchor"):
        anchor = datetime.fromisoformat(meta["anchor"])
    sensors = read_inventory(inventory, crs)
    duration_s = None
    if "scenario" in meta:  # a citytwin run: readings on its groups' cadences
        duration_s = float(meta["scenario"]["duration_s"])
        sensors = group_intervals(sensors, meta, str(inventory))
    obs, anchor = read_observations(obs_path, sensors, anchor=anchor, duration_s=duration_s)
    sensors = fill_intervals(sensors, obs)
    levels = (meta.get("rulebook") or {}).get("levels")
    warn = (read_warnings_file(warnings, levels=levels, anchor=anchor)
            if warnings is not None else None)
    orders = (read_work_orders_file(work_orders, anchor=anchor)
              if work_orders is not None else None)
    manifest = {k: meta[k] for k in MANIFEST_KEYS if k in meta}
    return Incident(obs, sensors, warn, anchor, str(crs), str(source), manifest,
                    work_orders=orders)
