"""Reports read at a glance (issue 11, items 7–9): one quantity per plot axis, maps with
their context and framed on what matters, condensed timelines with clock times."""

from __future__ import annotations

import io
import json

import matplotlib
import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import shapely
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from citytwin.scenarios.run.archive_reader import read_manifest, read_table  # noqa: E402
from citytwin.scenarios.run.kernel import simulate  # noqa: E402
from citytwin.scenarios.run.prepare import prepare  # noqa: E402
from citytwin.scenarios.spec.scenario import load_scenario  # noqa: E402
from citytwin.viewer.html import duration_text, number_text  # noqa: E402
from citytwin.viewer.maps import (  # noqa: E402
    MAX_ASPECT,
    fields_beside,
    run_map_figure,
    twin_for_archive,
)
from citytwin.viewer.plots import axis_units, draw_thresholds, threshold_items  # noqa: E402
from citytwin.viewer.report import sensor_figure  # noqa: E402
from citytwin.viewer.timeline import condense_timeline, readable  # noqa: E402

# --- item 7: plots ------------------------------------------------------------------------

RULEBOOK = {"levels": ["blue", "yellow", "orange", "red"], "rules": [
    {"id": "rain_intensity", "kind": "threshold", "quantity": "rain_mm_h", "unit": "mm/h",
     "thresholds": {"yellow": 30.0, "orange": 50.0}},
    {"id": "ponding_depth", "kind": "threshold", "quantity": "depth_m", "unit": "m",
     "thresholds": {"blue": 0.15, "yellow": 0.27, "orange": 0.4, "red": 0.5}},
    {"id": "ch4_confined_space", "kind": "threshold", "quantity": "ch4_lel_pct",
     "unit": "%LEL", "thresholds": {"blue": 10.0, "yellow": 25.0, "orange": 50.0,
                                    "red": 80.0}},
    {"id": "ch4_site_risk", "kind": "composite", "quantity": "ch4_lel_pct", "unit": "%LEL",
     "thresholds": {"blue": 1.0, "yellow": 2.0, "orange": 3.0, "red": 4.0}}]}


def _obs() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    t = np.arange(0.0, 3600.0, 60.0)
    sensors = pd.DataFrame({"sensor_id": ["rain:a", "river:b", "ch4:c"],
                            "quantity": ["rain_mm_h", "depth_m", "ch4_lel_pct"],
                            "unit": ["mm/h", "m", "%LEL"]})
    obs = pd.concat([pd.DataFrame({"sensor_id": sid, "time_s": t, "value": v})
                     for sid, v in (("rain:a", 80 * np.sin(t / 3600 * np.pi)),
                                    ("river:b", 1.5 * t / 3600),
                                    ("ch4:c", 90 * t / 3600))], ignore_index=True)
    alarms = pd.DataFrame({"rule_id": [r["id"] for r in RULEBOOK["rules"]]})
    return obs, sensors, alarms


def test_each_quantity_gets_its_own_axis_with_its_unit():
    obs, sensors, alarms = _obs()
    fig = sensor_figure(obs, sensors, alarms, RULEBOOK)
    axes = [ax for ax in fig.axes if ax.get_lines()]
    units = sorted(axis_units(ax) for ax in axes)
    assert units == ["%LEL", "m", "mm/h"]  # one unit per axis, from the sensors
    for ax in axes:
        plotted = {line.get_label() for line in ax.get_lines() if not line.get_label()
                   .startswith("_")}
        assert len({sensors.set_index("sensor_id").loc[s, "unit"] for s in plotted}) == 1
        labels = [t.get_text() for t in ax.texts if t.get_gid() == "threshold label"]
        assert labels and all(axis_units(ax) in lab for lab in labels)
    plt.close(fig)


def test_a_composite_index_is_not_drawn_as_a_reading():
    items = threshold_items(RULEBOOK["rules"], "ch4_lel_pct")
    assert [v for v, *_ in items] == [10.0, 25.0, 50.0, 80.0]  # no site-risk 1–4 as %LEL


def test_threshold_labels_near_zero_do_not_collide():
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot([0, 1], [0, 100])
    items = [(v, "k", f"level {v:g} %LEL") for v in (1.0, 2.0, 3.0, 4.0, 80.0)]
    texts = draw_thresholds(ax, items)
    fig.canvas.draw()
    boxes = [matplotlib.text.Text.get_window_extent(t) for t in texts]  # the text, no leader
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    plt.close(fig)


