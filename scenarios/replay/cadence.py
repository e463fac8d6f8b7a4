"""Group cadences of a citytwin run: clock ticks, readings snapped onto them, intervals.

For a citytwin run each phenomenon time is snapped to the nearest tick of its sensor group's
cadence (``snap_to_cadence``: within ``cadence_tolerance``, 1 ms, so ns/µs rounding of ISO
strings and clock jitter are absorbed); a reading further off is refused with file, field
and row. The cadences are the run's ``group_intervals_s`` (``group_intervals``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.twin.errors import InputError


def intervals_of(sensor_ids: pd.Series | np.ndarray, sensors: pd.DataFrame) -> np.ndarray:
    """Each reading's group interval (s)."""
    return (sensors.set_index("sensor_id")["interval_s"].reindex(sensor_ids)
            .to_numpy(dtype=float))


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
