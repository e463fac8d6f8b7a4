"""The run report: one self-contained HTML file (plots embedded), read from the archive."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from citytwin.scenarios.run.archive_reader import read_manifest, read_table  # noqa: E402
from citytwin.viewer.html import (  # noqa: E402
    clock,
    duration_text,
    esc,
    number_text,
    page,
    png,
    run_status_banner,
    table,
)
from citytwin.viewer.maps import fields_beside, run_map_figure, twin_for_archive  # noqa: E402
from citytwin.viewer.plots import (  # noqa: E402
    draw_thresholds,
    quantity_groups,
    threshold_items,
    top_sensors,
)
from citytwin.viewer.timeline import condense_timeline, significant  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from citytwin.twin.model import CityTwin


def sensor_figure(obs: pd.DataFrame, sensors: pd.DataFrame, alarms: pd.DataFrame,
                  rulebook: dict[str, Any], n: int = 6) -> Figure:
    """Readings of the sensors that read highest, one panel per quantity (its unit on the
    axis), with the thresholds of the plain threshold rules on that quantity that fired."""
    groups = quantity_groups(obs, sensors)
    fig, axes = plt.subplots(max(len(groups), 1), 1, figsize=(9, 1.2 + 2.8 * max(len(groups),
                                                                                  1)),
                             sharex=True, squeeze=False)
    fired = set(alarms["rule_id"]) if len(alarms) else set()
    levels = list(rulebook.get("levels") or [])
    for ax, (quantity, unit, rows) in zip(axes[:, 0], groups, strict=False):
        for sid in top_sensors(rows, n):
            s = rows[rows["sensor_id"] == sid]
            ax.plot(s["time_s"] / 60.0, s["value"], lw=1.2, label=sid)
        ax.set_ylabel(f"{quantity} ({unit})" if unit else quantity)
        ax.legend(fontsize=7, ncol=2, loc="upper left")
        ax.grid(alpha=0.3)
        draw_thresholds(ax, threshold_items(rulebook.get("rules") or [], quantity, fired,
                                            levels))
    axes[-1, 0].set_xlabel("minutes from scenario start")
    axes[0, 0].set_title("Readings of the sensors with the highest values, by quantity")
    return fig


def sensor_plot(obs: pd.DataFrame, sensors: pd.DataFrame, alarms: pd.DataFrame,
                rulebook: dict[str, Any], n: int = 6) -> str:
    """:func:`sensor_figure` as an embedded PNG."""
    return png(sensor_figure(obs, sensors, alarms, rulebook, n))


def timeline_rows(timeline: pd.DataFrame, warnings: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The archive's timeline condensed for reading (``viewer.timeline``) and the number of
    minor warning updates folded."""
    entries = list(timeline[["time_s", "kind", "message", "data"]].itertuples(
        index=False, name=None))
    lines = condense_timeline(entries, warnings.sort_values("seq").to_dict("records"))
    return pd.DataFrame({"time": [clock(x.t_s) for x in lines],
                         "kind": [x.kind for x in lines],
                         "what happened": [x.message for x in lines]}), sum(
                             x.folded for x in lines)


