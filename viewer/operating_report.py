"""Weekly and monthly operating reports over one or more run archives.

``operating_report(archives, period="week")`` returns the metrics as a JSON-ready dict;
``write_operating_report(archives, out_html)`` writes them as one self-contained HTML page
(inline CSS, plots as base64 PNG, no JavaScript).

Periods are wall-clock: each time ``t_s`` is placed at ``anchor + t_s`` in the local time of
its archive's anchor (the manifest's ``start`` with its UTC offset), then bucketed by ISO week
(``2026-W23``) or calendar month (``2026-06``). Each fact is counted in the period of its own
time: an incident (warning) when it was raised, a work order when it was created, an overdue
or escalation rule firing when it fired, a push when it was sent, an alarm episode when it
began, a self-check finding when it was raised.

Metric definitions:
- *warnings*: incidents (distinct ``warning_id`` per run) by hazard and by their highest level.
- *time to first warning*: ``known_at_s`` of the raised event − the incident's first
  exceedance, over sensor-based warnings (model-based pre-warnings have no exceedance to
  measure from and are counted apart).
- *time to assignment* / *to closure*: first ``assigned`` / ``closed`` event − ``created_s``
  of each work order that reached it; median, p90 (nearest rank) and max.
- *overdue*: every ``overdue_unassigned`` / ``overdue_deadline`` rule firing, listed.
- *escalations*: warning events ``escalated`` (level raised) and work-order rule firings
  ``escalated``, counted apart.
- *cancelled*: incidents whose last event is ``cancelled`` (withdrawn, e.g. false alarms);
  rate = cancelled / incidents.
- *false alarms per sensor*: an alarm episode is a span in which the sensor is in alarm
  under any rule of a hazard (from all levels 0 to the next all 0). It is *confirmed* if it
  overlaps an incident of the same hazard that lists the sensor and ended with an all-clear
  (``cleared``), *unresolved* if it overlaps only incidents still open at the end of the
  run, otherwise *false* (no incident, or only cancelled ones); rate = false / episodes.
  Beside it, the platform's own latest ``false_alarm_rate`` self-check value.
- *push delivery rate*: delivered / sent pushes (overall and per channel); delay =
  ``received_s`` − ``time_s`` of delivered pushes.
- *self-check findings*: raised findings by check, with when (if) each was cleared.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from citytwin.scenarios.run.archive_reader import RunData, load_run  # noqa: E402
from citytwin.viewer.dossier import (  # noqa: E402
    incidents,
    order_facts,
    plain,
    section_table,
    stats,
)
from citytwin.viewer.html import (  # noqa: E402
    LEVEL_COLOURS,
    clock,
    page,
    png,
    run_status_text,
    table,
)

PERIODS = ("week", "month")
#: The kinds of facts collected from each run.
FACT_KINDS = ("incidents", "work_orders", "overdue", "escalations", "alarm_episodes", "pushes",
              "self_checks", "self_check_rates")
REPORT_FORMAT = 1


# --- periods -------------------------------------------------------------------------------

def period_key(when: datetime | date, period: str) -> str:
    """ISO week ``YYYY-Www`` or month ``YYYY-MM`` of a local date/datetime (as written)."""
    if period == "week":
        iso = when.isocalendar()
        return f"{iso[0]}-W{iso[1]:02d}"
    return f"{when.year}-{when.month:02d}"


def period_label(key: str) -> str:
    """``2026-W23 (2026-06-01 – 2026-06-07)`` for weeks; months are their own label."""
    if "-W" not in key:
        return key
    year, week = key.split("-W")
    monday = date.fromisocalendar(int(year), int(week), 1)
    return f"{key} ({monday.isoformat()} – {(monday + timedelta(days=6)).isoformat()})"


def _as_date(start: date | datetime | str) -> date | datetime:
    if isinstance(start, date):
        return start
    try:
        return datetime.fromisoformat(str(start))
    except ValueError:
        raise ValueError(f"start: {start!r} is not an ISO 8601 date or date-time") from None


# --- collecting facts from the archives ----------------------------------------------------

def alarm_episodes(alarms: pd.DataFrame) -> list[tuple[str, str, float, float]]:
    """(sensor, hazard, start_s, end_s) of each span in which a sensor is in alarm under any
    rule of a hazard (one reading raising three rules is one episode); end = inf if open."""
    out = []
    for (sensor_id, hazard), g in alarms.sort_values("seq").groupby(["sensor_id", "hazard"],
                                                                     sort=True):
        levels: dict[str, int] = {}
        start = None
        for a in g.itertuples():
            levels[a.rule_id] = int(a.to_level)
            active = any(v > 0 for v in levels.values())
            if active and start is None:
                start = float(a.time_s)
            elif not active and start is not None:
                out.append((str(sensor_id), str(hazard), start, float(a.time_s)))
                start = None
        if start is not None:
            out.append((str(sensor_id), str(hazard), start, math.inf))
    return sorted(out, key=lambda e: (e[2], e[0], e[1]))


def _collect(run: RunData, period: str) -> dict[str, list[dict[str, Any]]]:
    """Every countable fact of one run, each with its ``period`` key."""
    def when(t_s: float) -> dict[str, Any]:
        return {"period": period_key(run.local(t_s), period)}

    base = {"run_id": run.run_id, "archive": run.path.name, "mode": run_mode(run)}
    incs = incidents(run)
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in FACT_KINDS}
    for inc in incs:
        out["incidents"].append({
            **base, **when(inc.raised_s), "warning_id": inc.warning_id, "hazard": inc.hazard,
            "max_level": int(inc.max_row["level"]),
            "max_level_name": str(inc.max_row["level_name"]), "basis": str(inc.raised["basis"]),
            "first_exceedance_s": inc.first_exceedance_s,
            "raised_s": inc.raised_s, "raised_wall": run.wall(inc.raised_s),
            "time_to_warning_s": inc.raised_s - inc.first_exceedance_s,
            "outcome": inc.outcome, "ended_wall": run.wall(inc.ended_s),
            "duration_s": None if inc.ended_s is None else inc.ended_s - inc.raised_s,
            "end_reason": None if inc.end is None else str(inc.end["reason"])})
        ev = inc.events
        prev = ev["level_name"].shift()
        for r, before in zip(ev.itertuples(), prev, strict=True):
            if r.event == "escalated":
                out["escalations"].append({
                    **base, **when(r.known_at_s), "kind": "warning level",
                    "id": inc.warning_id, "warning_id": inc.warning_id,
                    "time_s": float(r.known_at_s), "time_wall": run.wall(r.known_at_s),
                    "detail": f"{before} → {r.level_name}: {r.reason}"})
    for o in run.tables["work_orders"].itertuples():
        ev = run.events_of_order(o.work_order_id)
        facts = order_facts(float(o.created_s), ev)
        out["work_orders"].append({
            **base, **when(o.created_s), "work_order_id": o.work_order_id,
            "warning_id": o.warning_id, "hazard": o.hazard, "level_name": o.level_name,
            "lead_unit": o.lead_unit, "created_s": float(o.created_s),
            "created_wall": run.wall(o.created_s), "deadline_wall": run.wall(o.deadline_s),
            **facts})
        for e in ev.itertuples():
            rec = {**base, **when(e.time_s), "work_order_id": o.work_order_id,
                   "warning_id": o.warning_id, "time_s": float(e.time_s),
                   "time_wall": run.wall(e.time_s), "actor": e.actor, "note": e.note}
            if str(e.event).startswith("overdue"):
                out["overdue"].append({**rec, "event": e.event, "lead_unit": o.lead_unit,
                                       "state_at_end": facts["state_at_end"]})
            elif e.event == "escalated":
                out["escalations"].append({
                    **base, **when(e.time_s), "kind": "work order", "id": o.work_order_id,
                    "warning_id": o.warning_id, "time_s": float(e.time_s),
                    "time_wall": run.wall(e.time_s), "detail": f"{e.actor}: {e.note}"})
    for sensor_id, hazard, t0, t1 in alarm_episodes(run.tables["alarms"]):
        verdicts = {inc.outcome for inc in incs
                    if inc.hazard == hazard and sensor_id in inc.sensors
                    and t1 >= inc.first_exceedance_s
                    and (inc.ended_s is None or t0 <= inc.ended_s)}
        verdict = ("confirmed" if "cleared" in verdicts
                   else "unresolved" if "open" in verdicts else "false")
        out["alarm_episodes"].append({**base, **when(t0), "sensor_id": sensor_id,
                                      "hazard": hazard, "time_s": t0, "verdict": verdict})
    for p in run.tables["pushes"].itertuples():
        out["pushes"].append({
            **base, **when(p.time_s), "warning_id": p.warning_id, "unit": p.unit,
            "channel": p.channel, "delivered": bool(p.delivered), "time_s": float(p.time_s),
            "time_wall": run.wall(p.time_s),
            "delay_s": (None if not p.delivered or plain(p.received_s) is None
                        else round(float(p.received_s) - float(p.time_s), 3))})
    checks = run.tables["self_checks"]
    cleared_at = _all_clears(checks)
    for c in checks.itertuples():
        if c.status != "raised":
            continue
        t_clear = cleared_at.get(c.Index)
        rec = {**base, **when(c.time_s), "check_id": c.check_id, "subject": c.subject,
               "value": plain(c.value), "detail": c.detail, "time_s": float(c.time_s),
               "time_wall": run.wall(c.time_s), "cleared_wall": run.wall(t_clear)}
        out["self_checks"].append(rec)
        if c.check_id == "false_alarm_rate":
            out["self_check_rates"].append(rec)
    return out


def _all_clears(checks: pd.DataFrame) -> dict[Any, float | None]:
    """For each raised self-check row (by index): the time of the first ``cleared`` row of
    the same check and subject after it (by seq), None if it was never cleared."""
    out: dict[Any, float | None] = {}
    for _, g in checks.sort_values("seq").groupby(["check_id", "subject"], sort=False):
        t_next: float | None = None  # the earliest all-clear after the row, walking back
        for idx, status, t_s in zip(g.index[::-1], g["status"].iloc[::-1],
                                    g["time_s"].iloc[::-1], strict=True):
            if status == "cleared":
                t_next = plain(t_s)
            elif status == "raised":
                out[idx] = t_next
    return out


# --- metrics -------------------------------------------------------------------------------

def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _sorted(rows: Iterable[dict], wall_key: str, *keys: str) -> list[dict]:
    """Chronological (by the absolute time of ``wall_key``, offsets may differ), then keys."""
    def key(r: dict) -> tuple:
        wall = r.get(wall_key)
        t = datetime.fromisoformat(wall).timestamp() if wall else math.inf
        return (t, *("" if r.get(k) is None else str(r.get(k)) for k in keys))

    return sorted(rows, key=key)


def _metrics(f: dict[str, list[dict]], levels: list[str]) -> dict[str, Any]:
    incs = _sorted(f["incidents"], "raised_wall", "run_id", "warning_id")
    by_hl: dict[str, dict[str, int]] = {}
    for i in incs:
        by_hl.setdefault(i["hazard"], dict.fromkeys(levels, 0))
        by_hl[i["hazard"]][i["max_level_name"]] = by_hl[i["hazard"]].get(i["max_level_name"],
                                                                         0) + 1
    by_level = {lv: sum(h.get(lv, 0) for h in by_hl.values()) for lv in levels}
    orders = _sorted(f["work_orders"], "created_wall", "run_id", "work_order_id")
    cancelled = [i for i in incs if i["outcome"] == "cancelled"]
    eps = f["alarm_episodes"]
    per_sensor: dict[str, dict[str, Any]] = {}
    for e in eps:
        s = per_sensor.setdefault(e["sensor_id"], {"sensor_id": e["sensor_id"], "episodes": 0,
                                                   "confirmed": 0, "false": 0,
                                                   "unresolved": 0})
        s["episodes"] += 1
        s[e["verdict"]] += 1
    rates = {}
    for r in _sorted(f["self_check_rates"], "time_wall", "run_id"):
        rates[r["subject"]] = r  # the latest finding per sensor
    for sid in rates:
        per_sensor.setdefault(sid, {"sensor_id": sid, "episodes": 0, "confirmed": 0,
                                    "false": 0, "unresolved": 0})
    for s in per_sensor.values():
        s["rate"] = _rate(s["false"], s["episodes"])
        s["self_check_rate"] = rates[s["sensor_id"]]["value"] if s["sensor_id"] in rates else None
    by_sensor = sorted(per_sensor.values(),
                       key=lambda s: (-(s["rate"] or 0.0), -(s["self_check_rate"] or 0.0),
                                      s["sensor_id"]))
    pushes = f["pushes"]
    channels: dict[str, dict[str, Any]] = {}
    for p in pushes:
        c = channels.setdefault(p["channel"], {"count": 0, "delivered": 0})
        c["count"] += 1
        c["delivered"] += int(p["delivered"])
    for c in channels.values():
        c["rate"] = _rate(c["delivered"], c["count"])
    n_delivered = sum(p["delivered"] for p in pushes)
    checks = _sorted(f["self_checks"], "time_wall", "run_id", "check_id", "subject")
    by_check: dict[str, dict[str, int]] = {}
    for c in checks:
        b = by_check.setdefault(c["check_id"], {"raised": 0, "still_open": 0})
        b["raised"] += 1
        b["still_open"] += int(c["cleared_wall"] is None)
    escal = _sorted(f["escalations"], "time_wall", "run_id", "id")
    sensor_based = [i for i in incs if i["basis"] != "model"]
    return {
        "warnings": {
            "count": len(incs), "by_hazard_level": by_hl, "by_max_level": by_level,
            "by_hazard": {h: sum(v.values()) for h, v in sorted(by_hl.items())},
            "sensor_based": len(sensor_based), "model_based": len(incs) - len(sensor_based),
            "list": incs},
        "time_to_first_warning_s": stats([i["time_to_warning_s"] for i in sensor_based]),
        "work_orders": {
            "count": len(orders),
            "assigned": sum(o["time_to_assignment_s"] is not None for o in orders),
            "closed": sum(o["time_to_closure_s"] is not None for o in orders),
            "time_to_assignment_s": stats([o["time_to_assignment_s"] for o in orders]),
            "time_to_closure_s": stats([o["time_to_closure_s"] for o in orders]),
            "list": orders},
        "overdue": {"count": len(f["overdue"]),
                    "list": _sorted(f["overdue"], "time_wall", "run_id", "work_order_id")},
        "escalations": {"warning_level": sum(e["kind"] == "warning level" for e in escal),
                        "work_order": sum(e["kind"] == "work order" for e in escal),
                        "list": escal},
        "cancelled": {"count": len(cancelled), "rate": _rate(len(cancelled), len(incs)),
                      "list": cancelled},
        "false_alarms": {"alarm_episodes": len(eps),
                         "false": sum(e["verdict"] == "false" for e in eps),
                         "rate": _rate(sum(e["verdict"] == "false" for e in eps), len(eps)),
                         "by_sensor": by_sensor},
        "pushes": {"count": len(pushes), "delivered": n_delivered,
                   "rate": _rate(n_delivered, len(pushes)),
                   "by_channel": dict(sorted(channels.items())),
                   "delay_s": stats([p["delay_s"] for p in pushes if p["delivered"]]),
                   "undelivered": _sorted([p for p in pushes if not p["delivered"]],
                                          "time_wall", "run_id", "warning_id", "unit")},
        "self_checks": {"raised": len(checks), "by_check": dict(sorted(by_check.items())),
                        "list": checks},
    }


def run_mode(run: RunData) -> str:
    """The run's mode (``drill``, ``what-if``, ``replay``; ``unknown`` if not recorded)."""
    return str(run.manifest.get("mode") or (run.manifest.get("scenario") or {}).get("mode")
               or "unknown")


