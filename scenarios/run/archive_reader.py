"""Reading a citytwin run archive: read-only connection, schema check, manifest, tables.

The writer is :mod:`scenarios.run.archive` (it owns the schema); everything that reads an
archive — reports, dossiers, replays, tests — reads it through this module:

- ``read_table`` / ``read_manifest``: one table or the manifest, straight from the file;
- ``load_run``: a whole run checked against the current schema and read into memory
  (``RunData``: manifest, wall-clock anchor, every table but the observations), refusing a
  file that is not a citytwin run archive with an ``InputError`` naming the file and the
  reason;
- ``read_observations``: the readings of some sensors in a time window.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from citytwin.scenarios.run.archive import SCHEMA, TABLES
from citytwin.twin.errors import InputError

#: Manifest entries every run archive records (``load_run`` refuses one without them).
REQUIRED_MANIFEST = ("run_id", "scenario", "start")
#: The tables ``load_run`` reads into memory (observations are queried per window).
_EVENT_TABLES = tuple(t for t in TABLES if t not in ("manifest", "observations"))
_ORDER = {"sensors": "sensor_key", "work_orders": "created_s, work_order_id"}
OBSERVATION_COLUMNS = ("sensor_id", "time_s", "received_s", "value", "quality", "source")


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the archive file (close it: ``contextlib.closing``)."""
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """Read one archive table as a DataFrame."""
    if table not in TABLES:
        raise ValueError(f"unknown archive table {table!r}")
    with closing(connect(path)) as db:
        return pd.read_sql_query(f"SELECT * FROM {table}", db)


