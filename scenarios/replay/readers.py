"""Incident data in and out: observations, sensor inventories and warnings for replays.

Observation files (CSV, Parquet or JSON Lines), one row per reading, close to an OGC
SensorThings *Observation* (the Datastream collapsed into ``sensor_id`` + ``unit``):

==================  ========  ================================================================
column              required  meaning
==================  ========  ================================================================
``sensor_id``       yes       Datastream/Thing id; must be in the sensor inventory
``phenomenon_time`` yes       ISO 8601 with a UTC offset, or seconds from the incident anchor
``result``          yes       the reading (number); empty/NaN only with quality 2 or 3
``unit``            yes       must equal the inventory's unit for the sensor
``result_time``     no        when the platform received it (the form of phenomenon_time)
``quality``         no        0 ok, 1 clipped, 2 dropped, 3 offline, 4 stuck (or those names)
==================  ========  ================================================================

``result_time`` defaults to the phenomenon time; when given it must take the form of
``phenomenon_time`` (both seconds or both ISO 8601: one time base). Rows with quality
dropped/offline were never received and are skipped. A (sensor, phenomenon_time) pair may
occur once; per sensor, readings must arrive (``result_time`` order) in increasing
phenomenon time. For a citytwin run (an archive, or an incident folder whose
``incident.json`` holds the scenario) each phenomenon time is snapped to the nearest tick of
its sensor group's cadence (``snap_to_cadence``: within ``cadence_tolerance``, 1 ms, so
ns/µs rounding of ISO strings and clock jitter are absorbed); a reading further off is
refused with file, field and row. The cadences are the run's ``group_intervals_s``
(``group_intervals``).

Times are seconds from the incident's *anchor* (its wall clock of t = 0): the run's start,
``incident.json``'s ``anchor``, or the earliest ISO 8601 time read. Numeric times with no
anchor leave ``Incident.anchor`` None — the wall clock is unknown, and reports show T+
times only; warnings with ISO times are then refused (they cannot be placed on t).

Sensor inventory: GeoJSON (a ``crs`` member, or RFC 7946 longitude/latitude — projected
coordinates without a ``crs`` member are refused) or
GeoPackage; point features with properties ``sensor_id``, ``type_id``, ``quantity``,
``unit`` and optionally ``z_m``/``height_m`` (height above ground; or the point's third
coordinate), ``group_id``, ``interval_s``, ``asset_network``, ``asset_id``. Reprojected to
the twin's CRS.

Warnings issued at the time: the ``warnings`` table of a citytwin archive, or CSV/JSON Lines
with ``warning_id``, ``event`` (raised/escalated/deescalated/updated/cleared/cancelled),
``time`` (ISO 8601 or seconds: when it was issued), ``level_name`` and optionally
``hazard``, ``sensors`` (JSON list or ``;``-separated), ``targets``, ``area_m2``, ``basis``.

An *incident folder* (``export_incident``) holds ``observations.(csv|parquet|jsonl)``,
``sensors.geojson``, ``warnings.csv`` and ``incident.json`` (anchor, CRS and — for a
citytwin run — the run's scenario, rulebook and routing so the replay rebuilds its twin).
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer

from citytwin.alerting.observation import QUALITY_DROPPED, QUALITY_OFFLINE
from citytwin.scenarios.run.archive import WARNING_COLUMNS
from citytwin.scenarios.run.archive_reader import read_manifest, read_table
from citytwin.sensors_sim.network import COLUMNS as SENSOR_TABLE_COLUMNS
from citytwin.twin.errors import InputError

OBSERVATION_FORMATS = ("csv", "parquet", "jsonl")
OBS_REQUIRED = ("sensor_id", "phenomenon_time", "result", "unit")
OBS_OPTIONAL = ("result_time", "quality")
QUALITY_NAMES = {"ok": 0, "clipped": 1, "dropped": 2, "offline": 3, "stuck": 4}
INVENTORY_REQUIRED = ("sensor_id", "type_id", "quantity", "unit")
WARNING_REQUIRED = ("warning_id", "event", "level_name")
WARNING_EVENTS = ("raised", "escalated", "deescalated", "updated", "cleared", "cancelled")
#: Columns of a normalised work-order event frame (work orders of the time).
WORK_ORDER_FRAME = ("work_order_id", "warning_id", "event", "time_s", "actor", "note")
WORK_ORDER_REQUIRED = ("work_order_id", "event")
#: Work-order events as the platform records them (alerting/workorders.py).
WORK_ORDER_EVENTS = ("created", "assigned", "started", "resolved", "reviewed", "rejected",
                     "closed", "overdue_unassigned", "overdue_deadline", "escalated",
                     "level_changed")
#: Columns of a normalised warnings frame (what ``diff`` reads).
WARNING_FRAME = ("warning_id", "event", "time_s", "known_at_s", "hazard", "level",
                 "level_name", "basis", "sensors", "targets", "area_m2")
#: What an incident folder's ``incident.json`` keeps of a citytwin run's manifest.
MANIFEST_KEYS = ("run_id", "scenario", "rulebook", "routing", "operations", "start",
                 "duration_s", "twin", "hazards", "group_intervals_s")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")


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


# --- citytwin archives ---------------------------------------------------------------------

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
    sensors["interval_s"] = np.nan
    sensors = group_intervals(sensors, manifest, str(path))
    obs["time_s"], obs["received_s"] = snap_to_cadence(
        obs["time_s"].to_numpy(), obs["received_s"].to_numpy(),
        _intervals_of(obs["sensor_id"], sensors), float(scenario["duration_s"]), str(path),
        "observations.time_s")
    anchor = datetime.fromisoformat(str(manifest["start"]))
    return Incident(obs, sensors[list(SENSOR_TABLE_COLUMNS)], normalise_warnings(
        warnings.reset_index(drop=True), str(path)), anchor, str(manifest["twin"]["crs"]),
        str(path), manifest, work_orders=read_work_orders_file(path, anchor=anchor))


def _intervals_of(sensor_ids: pd.Series | np.ndarray, sensors: pd.DataFrame) -> np.ndarray:
    """Each reading's group interval (s)."""
    return (sensors.set_index("sensor_id")["interval_s"].reindex(sensor_ids)
            .to_numpy(dtype=float))


