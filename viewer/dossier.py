"""Event dossiers: the complete record of one warning, from the first exceedance to the end.

``build_dossiers(archive, out_dir)`` writes, for every warning (incident) in a run archive,
``DOSSIER-<warning_id>.json`` — the canonical record (sorted keys, no wall-clock of the build:
two builds give identical bytes) — and ``DOSSIER-<warning_id>.html``, a self-contained page
(inline CSS, plots as base64 PNG, no JavaScript) that reads on a phone as well as on a desk.

A dossier holds what the event archive of a city platform keeps: the summary (hazard, first
exceedance, when raised, levels over time, the maximum with its area, protected targets and
population, basis, time to all-clear or cancellation), the abnormal sensor data around the
incident with the rule thresholds, every alarm change, every warning event with its reason,
the pushes to each unit with delivery and delay, the work orders with every state change
(who, when, note: the on-site handling record and feedback), and the CAP messages.

Times: every ``*_s`` field is seconds from the run's start; its ``*_wall`` twin is the
wall-clock time ``anchor + seconds`` in the anchor's UTC offset, the anchor being the
manifest's ``start``.

Archives are read with :func:`scenarios.run.archive_reader.load_run`: it refuses a file that
is not a citytwin run archive with an :class:`~twin.errors.InputError` naming the file and
the reason.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from citytwin.alerting.events import CLOSING  # noqa: E402
from citytwin.scenarios.run.archive_reader import (  # noqa: E402
    RunData,
    decode_json,
    load_run,
    read_observations,
)
from citytwin.viewer.html import (  # noqa: E402
    LEVEL_COLOURS,
    badge,
    clock,
    duration_text,
    esc,
    number_text,
    page,
    png,
    run_status_text,
    status_banner,
    table,
)
from citytwin.viewer.maps import (  # noqa: E402
    fields_beside,
    run_map_figure,
    twin_for_archive,
    warning_boxes,
)
from citytwin.viewer.plots import (  # noqa: E402
    draw_thresholds,
    quantity_groups,
    threshold_items,
    top_sensors,
)

if TYPE_CHECKING:
    from citytwin.twin.model import CityTwin

DOSSIER_FORMAT = 1
#: Readings shown before the first exceedance and after the end of an incident.
PRE_WINDOW_S = 600.0
POST_WINDOW_S = 300.0
#: Most sensors drawn in a dossier's plot, most time rows in its HTML readings table.
MAX_PLOTTED_SENSORS = 12
MAX_TABLE_ROWS = 1500
#: Table columns that are points in time (seconds from the run's start).
TIME_COLUMNS = ("time_s", "known_at_s", "received_s", "first_exceedance_s", "created_s",
                "deadline_s")
#: Columns holding canonical JSON (lists or mappings).
JSON_COLUMNS = ("sensors", "targets", "recipients", "actions", "data")
_END_WORDS = {"cleared": "all-clear", "cancelled": "cancellation", "open": "end of the run"}

# --- plain values and records ------------------------------------------------------------

def plain(value: Any) -> Any:
    """A JSON-ready Python value: numpy scalars unwrapped, NaN/NA → None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(df: pd.DataFrame, run: RunData) -> list[dict[str, Any]]:
    """Rows as dicts: JSON columns decoded, each time column paired with ``*_wall``."""
    out = []
    for row in df.to_dict("records"):
        rec: dict[str, Any] = {}
        for key, value in row.items():
            value = plain(value)
            rec[key] = decode_json(value) if key in JSON_COLUMNS else value
            if key in TIME_COLUMNS:
                rec[key[:-2] + "_wall"] = run.wall(value)
        out.append(rec)
    return out