def load_runs(archive_paths: Iterable[str | Path], *, mode: str | None = None
              ) -> tuple[list[RunData], list[dict[str, str]]]:
    """The distinct runs among ``archive_paths`` and a note per path left out.

    A folder without ``archive.sqlite`` (an exported incident, a study folder) is skipped,
    not an error; a run already read (the same file twice, or the same run id archived in
    another folder) is counted once; with ``mode`` only runs of that mode are kept; a run that
    did not complete (interrupted, aborted, killed while 'running') is left out of the
    figures and listed with why. A file that is not a run archive still raises
    ``InputError`` naming it.
    """
    runs: list[RunData] = []
    skipped: list[dict[str, str]] = []
    for path in archive_paths:
        path = Path(path)
        if path.is_dir() and not (path / "archive.sqlite").is_file():
            skipped.append({"path": str(path), "reason": "a folder without archive.sqlite "
                                                         "(not a run folder)"})
            continue
        run = load_run(path)
        same = next((r for r in runs if r.run_id == run.run_id), None)
        if same is not None:
            why = ("the same file as" if same.path.resolve() == run.path.resolve()
                   else "the same run id as")
            skipped.append({"path": str(run.path), "reason": f"{why} {same.path}"})
            continue
        if mode is not None and run_mode(run) != mode:
            skipped.append({"path": str(run.path),
                            "reason": f"mode {run_mode(run)}, not {mode}"})
            continue
        status = run.manifest.get("status", "completed")
        if status != "completed":  # a partial run would skew every rate in the headline
            skipped.append({"path": str(run.path),
                            "reason": f"the run did not complete (status {status}): "
                                      f"{run_status_text(run.manifest)}"})
            continue
        runs.append(run)
    return runs, skipped


