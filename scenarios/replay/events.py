"""Warnings and work orders of the time: files or an archive's tables, normalised.

Warnings issued at the time: the ``warnings`` table of a citytwin archive, or CSV/JSON Lines
with ``warning_id``, ``event`` (raised/escalated/deescalated/updated/cleared/cancelled),
``time`` (ISO 8601 or seconds: when it was issued), ``level_name`` and optionally
``hazard``, ``sensors`` (JSON list or ``;``-separated), ``targets``, ``area_m2``, ``basis``.
Work orders: ``normalise_work_orders``.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.scenarios.replay.tables import parse_times, read_raw_table
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.twin.errors import InputError

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