# --- cadence ---------------------------------------------------------------------------------

def cadence_ticks(interval_s: float, duration_s: float) -> np.ndarray:
    """The times a group clock ticks at: 0, Δ, 2Δ, … ≤ duration (summed like SimPy does)."""
    out, t = [], 0.0
    while t <= duration_s:
        out.append(t)
        t = t + interval_s
    return np.array(out)


def cadence_tolerance(interval_s: float) -> float:
    """How far a reading may lie from its cadence tick and still be snapped onto it (s):
    1 ms, or 1 % of the interval for cadences faster than 0.1 s."""
    return min(1e-3, 0.01 * float(interval_s))


def snap_to_cadence(time_s: np.ndarray, received_s: np.ndarray, interval_s: np.ndarray,
                    duration_s: float, source: str, field: str,
                    rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Phenomenon times of a citytwin run moved onto the nearest tick of their group's
    cadence (``cadence_ticks``), when within ``cadence_tolerance``; received times are kept
    (raised to the snapped time if it moved past them).

    A reading further off its cadence, or after the run's end, is an InputError naming
    ``source``, ``field`` and the row (``rows``: 1-based row numbers; default position + 1).
    """
    time_s = np.asarray(time_s, dtype=float)
    snapped = time_s.copy()
    off = np.zeros(len(time_s), dtype=bool)
    nearest = np.zeros(len(time_s))
    for dt in np.unique(interval_s):
        sel = np.flatnonzero(interval_s == dt)
        if not (np.isfinite(dt) and dt > 0):
            raise InputError(source, f"sensor group interval {dt!r} is not a positive number",
                             field="interval_s")
        ticks = cadence_ticks(float(dt), duration_s)
        t = time_s[sel]
        if len(ticks) > 1:
            k = np.clip(np.searchsorted(ticks, t), 1, len(ticks) - 1)
            k = np.where(t - ticks[k - 1] <= ticks[k] - t, k - 1, k)
        else:
            k = np.zeros(len(t), dtype=int)
        near = ticks[k]
        nearest[sel] = near
        off[sel] = np.abs(near - t) > cadence_tolerance(float(dt))
        snapped[sel] = near
    if off.any():
        i = int(np.flatnonzero(off)[0])
        row = int(rows[i]) if rows is not None else i + 1
        dt = float(interval_s[i])
        why = (f"after the end of the run ({duration_s:g} s)" if time_s[i] > duration_s
               else f"not on its sensor group's {dt:g} s cadence (nearest tick "
                    f"{nearest[i]:.10g} s, off by {abs(time_s[i] - nearest[i]):.3g} s; "
                    f"tolerance {cadence_tolerance(dt):g} s)")
        raise InputError(source, f"reading at {time_s[i]:.10g} s is {why}", field=field,
                         feature_id=f"row {row}")
    return snapped, np.maximum(np.asarray(received_s, dtype=float), snapped)


def group_intervals(sensors: pd.DataFrame, manifest: dict[str, Any],
                    source: str) -> pd.DataFrame:
    """``sensors`` with each missing ``interval_s`` set to its group's interval in a citytwin
    run: the archived ``group_intervals_s``, else (archives written before it was kept) the
    scenario group's ``interval_s``, else the default of its first sensor's type in the
    scenario's catalogue (resolved as ``prepare`` resolves it, against the working
    folder)."""
    missing = sensors["interval_s"].isna().to_numpy()
    if not missing.any():
        return sensors
    known = {str(g): float(v) for g, v in (manifest.get("group_intervals_s") or {}).items()}
    scenario = manifest["scenario"]
    catalogue = None
    out = sensors.copy()
    for gid in pd.unique(out.loc[missing, "group_id"]):
        if gid not in known:
            spec = next((g for g in scenario["sensors"]["groups"] if g["id"] == gid), {})
            if spec.get("interval_s") is not None:
                known[gid] = float(spec["interval_s"])
            else:
                if catalogue is None:
                    from citytwin.scenarios.run.prepare import catalogue_for

                    catalogue = catalogue_for(scenario["sensors"].get("catalogue"),
                                              Path.cwd())
                type_id = out.loc[out["group_id"] == gid, "type_id"].iloc[0]
                if type_id not in catalogue:
                    raise InputError(source, f"cannot tell the interval of sensor group "
                                     f"{gid!r}", field="sensors.group_id")
                known[gid] = float(catalogue[type_id].interval_s)
        out.loc[missing & (out["group_id"] == gid).to_numpy(), "interval_s"] = known[gid]
    return out


# --- observation files ---------------------------------------------------------------------

def observation_file(folder: Path) -> Path:
    """The one ``observations.*`` file of an incident folder."""
    found = [folder / f"observations.{ext}" for ext in OBSERVATION_FORMATS
             if (folder / f"observations.{ext}").is_file()]
    if not found:
        raise InputError(str(folder), "no observations.csv, observations.parquet or "
                         "observations.jsonl in the folder")
    if len(found) > 1:
        raise InputError(str(folder), f"several observation files {[p.name for p in found]}; "
                         "keep one")
    return found[0]


def read_raw_table(path: str | Path) -> pd.DataFrame:
    """A CSV, Parquet or JSON Lines file as a frame (no validation); empty → InputError."""
    path = Path(path)
    ext = path.suffix.lower().lstrip(".")
    if not path.is_file():
        raise InputError(str(path), "no such file")
    if ext == "csv":
        try:
            df = pd.read_csv(path, dtype={"sensor_id": str, "unit": str}, keep_default_na=False,
                             na_values=["", "NaN", "nan", "null"])
        except pd.errors.EmptyDataError:
            raise InputError(str(path), "empty file") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputError(str(path), f"not a readable CSV file ({exc})") from exc
    elif ext == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            names = pq.ParquetFile(path).schema_arrow.names
            dict_cols = [c for c in ("sensor_id", "unit") if c in names]
            df = pq.read_table(path, read_dictionary=dict_cols).to_pandas()
        except (pa.ArrowException, OSError) as exc:
            raise InputError(str(path), f"corrupt or not a Parquet file ({exc})") from exc
    elif ext in ("jsonl", "ndjson"):
        rows = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(str(path), f"not valid JSON ({exc.msg})",
                                     feature_id=f"line {n}") from None
                if not isinstance(rec, dict):
                    raise InputError(str(path), "each line must be a JSON object",
                                     feature_id=f"line {n}")
                rows.append(rec)
        df = pd.DataFrame(rows)
    else:
        raise InputError(str(path), f"unsupported format {path.suffix!r} (use .csv, .parquet "
                         "or .jsonl)")
    if df.empty:
        raise InputError(str(path), "empty file: no rows")
    return df


def parse_times(values: pd.Series, source: str, column: str | tuple[str, ...],
                anchor: datetime | None) -> tuple[np.ndarray, datetime | None]:
    """Seconds from ``anchor`` for ISO 8601 (with offset) or numeric times.

    Returns the seconds and the anchor used (the earliest time when none was given for ISO
    times; None for numeric times with no anchor). ``column`` may name several columns whose
    values are concatenated in ``values`` (equal lengths, in that order): they are parsed
    on one time base, so seconds in one and ISO times in another are refused, and an error
    names the column and row of the bad value.
    """
    columns = (column,) if isinstance(column, str) else tuple(column)
    n = len(values) // len(columns)

    def fail(reason: str, k: int) -> InputError:
        return InputError(source, reason, field=columns[k // n], feature_id=f"row {k % n + 1}")

    if pd.api.types.is_datetime64_any_dtype(values):
        if getattr(values.dt, "tz", None) is None:
            raise InputError(source, "timestamps need a UTC offset (time zone)",
                             field=columns[0])
        stamps = values
    elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        secs = values.to_numpy(dtype=float)
        bad = ~np.isfinite(secs)
        if bad.any():
            raise fail("unparseable time (empty or not finite)", int(np.flatnonzero(bad)[0]))
        return secs, anchor
    else:
        text = values.astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        if numeric.notna().all():
            return parse_times(numeric, source, columns, anchor)
        if numeric.notna().any():
            k = int(np.flatnonzero(numeric.isna().to_numpy())[0])
            raise fail(f"mixes seconds and ISO 8601 times ({text.iloc[k]!r})", k)
        no_offset = ~text.str.contains(_OFFSET)
        stamps = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        bad = (stamps.isna() | no_offset).to_numpy()
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            why = ("needs a UTC offset, e.g. 2026-06-01T05:30:00+08:00"
                   if not stamps.isna().iloc[k] else "not an ISO 8601 time or seconds")
            raise fail(f"unparseable time {text.iloc[k]!r}: {why}", k)
    stamps = stamps.dt.tz_convert("UTC")
    if anchor is None:
        anchor = stamps.min().to_pydatetime()
    base = pd.Timestamp(anchor).tz_convert("UTC")
    return ((stamps - base).dt.total_seconds()).to_numpy(dtype=float), anchor


def _time_columns(raw: pd.DataFrame, src: str, columns: tuple[str, ...],
                  anchor: datetime | None) -> tuple[list[np.ndarray], datetime | None]:
    """Several time columns parsed on one time base (``parse_times``): seconds per column."""
    parts = []
    for c in columns:
        v = raw[c].reset_index(drop=True)
        if pd.api.types.is_datetime64_any_dtype(v):
            if getattr(v.dt, "tz", None) is None:
                raise InputError(src, "timestamps need a UTC offset (time zone)", field=c)
            v = v.dt.tz_convert("UTC")  # one dtype across the columns
        parts.append(v)
    values = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    secs, anchor = parse_times(values, src, columns, anchor)
    return np.split(secs, len(columns)), anchor


def read_observations(path: str | Path, sensors: pd.DataFrame, *,
                      anchor: datetime | None = None,
                      duration_s: float | None = None) -> tuple[pd.DataFrame, datetime | None]:
    """Validate an observation file against the inventory; rows in file order.

    Returns (frame with sensor_id, time_s, received_s, value, unit, quality; the anchor).
    ``duration_s`` given (a citytwin run of that duration): phenomenon times are snapped to
    their group's cadence (``snap_to_cadence``; ``sensors.interval_s`` must be known).
    Errors name the file, the column and the row.
    """
    src = str(path)
    raw = read_raw_table(path)
    missing = [c for c in OBS_REQUIRED if c not in raw.columns]
    if missing:
        raise InputError(src, f"missing column(s) {missing} (have {list(raw.columns)})",
                         field=missing[0])
    inv_ids = sensors["sensor_id"].astype(str).to_numpy(dtype=object)
    codes, uniq = pd.factorize(raw["sensor_id"], use_na_sentinel=True)
    uniq = np.asarray(uniq, dtype=object).astype(str).astype(object)
    upos = pd.Index(inv_ids).get_indexer(uniq)
    pos = np.where(codes >= 0, upos[np.maximum(codes, 0)] if len(upos) else -1, -1)
    if (pos < 0).any():
        k = int(np.flatnonzero(pos < 0)[0])
        unknown = sorted({str(u) for u in uniq[upos < 0]} | (
            {"<empty>"} if (codes < 0).any() else set()))
        raise InputError(src, f"unknown sensor id(s) {unknown[:5]}"
                         f"{' …' if len(unknown) > 5 else ''} (not in the sensor inventory)",
                         field="sensor_id", feature_id=f"row {k + 1}")
    ids = inv_ids[pos]
    if "result_time" in raw.columns and raw["result_time"].notna().any():
        if raw["result_time"].isna().any():
            k = int(np.flatnonzero(raw["result_time"].isna().to_numpy())[0])
            raise InputError(src, "result_time is empty (give it for every row or none)",
                             field="result_time", feature_id=f"row {k + 1}")
        # one time base for both: seconds in one and ISO times in the other are refused
        (time_s, received_s), anchor = _time_columns(
            raw, src, ("phenomenon_time", "result_time"), anchor)
        early = received_s < time_s
        if early.any():
            raise InputError(src, "result_time is before phenomenon_time", field="result_time",
                             feature_id=f"row {int(np.flatnonzero(early)[0]) + 1}")
    else:
        (time_s,), anchor = _time_columns(raw, src, ("phenomenon_time",), anchor)
        received_s = time_s.copy()
    quality = _quality(raw, src)
    if duration_s is not None:
        # lost rows were never received: they are skipped, not checked
        kept = np.flatnonzero((quality != QUALITY_DROPPED) & (quality != QUALITY_OFFLINE))
        interval = sensors["interval_s"].to_numpy(dtype=float)[pos]
        time_s, received_s = np.array(time_s, dtype=float), np.array(received_s, dtype=float)
        time_s[kept], received_s[kept] = snap_to_cadence(
            time_s[kept], received_s[kept], interval[kept], duration_s, src,
            "phenomenon_time", rows=kept + 1)
    value = pd.to_numeric(raw["result"], errors="coerce").to_numpy(dtype=float)
    text_bad = raw["result"].notna().to_numpy() & np.isnan(value)
    if text_bad.any():
        k = int(np.flatnonzero(text_bad)[0])
        raise InputError(src, f"result {raw['result'].iloc[k]!r} is not a number",
                         field="result", feature_id=f"row {k + 1}")
    lost = (quality == QUALITY_DROPPED) | (quality == QUALITY_OFFLINE)
    bad = ~np.isfinite(value) & ~lost
    if bad.any():
        raise InputError(src, "result is missing/NaN/infinite; only rows with quality "
                         "'dropped' or 'offline' may lack a result", field="result",
                         feature_id=f"row {int(np.flatnonzero(bad)[0]) + 1}")
    inv_units = sensors["unit"].astype(str).to_numpy(dtype=object)
    ucodes, uuniq = pd.factorize(raw["unit"].astype(str))
    want = pd.Index(np.asarray(uuniq, dtype=object)).get_indexer(inv_units)[pos]
    wrong = ucodes != want
    if wrong.any():
        k = int(np.flatnonzero(wrong)[0])
        raise InputError(src, f"unit {uuniq[ucodes[k]]!r} of sensor {ids[k]} disagrees with "
                         f"the inventory ({inv_units[pos[k]]!r})", field="unit",
                         feature_id=f"row {k + 1}")
    _check_unique_and_order(pos, time_s, received_s, ids, src)
    df = pd.DataFrame({"sensor_id": ids, "time_s": time_s, "received_s": received_s,
                       "value": value, "unit": inv_units[pos],
                       "quality": quality.astype(np.int8)})
    if lost.any():
        df = df[~lost].reset_index(drop=True)
    return df, anchor


def _quality(raw: pd.DataFrame, src: str) -> np.ndarray:
    if "quality" not in raw.columns:
        return np.zeros(len(raw), dtype=np.int64)
    q = raw["quality"]
    if pd.api.types.is_integer_dtype(q):
        codes = pd.Series(q.to_numpy(dtype=np.int64))
    else:
        codes = pd.to_numeric(q, errors="coerce")
        if codes.isna().any():
            named = q.astype(str).str.strip().str.lower().map(QUALITY_NAMES)
            codes = codes.where(codes.notna(), named)
    bad = codes.isna() | ~codes.isin(list(QUALITY_NAMES.values()))
    if bad.any():
        k = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(src, f"quality {q.iloc[k]!r} is not one of {QUALITY_NAMES}",
                         field="quality", feature_id=f"row {k + 1}")
    return codes.to_numpy(dtype=np.int64)


def _check_unique_and_order(pos: np.ndarray, time_s: np.ndarray, received_s: np.ndarray,
                            ids: np.ndarray, src: str) -> None:
    """One reading per (sensor, phenomenon time); per sensor, readings in phenomenon-time
    order must not have been received in another order (the engine takes them as received)."""
    order = np.lexsort((np.arange(len(pos)), time_s, pos))
    p, t, rx = pos[order], time_s[order], received_s[order]
    same = p[1:] == p[:-1]
    dup = same & (t[1:] == t[:-1])
    if dup.any():
        k = int(order[int(np.flatnonzero(dup)[0]) + 1])
        raise InputError(src, f"duplicate reading of {ids[k]} at phenomenon_time "
                         f"{time_s[k]:g} s", field="phenomenon_time", feature_id=f"row {k + 1}")
    back = same & (rx[1:] < rx[:-1])
    if back.any():
        k = int(order[int(np.flatnonzero(back)[0])])
        raise InputError(src, f"reading of {ids[k]} at {time_s[k]:g} s was received after a "
                         "later one (out of order)", field="result_time",
                         feature_id=f"row {k + 1}")


# --- sensor inventories --------------------------------------------------------------------

def read_inventory(path: str | Path, target_crs: str | CRS) -> pd.DataFrame:
    """A sensor inventory (GeoJSON with ``crs`` or GeoPackage) in ``target_crs``.

    Returns a frame with ``sensors_sim.network.COLUMNS`` (``interval_s`` NaN when absent).
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise InputError(src, "no such file")
    ext = path.suffix.lower()
    if ext in (".geojson", ".json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(src, f"not valid JSON ({exc.msg})") from None
        crs_member = doc.get("crs") if isinstance(doc, dict) else None
        if crs_member:
            try:
                crs = CRS.from_user_input(crs_member.get("properties", {}).get("name"))
            except Exception as exc:  # noqa: BLE001 - pyproj raises several types
                raise InputError(src, f"unknown CRS {crs_member!r}", field="crs") from exc
        else:
            crs = None  # RFC 7946: longitude/latitude on WGS84, if the coordinates are
        feats = doc.get("features") or []
        records, coords = [], []
        for k, f in enumerate(feats):
            geom = (f or {}).get("geometry") or {}
            if geom.get("type") != "Point":
                raise InputError(src, f"geometry must be a Point, got {geom.get('type')!r}",
                                 field="geometry", feature_id=f"#{k}")
            records.append(dict(f.get("properties") or {}))
            coords.append(list(geom.get("coordinates") or []) + [math.nan] * 3)
        props = pd.DataFrame(records)
        xyz = np.array([c[:3] for c in coords], dtype=float).reshape(-1, 3)
        if crs is None:
            lonlat = (np.abs(xyz[:, 0]) <= 180) & (np.abs(xyz[:, 1]) <= 90)
            if not lonlat.all():
                raise InputError(src, "no CRS: the file has no 'crs' member and its "
                                 "coordinates are not longitude/latitude (RFC 7946); add "
                                 "e.g. {\"type\": \"name\", \"properties\": {\"name\": "
                                 "\"EPSG:32650\"}}", field="crs")
            crs = CRS.from_epsg(4326)
    elif ext == ".gpkg":
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # noqa: BLE001 - pyogrio raises several types
            raise InputError(src, f"not a readable GeoPackage ({exc})") from exc
        if gdf.crs is None:
            raise InputError(src, "no CRS on the layer", field="crs")
        crs = gdf.crs
        if not (gdf.geom_type == "Point").all():
            k = int(np.flatnonzero((gdf.geom_type != "Point").to_numpy())[0])
            raise InputError(src, "geometry must be a Point", field="geometry",
                             feature_id=f"#{k}")
        has_z = bool(gdf.has_z.any())
        xyz = np.column_stack([gdf.geometry.x, gdf.geometry.y,
                               gdf.geometry.z if has_z else np.full(len(gdf), np.nan)])
        props = pd.DataFrame(gdf.drop(columns="geometry"))
    else:
        raise InputError(src, f"unsupported inventory format {path.suffix!r} (use .geojson "
                         "or .gpkg)")
    if props.empty:
        raise InputError(src, "empty inventory: no features")
    for c in INVENTORY_REQUIRED:
        if c not in props.columns or props[c].isna().any():
            k = 0 if c not in props.columns else int(np.flatnonzero(props[c].isna())[0])
            raise InputError(src, f"missing property {c!r}", field=c, feature_id=f"#{k}")
    x, y = xyz[:, 0], xyz[:, 1]
    target = CRS.from_user_input(target_crs)
    if not CRS.from_user_input(crs).equals(target):
        x, y = Transformer.from_crs(crs, target, always_xy=True).transform(x, y)
    z = (props["z_m"] if "z_m" in props else props["height_m"] if "height_m" in props
         else pd.Series(xyz[:, 2])).astype(float).fillna(0.0).to_numpy()
    table = pd.DataFrame({
        "sensor_id": props["sensor_id"].astype(str), "type_id": props["type_id"].astype(str),
        "quantity": props["quantity"].astype(str), "unit": props["unit"].astype(str),
        "x_m": np.asarray(x, float), "y_m": np.asarray(y, float), "z_m": z,
        "asset_network": props.get("asset_network", pd.Series([None] * len(props))),
        "asset_id": props.get("asset_id", pd.Series([None] * len(props))),
        "group_id": (props["group_id"].astype(str) if "group_id" in props
                     else pd.Series(["sensors"] * len(props))),
        "interval_s": (props["interval_s"].astype(float) if "interval_s" in props
                       else pd.Series(np.full(len(props), np.nan))),
    })
    bad = ~np.isfinite(table[["x_m", "y_m"]].to_numpy()).all(axis=1)
    if bad.any():
        raise InputError(src, "point coordinates are not finite (after reprojection)",
                         field="geometry", feature_id=table["sensor_id"].iloc[
                             int(np.flatnonzero(bad)[0])])
    dup = table["sensor_id"].duplicated()
    if dup.any():
        raise InputError(src, "duplicate sensor id", field="sensor_id",
                         feature_id=table["sensor_id"][dup].iloc[0])
    return table


def fill_intervals(sensors: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Fill missing ``interval_s`` per group from the median spacing of its readings."""
    out = sensors.copy()
    if out["interval_s"].notna().all():
        return out
    gid = out.set_index("sensor_id")["group_id"]
    o = obs[["sensor_id", "time_s"]].copy()
    o["group_id"] = gid.reindex(o["sensor_id"]).to_numpy()
    o = o.sort_values(["sensor_id", "time_s"], kind="stable")
    o["dt"] = o.groupby("sensor_id")["time_s"].diff()
    med = o.groupby("group_id")["dt"].median()
    for g in out.loc[out["interval_s"].isna(), "group_id"].unique():
        v = med.get(g, np.nan)
        out.loc[(out["group_id"] == g) & out["interval_s"].isna(), "interval_s"] = (
            float(v) if np.isfinite(v) and v > 0 else 60.0)
    return out


# --- warnings ------------------------------------------------------------------------------

def normalise_warnings(df: pd.DataFrame, source: str,
                       levels: list[str] | None = None,
                       anchor: datetime | None = None) -> pd.DataFrame:
    """Warnings of the time as ``WARNING_FRAME`` columns (lists decoded)."""
    if df.empty:
        return pd.DataFrame({c: [] for c in WARNING_FRAME})
    missing = [c for c in WARNING_REQUIRED if c not in df.columns]
    if missing:
        raise InputError(source, f"missing column(s) {missing}", field=missing[0])
    out = pd.DataFrame({"warning_id": df["warning_id"].astype(str),
                        "event": _events(df, WARNING_EVENTS, source)})
    out["time_s"] = _event_times(df, source, anchor)
    kcol = "known_at_s" if "known_at_s" in df.columns else (
        "known_at" if "known_at" in df.columns else None)
    out["known_at_s"] = (_warning_times(df[kcol], source, kcol, anchor) if kcol
                         else out["time_s"])
    out["hazard"] = df["hazard"].astype(str) if "hazard" in df else ""
    out["level_name"] = df["level_name"].astype(str)
    if "level" in df:
        out["level"] = pd.to_numeric(df["level"], errors="coerce").fillna(0).astype(int)
    else:
        names = levels or ["blue", "yellow", "orange", "red"]
        out["level"] = [names.index(n) + 1 if n in names else 0 for n in out["level_name"]]
    out["basis"] = df["basis"].astype(str) if "basis" in df else "sensors"
    out["sensors"] = [_as_list(v) for v in df["sensors"]] if "sensors" in df else [
        [] for _ in range(len(df))]
    out["targets"] = [_as_list(v) for v in df["targets"]] if "targets" in df else [
        [] for _ in range(len(df))]
    out["area_m2"] = (pd.to_numeric(df["area_m2"], errors="coerce") if "area_m2" in df
                      else np.nan)
    return out[list(WARNING_FRAME)].reset_index(drop=True)


def _events(df: pd.DataFrame, allowed: tuple[str, ...], source: str) -> pd.Series:
    """The ``event`` column as text; InputError naming the first row not in ``allowed``."""
    events = df["event"].astype(str)
    bad = ~events.isin(allowed)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InputError(source, f"event {events.iloc[k]!r} is not one of {allowed}",
                         field="event", feature_id=f"row {k + 1}")
    return events


def _event_times(df: pd.DataFrame, source: str, anchor: datetime | None) -> np.ndarray:
    """Seconds from the anchor of a record's ``time_s`` (or ``time``) column."""
    column = "time_s" if "time_s" in df.columns else "time" if "time" in df.columns else None
    if column is None:
        raise InputError(source, "missing column 'time' (or 'time_s')", field="time")
    return _warning_times(df[column], source, column, anchor)


def _warning_times(values: pd.Series, source: str, column: str,
                   anchor: datetime | None) -> np.ndarray:
    """Seconds from the incident's anchor; wall-clock times need one."""
    secs, used = parse_times(values, source, column, anchor)
    if anchor is None and used is not None:
        raise InputError(source, "ISO 8601 times, but the incident has no wall-clock anchor "
                         "(its observation times are seconds): give the warnings in seconds "
                         "too, or the anchor ('anchor' in incident.json)", field=column)
    return secs


def _as_list(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [s.strip() for s in text.split(";") if s.strip()]


def read_warnings_file(path: str | Path, *, levels: list[str] | None = None,
                       anchor: datetime | None = None) -> pd.DataFrame:
    """Warnings of the time from CSV/JSON Lines, or a citytwin archive's table."""
    path = Path(path)
    if path.suffix == ".sqlite":
        if not path.is_file():
            raise InputError(str(path), "no such archive")
        try:
            df = read_table(path, "warnings").sort_values("seq", kind="stable")
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise InputError(str(path), f"not a readable citytwin archive ({exc})") from exc
        df = df.reset_index(drop=True)
    else:
        df = read_raw_table(path)
    return normalise_warnings(df, str(path), levels, anchor)


def normalise_work_orders(df: pd.DataFrame, source: str,
                          anchor: datetime | None = None) -> pd.DataFrame:
    """Work-order events of the time as ``WORK_ORDER_FRAME`` columns, in time order.

    Required: ``work_order_id``, ``event`` (one of ``WORK_ORDER_EVENTS``) and ``time`` (or
    ``time_s``: seconds from the anchor, or ISO 8601 with an offset); optional
    ``warning_id`` (default: the id after ``WO-``, the platform's naming), ``actor``,
    ``note``."""
    if df.empty:
        return pd.DataFrame({c: [] for c in WORK_ORDER_FRAME})
    missing = [c for c in WORK_ORDER_REQUIRED if c not in df.columns]
    if missing:
        raise InputError(source, f"missing column(s) {missing}", field=missing[0])
    out = pd.DataFrame({"work_order_id": df["work_order_id"].astype(str)})
    if "warning_id" in df.columns:
        out["warning_id"] = df["warning_id"].astype(str)
    else:
        out["warning_id"] = out["work_order_id"].str.removeprefix("WO-")
    out["event"] = _events(df, WORK_ORDER_EVENTS, source)
    out["time_s"] = _event_times(df, source, anchor)
    for c in ("actor", "note"):
        out[c] = df[c].fillna("").astype(str) if c in df.columns else ""
    return out.sort_values("time_s", kind="stable").reset_index(drop=True)


def read_work_orders_file(path: str | Path, *,
                          anchor: datetime | None = None) -> pd.DataFrame:
    """Work-order events of the time from CSV/Parquet/JSON Lines, or a citytwin archive's
    ``work_order_events`` (with each order's warning from ``work_orders``)."""
    path = Path(path)
    if path.suffix == ".sqlite":
        if not path.is_file():
            raise InputError(str(path), "no such archive")
        try:
            events = read_table(path, "work_order_events").sort_values("seq", kind="stable")
            orders = read_table(path, "work_orders")
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise InputError(str(path), f"not a readable citytwin archive ({exc})") from exc
        warning_of = orders.set_index("work_order_id")["warning_id"]
        df = events.assign(warning_id=warning_of.reindex(events["work_order_id"]).to_numpy())
        df = df.reset_index(drop=True)
    else:
        df = read_raw_table(path)
    return normalise_work_orders(df, str(path), anchor)


# --- incident folders ----------------------------------------------------------------------

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


def export_incident(archive: str | Path, out_dir: str | Path, fmt: str = "parquet", *,
                    incident: Incident | None = None) -> Path:
    """Write a citytwin run archive as an incident folder: observations.<fmt>,
    sensors.geojson, warnings.csv, work_orders.csv and incident.json. Times are ISO 8601
    with the run's offset. ``incident``: the archive already read
    (``read_archive_incident``). Returns the folder."""
    if fmt not in OBSERVATION_FORMATS:
        raise InputError("--format", f"unsupported format {fmt!r} (use one of "
                         f"{OBSERVATION_FORMATS})")
    inc = incident if incident is not None else read_archive_incident(archive)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    anchor = pd.Timestamp(inc.anchor)
    o = inc.observations
    obs = pd.DataFrame({
        "sensor_id": o["sensor_id"].astype(str),
        "phenomenon_time": anchor + pd.to_timedelta(o["time_s"], unit="s"),
        "result": o["value"], "unit": o["unit"].astype(str),
        "result_time": anchor + pd.to_timedelta(o["received_s"], unit="s"),
        "quality": o["quality"].astype(int)})
    for old in out.glob("observations.*"):
        old.unlink()
    path = out / f"observations.{fmt}"
    if fmt == "parquet":
        obs.to_parquet(path, index=False)
    else:
        for c in ("phenomenon_time", "result_time"):
            obs[c] = obs[c].map(lambda ts: ts.isoformat())
        if fmt == "csv":
            obs.to_csv(path, index=False, float_format="%.17g")
        else:
            with path.open("w", encoding="utf-8") as fh:
                for rec in obs.to_dict(orient="records"):
                    fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
    write_inventory_geojson(inc.sensors, inc.crs, out / "sensors.geojson")
    w = read_table(inc.source, "warnings").sort_values("seq")
    w.insert(2, "time", [(anchor + pd.Timedelta(seconds=t)).isoformat() for t in w["time_s"]])
    w[list(WARNING_COLUMNS[:1]) + ["time"] + list(WARNING_COLUMNS[1:])].to_csv(
        out / "warnings.csv", index=False)
    if inc.work_orders is not None:
        wo = inc.work_orders.copy()
        wo.insert(3, "time", [(anchor + pd.Timedelta(seconds=t)).isoformat()
                              for t in wo["time_s"]])
        wo.drop(columns="time_s").to_csv(out / "work_orders.csv", index=False)
    m = inc.manifest
    meta = {"format": "citytwin-incident/1", "anchor": anchor.isoformat(), "crs": inc.crs,
            "source_archive": str(Path(archive)), "observations": path.name,
            **{k: m[k] for k in MANIFEST_KEYS if k in m}}
    (out / "incident.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return out


def write_inventory_geojson(sensors: pd.DataFrame, crs: str, path: Path) -> Path:
    """Sensors as GeoJSON points with a ``crs`` member (the twin's projected CRS)."""
    feats = []
    for rec in sensors.to_dict(orient="records"):
        props = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in rec.items() if k not in ("x_m", "y_m")}
        feats.append({"type": "Feature", "properties": props, "geometry": {
            "type": "Point", "coordinates": [float(rec["x_m"]), float(rec["y_m"])]}})
    doc = {"type": "FeatureCollection",
           "crs": {"type": "name", "properties": {"name": crs}}, "features": feats}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