def operating_report(archive_paths: Iterable[str | Path], *, period: str = "week",
                     start: date | datetime | str | None = None,
                     mode: str | None = None) -> dict[str, Any]:
    """Operating metrics over one or more run archives, by ISO week or calendar month.

    ``start``: a date or date-time (or ISO string) inside the wanted period; its calendar
    date as written selects the week/month, and only that period is reported. Without it
    every period touched by the archives is reported. Runs are read with :func:`load_runs`:
    non-run folders are skipped and each run id is counted once (``skipped`` lists what was
    left out and why); ``mode`` keeps only the runs of one mode. Returns ``{"totals": metrics
    over the reported periods, "by_period": {key: metrics}, "by_mode": {mode: metrics},
    "periods", "archives", "skipped", ...}``; see the module docstring for the metric
    definitions. Raises ``InputError`` naming the file if an archive is unreadable,
    ``ValueError`` for a bad ``period`` or ``start``.
    """
    if period not in PERIODS:
        raise ValueError(f"period: {period!r} is not one of {', '.join(PERIODS)}")
    runs, skipped = load_runs(archive_paths, mode=mode)
    facts: dict[str, list[dict]] = {k: [] for k in FACT_KINDS}
    levels: list[str] = []
    for run in runs:
        for key, rows in _collect(run, period).items():
            facts[key].extend(rows)
        levels += [lv for lv in run.levels if lv not in levels]
    seen = sorted({r["period"] for rows in facts.values() for r in rows})
    selected = period_key(_as_date(start), period) if start is not None else None
    keys = [selected] if selected is not None else seen
    modes = sorted({run_mode(r) for r in runs})

    def only(ks: list[str], of_mode: str | None = None) -> dict[str, list[dict]]:
        return {k: [r for r in rows if r["period"] in ks
                    and (of_mode is None or r["mode"] == of_mode)]
                for k, rows in facts.items()}

    return {
        "report_format": REPORT_FORMAT, "period": period, "selected": selected,
        "periods": keys, "period_labels": {k: period_label(k) for k in keys},
        "levels": levels, "mode": mode, "modes": modes,
        "archives": [{"archive": r.path.name, "path": str(r.path), "run_id": r.run_id,
                      "scenario": (r.manifest.get("scenario") or {}).get("name"),
                      "mode": run_mode(r),
                      "start": str(r.manifest["start"]),
                      "duration_s": plain(r.manifest.get("duration_s")),
                      "status": r.manifest.get("status")} for r in runs],
        "skipped": skipped,
        "totals": _metrics(only(keys), levels),
        "by_period": {k: _metrics(only([k]), levels) for k in keys},
        "by_mode": {m: _metrics(only(keys, m), levels) for m in modes},
    }


