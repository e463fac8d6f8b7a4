"""Flood and dam-break scenarios end to end on the tiny synthetic city: rain and level
gauges, ponding and reservoir rules, arrival-time forecasts, and errors naming the field."""

import pandas as pd
import pytest
import yaml

from citytwin.scenarios.run.archive_reader import read_manifest, read_table
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario
from citytwin.twin.errors import InputError

from .conftest import DEMO

WATER_GAUGES = {"id": "ponding", "type": "water_level", "interval_s": 60,
                "placement": {"network": "drainage", "node_kinds": ["manhole"], "lowest": 6,
                              "height_m": 0.0}}
RIVER = {"id": "river", "type": "water_level", "interval_s": 60,
         "placement": {"points": [{"id": "r1", "xy_m": [400172.5, 3400422.5]},
                                  {"id": "r2", "xy_m": [400177.5, 3400172.5]}]}}


def base(**changes) -> dict:
    data = yaml.safe_load(DEMO.read_text())
    data.update({"twin": {"synthetic": {"seed": 7, "size": "tiny"}}, "mode": "what-if",
                 "outputs": {"observations": "all", "report": False, "render": False},
                 "actions": []})
    data.update(changes)
    return data


def run(write_scenario, tmp_path, data, name="run"):
    path = write_scenario(data, f"{name}.yaml")
    scenario = load_scenario(path)
    return simulate(prepare(scenario, source=str(path), base_dir=path.parent), tmp_path / name)


def test_rainstorm_raises_rain_and_ponding_warnings(write_scenario, tmp_path):
    storm = {"id": "storm", "kind": "urban_flood", "start_s": 60,
             "rain": {"series": {"times_s": [0, 1200], "intensity_mm_h": [120, 0]}},
             "model": {"drains": True, "cfl": 0.5}}
    rain = {"id": "rain", "type": "rain_gauge", "interval_s": 60,
            "placement": {"places": ["P-plaza"], "height_m": 2.0}}
    result = run(write_scenario, tmp_path, base(
        duration_s=1800, hazards=[storm], sensors={"groups": [rain, WATER_GAUGES, RIVER]}))
    alarms = read_table(result.archive_path, "alarms")
    rain_alarm = alarms[alarms["rule_id"] == "rain_intensity"]
    assert rain_alarm["to_level"].max() == 3          # 120 mm/h ≥ 50 mm/h → orange
    assert (alarms["rule_id"] == "ponding_depth").any()
    warnings = read_table(result.archive_path, "warnings")
    assert set(warnings["hazard"]) == {"urban_flood"}
    note = read_manifest(result.archive_path)["hazards"]["storm"]
    assert note["rain_total_mm"] == pytest.approx(40.0)   # 120 mm/h for 20 min
    assert any(k.endswith("max_depth_m") for k in result.snapshot)
    summary = read_manifest(result.archive_path)["summary"]["impact"]["storm"]
    assert abs(summary["volume_balance_relative_error"]) < 1e-12


def test_dam_break_falls_level_and_warns_downstream_by_arrival(write_scenario, tmp_path):
    breach = {"id": "breach", "kind": "dam_break", "start_s": 60, "mode": "overtopping",
              "growth": "linear", "model": {"drains": False, "cfl": 0.5}}
    tower = {"id": "reservoir", "type": "reservoir_level", "interval_s": 60,
             "placement": {"points": [{"id": "tower", "xy_m": [400150.0, 3400560.0]}]}}
    result = run(write_scenario, tmp_path, base(
        duration_s=1800, hazards=[breach], sensors={"groups": [tower, RIVER]},
        places_of_concern=[{"id": "ford", "xy_m": [400172.5, 3400422.5]}]))
    alarms = read_table(result.archive_path, "alarms")
    fall = alarms[alarms["rule_id"] == "reservoir_level_fall"]
    assert not fall.empty and fall["to_level"].max() >= 2
    arrival = alarms[(alarms["rule_id"] == "dam_break_arrival") & (alarms["to_level"] > 0)]
    assert "ford" in set(arrival["sensor_id"])
    dam = read_table(result.archive_path, "warnings")
    assert (dam["hazard"] == "dam_break").any()
    note = read_manifest(result.archive_path)["hazards"]["breach"]
    assert note["peak_outflow_m3_s"] > 0 and note["regressions"]
    impact = pd.read_csv(result.run_dir / "flood_impact_breach.csv")
    ford = impact[impact["id"] == "ford"]
    assert ford.empty  # places of concern are forecast points, not twin places
    assert (impact["max_depth_m"] >= 0.15).all()
    assert impact["arrival_time_s"].is_monotonic_increasing
    assert [k for _, k, _, _ in result.timeline].count("impact") == 1
    # the breach → flood cascade is a chain in the archive, at the breach time
    chain = read_table(result.archive_path, "hazard_chain")
    assert list(zip(chain["time_s"], chain["parent"], chain["child"], strict=True)) == [
        (60.0, "breach:breach of R-dam", "breach:flood")]