# --- item 8: maps (a short dam-break run) -------------------------------------------------

@pytest.fixture(scope="module")
def dam_run(tmp_path_factory):
    from importlib import resources

    folder = tmp_path_factory.mktemp("dam")
    src = resources.files("citytwin.scenarios").joinpath("data/dam_break.yaml")
    data = yaml.safe_load(src.read_text())
    data["duration_s"] = 1500
    data.setdefault("outputs", {}).update({"report": False, "render": False})
    path = folder / "dam_break.yaml"
    path.write_text(yaml.safe_dump(data))
    run = prepare(load_scenario(path), source=str(path), base_dir=folder)
    result = simulate(run, folder / "run")
    return result.archive_path


def _dam_map(archive):
    manifest = read_manifest(archive)
    twin = twin_for_archive(archive, manifest)
    fig = run_map_figure(twin, sensors=read_table(archive, "sensors"),
                         alarms=read_table(archive, "alarms"),
                         warnings=read_table(archive, "warnings"),
                         hazards=manifest["hazards"], levels=manifest["rulebook"]["levels"],
                         fields=fields_beside(archive))
    return twin, fig


def test_the_dam_break_map_shows_dam_reservoir_and_city_with_map_furniture(dam_run):
    warnings = read_table(dam_run, "warnings")
    assert len(warnings), "the shortened dam break should raise a warning"
    twin, fig = _dam_map(dam_run)
    assert twin is not None  # rebuilt from the manifest's synthetic seed and size
    ax = fig.axes[0]
    gids = {a.get_gid() for a in ax.get_children()}
    assert {"scale bar", "north arrow", "map legend"} <= gids
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    for r in twin.reservoirs.itertuples():  # the pool and the dam, whole
        bx0, by0, bx1, by1 = r.geometry.bounds
        assert x0 <= bx0 and bx1 <= x1 and y0 <= by0 and by1 <= y1, r.id
    assert max((x1 - x0) / (y1 - y0), (y1 - y0) / (x1 - x0)) <= MAX_ASPECT + 1e-9
    frame = shapely.box(x0, y0, x1, y1)
    shown = twin.buildings.geometry.intersects(frame).mean()
    assert shown > 0.5  # the city is on the map, not cut away by a strip
    names = {t.get_text() for t in ax.texts}
    assert "Upper Reservoir" in names and "Central Plaza" in names
    legend = next(a for a in ax.get_children() if a.get_gid() == "map legend")
    labels = {t.get_text() for t in legend.get_texts()}
    assert "dam" in labels and "buildings" in labels and any("sensor:" in x for x in labels)
    plt.close(fig)


def test_each_warning_has_its_own_edge_colour(dam_run):
    warnings = read_table(dam_run, "warnings")
    _, fig = _dam_map(dam_run)
    legend = next(a for a in fig.axes[0].get_children() if a.get_gid() == "map legend")
    edges = {t.get_text(): h.get_color() for t, h in zip(legend.get_texts(),
                                                         legend.legend_handles, strict=True)
             if t.get_text().startswith("W-")}
    assert len(edges) == warnings["warning_id"].nunique()
    assert len(set(edges.values())) == len(edges)
    plt.close(fig)


def test_reports_carry_a_map(dam_run, tmp_path):
    from citytwin.viewer.report import write_report

    html = write_report(dam_run, None, tmp_path / "report.html").read_text()
    assert "<h2>Map</h2>" in html
    assert not __import__("re").search(r"\b\d{4,}(\.\d+)? s\b", html.split("<h2>Provenance")[0])


# --- item 9: timelines and figures --------------------------------------------------------

def _event(event: str, area: float, people: int, targets=("P-plaza",), level="red") -> dict:
    return {"warning_id": "W-0001", "event": event, "level_name": level,
            "targets": json.dumps(list(targets)), "area_m2": area, "population": people}