def write_report(archive_path: str | Path, twin: CityTwin | None,
                 out_path: str | Path) -> Path:
    """Write report.html for a run archive (the twin from its manifest when None)."""
    manifest = read_manifest(archive_path)
    twin = twin if twin is not None else twin_for_archive(archive_path, manifest)
    sensors = read_table(archive_path, "sensors")
    obs = read_table(archive_path, "observations")
    alarms = read_table(archive_path, "alarms")
    warnings = read_table(archive_path, "warnings")
    timeline = read_table(archive_path, "timeline").sort_values(["time_s", "seq"])
    scenario = manifest["scenario"]
    summary = manifest.get("summary", {})
    hazards = manifest.get("hazards", {})
    levels = list((manifest.get("rulebook") or {}).get("levels") or [])
    first_det = timeline[timeline["kind"] == "first_detection"]
    starts = timeline[timeline["kind"] == "hazard_start"]
    raised = warnings[warnings["event"] == "raised"]
    facts = [("Scenario", scenario["name"]), ("Mode", scenario["mode"]),
             ("Start", manifest["start"]), ("Duration", duration_text(manifest["duration_s"])),
             ("Seed", manifest["seed"]), ("Sensors", len(sensors)),
             ("Observations", f"{summary.get('observations', len(obs)):,}"),
             ("Alarm changes", summary.get("alarm_changes", len(alarms))),
             ("Warnings", summary.get("warnings", 0)),
             ("Highest level", summary.get("max_level", "none")),
             ("Run status", manifest.get("status"))]
    if len(starts) and len(first_det):
        facts.append(("Time to first detection", duration_text(
            first_det["time_s"].iloc[0] - starts["time_s"].iloc[0]) + " after the hazard "
            "started"))
    if len(starts) and len(raised):
        facts.append(("Time to first warning", duration_text(
            raised["known_at_s"].iloc[0] - starts["time_s"].iloc[0])))
    facts_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    tl, n_folded = timeline_rows(timeline, warnings)
    wtab = warnings.assign(
        time=warnings["known_at_s"].map(clock),
        targets=warnings["targets"].map(lambda s: ", ".join(json.loads(s)) or "—"),
        recipients=warnings["recipients"].map(lambda s: ", ".join(json.loads(s)) or "—"),
        sensors=warnings["sensors"].map(lambda s: len(json.loads(s))),
        area=warnings["area_m2"].map(lambda a: number_text(a / 1e4, "ha")),
        people=warnings["population"].map(lambda p: f"≈ {int(p):,}"),
    )[["time", "warning_id", "event", "level_name", "sensors", "area", "area_source",
       "targets", "people", "recipients"]].rename(columns={"level_name": "level",
                                                           "area_source": "area from"})
    warnings = warnings.sort_values("seq")
    keep = [v is not None for v in significant(warnings.to_dict("records"))]
    wtab = wtab.loc[warnings.index]
    if not len(wtab):
        warnings_html = "<p>No warnings were raised.</p>"
    elif all(keep):
        warnings_html = f'<div class="scroll">{table(wtab)}</div>'
    else:
        warnings_html = (
            f'<p class="note">The warning events that change the level, the protected '
            f"targets, or the area or people by 25 % or more ({sum(keep)} of {len(keep)}); "
            f"every event below.</p><div class=\"scroll\">{table(wtab[keep])}</div>"
            f"<details><summary>All {len(wtab)} warning events</summary>"
            f'<div class="scroll">{table(wtab)}</div></details>')
    fig = run_map_figure(twin, sensors=sensors, alarms=alarms, warnings=warnings,
                         hazards=hazards, levels=levels, fields=fields_beside(archive_path),
                         title="Warning areas at their most severe, sensors by highest level")
    folded = (f'<p class="note">{n_folded} minor warning update(s) folded into summary '
              "lines; the archive's timeline and warnings tables have every one.</p>"
              if n_folded > 0 else "")
    body = f"""<h1>Run report: {esc(scenario['name'])}</h1>
{run_status_banner(manifest)}
<p>{esc(scenario.get('description', ''))}</p>
<h2>Summary</h2><table>{facts_html}</table>
<h2>Timeline</h2>{folded}<div class="scroll">{table(tl)}</div>
<h2>Warnings</h2>{warnings_html}
<h2>Map</h2><img alt="map" src="{png(fig)}">
<h2>Sensor readings</h2><img alt="sensor plot" src="{sensor_plot(obs, sensors, alarms,
                                                                  manifest['rulebook'])}">
<h2>Provenance</h2><p>Run id {esc(manifest['run_id'])}; libraries
{esc(json.dumps(manifest.get('libraries', {})))}.</p>"""
    out_path = Path(out_path)
    out_path.write_text(page(f"citytwin run report: {scenario['name']}", body),
                        encoding="utf-8")
    return out_path