def read_manifest(path: str | Path, *, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The manifest as a dict of decoded JSON values (``manifest_of``)."""
    with closing(connect(path)) as db:
        return manifest_of(db, Path(path), required)


def manifest_of(db: sqlite3.Connection, path: Path,
                required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The manifest of an open archive, by key; InputError naming an entry that is not
    JSON or a ``required`` one that is missing."""
    manifest = {}
    for key, value in db.execute("SELECT key, value FROM manifest ORDER BY key"):
        try:
            manifest[key] = json.loads(value)
        except (TypeError, ValueError):
            raise InputError(str(path), "not valid JSON", field=f"manifest.{key}") from None
    for key in required:
        if key not in manifest:
            raise InputError(str(path), "missing (every run archive records it)",
                             field=f"manifest.{key}")
    return manifest


@cache
def expected_columns() -> dict[str, tuple[str, ...]]:
    """The columns of every table (and view) of the current schema."""
    with closing(sqlite3.connect(":memory:")) as db:
        db.executescript(SCHEMA)
        return {t: tuple(r[1] for r in db.execute(f"PRAGMA table_info({t})")) for t in TABLES}


def check_schema(path: Path, db: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """InputError unless the open archive has every table and column of the current schema;
    returns the expected columns per table."""
    present = {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if "manifest" not in present:
        raise InputError(str(path), "not a citytwin run archive (it has no manifest table)")
    expected = expected_columns()
    missing = [t for t in TABLES if t not in present]
    if missing:
        row = db.execute("SELECT value FROM manifest WHERE key = 'schema_version'").fetchone()
        version = row[0] if row else "unknown"
        raise InputError(str(path), f"archive schema version {version} lacks table(s) "
                         f"{', '.join(missing)}; re-run the scenario with this citytwin")
    for t in TABLES:
        have = {r[1] for r in db.execute(f"PRAGMA table_info({t})")}
        lacking = [c for c in expected[t] if c not in have]
        if lacking:
            raise InputError(str(path), f"missing column(s) {', '.join(lacking)} "
                             "(an older or foreign archive schema)", field=t)
    return expected


def decode_json(value: Any) -> Any:
    """A JSON column's value decoded (text that is not JSON is returned as it is)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _warning_of(data: Any) -> Any:
    data = decode_json(data)
    return data.get("warning_id") if isinstance(data, dict) else None


def wall_clock(anchor: datetime, t_s: float | None) -> str | None:
    """``anchor + t_s`` as ISO 8601 with the anchor's UTC offset (ms only when fractional)."""
    if t_s is None or (isinstance(t_s, float) and math.isnan(t_s)):
        return None
    t = anchor + timedelta(seconds=float(t_s))
    return t.isoformat(timespec="seconds" if float(t_s).is_integer() else "milliseconds")


def parse_anchor(text: object) -> datetime:
    """The manifest's ``start``: an ISO 8601 date-time with a UTC offset (ValueError if not)."""
    try:
        anchor = datetime.fromisoformat(str(text))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if anchor.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset; the wall-clock anchor needs one "
                         "(e.g. 2026-06-01T05:30:00+08:00)")
    return anchor


@dataclass
class RunData:
    """A run archive read into memory (all tables but the observations)."""

    path: Path
    manifest: dict[str, Any]
    anchor: datetime
    tables: dict[str, pd.DataFrame]

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def levels(self) -> list[str]:
        """Level names, least to most severe (level number = position + 1)."""
        rulebook = self.manifest.get("rulebook") or {}
        if rulebook.get("levels"):
            return list(rulebook["levels"])
        w = self.tables["warnings"]
        named = w[w["level"] > 0].drop_duplicates("level").sort_values("level")
        return [str(n) for n in named["level_name"]]

    def wall(self, t_s: float | None) -> str | None:
        """Wall-clock ISO 8601 time of ``t_s`` seconds from the start (anchor's offset)."""
        return wall_clock(self.anchor, t_s)

    def local(self, t_s: float) -> datetime:
        """Aware local datetime of ``t_s`` seconds from the start."""
        return self.anchor + timedelta(seconds=float(t_s))

    # Derived once per run (the tables are read once and not changed afterwards).

    @cached_property
    def order_events(self) -> dict[str, pd.DataFrame]:
        """Each work order's events, by seq (an order without events is absent)."""
        events = self.tables["work_order_events"].sort_values("seq")
        return {str(k): g for k, g in events.groupby("work_order_id", sort=False)}

    def events_of_order(self, work_order_id: str) -> pd.DataFrame:
        """The events of one work order, by seq (none: an empty frame)."""
        found = self.order_events.get(str(work_order_id))
        return self.tables["work_order_events"].iloc[:0] if found is None else found

    @cached_property
    def timeline_warning_ids(self) -> pd.Series:
        """The ``warning_id`` named in each timeline row's data (None if it names none)."""
        timeline = self.tables["timeline"]
        return pd.Series([_warning_of(d) for d in timeline["data"]], index=timeline.index,
                         dtype=object)


def load_run(path: str | Path) -> RunData:
    """Read a run archive (or a run folder holding ``archive.sqlite``).

    Raises ``InputError`` (a ``ValueError``) naming the file and the reason when it does not
    exist, is not SQLite, lacks a table or column of the current schema, or has a manifest
    without ``run_id``, ``scenario`` or a ``start`` with a UTC offset.
    """
    path = Path(path)
    if path.is_dir() and (path / "archive.sqlite").is_file():
        path = path / "archive.sqlite"
    if not path.exists():
        raise InputError(str(path), "no such file")
    if path.is_dir():
        raise InputError(str(path), "is a folder without archive.sqlite, not a run archive")
    try:
        with closing(connect(path)) as db:
            columns = check_schema(path, db)
            manifest = manifest_of(db, path, REQUIRED_MANIFEST)
            tables = {}
            for t in _EVENT_TABLES:
                order = _ORDER.get(t, "seq")
                tables[t] = pd.read_sql_query(
                    f"SELECT {', '.join(columns[t])} FROM {t} ORDER BY {order}", db)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise InputError(str(path), f"not a readable SQLite run archive ({exc})") from None
    try:
        anchor = parse_anchor(manifest["start"])
    except ValueError as exc:
        raise InputError(str(path), str(exc), field="manifest.start") from None
    return RunData(path=path, manifest=manifest, anchor=anchor, tables=tables)


def read_observations(path: str | Path, sensor_ids: list[str], t0_s: float,
                      t1_s: float) -> pd.DataFrame:
    """Readings of ``sensor_ids`` with ``t0_s <= time_s <= t1_s``, by sensor and time."""
    if not sensor_ids:
        return pd.DataFrame(columns=list(OBSERVATION_COLUMNS))
    marks = ",".join("?" * len(sensor_ids))
    with closing(connect(path)) as db:
        return pd.read_sql_query(
            f"SELECT s.sensor_id, o.time_s, o.received_s, o.value, o.quality, o.source "
            f"FROM observation_rows AS o JOIN sensors AS s USING (sensor_key) "
            f"WHERE s.sensor_id IN ({marks}) AND o.time_s BETWEEN ? AND ? "
            f"ORDER BY s.sensor_id, o.time_s", db,
            params=[*sensor_ids, float(t0_s), float(t1_s)])


def content_digest(path: str | Path) -> str:
    """SHA-256 over the archive's SQL dump: equal digests ⇔ identical content."""
    h = hashlib.sha256()
    with closing(connect(path)) as db:
        for line in db.iterdump():
            h.update(line.encode("utf-8"))
            h.update(b"\n")
    return h.hexdigest()
