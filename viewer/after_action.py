"""The after-action report of a drill: one self-contained HTML page plus ``aar.json``.

Read from the drill's archive (its manifest and the ``injects``, ``actions``, ``warnings``,
``work_order_events`` and ``cap_messages`` tables) and its plan: a timeline of injects,
warnings and player actions; each expected action met / late / missed (with its delay against
the target); a rating per objective on the HSEEP scale; and an improvement plan with one row
per late or missed expected action.

Rating rule (per objective, over the expected actions that applied — their inject fired and
the warning they concern, if any, was raised): **P** all met on time; **S** all done, some
late; **M** at least one missed but at least half done (on time or late); **U** fewer than
half done. An objective with no applicable expected action is not rated (N/A). The rule is
``scenarios.drill_score.rate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from citytwin.scenarios.drill.plan import DrillPlan  # noqa: E402
from citytwin.scenarios.drill.score import (  # noqa: E402
    RATINGS,
    ActionSeen,
    WarningSeen,
    ratings,
    score,
)
from citytwin.scenarios.run.archive_reader import read_manifest, read_table  # noqa: E402
from citytwin.scenarios.spec.scenario import clock_text  # noqa: E402
from citytwin.viewer.html import (  # noqa: E402
    LEVEL_COLOURS,
    badge,
    duration_text,
    esc,
    page,
    png,
    run_status_banner,
    scroll_table,
)
from citytwin.viewer.maps import fields_beside, run_map_figure, twin_for_archive  # noqa: E402
from citytwin.viewer.timeline import readable, significant  # noqa: E402

RATING_RULE = ("P: all expected actions met on time; S: all done, some late; M: at least one "
               "missed but at least half done (on time or late); U: fewer than half done; "
               "N/A: no expected action applied (its inject did not fire or no warning was "
               "raised).")
RATING_COLOURS = {"P": "#66bb6a", "S": "#d4e157", "M": "#ffa726", "U": "#ef5350",
                  "N/A": "#bdbdbd"}
OUTCOME_COLOURS = {"met": "#2e7d32", "late": "#ef6c00", "missed": "#c62828", "n/a": "#9e9e9e"}
#: Recommended corrective action by expected action.
CORRECTIVE = {
    "acknowledge": "Review duty-officer alerting so that new warnings are seen and "
                   "acknowledged within the target time (audible alarm, shift checklist).",
    "assign": "Clarify the dispatch rule for work orders (who assigns, to which handler unit) "
              "and train the dispatchers on it.",
    "escalate": "Train the escalation criteria and add the escalation rung to the duty "
                "checklist.",
    "publish": "Pre-approve public warning templates and the release authority so public "
               "messages go out without delay.",
    "evacuate": "Exercise the evacuation decision: trigger criteria, who orders it, and "
                "pre-planned areas around protected targets.",
    "measure": "Pre-position field measurement teams and set a dispatch procedure for "
               "on-site verification.",
    "cancel": "Train the verification of sensor alarms (neighbouring sensors, field check) "
              "before a warning is cancelled.",
    "confirm": "Train the verification of sensor alarms (neighbouring sensors, field check) "
               "and the confirmation step.",
}
DEFAULT_CORRECTIVE = ("Review the work-order handling steps (on-site handling, feedback, review "
                      "and closure) and their time limits with the units involved.")
TARGET_DATE = "to be set (e.g. within 90 days of the drill)"




def _json_list(text: Any) -> list:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []


def after_action_data(archive_path: str | Path, plan: DrillPlan) -> dict[str, Any]:
    """Everything the report shows, as JSON-ready data (also written as ``aar.json``)."""
    path = Path(archive_path)
    manifest = read_manifest(path)
    injects = read_table(path, "injects")
    actions = read_table(path, "actions")
    warnings = read_table(path, "warnings")
    wo_events = read_table(path, "work_order_events")
    caps = read_table(path, "cap_messages")
    fired = {str(i): float(t) for i, t in zip(injects["inject_id"], injects["time_s"],
                                               strict=True)}
    seen_w = [WarningSeen(float(r.known_at_s), str(r.warning_id), str(r.event),
                          tuple(_json_list(r.sensors))) for r in warnings.itertuples()]
    player = actions[actions["action"] != "measure_result"]
    seen_a = [ActionSeen(float(r.time_s), str(r.action), str(r.target), r.outcome == "done",
                         str(r.actor)) for r in player.itertuples()]
    outcomes = score(plan, fired, seen_w, seen_a)
    rated = ratings(plan, outcomes)
    objectives = []
    for obj in plan.objectives:
        mine = [o for o in outcomes if o.objective == obj.id]
        objectives.append({
            "id": obj.id, "title": obj.title, "capability": obj.capability,
            "rating": rated[obj.id], "rating_text": RATINGS[rated[obj.id]],
            **{k: sum(o.outcome == k for o in mine) for k in ("met", "late", "missed")},
            "not_applicable": sum(o.outcome == "n/a" for o in mine)})
    titles = {o.id: o.title for o in plan.objectives}
    improvement = []
    for o in outcomes:
        if o.outcome not in ("late", "missed"):
            continue
        ref = "the warning" if o.after == "warning" else f"inject {o.inject_id}"
        issue = (f"{o.action} {o.target} expected within {duration_text(o.within_s)} of "
                 f"{ref} (due {clock_text(o.due_s)}): ")
        issue += (f"done {clock_text(o.done_s)}, {duration_text(o.late_by_s)} late"
                  if o.outcome == "late" else "not done")
        improvement.append({
            "objective": o.objective, "objective_title": titles[o.objective],
            "expected": o.ref, "outcome": o.outcome, "issue": issue,
            "corrective_action": CORRECTIVE.get(o.action, DEFAULT_CORRECTIVE),
            "responsible_unit": o.unit or "to be assigned by the exercise director",
            "target_date": TARGET_DATE})
    planned = {i.id: i for i in plan.msel}
    inject_rows = []
    for inj in plan.msel:
        row = {"id": inj.id, "kind": inj.kind, "planned_s": inj.at_s,
               "fired_s": fired.get(inj.id),
               "contingency": inj.contingency.if_missing if inj.contingency else None}
        msg = injects.loc[injects["inject_id"] == inj.id, "message"]
        row["message"] = str(msg.iloc[0]) if len(msg) else inj.message
        inject_rows.append(row)
    timeline = _timeline(injects, warnings, player, wo_events, outcomes)
    counts = {k: sum(o.outcome == k for o in outcomes) for k in ("met", "late", "missed",
                                                                 "n/a")}
    return {
        "drill": plan.name, "description": plan.description,
        "run_id": manifest.get("run_id"), "start": manifest.get("start"),
        "duration_s": manifest.get("duration_s"), "mode": manifest.get("mode"),
        "status": manifest.get("status"), "abort_reason": manifest.get("abort_reason"),
        "aborted_at_s": manifest.get("aborted_at_s"),
        "injects": inject_rows,
        "unknown_injects": sorted(set(fired) - set(planned)),
        "expected": [o.as_dict() for o in outcomes], "counts": counts,
        "objectives": objectives, "rating_rule": RATING_RULE,
        "improvement_plan": improvement, "timeline": timeline,
        "players": sorted(set(player["actor"].astype(str))),
        "actions": {"done": int((player["outcome"] == "done").sum()),
                    "refused": int((player["outcome"] == "refused").sum())},
        "warnings": sorted(set(warnings["warning_id"].astype(str))),
        "cap": {"messages": len(caps), "statuses": sorted(set(caps["status"].astype(str)))},
    }


def _timeline(injects: pd.DataFrame, warnings: pd.DataFrame, actions: pd.DataFrame,
              wo_events: pd.DataFrame, outcomes) -> list[dict[str, Any]]:
    rows = []
    for r in injects.itertuples():
        rows.append({"time_s": float(r.time_s), "lane": "inject", "what": str(r.inject_id),
                     "detail": readable(f"{r.kind}: {r.message}")})
    warnings = warnings.sort_values("seq") if "seq" in warnings else warnings
    for r, change in zip(warnings.itertuples(), significant(warnings.to_dict("records")),
                         strict=True):
        if change is None:
            continue  # a refresh that changes nothing that matters (the archive has it)
        rows.append({"time_s": float(r.known_at_s), "lane": "warning",
                     "what": f"{r.warning_id} {r.event}", "level": str(r.level_name),
                     "detail": change if r.event == "updated" else
                     f"{str(r.level_name).upper()} {r.hazard}, {r.loop} loop, "
                     f"lead {r.lead_unit}"})
    for r in wo_events.itertuples():
        if r.event in ("created", "overdue_unassigned", "overdue_deadline", "escalated",
                       "closed"):
            rows.append({"time_s": float(r.time_s), "lane": "work order",
                         "what": f"{r.work_order_id} {r.event}",
                         "detail": readable(str(r.note))})
    for r in actions.itertuples():
        rows.append({"time_s": float(r.time_s), "lane": "player",
                     "what": f"{r.action} {r.target}", "outcome": str(r.outcome),
                     "detail": readable(f"{r.actor}: {r.detail}")})
    for o in outcomes:
        if o.due_s is not None:
            rows.append({"time_s": float(o.due_s), "lane": "expected",
                         "what": f"{o.ref} due", "outcome": o.outcome,
                         "detail": f"{o.action} {o.target} ({o.outcome})"})
    order = {"inject": 0, "warning": 1, "work order": 2, "player": 3, "expected": 4}
    return sorted(rows, key=lambda r: (r["time_s"], order[r["lane"]]))


# --- HTML ----------------------------------------------------------------------------------

def timeline_plot(data: dict[str, Any]) -> str:
    """Injects, warnings and player actions on one time axis; below, each expected action's
    window (bar: reference → due; dotted: overdue; tick: done) coloured by outcome."""
    expected = [o for o in data["expected"] if o["due_s"] is not None]
    n = len(expected)
    fig, ax = plt.subplots(figsize=(10, 2.4 + 0.28 * n))
    lanes = {"inject": n + 2.6, "warning": n + 1.6, "player": n + 0.6}
    for r in data["timeline"]:
        t = r["time_s"] / 60.0
        if r["lane"] == "inject":
            ax.plot(t, lanes["inject"], "kD", ms=6)
            ax.annotate(r["what"], (t, lanes["inject"]), xytext=(2, 6),
                        textcoords="offset points", fontsize=7)
        elif r["lane"] == "warning":
            ax.plot(t, lanes["warning"], "^", ms=8, mec="k",
                    color=LEVEL_COLOURS.get(r.get("level", ""), "#9e9e9e"))
        elif r["lane"] == "player":
            ok = r.get("outcome") == "done"
            ax.plot(t, lanes["player"], "o" if ok else "x", ms=6,
                    color="#2e7d32" if ok else "#c62828")
    end_s = data["duration_s"] or 60.0
    for k, o in enumerate(expected):
        y = n - 1 - k
        colour = OUTCOME_COLOURS[o["outcome"]]
        ax.plot([o["reference_s"] / 60, o["due_s"] / 60], [y, y], color=colour, lw=5,
                solid_capstyle="butt")
        done = o["done_s"] if o["done_s"] is not None else end_s
        if done > o["due_s"]:
            ax.plot([o["due_s"] / 60, done / 60], [y, y], color=colour, lw=1.2, ls=":")
        if o["done_s"] is not None:
            ax.plot(o["done_s"] / 60, y, "|", ms=12, mew=2.5, color="k")
    ax.set_yticks([*lanes.values(), *range(n - 1, -1, -1)],
                  ["injects", "warnings", "player actions",
                   *(f"{o['ref']} ({o['outcome']})" for o in expected)], fontsize=8)
    ax.set_ylim(-0.8, n + 3.4)
    ax.set_xlim(0, end_s / 60)
    ax.set_xlabel("drill time (min)")
    ax.grid(axis="x", alpha=0.3)
    return png(fig)


def drill_map(archive_path: str | Path) -> str:
    """The drill's warnings at their worst, its sensors and hazard over the twin."""
    manifest = read_manifest(archive_path)
    fig = run_map_figure(
        twin_for_archive(archive_path, manifest), sensors=read_table(archive_path, "sensors"),
        alarms=read_table(archive_path, "alarms"),
        warnings=read_table(archive_path, "warnings"), hazards=manifest.get("hazards") or {},
        levels=list((manifest.get("rulebook") or {}).get("levels") or []),
        fields=fields_beside(archive_path),
        title="Warning areas at their most severe, sensors by highest level")
    return png(fig)