def test_bad_flood_inputs_name_the_field(write_scenario, tmp_path):
    storm = {"id": "storm", "kind": "urban_flood",
             "rain": {"series": {"times_s": [0, 600], "intensity_mm_h": [-5, 0]}}}
    path = write_scenario(base(hazards=[storm]), "neg.yaml")
    with pytest.raises(InputError, match=r"hazards.0.rain.series.*≥ 0 mm/h"):
        load_scenario(path)
    breach = {"id": "b", "kind": "dam_break", "start_s": 60, "dam": "R-nope"}
    path = write_scenario(base(hazards=[breach]), "dam.yaml")
    with pytest.raises(InputError, match=r"hazards.0.dam_id.*'R-nope' is not in reservoirs"):
        prepare(load_scenario(path), source=str(path), base_dir=path.parent)
    assert not (tmp_path / "dam").exists()


@pytest.mark.parametrize("placement, match", [
    ({"places": ["P-nowhere"]}, r"sensors.groups.0.placement.places.*no place\(s\) "
                                r"\['P-nowhere'\]"),
    ({"points": [{"id": "far", "xy_m": [0.0, 0.0]}]},
     r"sensors.groups.0.placement.*'far' lies outside the twin's terrain"),
    ({"places": ["P-plaza"], "points": [{"id": "a", "xy_m": [400100.0, 3400100.0]}]},
     r"sensors.groups.0.placement.*at most one of 'places' or 'points'"),
])
def test_bad_gauge_placements_name_the_field(write_scenario, placement, match):
    group = {"id": "rain", "type": "rain_gauge", "interval_s": 60, "placement": placement}
    path = write_scenario(base(sensors={"groups": [group]}), "placement.yaml")
    with pytest.raises(InputError, match=match):
        prepare(load_scenario(path), source=str(path), base_dir=path.parent)


def test_bad_operations_file_names_file_and_field(write_scenario, tmp_path):
    ops = tmp_path / "ops.yaml"
    ops.write_text("work_orders: {unassigned_overdue_s: -5}\n")
    path = write_scenario(base(operations=str(ops)), "ops-scenario.yaml")
    with pytest.raises(InputError, match=r"ops.yaml: work_orders.unassigned_overdue_s"):
        prepare(load_scenario(path), source=str(path), base_dir=path.parent)
    # levels are checked against the scenario's rulebook before anything runs
    ops.write_text("work_orders: {create_from_level: purple}\n")
    with pytest.raises(InputError, match=r"ops.yaml: work_orders.create_from_level: level "
                                         r"'purple' is not one of the rulebook's levels"):
        prepare(load_scenario(path), source=str(path), base_dir=path.parent)


def test_breach_width_and_formation_time_can_be_set(write_scenario):
    """(What-if studies vary them.) None: Froehlich 2008; given: those, and a wider breach
    formed faster releases a higher peak."""
    def prepared(name, **breach):
        h = {"id": "breach", "kind": "dam_break", "start_s": 60, "mode": "overtopping",
             "growth": "linear", **breach}
        path = write_scenario(base(duration_s=1800, hazards=[h],
                                   sensors={"groups": [RIVER]}), f"{name}.yaml")
        return prepare(load_scenario(path), source=str(path), base_dir=path.parent)

    froehlich = prepared("f").hazard_notes["breach"]
    narrow = prepared("n", breach_width_m=5.0, formation_time_s=1800.0).hazard_notes["breach"]
    wide = prepared("w", breach_width_m=40.0, formation_time_s=600.0).hazard_notes["breach"]
    assert (narrow["breach_width_m"], narrow["formation_time_s"]) == (5.0, 1800.0)
    assert (wide["breach_width_m"], wide["formation_time_s"]) == (40.0, 600.0)
    assert froehlich["breach_width_m"] not in (5.0, 40.0)
    assert narrow["peak_outflow_m3_s"] < wide["peak_outflow_m3_s"]
    with pytest.raises(InputError, match=r"hazards\.0\.breach_width_m"):
        prepared("bad", breach_width_m=-1.0)
