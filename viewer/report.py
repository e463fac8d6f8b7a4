"""The run report: one self-contained HTML file (plots embedded), read from the archive.

Also the map of a run every report page shares (``map_plot``).
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import shapely  # noqa: E402

from citytwin.scenarios.run.archive_reader import read_manifest, read_table  # noqa: E402
from citytwin.twin.model import CityTwin  # noqa: E402
from citytwin.viewer.html import LEVEL_COLOURS, clock, png, table  # noqa: E402


def sensor_plot(obs: pd.DataFrame, alarms: pd.DataFrame, rulebook: dict, n: int = 6) -> str:
    """Time series of the sensors that read highest, with the rule thresholds."""
    fig, ax = plt.subplots(figsize=(9, 4))
    if len(obs):
        top = obs.groupby("sensor_id")["value"].max().sort_values(ascending=False).head(n)
        for sid in top.index:
            s = obs[obs["sensor_id"] == sid]
            ax.plot(s["time_s"] / 60.0, s["value"], lw=1.2, label=sid)
        rule_ids = set(alarms["rule_id"]) if len(alarms) else set()
        for rule in rulebook["rules"]:
            if rule["id"] in rule_ids:
                for level, thr in rule["thresholds"].items():
                    ax.axhline(thr, color=LEVEL_COLOURS.get(level, "k"), ls="--", lw=0.9)
                    ax.text(0, thr, f" {level} {thr:g} {rule['unit']}", va="bottom", fontsize=7)
                ax.set_ylabel(f"{rule['quantity']} ({rule['unit']})")
        ax.legend(fontsize=7, ncol=2, loc="upper left")
    ax.set_xlabel("minutes from scenario start")
    ax.set_title("Readings of the sensors with the highest values")
    ax.grid(alpha=0.3)
    return png(fig)


def map_plot(twin: CityTwin, sensors: pd.DataFrame, alarms: pd.DataFrame,
             warnings: pd.DataFrame, hazards: dict) -> str:
    """Buildings, protected targets, sensors by highest level, warning areas, sources."""
    fig, ax = plt.subplots(figsize=(8, 8))
    twin.buildings.plot(ax=ax, color="#cfcfcf", edgecolor="#8a8a8a", lw=0.3)
    focus = []
    if len(warnings):
        worst = warnings[warnings["event"] != "cleared"].sort_values(
            ["level", "seq"]).groupby("warning_id").tail(1)
        for _, w in worst.iterrows():
            geom = shapely.from_wkt(w["area_wkt"])
            if geom.is_empty:
                continue
            for poly in getattr(geom, "geoms", [geom]):
                x, y = poly.exterior.xy
                ax.fill(x, y, color=LEVEL_COLOURS.get(w["level_name"], "k"), alpha=0.35,
                        label=f"{w['warning_id']} area ({w['level_name']})")
            focus.append(geom.bounds)
    levels = alarms.groupby("sensor_id")["to_level"].max() if len(alarms) else pd.Series()
    lv = sensors["sensor_id"].map(levels).fillna(0).astype(int).to_numpy()
    names = ["none", "blue", "yellow", "orange", "red"]
    ax.scatter(sensors["x_m"], sensors["y_m"], s=12 + 10 * lv,
               c=[LEVEL_COLOURS[names[min(v, 4)]] for v in lv], edgecolor="k", lw=0.3,
               zorder=3, label="sensors (colour: highest level)")
    targets = twin.protected_targets
    for _, t in targets.iterrows():
        p = t.geometry.centroid
        ax.plot(p.x, p.y, marker="*", color="#6a1b9a", ms=11, zorder=4)
        ax.annotate(t["name"], (p.x, p.y), fontsize=7, xytext=(4, 4), textcoords="offset points")
    for h in hazards.values():
        if "xy_m" not in h:  # floods and dam breaks have no point source
            continue
        ax.plot(*h["xy_m"], marker="X", color="black", ms=12, zorder=5)
        ax.annotate(h["id"], h["xy_m"], fontsize=8, weight="bold", xytext=(5, -10),
                    textcoords="offset points")
    if focus:
        b = np.array(focus)
        pad = 150.0
        ax.set_xlim(b[:, 0].min() - pad, b[:, 2].max() + pad)
        ax.set_ylim(b[:, 1].min() - pad, b[:, 3].max() + pad)
    ax.set_aspect("equal")
    ax.set_title("Affected areas at their most severe, sensors and protected targets")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), fontsize=7, loc="lower left")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    return png(fig)


def write_report(archive_path: str | Path, twin: CityTwin, out_path: str | Path) -> Path:
    """Write report.html for a run archive."""
    manifest = read_manifest(archive_path)
    sensors = read_table(archive_path, "sensors")
    obs = read_table(archive_path, "observations")
    alarms = read_table(archive_path, "alarms")
    warnings = read_table(archive_path, "warnings")
    timeline = read_table(archive_path, "timeline").sort_values(["time_s", "seq"])
    scenario = manifest["scenario"]
    summary = manifest.get("summary", {})
    hazards = manifest.get("hazards", {})
    first_det = timeline[timeline["kind"] == "first_detection"]
    starts = timeline[timeline["kind"] == "hazard_start"]
    raised = warnings[warnings["event"] == "raised"]
    facts = [("Scenario", scenario["name"]), ("Mode", scenario["mode"]),
             ("Start", manifest["start"]), ("Duration", f"{manifest['duration_s'] / 60:.0f} min"),
             ("Seed", manifest["seed"]), ("Sensors", len(sensors)),
             ("Observations", summary.get("observations", len(obs))),
             ("Alarm changes", summary.get("alarm_changes", len(alarms))),
             ("Warnings", summary.get("warnings", 0)),
             ("Highest level", summary.get("max_level", "none")),
             ("Run status", manifest.get("status"))]
    if len(starts) and len(first_det):
        facts.append(("Time to first detection",
                      f"{first_det['time_s'].iloc[0] - starts['time_s'].iloc[0]:.0f} s after "
                      "the release started"))
    if len(starts) and len(raised):
        facts.append(("Time to first warning",
                      f"{raised['known_at_s'].iloc[0] - starts['time_s'].iloc[0]:.0f} s"))
    facts_html = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                         for k, v in facts)
    tl = timeline.assign(time=timeline["time_s"].map(clock))[["time", "kind", "message"]]
    wtab = warnings.assign(
        time=warnings["known_at_s"].map(clock),
        targets=warnings["targets"].map(lambda s: ", ".join(json.loads(s)) or "—"),
        recipients=warnings["recipients"].map(lambda s: ", ".join(json.loads(s)) or "—"),
        n_sensors=warnings["sensors"].map(lambda s: len(json.loads(s))),
        area_ha=(warnings["area_m2"] / 1e4).round(2),
    )[["time", "warning_id", "event", "level_name", "n_sensors", "area_ha", "area_source",
       "targets", "population", "recipients"]]
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>citytwin run report: {html.escape(scenario['name'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style></head><body>
<h1>Run report: {html.escape(scenario['name'])}</h1>
<p>{html.escape(scenario.get('description', ''))}</p>
<h2>Summary</h2><table>{facts_html}</table>
<h2>Timeline</h2>{table(tl)}
<h2>Warnings</h2>{table(wtab) if len(wtab) else '<p>No warnings were raised.</p>'}
<h2>Map</h2><img alt="map" src="{map_plot(twin, sensors, alarms, warnings, hazards)}">
<h2>Sensor readings</h2><img alt="sensor plot" src="{sensor_plot(obs, alarms,
                                                                  manifest['rulebook'])}">
<h2>Provenance</h2><p>Run id {html.escape(manifest['run_id'])}; libraries
{html.escape(json.dumps(manifest['libraries']))}.</p>
</body></html>
"""
    out_path = Path(out_path)
    out_path.write_text(doc, encoding="utf-8")
    return out_path
