"""The observation file of an incident, validated against the sensor inventory.

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
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.alerting.observation import QUALITY_DROPPED, QUALITY_OFFLINE
from citytwin.scenarios.replay.cadence import snap_to_cadence
from citytwin.scenarios.replay.tables import read_raw_table, time_columns
from citytwin.twin.errors import InputError

OBSERVATION_FORMATS = ("csv", "parquet", "jsonl")
OBS_REQUIRED = ("sensor_id", "phenomenon_time", "result", "unit")
OBS_OPTIONAL = ("result_time", "quality")
QUALITY_NAMES = {"ok": 0, "clipped": 1, "dropped": 2, "offline": 3, "stuck": 4}


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
        (time_s, received_s), anchor = time_columns(
            raw, src, ("phenomenon_time", "result_time"), anchor)
        early = received_s < time_s
        if early.any():
            raise InputError(src, "result_time is before phenomenon_time", field="result_time",
                             feature_id=f"row {int(np.flatnonzero(early)[0]) + 1}")
    else:
        (time_s,), anchor = time_columns(raw, src, ("phenomenon_time",), anchor)
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
