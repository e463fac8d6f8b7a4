"""The incident investigation report: one self-contained HTML page (inline CSS, no scripts).

Sections: the replay against the warnings of the time (side by side with every
counterfactual: time to the first warning and to each level, and a chart of the highest
open warning level over time), the diff per warning, the
"what was known when" timeline, the fitted gas source and the model-derived sensors.

Times are T+ from the incident's t = 0; wall-clock times (the start, the timeline's wall
clock) are shown only when the incident has an anchor (``ReplaySetup.anchor``): an external
incident with numeric times and no anchor has none, and the page says so.
"""

from __future__ import annotations

import html
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from citytwin.alerting.events import CLOSING
from citytwin.scenarios.replay.events import read_work_orders_file
from citytwin.scenarios.replay.session import work_order_summary
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.viewer.html import (
    LEVEL_COLOURS,
    badge,
    clock,
    duration_text,
    esc,
    number_text,
    page,
    png,
    scroll_table,
)
from citytwin.viewer.maps import fields_beside, run_map_figure
from citytwin.viewer.timeline import significant

if TYPE_CHECKING:
    import pandas as pd

    from citytwin.scenarios.replay.investigation import Investigation


def _t(t_s: float | None) -> str:
    return clock(t_s)


def _delta(d: float | None) -> str:
    if d is None:
        return "—"
    return "0 s" if d == 0 else ("+" if d > 0 else "") + duration_text(d)


def _few(names: list[str], n: int = 4) -> str:
    """At most ``n`` names, then how many more: a table cell that reads at a glance."""
    more = len(names) - n
    return ", ".join(names[:n]) + (f" and {more} more ({len(names)} in all)" if more > 0
                                   else "")


def _level_badge(level: str | None) -> str:
    return badge(level, LEVEL_COLOURS.get(level, "#9e9e9e")) if level else "—"


def side_by_side(inv: Investigation) -> str:
    """Time to first warning and to each level: archived, replay, each counterfactual."""
    levels = inv.levels
    rows = []
    base = inv.replay.summary["first_warning_s"]
    entries: list[tuple[str, dict, str]] = []
    if inv.archived_summary:
        entries.append(("warnings of the time", inv.archived_summary, "archived"))
    entries.append(("replay", inv.replay.summary, "replay"))
    entries += [(c.cf.label, c.result.summary, "counterfactual") for c in inv.counterfactuals]
    for label, s, kind in entries:
        first = s["first_warning_s"]
        d = None if first is None or base is None else first - base
        rows.append([esc(label), esc(kind), _t(first), _delta(d) if kind == "counterfactual"
                     else "", *(_t(s["level_first_s"].get(n)) for n in levels),
                     _level_badge(s["max_level"]), esc(s["warnings"]),
                     esc(", ".join(s.get("first_sensors", [])))])
    return scroll_table(["run", "kind", "first warning", "Δ vs replay",
                         *(f"first {n}" for n in levels), "max level", "warnings",
                         "first warning's sensors"], rows)