def canonical_json(data: object) -> str:
    """Sorted keys, two-space indent, UTF-8 text, no NaN: the same data give the same bytes."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def stats(values: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """``n``, ``median``, ``p90`` (nearest rank: the smallest value with ≥ 90 % of the values
    at or below it) and ``max``; None when there are no values."""
    x = np.sort(np.asarray([v for v in values if v is not None], dtype=float))
    if not len(x):
        return {"n": 0, "median": None, "p90": None, "max": None}
    rank = max(1, math.ceil(0.9 * len(x)))
    return {"n": len(x), "median": float(np.median(x)), "p90": float(x[rank - 1]),
            "max": float(x[-1])}


def _list(value: Any) -> list:
    value = decode_json(value)
    return list(value) if isinstance(value, list | tuple) else []


# --- one incident -------------------------------------------------------------------------

@dataclass
class Incident:
    """The lifecycle facts of one warning, shared by dossiers and operating reports."""

    warning_id: str
    events: pd.DataFrame           # its warnings rows, by seq
    raised: pd.Series
    end: pd.Series | None          # the cleared / cancelled row, or None while open
    max_row: pd.Series             # highest level; largest area among those; earliest

    @property
    def hazard(self) -> str:
        return str(self.raised["hazard"])

    @property
    def outcome(self) -> str:
        return "open" if self.end is None else str(self.end["event"])

    @property
    def first_exceedance_s(self) -> float:
        return float(self.events["first_exceedance_s"].min())

    @property
    def raised_s(self) -> float:
        """When the platform raised it (``known_at_s`` of the raised event)."""
        return float(self.raised["known_at_s"])

    @property
    def ended_s(self) -> float | None:
        return None if self.end is None else float(self.end["known_at_s"])

    @cached_property
    def sensors(self) -> list[str]:
        """Every sensor any of its events listed, in the order first listed."""
        seen: dict[str, None] = {}
        for s in self.events["sensors"]:
            seen.update(dict.fromkeys(_list(s)))
        return list(seen)


def incidents(run: RunData) -> list[Incident]:
    """Every warning in the archive, in the order it was first seen."""
    w = run.tables["warnings"]
    out = []
    for wid in w.drop_duplicates("warning_id")["warning_id"]:
        ev = w[w["warning_id"] == wid].sort_values("seq")
        raised_rows = ev[ev["event"] == "raised"]
        raised = (raised_rows if len(raised_rows) else ev).iloc[0]
        last = ev.iloc[-1]  # a warning re-raised after an all-clear is open again
        live = ev[~ev["event"].isin(CLOSING)]
        live = live if len(live) else ev
        top = live[live["level"] == live["level"].max()]
        max_row = top.sort_values(["area_m2", "seq"], ascending=[False, True]).iloc[0]
        out.append(Incident(str(wid), ev, raised,
                            last if last["event"] in CLOSING else None, max_row))
    return out


def _thresholds(run: RunData, rule_ids: list[str]) -> list[dict[str, Any]]:
    rulebook = run.manifest.get("rulebook") or {}
    rules = [*(rulebook.get("rules") or []), *(rulebook.get("forecasts") or [])]
    order = {name: i for i, name in enumerate(run.levels)}
    out = []
    for rule in rules:
        if rule.get("id") in rule_ids and rule.get("thresholds"):
            thr = sorted(rule["thresholds"].items(), key=lambda kv: (order.get(kv[0], 99), kv))
            out.append({"rule_id": rule["id"], "kind": rule.get("kind", "threshold"),
                        "quantity": rule.get("quantity"), "unit": rule.get("unit"),
                        "thresholds": {str(k): float(v) for k, v in thr}})
    return sorted(out, key=lambda r: r["rule_id"])


def _work_orders(run: RunData, warning_id: str) -> list[dict[str, Any]]:
    orders = run.tables["work_orders"]
    out = []
    for rec in records(orders[orders["warning_id"] == warning_id], run):
        ev = run.events_of_order(rec["work_order_id"])
        facts = order_facts(rec["created_s"], ev)
        rec.update(facts)
        rec["events"] = records(ev, run)
        out.append(rec)
    return out


def order_facts(created_s: float, events: pd.DataFrame) -> dict[str, Any]:
    """Derived facts of one work order from its events (by seq)."""
    def first(name: str) -> float | None:
        t = events.loc[events["event"] == name, "time_s"]
        return float(t.iloc[0]) if len(t) else None

    assigned, closed = first("assigned"), first("closed")
    return {
        "state_at_end": str(events["state"].iloc[-1]) if len(events) else "created",
        "time_to_assignment_s": None if assigned is None else assigned - created_s,
        "time_to_closure_s": None if closed is None else closed - created_s,
        "overdue_events": [str(e) for e in events["event"] if str(e).startswith("overdue")],
        "escalations": int((events["event"] == "escalated").sum()),
    }


def dossier_data(run: RunData, inc: Incident, *, pre_s: float = PRE_WINDOW_S,
                 post_s: float = POST_WINDOW_S) -> dict[str, Any]:
    """The canonical content of one dossier (JSON-ready, deterministic)."""
    wid = inc.warning_id
    duration_run_s = plain(run.manifest.get("duration_s"))
    members = inc.sensors
    t_end = inc.ended_s
    if t_end is None:
        t_end = float(duration_run_s) if duration_run_s is not None else float(
            inc.events["known_at_s"].max())
    t0, t1 = inc.first_exceedance_s - pre_s, t_end + post_s

    alarms = run.tables["alarms"]
    alarms = alarms[alarms["sensor_id"].isin(members) & (alarms["hazard"] == inc.hazard)
                    & alarms["time_s"].between(t0, t1)]
    rule_ids = sorted(set(alarms["rule_id"]))
    obs = read_observations(run.path, members, t0, t1)
    pushes = run.tables["pushes"]
    pushes = pushes[pushes["warning_id"] == wid].copy()
    seq_event = dict(zip(inc.events["seq"], inc.events["event"], strict=True))
    pushes["warning_event"] = pushes["warning_seq"].map(seq_event)
    pushes["delay_s"] = (pd.to_numeric(pushes["received_s"], errors="coerce")
                         - pd.to_numeric(pushes["time_s"])).round(3)
    caps = run.tables["cap_messages"]
    checks = run.tables["self_checks"]
    checks = checks[checks["subject"].isin(members) & checks["time_s"].between(t0, t1)]
    timeline = run.tables["timeline"]
    timeline = timeline[run.timeline_warning_ids == wid]

    ev = inc.events
    changes = ev[ev["level"].ne(ev["level"].shift())]
    levels_over_time = [
        {"time_s": plain(r.time_s), "time_wall": run.wall(r.time_s),
         "known_at_s": plain(r.known_at_s), "known_at_wall": run.wall(r.known_at_s),
         "event": r.event, "level": int(r.level), "level_name": r.level_name,
         "reason": r.reason} for r in changes.itertuples()]
    m = inc.max_row
    at_max = {k: plain(m[k]) for k in ("seq", "time_s", "known_at_s", "event", "area_m2",
                                         "area_source", "area_wkt", "population", "loop",
                                         "lead_unit", "certainty", "basis", "reason")}
    at_max.update({"time_wall": run.wall(m["time_s"]), "known_at_wall": run.wall(m["known_at_s"]),
                   "targets": _list(m["targets"]), "recipients": _list(m["recipients"]),
                   "sensors": _list(m["sensors"])})
    targets_all: dict[str, None] = {}
    for t in ev["targets"]:
        targets_all.update(dict.fromkeys(_list(t)))
    n_delivered = int(pushes["delivered"].astype(bool).sum())
    summary = {
        "warning_id": wid, "hazard": inc.hazard, "basis": str(inc.raised["basis"]),
        "bases": list(dict.fromkeys(str(b) for b in ev["basis"])),
        "first_exceedance_s": inc.first_exceedance_s,
        "first_exceedance_wall": run.wall(inc.first_exceedance_s),
        "raised_time_s": plain(inc.raised["time_s"]),
        "raised_time_wall": run.wall(inc.raised["time_s"]),
        "raised_s": inc.raised_s, "raised_wall": run.wall(inc.raised_s),
        "time_to_warning_s": inc.raised_s - inc.first_exceedance_s,
        "levels_over_time": levels_over_time,
        "max_level": int(m["level"]), "max_level_name": str(m["level_name"]),
        "at_max": at_max,
        "targets_all": list(targets_all),
        "peak_population": int(ev["population"].max()),
        "sensors": members, "rules": rule_ids,
        "escalations": int((ev["event"] == "escalated").sum()),
        "outcome": inc.outcome,
        "ended_s": inc.ended_s, "ended_wall": run.wall(inc.ended_s),
        "end_reason": None if inc.end is None else str(inc.end["reason"]),
        "duration_s": None if inc.ended_s is None else inc.ended_s - inc.raised_s,
        "open_at_run_end_s": (float(duration_run_s) - inc.raised_s
                              if inc.end is None and duration_run_s is not None else None),
        "pushes": len(pushes), "pushes_delivered": n_delivered,
    }
    obs_cols = ["sensor_id", "time_s", "time_wall", "value", "quality", "source", "received_s"]
    obs_rows = [[plain(r.sensor_id), plain(r.time_s), run.wall(r.time_s), plain(r.value),
                 plain(r.quality), plain(r.source), plain(r.received_s)]
                for r in obs.itertuples(index=False)]
    sensors = run.tables["sensors"]
    return {
        "dossier_format": DOSSIER_FORMAT,
        "warning_id": wid,
        "run": {"run_id": run.run_id, "archive": run.path.name,
                "scenario": (run.manifest.get("scenario") or {}).get("name"),
                "mode": (run.manifest.get("scenario") or {}).get("mode"),
                "seed": plain(run.manifest.get("seed")), "start": str(run.manifest["start"]),
                "duration_s": duration_run_s, "status": run.manifest.get("status"),
                "status_note": run_status_text(run.manifest)},
        "times": {"anchor": str(run.manifest["start"]),
                  "note": "*_s: seconds from the run's start; *_wall: anchor + seconds, "
                          "ISO 8601 in the anchor's UTC offset"},
        "summary": summary,
        "observations": {
            "from_s": t0, "from_wall": run.wall(t0), "to_s": t1, "to_wall": run.wall(t1),
            "pre_s": float(pre_s), "post_s": float(post_s),
            "sensors": records(sensors[sensors["sensor_id"].isin(members)], run),
            "thresholds": _thresholds(run, rule_ids),
            "columns": obs_cols, "rows": obs_rows},
        "alarms": records(alarms, run),
        "warning_events": records(ev, run),
        "pushes": records(pushes, run),
        "work_orders": _work_orders(run, wid),
        "cap_messages": records(caps[caps["warning_id"] == wid], run),
        "self_checks": records(checks, run),
        "timeline": records(timeline, run),
    }


# --- plots ---------------------------------------------------------------------------------

def _local_times(anchor: datetime, t_s) -> np.ndarray:
    base = np.datetime64(anchor.replace(tzinfo=None).isoformat(), "ms")
    return base + (np.asarray(t_s, dtype=float) * 1000).round().astype("timedelta64[ms]")


def _offset_label(anchor: datetime) -> str:
    off = anchor.utcoffset() or timedelta(0)
    sign = "-" if off < timedelta(0) else "+"
    minutes = abs(int(off.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def incident_plot(data: dict[str, Any], anchor: datetime, levels: list[str]) -> str:
    """Readings of the member sensors, one panel per quantity with the thresholds of the
    plain threshold rules on it, and the level over time."""
    import matplotlib.dates as mdates

    s = data["summary"]
    obs = pd.DataFrame(data["observations"]["rows"], columns=data["observations"]["columns"])
    obs["value"] = obs["value"].astype(float)
    meta = pd.DataFrame(data["observations"]["sensors"],
                        columns=["sensor_id", "quantity", "unit"])
    groups = quantity_groups(obs, meta) or [("value", "", obs)]
    fig, axes = plt.subplots(len(groups) + 1, 1, figsize=(9, 1.6 + 3.4 * len(groups)),
                             sharex=True,
                             gridspec_kw={"height_ratios": [3] * len(groups) + [1.2]})
    axl = axes[-1]
    n_each = max(1, MAX_PLOTTED_SENSORS // len(groups))
    n_shown = n_all = 0
    for ax, (quantity, unit, rows) in zip(axes[:-1], groups, strict=True):
        shown = top_sensors(rows, n_each)
        n_shown, n_all = n_shown + len(shown), n_all + rows["sensor_id"].nunique()
        for sid in shown:
            g = rows[rows["sensor_id"] == sid]
            ax.plot(_local_times(anchor, g["time_s"]), g["value"], lw=1.2, label=sid)
        ax.set_ylabel(f"{quantity} ({unit})" if unit else quantity)
        ax.grid(alpha=0.3)
        draw_thresholds(ax, threshold_items(data["observations"]["thresholds"], quantity,
                                            None, levels))
    ax = axes[0]
    marks = [(s["first_exceedance_s"], "first exceedance", "#616161", ":"),
             (s["raised_s"], "raised", "black", "-")]
    run_end_s = data["run"]["duration_s"]
    if s["ended_s"] is not None:
        marks.append((s["ended_s"], s["outcome"],
                      "#2e7d32" if s["outcome"] == "cleared" else "#6a1b9a", "-."))
    elif run_end_s is not None:
        marks.append((run_end_s, "end of run (still open)", "#c62828", "-."))
    for t, label, colour, ls in marks:
        x = _local_times(anchor, [t])[0]
        for a in axes:
            a.axvline(x, color=colour, ls=ls, lw=1.0, label=label if a is ax else None)
    for a in axes[:-1]:
        a.legend(fontsize=7, ncol=2, loc="upper left")
    some = f" ({n_shown} of {n_all} with the highest readings)" if n_all > n_shown else ""
    ax.set_title(f"{data['warning_id']}: readings of its sensors{some} and the warning level",
                 fontsize=10)
    ev = pd.DataFrame(s["levels_over_time"])
    end = next(t for t in (s["ended_s"], run_end_s, data["observations"]["to_s"])
               if t is not None)
    t = [*ev["known_at_s"], end]
    lv = [*ev["level"], ev["level"].iloc[-1]]
    axl.step(_local_times(anchor, t), lv, where="post", color="#424242", lw=1.5)
    for r in ev.itertuples():
        axl.scatter(_local_times(anchor, [r.known_at_s]), [r.level], zorder=3, s=30,
                    color=LEVEL_COLOURS.get(r.level_name, "#9e9e9e"), edgecolor="k", lw=0.5)
    axl.set_yticks(range(len(levels) + 1), ["none", *levels], fontsize=7)
    axl.set_ylim(-0.4, len(levels) + 0.4)
    axl.set_ylabel("level")
    axl.grid(alpha=0.3)
    locator = mdates.AutoDateLocator()
    axl.xaxis.set_major_locator(locator)
    axl.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axl.set_xlabel(f"wall-clock time ({_offset_label(anchor)})")
    return png(fig)


def incident_map(data: dict[str, Any], run: RunData, twin: CityTwin | None = None) -> str:
    """The incident's area at its worst over the twin (rebuilt from the manifest when not
    given), its sensors by highest level, the hazard snapshot; framed on the incident."""
    twin = twin if twin is not None else twin_for_archive(run.path, run.manifest)
    sensors = run.tables["sensors"]
    events = run.tables["warnings"]
    mine = events[events["warning_id"] == data["warning_id"]]
    fields = fields_beside(run.path)
    boxes = warning_boxes(mine)
    fig = run_map_figure(
        twin, sensors=sensors[sensors["sensor_id"].isin(data["summary"]["sensors"])],
        alarms=pd.DataFrame(data["alarms"], columns=run.tables["alarms"].columns),
        warnings=mine, hazards=run.manifest.get("hazards") or {}, levels=run.levels,
        fields=fields, frame_fields=not boxes,
        title=f"{data['warning_id']}: its area at the most severe level, its sensors")
    return png(fig)


# --- HTML ----------------------------------------------------------------------------------

def _frame(rows: list[dict], columns: list[tuple[str, Any]]) -> pd.DataFrame:
    """Display frame: ``columns`` = (header, key or function of the row)."""
    return pd.DataFrame([[(f(r) if callable(f) else _show(r.get(f))) for _, f in columns]
                         for r in rows], columns=[h for h, _ in columns])


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "—"
    if isinstance(value, float):
        return number_text(value)
    return str(value)


def _t(key: str) -> tuple[str, Any]:
    """'t' column (T+hh:mm:ss from the start; the JSON keeps the seconds) for a time key."""
    return ("t", lambda r: clock(r.get(key)))


def _w(key: str) -> tuple[str, Any]:
    return ("wall clock", lambda r: _show(r.get(key[:-2] + "_wall")))


def section_table(rows: list[dict], columns: list[tuple[str, Any]], empty: str) -> str:
    """A scrollable table, or a sentence when there are no rows."""
    if not rows:
        return f"<p>{html.escape(empty)}</p>"
    return f'<div class="scroll">{table(_frame(rows, columns))}</div>'


def _dur(seconds: float | None) -> str:
    return duration_text(seconds)


def dossier_html(data: dict[str, Any], run: RunData, twin: CityTwin | None = None) -> str:
    """The HTML page of one dossier."""
    s, m = data["summary"], data["summary"]["at_max"]
    wid = data["warning_id"]
    colour = LEVEL_COLOURS.get(s["max_level_name"], "#9e9e9e")
    facts = [
        ("Hazard", s["hazard"]), ("Basis", ", ".join(s["bases"])),
        ("Outcome", s["outcome"] + (f" — {s['end_reason']}" if s["end_reason"] else "")),
        ("First exceedance", f"{s['first_exceedance_wall']} ({clock(s['first_exceedance_s'])})"),
        ("Raised", f"{s['raised_wall']} ({clock(s['raised_s'])}), "
                   f"{_dur(s['time_to_warning_s'])} after the first exceedance"),
        ("Levels reached", " → ".join(f"{x['level_name']} ({clock(x['known_at_s'])})"
                                      for x in s["levels_over_time"])),
        ("Maximum level",
         f"{s['max_level_name']} (level {s['max_level']}) at {m['known_at_wall']}"),
        ("Area at maximum", f"{m['area_m2'] / 1e4:.2f} ha ({m['area_source']})"),
        ("Protected targets at maximum", _show(m["targets"])),
        ("Population at maximum", f"{m['population']} (peak {s['peak_population']})"),
        ("Loop / lead unit at maximum", f"{m['loop']} / {m['lead_unit']}"),
        ("Recipients at maximum", _show(m["recipients"])),
        ("Sensors", _show(s["sensors"])), ("Rules", _show(s["rules"])),
        ("Escalations", s["escalations"]),
        ("Ended", "still open at the end of the run" if s["ended_s"] is None
         else f"{s['ended_wall']} ({clock(s['ended_s'])})"),
        ("Duration to " + ("all-clear" if s["outcome"] == "cleared" else s["outcome"]),
         _dur(s["duration_s"] if s["duration_s"] is not None else s["open_at_run_end_s"])),
        ("Pushes delivered", f"{s['pushes_delivered']} of {s['pushes']}"),
    ]
    facts_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    obs = data["observations"]
    unit_of = {x["sensor_id"]: x.get("unit") or "" for x in obs["sensors"]}
    kinds = {r.get("id"): r.get("kind", "threshold")
             for r in (run.manifest.get("rulebook") or {}).get("rules") or []}

    def reading_rule(rule_id: str) -> bool:
        """A plain threshold rule's value is a reading (in the sensor's unit); a composite
        index or a rate of rise is not."""
        return kinds.get(rule_id, "threshold") == "threshold"

    ob = pd.DataFrame(obs["rows"], columns=obs["columns"])
    if len(ob):
        wide = ob.pivot(index=["time_s", "time_wall"], columns="sensor_id",
                        values="value").reset_index()
        wide.columns.name = None
        wide.insert(0, "t", wide["time_s"].map(clock))
        wide = wide.drop(columns="time_s").rename(columns={"time_wall": "wall clock"})
        wide = wide.map(lambda v: number_text(v) if isinstance(v, float) else v)
        step = math.ceil(len(wide) / MAX_TABLE_ROWS)
        thinned = (f"; one time in {step} shown, the JSON dossier holds them all"
                   if step > 1 else "")
        wide = wide.iloc[::step]
        readings = (f"<details><summary>Readings table ({len(ob)} readings of "
                    f"{ob['sensor_id'].nunique()} sensor(s){thinned})</summary>"
                    f'<div class="scroll">{table(wide)}</div></details>')
    else:
        readings = "<p>No readings of its sensors in the window.</p>"
    thr = "; ".join(f"{r['rule_id']}: " + ", ".join(f"{k} {v:g} {r['unit']}"
                                                    for k, v in r["thresholds"].items())
                    for r in obs["thresholds"]) or "none in the manifest's rulebook"
    plot = incident_plot(data, run.anchor, run.levels)
    map_html = f'<img alt="warning areas" src="{incident_map(data, run, twin)}">'

    orders = []
    for o in data["work_orders"]:
        head = [("Work order", o["work_order_id"]), ("Lead unit", o["lead_unit"]),
                ("Level", o["level_name"]), ("Actions", _show(o["actions"])),
                ("Created", f"{o['created_wall']} ({clock(o['created_s'])})"),
                ("Deadline", f"{o['deadline_wall']} ({clock(o['deadline_s'])})"),
                ("State at end of run", o["state_at_end"]),
                ("Time to assignment", _dur(o["time_to_assignment_s"])),
                ("Time to closure", _dur(o["time_to_closure_s"])),
                ("Overdue", _show(o["overdue_events"]))]
        orders.append(
            f"<h3>{esc(o['work_order_id'])}</h3><table>"
            + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in head)
            + "</table>" + section_table(o["events"], [
                _t("time_s"), _w("time_s"), ("event", "event"), ("state", "state"),
                ("who", "actor"), ("note", "note")], "No events."))
    banner = status_banner(data["run"].get("status_note") or "")
    body = f"""<h1>Event dossier {esc(wid)} {badge(s['max_level_name'].upper(), colour)}</h1>
{banner}
<p class="note">{esc(s['hazard'])} · run {esc(data['run']['run_id'])}
({esc(data['run']['scenario'])}, {esc(data['run']['mode'])}) · times are from the
start (T+hh:mm:ss) and wall-clock from the anchor {esc(data['times']['anchor'])}</p>
<h2>Summary</h2><div class="scroll"><table>{facts_html}</table></div>
<h2>Abnormal data</h2>
<p>Readings of the incident's sensors from {esc(obs['from_wall'])} to {esc(obs['to_wall'])}
({duration_text(obs['pre_s'])} before the first exceedance to
{duration_text(obs['post_s'])} after the
{_END_WORDS.get(s['outcome'], s['outcome'])}). Thresholds: {esc(thr)}.</p>
<img alt="readings and level" src="{plot}">
{readings}
<h2>Alarm changes</h2>
{section_table(data['alarms'], [_t('time_s'), _w('time_s'), ('sensor', 'sensor_id'),
                                ('rule', 'rule_id'), ('from', 'from_level'), ('to', 'to_level'),
                                ('value', lambda r: number_text(r['value'], unit_of.get(
                                    r['sensor_id'], '') if reading_rule(r['rule_id']) else '')),
                                ('known at', 'known_at_wall')],
               'No alarm changes of its sensors in the window.')}