# --- HTML ----------------------------------------------------------------------------------

def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{clock(seconds)[2:]} ({seconds:g} s)"


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f} %"


def counts_plot(by_hazard_level: dict[str, dict[str, int]], levels: list[str]) -> str:
    """Stacked bars: incidents per hazard, coloured by their highest level."""
    hazards = sorted(by_hazard_level)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bottom = np.zeros(len(hazards))
    for lv in levels:
        n = np.array([by_hazard_level[h].get(lv, 0) for h in hazards], dtype=float)
        if n.any():
            ax.bar(hazards, n, bottom=bottom, width=0.5, edgecolor="k", lw=0.5, label=lv,
                   color=LEVEL_COLOURS.get(lv, "#757575"))
            bottom += n
    ax.set_xlim(-0.75, len(hazards) - 0.25)
    ax.set_ylabel("warnings")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Warnings by hazard and highest level")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], fontsize=8, title="highest level", title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png(fig)


def closure_plot(closure_s: list[float]) -> str:
    """Histogram of work orders' times from creation to closure (hours)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    x = np.asarray(closure_s, dtype=float) / 3600.0
    ax.hist(x, bins=min(20, max(5, len(x))), range=(0.0, float(x.max()) or 1.0),
            color="#5c6bc0", edgecolor="k", lw=0.5)
    ax.set_xlabel("hours from creation to closure")
    ax.set_ylabel("work orders")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Time to closure of work orders")
    ax.grid(alpha=0.3)
    return png(fig)


def _stats_rows(rows: list[tuple[str, dict]]) -> str:
    df = pd.DataFrame([[name, s["n"], _hms(s["median"]), _hms(s["p90"]), _hms(s["max"])]
                       for name, s in rows], columns=["measure", "n", "median", "p90", "max"])
    return f'<div class="scroll">{table(df)}</div>'


def report_html(rep: dict[str, Any]) -> str:
    """The operating report as one self-contained HTML page."""
    t = rep["totals"]
    levels = rep["levels"]
    w, wo, p = t["warnings"], t["work_orders"], t["pushes"]
    kind = "Weekly" if rep["period"] == "week" else "Monthly"
    if rep["mode"]:
        kind += f" {rep['mode']}"
    periods = ", ".join(rep["period_labels"][k] for k in rep["periods"]) or "none"
    if w["count"]:
        counts = pd.DataFrame([[h, *[v.get(lv, 0) for lv in levels], sum(v.values())]
                               for h, v in sorted(w["by_hazard_level"].items())],
                              columns=["hazard", *levels, "total"])
        warn_html = (f'<div class="scroll">{table(counts)}</div>'
                     f'<img alt="warnings by hazard and level" '
                     f'src="{counts_plot(w["by_hazard_level"], levels)}">'
                     + section_table(w["list"], [
                         ("run", "run_id"), ("warning", "warning_id"), ("hazard", "hazard"),
                         ("highest level", "max_level_name"), ("basis", "basis"),
                         ("raised", "raised_wall"), ("outcome", "outcome"),
                         ("ended", "ended_wall")], ""))
    else:
        warn_html = "<p>No warnings were raised in this period.</p>"
    closures = [o["time_to_closure_s"] for o in wo["list"] if o["time_to_closure_s"] is not None]
    closure_img = (f'<img alt="time to closure" src="{closure_plot(closures)}">' if closures
                   else "<p>No work order was closed in this period.</p>")
    columns = ["warnings", "level escalations", "cancelled", "work orders",
               "median to assignment", "median to closure", "overdue", "push delivery",
               "self-check findings"]

    def row(m: dict[str, Any]) -> list[Any]:
        return [m["warnings"]["count"], m["escalations"]["warning_level"],
                m["cancelled"]["count"], m["work_orders"]["count"],
                _hms(m["work_orders"]["time_to_assignment_s"]["median"]),
                _hms(m["work_orders"]["time_to_closure_s"]["median"]), m["overdue"]["count"],
                _pct(m["pushes"]["rate"]), m["self_checks"]["raised"]]

    per_period = pd.DataFrame([[rep["period_labels"][k], *row(m)]
                               for k, m in rep["by_period"].items()],
                              columns=["period", *columns])
    runs_of = {md: sum(a["mode"] == md for a in rep["archives"]) for md in rep["modes"]}
    per_mode = pd.DataFrame([[md, runs_of[md], *row(m)] for md, m in rep["by_mode"].items()],
                            columns=["mode", "runs", *columns])
    mode_html = (f'<div class="scroll">{table(per_mode)}</div>' if len(per_mode)
                 else "<p>No runs.</p>")
    if rep["mode"] is None and len(per_mode) > 1:
        mode_html = ('<p class="note">Drills, what-if members and replays describe different '
                     "things: each mode is counted apart here (the totals above add them up; "
                     "<code>citytwin report --mode MODE</code> reports one mode).</p>"
                     + mode_html)
    skipped_html = (section_table(rep["skipped"], [("path", "path"), ("why", "reason")], "")
                    if rep["skipped"] else "")
    summary = [
        ("Period", periods),
        ("Runs", f"{len(rep['archives'])}"
                 + (f" ({len(rep['skipped'])} path(s) left out, listed under Archives)"
                    if rep["skipped"] else "")),
        ("Mode", rep["mode"] or ", ".join(rep["modes"]) or "—"),
        ("Warnings", w["count"]), ("Work orders", wo["count"]),
        ("Overdue rule firings", t["overdue"]["count"]),
        ("Escalations (level / work order)",
         f"{t['escalations']['warning_level']} / {t['escalations']['work_order']}"),
        ("Cancelled warnings", f"{t['cancelled']['count']} ({_pct(t['cancelled']['rate'])})"),
        ("Push delivery", f"{p['delivered']} of {p['count']} ({_pct(p['rate'])})"),
        ("Self-check findings", t["self_checks"]["raised"])]
    summary_html = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td>"
                           "</tr>" for k, v in summary)
    channels = pd.DataFrame([[c, v["count"], v["delivered"], _pct(v["rate"])]
                             for c, v in p["by_channel"].items()],
                            columns=["channel", "sent", "delivered", "rate"])
    fa = t["false_alarms"]
    body = f"""<h1>{kind} operating report</h1>
