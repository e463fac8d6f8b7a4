"""The run archive: one SQLite file (WAL) with plain-SQL tables.

Tables: ``manifest`` (key → JSON value: scenario, seed, library versions, status),
``sensors``, ``observation_rows`` (keyed by the sensor's integer ``sensor_key``; read it
through the view ``observations``, which carries the sensor id), ``alarms``, ``warnings`` and
``timeline``. Every write is a transaction, so a crashed run leaves a readable archive of
everything committed; the run's ``status`` in the manifest says whether it completed. The
index on observations is built when the archive is closed (bulk loading is ~5× faster
without it). Nothing depends on the wall clock: the same scenario and seed give identical
content.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from alerting.events import AlarmChange, WarningEvent

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sensors (
    sensor_key INTEGER PRIMARY KEY, sensor_id TEXT NOT NULL UNIQUE, type_id TEXT NOT NULL,
    quantity TEXT NOT NULL, unit TEXT NOT NULL,
    x_m REAL NOT NULL, y_m REAL NOT NULL, z_m REAL NOT NULL,
    group_id TEXT NOT NULL, asset_network TEXT, asset_id TEXT);
CREATE TABLE observation_rows (
    sensor_key INTEGER NOT NULL REFERENCES sensors (sensor_key), time_s REAL NOT NULL,
    received_s REAL NOT NULL, value REAL, quality INTEGER NOT NULL, source TEXT NOT NULL);
CREATE VIEW observations AS
    SELECT s.sensor_id, o.time_s, o.received_s, o.value, o.quality, o.source
    FROM observation_rows AS o JOIN sensors AS s USING (sensor_key);
CREATE TABLE alarms (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, known_at_s REAL NOT NULL,
    sensor_id TEXT NOT NULL, rule_id TEXT NOT NULL, hazard TEXT NOT NULL,
    from_level INTEGER NOT NULL, to_level INTEGER NOT NULL, value REAL NOT NULL,
    first_exceedance_s REAL);
CREATE TABLE warnings (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, known_at_s REAL NOT NULL,
    warning_id TEXT NOT NULL, event TEXT NOT NULL, hazard TEXT NOT NULL,
    level INTEGER NOT NULL, level_name TEXT NOT NULL, sensors TEXT NOT NULL,
    first_exceedance_s REAL NOT NULL, area_wkt TEXT NOT NULL, area_m2 REAL NOT NULL,
    area_source TEXT NOT NULL, targets TEXT NOT NULL, population INTEGER NOT NULL,
    recipients TEXT NOT NULL);
CREATE TABLE timeline (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT NOT NULL);
"""
FINAL_INDEXES = "CREATE INDEX observations_by_sensor ON observation_rows (sensor_key, time_s);"

SENSOR_COLUMNS = ("sensor_id", "type_id", "quantity", "unit", "x_m", "y_m", "z_m", "group_id",
                  "asset_network", "asset_id")


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class Archive:
    """Writer for a new run archive. Use as a context manager; ``close()`` checkpoints."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(f"{self.path}: archive already exists; "
                                  "choose a new run folder (archives are never overwritten)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        with self.db:
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT INTO manifest VALUES ('schema_version', ?)",
                            (_json(SCHEMA_VERSION),))
        self._sensor_keys = pd.Index([], dtype=object)
        self._timeline_seq = 0
        self._alarm_seq = 0
        self._warning_seq = 0

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_manifest(self, entries: dict[str, object]) -> None:
        """Insert or replace manifest entries (values stored as canonical JSON)."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?)",
                                [(k, _json(v)) for k, v in sorted(entries.items())])

    def write_sensors(self, sensors: pd.DataFrame) -> None:
        """The sensor inventory; ``sensor_key`` is the row position."""
        rows = sensors[list(SENSOR_COLUMNS)].itertuples(index=False, name=None)
        with self.db:
            self.db.executemany(f"INSERT INTO sensors VALUES ({','.join('?' * 11)})",
                                [(k, *(None if (isinstance(v, float) and np.isnan(v)) else v
                                       for v in r)) for k, r in enumerate(rows)])
        self._sensor_keys = pd.Index(sensors["sensor_id"].astype(str).to_numpy(dtype=object))

    def write_tick(self, *, sensor_id: np.ndarray | None = None, time_s=None, received_s=None,
                   value=None, quality=None, source: str = "simulated",
                   alarms: Iterable[AlarmChange] = (), warnings: Iterable[WarningEvent] = (),
                   timeline: Iterable[tuple[float, str, str, dict]] = ()) -> None:
        """Write one tick's observations, alarms, warnings and timeline in one transaction."""
        with self.db:
            if sensor_id is not None and len(sensor_id):
                keys = self._sensor_keys.get_indexer(sensor_id)
                if (keys < 0).any():
                    raise KeyError(f"observations for sensors not in the archive's inventory: "
                                   f"{sorted(set(np.asarray(sensor_id)[keys < 0]))[:5]}")
                vals = np.where(np.isfinite(value), value, np.nan)
                self.db.executemany(
                    "INSERT INTO observation_rows VALUES (?, ?, ?, ?, ?, ?)",
                    zip(keys.tolist(), np.asarray(time_s, float).tolist(),
                        np.asarray(received_s, float).tolist(),
                        [None if v != v else v for v in vals.tolist()],
                        np.asarray(quality, int).tolist(), [source] * len(sensor_id),
                        strict=True))
            for a in alarms:
                self._alarm_seq += 1
                self.db.execute("INSERT INTO alarms VALUES (?,?,?,?,?,?,?,?,?,?)",
                                (self._alarm_seq, *asdict(a).values()))
            for w in warnings:
                self._warning_seq += 1
                d = asdict(w)
                for key in ("sensors", "targets", "recipients"):
                    d[key] = _json(list(d[key]))
                self.db.execute(f"INSERT INTO warnings VALUES ({','.join('?' * 16)})",
                                (self._warning_seq, *d.values()))
            for t_s, kind, message, data in timeline:
                self._timeline_seq += 1
                self.db.execute("INSERT INTO timeline VALUES (?, ?, ?, ?, ?)",
                                (self._timeline_seq, float(t_s), kind, message, _json(data)))

    def close(self) -> None:
        """Build the final indexes, checkpoint the WAL and close."""
        if self.db is not None:
            with self.db:
                self.db.executescript(FINAL_INDEXES)
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.close()
            self.db = None  # type: ignore[assignment]


def read_table(path: str | Path, table: str) -> pd.DataFrame:
    """Read one archive table as a DataFrame (read-only connection)."""
    if table not in ("manifest", "sensors", "observations", "alarms", "warnings", "timeline"):
        raise ValueError(f"unknown archive table {table!r}")
    with sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True) as db:
        return pd.read_sql_query(f"SELECT * FROM {table}", db)


def read_manifest(path: str | Path) -> dict[str, object]:
    """The manifest as a dict of decoded JSON values."""
    df = read_table(path, "manifest")
    return {k: json.loads(v) for k, v in zip(df["key"], df["value"], strict=True)}


def content_digest(path: str | Path) -> str:
    """SHA-256 over the archive's SQL dump: equal digests ⇔ identical content."""
    import hashlib

    h = hashlib.sha256()
    with sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True) as db:
        for line in db.iterdump():
            h.update(line.encode("utf-8"))
            h.update(b"\n")
    return h.hexdigest()