<h2>Warning events</h2>
{section_table(data['warning_events'], [
    _t('known_at_s'), _w('known_at_s'), ('event', 'event'), ('level', 'level_name'),
    ('basis', 'basis'), ('certainty', 'certainty'),
    ('sensors', lambda r: str(len(r['sensors']))),
    ('area (ha)', lambda r: f"{r['area_m2'] / 1e4:.2f}"), ('targets', 'targets'),
    ('population', 'population'), ('loop', 'loop'), ('lead unit', 'lead_unit'),
    ('recipients', 'recipients'), ('reason', 'reason')], 'No events.')}
<h2>Areas</h2>{map_html}
<h2>Pushes</h2>
{section_table(data['pushes'], [_t('time_s'), _w('time_s'), ('event', 'warning_event'),
                                ('unit', 'unit'), ('channel', 'channel'),
                                ('delivered', lambda r: 'yes' if r['delivered'] else 'NO'),
                                ('received', 'received_wall'), ('delay (s)', 'delay_s')],
               'No pushes were recorded.')}
<h2>Work orders and on-site handling</h2>
{''.join(orders) or '<p>No work order was created.</p>'}
<h2>CAP messages</h2>
{section_table(data['cap_messages'], [_t('time_s'), ('identifier', 'identifier'),
                                      ('type', 'msg_type'), ('status', 'status'),
                                      ('sent', 'sent'),
                                      ('references', lambda r: str(len(r['refs'].split()))),
                                      ('file', 'file'),
                                      ('sha256', lambda r: r['sha256'][:16] + '…')],
               'No CAP message was written.')}