<p class="note">citytwin · {html.escape(periods)} · wall-clock periods in each archive's local
time</p>
<h2>Summary</h2><div class="scroll"><table>{summary_html}</table></div>
<h2>By mode</h2>
{mode_html}
<h2>Warnings by hazard and level</h2>
{warn_html}
<h2>Time to first warning</h2>
<p>From the first exceedance to the platform raising the warning (sensor-based warnings;
{w['model_based']} model-based pre-warning(s) counted apart).</p>
{_stats_rows([("time to first warning", t["time_to_first_warning_s"])])}
<h2>Work orders</h2>
<p>{wo['count']} work order(s), {wo['assigned']} assigned, {wo['closed']} closed.</p>
{_stats_rows([("time to assignment", wo["time_to_assignment_s"]),
              ("time to closure", wo["time_to_closure_s"])])}
{closure_img}
<h2>Overdue</h2>
{section_table(t['overdue']['list'], [
    ('run', 'run_id'), ('work order', 'work_order_id'), ('warning', 'warning_id'),
    ('rule', 'event'), ('when', 'time_wall'), ('lead unit', 'lead_unit'),
    ('state at end', 'state_at_end'), ('note', 'note')], 'No overdue work orders.')}
<h2>Escalations</h2>
{section_table(t['escalations']['list'], [
    ('run', 'run_id'), ('kind', 'kind'), ('id', 'id'), ('when', 'time_wall'),
    ('detail', 'detail')], 'No escalations.')}