def test_the_timeline_keeps_what_matters_and_folds_near_duplicates():
    events = [_event("raised", 400.0, 0, level="orange"),
              *[_event("updated", 1000.0 + k, 300 + k) for k in range(1)],
              *[_event("updated", 1000.0 + 10 * k, 300 + k) for k in range(1, 16)],
              _event("updated", 1100.0, 310, targets=("P-plaza", "P-school-1")),
              _event("escalated", 1100.0, 310, targets=("P-plaza", "P-school-1")),
              _event("updated", 2000.0, 320, targets=("P-plaza", "P-school-1")),
              _event("cleared", 2000.0, 320)]
    entries = [(300.0 + 10 * k, f"warning_{e['event']}", f"W-0001 {e['event']}: " + "x" * 280,
                {"warning_id": "W-0001", "level": e["level_name"]})
               for k, e in enumerate(events)]
    entries.insert(1, (305.0, "work_order_created", "WO-1 created: deadline 261065 s", {}))
    lines = condense_timeline(entries, events)
    kinds = [x.kind for x in lines]
    assert kinds.count("warning_raised") == 1 and kinds.count("warning_escalated") == 1
    assert kinds.count("warning_cleared") == 1
    updates = [x.message for x in lines if x.kind == "warning_updated" and not x.folded]
    assert any("area 0.04 → 0.10 ha" in m for m in updates)          # the first, large change
    assert any("targets + P-school-1" in m for m in updates)          # a new target
    assert any("area 0.11 → 0.20 ha" in m for m in updates)           # ≥ 25 % again
    folded = [x for x in lines if x.folded]
    assert sum(x.folded for x in folded) == 15 and len(folded) == 1   # near-duplicates
    assert all(len(x.message) < 200 for x in lines if x.kind == "warning_updated")
    assert "deadline T+72:31:05" in " ".join(x.message for x in lines)


def test_terminal_timeline_is_condensed():
    from types import SimpleNamespace

    from citytwin.alerting.events import WarningEvent
    from citytwin.scenarios.cli.main import print_timeline

    def ev(event: str, area: float) -> WarningEvent:
        return WarningEvent(0.0, 0.0, "W-0001", event, "gas_plume", 4, "red", "sensors",
                            "Observed", ("s1",), 0.0, "", area, "model", ("P-plaza",), 10,
                            "big", "unit", ("unit",), "")

    warns = [ev("raised", 1000.0), *[ev("updated", 1000.0 + k) for k in range(20)]]
    timeline = [(10.0 * k, f"warning_{w.event}", f"W-0001 {w.event}: " + "y" * 280,
                 {"warning_id": "W-0001", "level": "red"}) for k, w in enumerate(warns)]
    scenario = SimpleNamespace(name="s", start=pd.Timestamp("2026-06-01T05:30:00+08:00")
                               .to_pydatetime())
    stream = io.StringIO()
    print_timeline(SimpleNamespace(timeline=timeline, warnings=warns), scenario, out=stream)
    out = stream.getvalue()
    assert out.count("y" * 280) == 1  # only the raised line is written out in full
    assert "20 minor updates" in out


def test_figures_are_clock_times_and_rounded_values_with_units():
    assert readable("lead x; deadline 261065 s; actions") == "lead x; deadline T+72:31:05; actions"
    assert readable("measuring at T+1140 s") == "measuring at T+00:19:00"
    assert number_text(61.4932, "%LEL") == "61.5 %LEL"
    assert number_text(1234.56, "m³") == "1,235 m³"
    assert duration_text(3275) == "54 min 35 s" and duration_text(45) == "45 s"


def test_study_probability_map_has_context_and_frames_where_p_is_positive():
    """Study maps use the one map module: context, scale bar, north arrow, legend, and a frame
    that holds every cell with P > 0 (a blob in the south-west of the small city)."""
    import numpy as np

    from citytwin.twin.synthetic import synthetic_city
    from citytwin.viewer.maps import probability_map_figure

    twin = synthetic_city(7, "small")
    x0, y0, x1, y1 = twin.terrain.bounds
    prob = np.zeros((120, 120))  # 10 m cells over the whole twin, north row first
    prob[90:110, 10:30] = np.linspace(0.1, 0.9, 20)
    fig = probability_map_figure(prob, (x0, x1, y0, y1), twin, "P(test)")
    ax = fig.axes[0]
    assert {"scale bar", "north arrow", "map legend"} <= {a.get_gid() for a in ax.get_children()}
    (left, right), (bottom, top) = ax.get_xlim(), ax.get_ylim()
    assert left <= x0 + 100 and right >= x0 + 300      # columns 10–29
    assert bottom <= y1 - 1100 and top >= y1 - 900     # rows 90–109
    assert right - left < x1 - x0                      # framed, not the whole city
    assert len(ax.collections) and any(len(c.get_paths()) for c in ax.collections)