def after_action_html(data: dict[str, Any], map_png: str | None = None) -> str:
    """The after-action report page (self-contained: inline CSS, embedded PNG); ``map_png``:
    the drill's map (:func:`drill_map`) as a data URI."""
    c = data["counts"]
    facts = [("Run", data["run_id"]), ("Start", data["start"]),
             ("Duration", duration_text(data["duration_s"])), ("Mode", data["mode"]),
             ("Injects fired", f"{sum(i['fired_s'] is not None for i in data['injects'])} of "
                               f"{len(data['injects'])}"),
             ("Players", ", ".join(data["players"]) or "none"),
             ("Player actions", f"{data['actions']['done']} done, "
                                f"{data['actions']['refused']} refused"),
             ("Expected actions", f"{c['met']} met, {c['late']} late, {c['missed']} missed, "
                                  f"{c['n/a']} not applicable"),
             ("CAP messages", f"{data['cap']['messages']} (status "
                              f"{', '.join(data['cap']['statuses']) or '—'})")]
    parts = [f"<h1>After-action report: {esc(data['drill'])}</h1>",
             run_status_banner(data),  # an aborted or unfinished drill says so first
             f'<p class="note">{esc(data["description"])}</p>' if data["description"] else "",
             scroll_table(["", ""], [[esc(k), esc(v)] for k, v in facts])]
    parts.append("<h2>Objective ratings</h2>")
    parts.append(scroll_table(
        ["objective", "capability", "rating", "met", "late", "missed", "n/a"],
        [[f"{esc(o['id'])}: {esc(o['title'])}", esc(o["capability"]),
          badge(o["rating"], RATING_COLOURS[o["rating"]]) + " " + esc(o["rating_text"]),
          str(o["met"]), str(o["late"]), str(o["missed"]), str(o["not_applicable"])]
         for o in data["objectives"]]))
    parts.append(f'<p class="note">Rating rule (HSEEP scale): {esc(data["rating_rule"])}</p>')
    parts.append("<h2>Expected actions</h2>")
    parts.append(scroll_table(
        ["ref", "objective", "expected", "reference", "target", "done", "delay", "outcome",
         "note"],
        [[esc(o["ref"]), esc(o["objective"]), esc(f"{o['action']} {o['target']}".strip()),
          esc(f"{clock_text(o['reference_s'])} ({o['after']})"),
          esc(f"{duration_text(o['within_s'])} → {clock_text(o['due_s'])}"),
          esc(clock_text(o["done_s"]) + (f" by {o['actor']}" if o["actor"] else "")),
          esc("—" if o["delay_s"] is None else duration_text(o["delay_s"])
              + (f" ({duration_text(o['late_by_s'])} late)" if o["late_by_s"] else "")),
          badge(o["outcome"], OUTCOME_COLOURS[o["outcome"]]), esc(o["note"] or "")]
         for o in data["expected"]]))
    parts.append("<h2>Timeline</h2>")
    parts.append(f'<img alt="drill timeline" src="{timeline_plot(data)}">')
    parts.append(scroll_table(
        ["time", "lane", "what", "detail"],
        [[esc(clock_text(r["time_s"])), esc(r["lane"]), esc(r["what"]), esc(r["detail"])]
         for r in data["timeline"]]))
    if map_png:
        parts.append("<h2>Map</h2>")
        parts.append(f'<img alt="map of the drill" src="{map_png}">')
    parts.append("<h2>Injects (MSEL)</h2>")
    parts.append(scroll_table(
        ["id", "kind", "planned", "fired", "message"],
        [[esc(i["id"]), esc(i["kind"] + (f" (if {i['contingency']} missing)"
                                        if i["contingency"] else "")),
          esc(clock_text(i["planned_s"])),
          esc("did not fire" if i["fired_s"] is None else clock_text(i["fired_s"])),
          esc(i["message"])]
         for i in data["injects"]]))
    parts.append("<h2>Improvement plan</h2>")
    if data["improvement_plan"]:
        parts.append(scroll_table(
            ["objective", "issue", "recommended corrective action", "responsible unit",
             "target date"],
            [[esc(f"{r['objective']}: {r['objective_title']}"), esc(r["issue"]),
              esc(r["corrective_action"]), esc(r["responsible_unit"]),
              esc(r["target_date"])] for r in data["improvement_plan"]]))
    else:
        parts.append("<p>Every expected action was met on time: no corrective action.</p>")
    return page(f"After-action report — {data['drill']}", "\n".join(parts))


def write_after_action(archive_path: str | Path, plan: DrillPlan,
                       out_dir: str | Path) -> tuple[Path, Path, dict[str, Any]]:
    """Write ``after_action.html`` and ``aar.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = after_action_data(archive_path, plan)
    json_path = out_dir / "aar.json"
    json_path.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    html_path = out_dir / "after_action.html"
    html_path.write_text(after_action_html(data, drill_map(archive_path)), encoding="utf-8")
    return html_path, json_path, data