<h2>Platform self-checks on its sensors</h2>
{section_table(data['self_checks'], [_t('time_s'), _w('time_s'), ('check', 'check_id'),
                                     ('subject', 'subject'), ('status', 'status'),
                                     ('value', 'value'), ('detail', 'detail')],
               'No self-check findings on its sensors in the window.')}
<h2>Provenance</h2>
<p>Archive {esc(data['run']['archive'])}, run {esc(data['run']['run_id'])}, seed
{esc(data['run']['seed'])}, run status {esc(data['run']['status'])}. The JSON dossier
beside this page is the canonical record.</p>"""
    return page(f"Event dossier {wid}", body)


def _safe_name(warning_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", warning_id)


def build_dossiers(archive_path: str | Path, out_dir: str | Path, *,
                   twin: CityTwin | None = None, pre_s: float = PRE_WINDOW_S,
                   post_s: float = POST_WINDOW_S) -> list[Path]:
    """Write ``DOSSIER-<warning_id>.json`` and ``.html`` for every warning of a run archive.

    ``pre_s`` / ``post_s``: readings shown before the first exceedance and after the
    all-clear or cancellation (or the end of the run while open). With ``twin`` the areas are
    drawn over its buildings and protected targets. Returns the paths written (JSON then HTML
    for each warning, in the order the warnings were first seen); an archive without
    warnings gives ``[]``. Raises ``InputError`` naming the file if it is not a run archive.
    """
    run = load_run(archive_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for inc in incidents(run):
        data = dossier_data(run, inc, pre_s=pre_s, post_s=post_s)
        stem = f"DOSSIER-{_safe_name(inc.warning_id)}"
        json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
        json_path.write_text(canonical_json(data), encoding="utf-8")
        html_path.write_text(dossier_html(data, run, twin), encoding="utf-8")
        paths += [json_path, html_path]
    return paths