def level_steps(warnings: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The highest level among open warnings after each warning event (``WARNING_FRAME``
    rows, in the order the platform issued them): (times s, levels); 0 = none open."""
    open_levels: dict[str, int] = {}
    times, levels = [0.0], [0]
    for w in warnings.sort_values("known_at_s", kind="stable").itertuples():
        if w.event in CLOSING:
            open_levels.pop(w.warning_id, None)
        else:
            open_levels[w.warning_id] = int(w.level)
        times.append(float(w.known_at_s))
        levels.append(max(open_levels.values(), default=0))
    return np.array(times), np.array(levels)


def level_chart(inv: Investigation) -> str:
    """Step chart of the highest open warning level: of the time, replay, counterfactuals."""
    import matplotlib.pyplot as plt

    runs = []
    if inv.incident.warnings is not None and len(inv.incident.warnings):
        runs.append(("warnings of the time", inv.incident.warnings, "k", 3.0))
    runs.append(("replay", inv.replay.warnings, "tab:blue", 2.0))
    colours = plt.get_cmap("tab10").colors[1:]
    runs += [(c.cf.label, c.result.warnings, colours[k % len(colours)], 1.4)
             for k, c in enumerate(inv.counterfactuals)]
    end_s = max([float(r[1]["known_at_s"].max()) for r in runs if len(r[1])]
                + [inv.setup.run.scenario.duration_s])
    fig, ax = plt.subplots(figsize=(10, 3.2))
    for k, (label, frame, colour, width) in enumerate(runs):
        t, lv = level_steps(frame)
        offset = 0.06 * (k - (len(runs) - 1) / 2)  # side by side where the lines coincide
        ax.step(np.append(t, end_s) / 60, np.append(lv, lv[-1]) + offset,
                where="post", color=colour, lw=width, label=label)
    names = inv.levels
    ax.set_yticks(range(len(names) + 1), ["none", *names])
    for k, name in enumerate(names, start=1):
        ax.axhspan(k - 0.35, k + 0.35, color=LEVEL_COLOURS.get(name, "#eee"), alpha=0.12, lw=0)
    ax.set_xlim(0, end_s / 60)
    ax.set_xlabel("incident time (min)")
    ax.set_title("Highest open warning level")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return png(fig)


def work_order_table(inv: Investigation) -> str:
    """The response of the time beside the replay's: per work order of the time, when it was
    created, assigned, closed and escalated, and the same for the replay's order of the
    matching warning (matched through the warning diff)."""
    then = work_order_summary(inv.incident.work_orders)
    now = work_order_summary(read_work_orders_file(inv.replay.archive_path))
    replay_of = {d["archived_id"]: d["replay_id"] for d in (inv.diff or [])
                 if d["archived_id"] is not None}
    by_warning = {o["warning_id"]: (k, o) for k, o in now.items()}
    rows = []
    for wo_id, o in then.items():
        rid = replay_of.get(o["warning_id"])
        r_id, r = by_warning.get(rid, (None, None)) if rid else (None, None)

        def escalations(x: dict[str, Any] | None) -> str:
            if x is None or not x["escalations"]:
                return "—"
            return "; ".join(f"{_t(t)} {note}" for t, note in x["escalations"])

        rows.append([esc(wo_id), esc(o["warning_id"]), _t(o["created_s"]), _t(o["assigned_s"]),
                     _t(o["closed_s"]), esc(escalations(o)), esc(r_id or "—"),
                     _t(r["created_s"] if r else None),
                     _delta(None if r is None or o["created_s"] is None
                            else r["created_s"] - o["created_s"]), esc(escalations(r))])
    if not rows:
        return "<p>No work orders were issued at the time.</p>"
    return scroll_table(["order of the time", "warning", "created", "assigned", "closed",
                         "escalated", "replay's order", "created", "Δ created", "escalated"],
                        rows)


def diff_table(diff: list[dict[str, Any]], levels: list[str], left: str = "archived",
               right: str = "replay") -> str:
    """One row per matched/missed/extra warning."""
    if not diff:
        return "<p>No warnings on either side.</p>"
    rows = []
    for d in diff:
        lv = "; ".join(f"{n} {_delta(v['delta_s'])}" if v["delta_s"] is not None else
                       f"{n} only {left if v['archived_s'] is not None else right}"
                       for n, v in d["levels"].items()
                       if v["archived_s"] is not None or v["replay_s"] is not None)
        rows.append([f"<b>{esc(d['status'])}</b>", esc(d["hazard"]), esc(d["archived_id"]),
                     esc(d["replay_id"]), _t(d["archived_raised_s"]), _t(d["replay_raised_s"]),
                     _delta(d["delta_raised_s"]), _level_badge(d["archived_max_level"]),
                     _level_badge(d["replay_max_level"]), esc(lv or None),
                     esc(_few(d["sensors"]))])
    return scroll_table(["status", "hazard", f"{left} id", f"{right} id", f"{left} raised",
                         f"{right} raised", "Δ raised", f"{left} max", f"{right} max",
                         "per level (Δ first time)", "sensors"], rows)


def timeline_table(inv: Investigation) -> str:
    """What was known when each warning event was issued."""
    rows = []
    anchor = inv.setup.anchor  # None: the wall clock is unknown, T+ times only
    names = inv.levels

    def level(n: int) -> str | int:
        return names[n - 1] if 0 < n <= len(names) else n

    verdicts = significant(inv.timeline)
    for k, verdict in zip(inv.timeline, verdicts, strict=True):
        if verdict is None:
            continue  # an update that changes nothing that matters (the archive has it)
        alarming = "<br>".join(
            f"{html.escape(a['sensor_id'])} {html.escape(a['rule_id'])} → "
            f"{esc(level(a['level']))} ({number_text(a['value'])})"
            for a in k["alarming"]) or "—"
        wall = ([esc((anchor + timedelta(seconds=k["known_at_s"])).strftime("%H:%M:%S"))]
                if anchor is not None else [])
        rows.append([_t(k["known_at_s"]), *wall, esc(k["warning_id"]), esc(k["event"]),
                     _level_badge(k["level_name"]), esc(k["basis"]),
                     esc(f"{k['area_m2'] / 1e4:.2f} ha ({k['area_source']})"),
                     esc(", ".join(k["targets"])), esc(f"{k['observations_received']:,}"),
                     esc(k["sensors_reporting"]), alarming])
    if not rows:
        return "<p>The replay issued no warnings.</p>"
    folded = sum(v is None for v in verdicts)
    note = (f'<p class="note">{folded} minor update(s) not shown (same level and targets, '
            f"area and people within 25 %); the replay archive has every event.</p>"
            if folded else "")
    return note + scroll_table(["known at", *(["wall clock"] if anchor is not None else []),
                         "warning", "event", "level", "basis", "area",
                         "protected targets", "observations received", "sensors reporting",
                         "alarming (sensor, rule → level (value))"], rows)


def fit_section(inv: Investigation) -> str:
    """The fitted source and the model-derived sensors."""
    if inv.fit is None:
        return f"<p>No source was fitted{': ' + esc(inv.fit_note) if inv.fit_note else ''}.</p>"
    f = inv.fit
    headers, rows = f.ranking_table()
    out = [f"<p>{esc(f.method())}</p>",
           scroll_table(headers, [[esc(cell) for cell in row] for row in rows]),
           f'<p class="note">{esc(f.scale_note())}</p>']
    truth = inv.setup.run.hazard_notes or inv.incident.manifest.get("hazards") or {}
    for note in truth.values():  # each hazard's own note says where and how much
        out.append(f'<p class="note">Scenario hazard (for comparison): {esc(note["id"])}: '
                   f"{esc(note['summary'])} from {note['start_s']:g} s.</p>")
    added = [(c.cf.label, a) for c in inv.counterfactuals for a in c.added]
    if added:
        out.append("<h3>Had a sensor been here, when would we have known?</h3>")
        out.append(scroll_table(
            ["counterfactual", "sensor", "model-derived", "x, y, z (m)", "first alarm",
             "rule", "in a warning from"],
            [[esc(lbl), esc(a["sensor_id"]), esc("yes" if a["model_derived"] else "no"),
              esc(", ".join(f"{v:.1f}" for v in a["xyz_m"])), _t(a["first_alarm_s"]),
              esc(a["first_alarm_rule"]), _t(a["in_warning_s"])] for lbl, a in added]))
    return "".join(out)


def investigation_map(inv: Investigation) -> str:
    """The replay's warnings at their worst over the twin, its sensors by highest level, the
    sensors the counterfactuals add and the scenario's hazard source (for comparison)."""
    arch = inv.replay.archive_path
    added = [(float(a["xyz_m"][0]), float(a["xyz_m"][1]), str(a["sensor_id"]))
             for c in inv.counterfactuals for a in c.added]
    hazards = inv.setup.run.hazard_notes or inv.incident.manifest.get("hazards") or {}
    fig = run_map_figure(
        inv.setup.run.twin, sensors=read_table(arch, "sensors"),
        alarms=read_table(arch, "alarms"), warnings=read_table(arch, "warnings"),
        hazards=hazards, levels=inv.levels, fields=fields_beside(arch), added=added,
        title="Replay: warning areas at their most severe, sensors by highest level")
    return png(fig)


def investigation_html(inv: Investigation) -> str:
    """The whole page."""
    sc = inv.setup.run.scenario
    anchor = inv.setup.anchor
    start = (anchor.isoformat() if anchor is not None else
             "unknown — the observation times are seconds with no anchor; times below are "
             "T+ from the incident's t = 0")
    facts = [("Incident", inv.incident.source), ("Start", start),
             ("Observations replayed", f"{inv.replay.n_observations:,}"),
             ("Rulebook", f"{inv.setup.run.rulebook.name} ({inv.setup.rulebook_label})"),
             ("Hazard model", "rebuilt from the scenario (model areas and forecasts)"
              if inv.setup.with_model else "not used (sensor buffer areas only)"),
             ("Replay archive", str(inv.replay.archive_path))]
    facts += [("Note", n) for n in inv.setup.notes]
    body = [f"<h1>Incident investigation — {html.escape(sc.name)}</h1>",
            scroll_table(["", ""], [[esc(k), esc(v)] for k, v in facts]),
            "<h2>Time to first warning and to each level</h2>", side_by_side(inv),
            f"<img alt='warning level over time' src='{level_chart(inv)}'>"]
    if inv.diff is not None:
        body += ["<h2>Replay against the warnings of the time</h2>",
                 '<p class="note">Matching: same hazard, overlapping in time, sharing a '
                 "sensor (or a protected target for model pre-warnings); greedy by most "
                 "shared, then closest raise time. Δ = replay − archived.</p>",
                 diff_table(inv.diff, inv.levels)]
    for c in inv.counterfactuals:
        body += [f"<h2>Counterfactual: {html.escape(c.cf.label)}</h2>",
                 diff_table(c.diff, inv.levels, left="replay", right="counterfactual")]
    if inv.incident.work_orders is not None:
        body += ["<h2>Work orders: the response of the time and the replay's</h2>",
                 '<p class="note">The replay re-runs detection, warnings and the overdue '
                 "rules; player actions are re-enacted only for a citytwin run (its "
                 "scenario's scripted actions), so a real incident's replay shows when its "
                 "orders would have been created and escalated with nobody acting.</p>",
                 work_order_table(inv)]
    body += ["<h2>Map</h2>", f"<img alt='map of the replay' src='{investigation_map(inv)}'>"]
    body += ["<h2>What was known when (replay)</h2>", timeline_table(inv),
             "<h2>Fitted hazard model</h2>", fit_section(inv)]
    return page(f"Investigation — {sc.name}", "\n".join(body))


def write_investigation_report(inv: Investigation, path: str | Path) -> Path:
    """Write the page; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(investigation_html(inv), encoding="utf-8")
    return path
