"""The run archive writer: one SQLite file (WAL) with plain-SQL tables.

Read archives through :mod:`scenarios.run.archive_reader`.

Tables (times are seconds from scenario start; the wall-clock anchor is the manifest's
``start``; list-valued columns hold canonical JSON):
- ``manifest``: key → JSON value (scenario, seed, mode, start, each sensor group's interval
  ``group_intervals_s``, library versions, status).
- ``sensors``; ``observation_rows`` keyed by the sensor's integer ``sensor_key`` — read it
  through the view ``observations``, which carries the sensor id.
- ``alarms``: every change of a sensor's level under a rule (0 = no alarm), with the
  warning it was folded into (empty for owner-only rules).
- ``warnings``: the warning lifecycle, one row per event — ``event`` is raised, escalated,
  deescalated, updated, cleared (all-clear) or cancelled (withdrawn); ``basis`` is
  ``sensors`` or ``model`` (a model-based pre-warning); ``loop`` small/middle/big and
  ``lead_unit`` come from the routing table; ``reason`` says why the level is what it is.
- ``pushes``: each warning event sent to each recipient unit, by channel, and whether and
  when it was delivered (``warning_seq`` is the ``warnings.seq`` it carries).
- ``work_orders`` and ``work_order_events``: orders created from warnings, and every state
  change (created → assigned → in_progress → resolved → reviewed → closed) or rule firing
  (overdue_unassigned, overdue_deadline, escalated) with who and when.
- ``cap_messages``: the CAP 1.2 files written to the run folder's ``cap/``, with sha256.
- ``self_checks``: platform self-check findings (sensor offline, silence, sync rate,
  false-alarm rate), ``status`` raised or cleared.
- ``timeline``: a human-readable log of the run.
- ``injects``: a drill's scenario events (MSEL injects) as they fired: hazard events, sensor
  faults, information injects, contingency injects.
- ``actions``: every player command (acknowledge, assign, escalate, publish, evacuate,
  measure, ...) with its arguments and outcome (``done`` or ``refused`` with the reason).
- ``hazard_chain``: cascades — a hazard triggering a secondary one (parent → child, by
  which rule).

Every write is a transaction (WAL while running; the closed archive is one plain file), so a
crashed run leaves a readable archive of everything
committed; the run's ``status`` in the manifest says whether it completed. The index on
observations is built when the archive is closed (bulk loading is ~5× faster without it).
Nothing depends on the wall clock: the same scenario and seed give identical content.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from citytwin.alerting.platform import PlatformOutput

SCHEMA_VERSION = 3
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
    first_exceedance_s REAL, warning_id TEXT NOT NULL);
CREATE TABLE warnings (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, known_at_s REAL NOT NULL,
    warning_id TEXT NOT NULL, event TEXT NOT NULL, hazard TEXT NOT NULL,
    level INTEGER NOT NULL, level_name TEXT NOT NULL, basis TEXT NOT NULL,
    certainty TEXT NOT NULL, sensors TEXT NOT NULL, first_exceedance_s REAL NOT NULL,
    area_wkt TEXT NOT NULL, area_m2 REAL NOT NULL, area_source TEXT NOT NULL,
    targets TEXT NOT NULL, population INTEGER NOT NULL, loop TEXT NOT NULL,
    lead_unit TEXT NOT NULL, recipients TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE pushes (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, warning_id TEXT NOT NULL,
    warning_seq INTEGER, unit TEXT NOT NULL, channel TEXT NOT NULL,
    delivered INTEGER NOT NULL, received_s REAL);
CREATE TABLE work_orders (
    work_order_id TEXT PRIMARY KEY, warning_id TEXT NOT NULL, created_s REAL NOT NULL,
    hazard TEXT NOT NULL, level_name TEXT NOT NULL, lead_unit TEXT NOT NULL,
    actions TEXT NOT NULL, deadline_s REAL NOT NULL);
CREATE TABLE work_order_events (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, work_order_id TEXT NOT NULL,
    event TEXT NOT NULL, state TEXT NOT NULL, actor TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE cap_messages (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, identifier TEXT NOT NULL UNIQUE,
    warning_id TEXT NOT NULL, msg_type TEXT NOT NULL, sent TEXT NOT NULL,
    status TEXT NOT NULL, scope TEXT NOT NULL, refs TEXT NOT NULL, file TEXT NOT NULL,
    sha256 TEXT NOT NULL);
CREATE TABLE self_checks (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, check_id TEXT NOT NULL,
    subject TEXT NOT NULL, status TEXT NOT NULL, value REAL, detail TEXT NOT NULL);
CREATE TABLE timeline (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, kind TEXT NOT NULL,
    message TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE injects (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, inject_id TEXT NOT NULL,
    kind TEXT NOT NULL, message TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE actions (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    target TEXT NOT NULL, args TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE hazard_chain (
    seq INTEGER PRIMARY KEY, time_s REAL NOT NULL, parent TEXT NOT NULL, child TEXT NOT NULL,
    rule TEXT NOT NULL, detail TEXT NOT NULL);
"""
TABLES = ("manifest", "sensors", "observations", "alarms", "warnings", "pushes", "work_orders",
          "work_order_events", "cap_messages", "self_checks", "timeline", "injects", "actions",
          "hazard_chain")