<h2>Cancelled warnings (false alarms)</h2>
{section_table(t['cancelled']['list'], [
    ('run', 'run_id'), ('warning', 'warning_id'), ('hazard', 'hazard'),
    ('highest level', 'max_level_name'), ('raised', 'raised_wall'),
    ('cancelled', 'ended_wall'), ('reason', 'end_reason')], 'No warning was cancelled.')}
<h2>False-alarm rates per sensor</h2>
<p>{fa['false']} of {fa['alarm_episodes']} alarm episode(s) were not confirmed by a warning
that ended with an all-clear ({_pct(fa['rate'])}).</p>
{section_table(fa['by_sensor'], [
    ('sensor', 'sensor_id'), ('episodes', 'episodes'), ('confirmed', 'confirmed'),
    ('false', 'false'), ('unresolved', 'unresolved'), ('rate', lambda r: _pct(r['rate'])),
    ('self-check rate', lambda r: _pct(r['self_check_rate']))], 'No alarms.')}
<h2>Push delivery</h2>
<p>{p['delivered']} of {p['count']} push(es) delivered ({_pct(p['rate'])}); delay of delivered
pushes: median {_hms(p['delay_s']['median'])}, max {_hms(p['delay_s']['max'])}.</p>
{f'<div class="scroll">{table(channels)}</div>' if len(channels) else ''}
{section_table(p['undelivered'], [
    ('run', 'run_id'), ('warning', 'warning_id'), ('unit', 'unit'), ('channel', 'channel'),
    ('sent', 'time_wall')], 'Every push was delivered.' if p['count'] else 'No pushes.')}