#: Tables of drills and cascades written one row at a time (``Archive.write_record``).
_SEQUENCED = ("injects", "actions", "hazard_chain")
FINAL_INDEXES = "CREATE INDEX observations_by_sensor ON observation_rows (sensor_key, time_s);"

WARNING_COLUMNS = ("seq", "time_s", "known_at_s", "warning_id", "event", "hazard", "level",
                   "level_name", "basis", "certainty", "sensors", "first_exceedance_s",
                   "area_wkt", "area_m2", "area_source", "targets", "population", "loop",
                   "lead_unit", "recipients", "reason")
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
        self._last_seq: dict[str, int] = {}  # table → seq of its last row
        self._anchor_ts = 0.0

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_anchor(self, anchor_timestamp_s: float) -> None:
        """POSIX time of scenario t = 0 (CAP ``sent`` times are stored relative to it)."""
        self._anchor_ts = float(anchor_timestamp_s)

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
                   out: PlatformOutput | None = None,
                   cap_files: Iterable[tuple[str, str]] = (),
                   timeline: Iterable[tuple[float, str, str, dict]] = ()) -> None:
        """Write one tick in one transaction: observations, everything the platform produced
        (``out``), the CAP files written for its messages (``(file name, sha256)`` in message
        order) and timeline entries."""
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
            if out is not None:
                self._write_output(out, list(cap_files))
            for t_s, kind, message, data in timeline:
                self.db.execute("INSERT INTO timeline VALUES (?, ?, ?, ?, ?)",
                                (self._next_seq("timeline"), float(t_s), kind, message,
                                 _json(data)))

    def _next_seq(self, table: str) -> int:
        """The ``seq`` of the next row of ``table`` (1, 2, … in write order)."""
        self._last_seq[table] = self._last_seq.get(table, 0) + 1
        return self._last_seq[table]

    def write_record(self, table: str, *values: object) -> None:
        """Append one row to ``injects``, ``actions`` or ``hazard_chain`` (dict and list
        values stored as canonical JSON) in its own transaction."""
        if table not in _SEQUENCED:
            raise ValueError(f"write_record writes {list(_SEQUENCED)}, not {table!r}")
        row = [_json(v) if isinstance(v, dict | list) else v for v in values]
        with self.db:
            self.db.execute(f"INSERT INTO {table} VALUES ({','.join('?' * (len(row) + 1))})",
                            (self._next_seq(table), *row))

    def _write_output(self, out: PlatformOutput, cap_files: list[tuple[str, str]]) -> None:
        for a in out.alarms:
            self.db.execute("INSERT INTO alarms VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (self._next_seq("alarms"), *_nan_to_none(asdict(a).values())))
        for w in out.warnings:
            d = asdict(w)
            for key in ("sensors", "targets", "recipients"):
                d[key] = _json(list(d[key]))
            self.db.execute(f"INSERT INTO warnings ({','.join(WARNING_COLUMNS)}) "
                            f"VALUES ({','.join('?' * len(WARNING_COLUMNS))})",
                            (self._next_seq("warnings"), *(d[c] for c in WARNING_COLUMNS[1:])))
        for p in out.pushes:
            # Warning events are archived once each, in platform order: seq = index + 1.
            seq = None if p.warning_index is None else p.warning_index + 1
            self.db.execute("INSERT INTO pushes VALUES (?,?,?,?,?,?,?,?)",
                            (self._next_seq("pushes"), p.time_s, p.warning_id, seq, p.unit,
                             p.channel, int(p.delivered), p.received_s))
        for o in out.work_orders:
            self.db.execute("INSERT INTO work_orders VALUES (?,?,?,?,?,?,?,?)",
                            (o.work_order_id, o.warning_id, o.created_s, o.hazard,
                             o.level_name, o.lead_unit, _json(list(o.actions)), o.deadline_s))
        for e in out.work_order_events:
            self.db.execute("INSERT INTO work_order_events VALUES (?,?,?,?,?,?,?)",
                            (self._next_seq("work_order_events"), e.time_s, e.work_order_id,
                             e.event, e.state, e.actor, e.note))
        if len(cap_files) != len(out.cap_messages):
            raise ValueError(f"{len(out.cap_messages)} CAP messages but {len(cap_files)} files")
        for m, (name, digest) in zip(out.cap_messages, cap_files, strict=True):
            self.db.execute("INSERT INTO cap_messages VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                            (self._next_seq("cap_messages"), m.sent.timestamp() - self._anchor_ts,
                             m.identifier, m.warning_id, m.msg_type, m.sent.isoformat(),
                             m.status, m.scope, " ".join(m.references), name,
                             digest))
        for c in out.self_checks:
            self.db.execute("INSERT INTO self_checks VALUES (?,?,?,?,?,?,?)",
                            (self._next_seq("self_checks"), c.time_s, c.check_id, c.subject,
                             c.status, c.value, c.detail))

    def close(self) -> None:
        """Build the final indexes, checkpoint the WAL and close."""
        if self.db is not None:
            with self.db:
                self.db.executescript(FINAL_INDEXES)
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            # A finished archive is one self-contained file: readers need no -wal/-shm.
            self.db.execute("PRAGMA journal_mode=DELETE")
            self.db.close()
            self.db = None  # type: ignore[assignment]


def _nan_to_none(values) -> list:
    return [None if isinstance(v, float) and v != v else v for v in values]