<h2>Platform self-checks</h2>
{section_table(t['self_checks']['list'], [
    ('run', 'run_id'), ('check', 'check_id'), ('subject', 'subject'), ('value', 'value'),
    ('raised', 'time_wall'), ('cleared', 'cleared_wall'), ('detail', 'detail')],
    'No self-check findings.')}
<h2>By period</h2>
{f'<div class="scroll">{table(per_period)}</div>' if len(per_period) else '<p>None.</p>'}
<h2>Archives</h2>
{section_table(rep['archives'], [
    ('archive', 'path'), ('run', 'run_id'), ('scenario', 'scenario'), ('mode', 'mode'),
    ('start', 'start'), ('duration (s)', 'duration_s'), ('status', 'status')], 'None.')}
{'<h3>Left out</h3>' + skipped_html if skipped_html else ''}"""
    return page(f"citytwin {kind.lower()} operating report", body)


def write_operating_report(archive_paths: Iterable[str | Path], out_html: str | Path, *,
                           period: str = "week",
                           start: date | datetime | str | None = None,
                           mode: str | None = None) -> Path:
    """Write the operating report (see :func:`operating_report`) as one HTML file."""
    rep = operating_report(archive_paths, period=period, start=start, mode=mode)
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report_html(rep), encoding="utf-8")
    return out
