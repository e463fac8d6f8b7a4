"""Each rule kind on known inputs: rate of rise, sustained exceedance, composites, per-asset
overrides, corroboration, model forecasts, impact levels — and the compiled kernel against
the NumPy reference detector."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.alerting import Engine, ObservationBatch
from citytwin.alerting.detection import DetectionState
from citytwin.alerting.detector import LevelDetector
from citytwin.alerting.rulebook import Rulebook
from citytwin.twin.errors import InputError

from .conftest import make_inventory

LEVELS = ["blue", "yellow", "orange", "red"]
CH4 = {"hazard": "gas_plume", "quantity": "ch4_lel_pct", "unit": "%LEL",
       "sensor_types": ["methane_detector"]}


def rulebook(*rules, forecasts=(), impact=None) -> Rulebook:
    data = {"name": "t", "levels": LEVELS, "rules": list(rules), "forecasts": list(forecasts)}
    if impact is not None:
        data["impact"] = impact
    return Rulebook.model_validate(data)


def feed(eng, ids, times, values):
    return eng.process(ObservationBatch(np.array(ids, dtype=object), np.array(times, float),
                                        np.array(values, float), "%LEL"))


def levels_over_time(eng, sensor, times, values):
    out = []
    for t, v in zip(times, values, strict=True):
        got = feed(eng, [sensor], [t], [v])
        out.append(got.alarms[-1].to_level if got.alarms else None)
    return out


def test_rate_of_rise_grades_rise_per_minute_over_the_window():
    rule = {"id": "rise", **CH4, "kind": "rate_of_rise", "window_s": 60,
            "thresholds": {"yellow": 10, "orange": 30}}
    eng = Engine(rulebook(rule), make_inventory(1))
    # +2 %LEL every 10 s = 12 %LEL/min: yellow from the second reading (no rate on the first)
    out = feed(eng, ["S000"] * 3, [0, 10, 20], [0, 2, 4])
    (a,) = out.alarms
    assert (a.time_s, a.to_level, a.value) == (10.0, 2, pytest.approx(12.0))
    # +6 %LEL per 10 s = 36 %LEL/min measured over the last minute once the window fills
    times = np.arange(30, 130, 10.0)
    values = 4 + 6 * (times - 20) / 10
    out = feed(eng, ["S000"] * len(times), times, values)
    orange = [a for a in out.alarms if a.to_level == 3]
    assert orange and orange[0].value >= 30
    # a flat reading, however high, is no rise: the alarm clears as the window flattens
    out = feed(eng, ["S000"] * 8, np.arange(130, 210, 10.0), [values[-1]] * 8)
    assert out.alarms[-1].to_level == 0 and out.alarms[-1].value < 10


def test_rate_uses_oldest_reading_within_window_only():
    rule = {"id": "rise", **CH4, "kind": "rate_of_rise", "window_s": 30,
            "thresholds": {"yellow": 10}}
    eng = Engine(rulebook(rule), make_inventory(1))
    feed(eng, ["S000"], [0], [0])
    # next reading 60 s later: the earlier one is outside the 30 s window → no rate, no alarm
    assert feed(eng, ["S000"], [60], [100]).alarms == []
    (a,) = feed(eng, ["S000"], [80], [110]).alarms  # 10 %LEL in 20 s = 30 %LEL/min
    assert a.value == pytest.approx(30.0) and a.to_level == 2


def test_sustained_exceedance_needs_the_full_duration():
    rule = {"id": "steady", **CH4, "thresholds": {"yellow": 10}, "sustain_s": 600}
    eng = Engine(rulebook(rule), make_inventory(1))
    times = np.arange(0, 720, 60.0)
    got = levels_over_time(eng, "S000", times, [15.0] * len(times))
    assert got[:10] == [None] * 10  # 0 … 540 s: not yet 10 minutes
    assert got[10] == 2             # at 600 s the exceedance has lasted 600 s
    # a dip below the threshold restarts the clock
    eng = Engine(rulebook(rule), make_inventory(1))
    values = [15.0] * 5 + [5.0] + [15.0] * 11
    got = levels_over_time(eng, "S000", np.arange(0, 1020, 60.0), values)
    first = next(i for i, g in enumerate(got) if g == 2)
    assert first * 60 == 360 + 600


def composite_book(combine="max", group_by="sensor", weights=None):
    a = {"id": "conc", **CH4, "thresholds": {"blue": 10, "yellow": 25, "orange": 50, "red": 80},
         "warn": False}
    b = {"id": "rise", **CH4, "kind": "rate_of_rise", "window_s": 60,
         "thresholds": {"yellow": 10, "orange": 30}, "warn": False}
    comp = {"of": ["conc", "rise"], "combine": combine, "group_by": group_by}
    if weights:
        comp["weights"] = weights
    c = {"id": "site", **CH4, "unit": "level", "kind": "composite", "composite": comp,
         "thresholds": {"blue": 1, "yellow": 2, "orange": 3, "red": 4},
         "area": {"buffer_m": 50, "model_level": "blue", "model_threshold": 10}}
    return rulebook(a, b, c)


def test_composite_max_is_the_highest_sub_grade_and_only_it_warns():
    eng = Engine(composite_book(), make_inventory(1))
    out = feed(eng, ["S000", "S000"], [0, 10], [0, 12])  # conc blue; rise 72/min → orange
    by_rule = {a.rule_id: a.to_level for a in out.alarms}
    assert by_rule == {"conc": 1, "rise": 3, "site": 3}
    (w,) = out.warnings                # sub-rules alarm the owner; the composite warns
    assert w.level_name == "orange" and "rule site" in w.reason


def test_composite_weighted_sum():
    eng = Engine(composite_book("weighted", weights={"conc": 0.5, "rise": 0.5}),
                 make_inventory(1))
    out = feed(eng, ["S000", "S000"], [0, 10], [0, 12])  # 0.5·1 + 0.5·3 = 2 → yellow
    site = [a for a in out.alarms if a.rule_id == "site"]
    assert site[-1].to_level == 2 and site[-1].value == pytest.approx(2.0)


def test_site_composite_takes_the_worst_sensor_of_the_site():
    inv = make_inventory(3, spacing_m=10.0)
    inv["site_id"] = ["well-A", "well-A", "well-B"]
    eng = Engine(composite_book(group_by="site"), inv)
    out = feed(eng, ["S000", "S001", "S002"], [0, 0, 0], [30, 55, 30])
    site = {a.sensor_id: a.to_level for a in out.alarms if a.rule_id == "site"}
    assert site == {"well-A": 3, "well-B": 2}
    # S001 clears; S000 still yellow: the site drops to yellow, not to zero
    out = feed(eng, ["S001"], [10], [0])
    (a,) = [a for a in out.alarms if a.rule_id == "site"]
    assert (a.sensor_id, a.from_level, a.to_level) == ("well-A", 3, 2)


def test_per_asset_override_changes_thresholds_for_that_sensor_only():
    rule = {"id": "ch4", **CH4, "thresholds": {"blue": 10, "yellow": 25},
            "overrides": [{"sensors": ["S001"], "thresholds": {"blue": 40, "yellow": 60}}]}
    inv = make_inventory(2)
    eng = Engine(rulebook(rule), inv)
    out = feed(eng, ["S000", "S001"], [0, 0], [30, 30])
    assert [(a.sensor_id, a.to_level) for a in out.alarms] == [("S000", 2)]
    inv["asset_id"] = ["GN1", "GN2"]
    rule["overrides"] = [{"assets": ["GN2"], "thresholds": {"blue": 40, "yellow": 60}}]
    eng = Engine(rulebook(rule), inv)
    out = feed(eng, ["S000", "S001"], [0, 0], [30, 45])
    assert [(a.sensor_id, a.to_level) for a in out.alarms] == [("S000", 2), ("S001", 1)]


def corroborating_rule(**corr):
    return {"id": "ch4", **CH4, "thresholds": {"blue": 10, "yellow": 25, "orange": 50,
                                               "red": 80},
            "cluster_radius_m": 1000,
            "corroboration": {"min_sensors": 2, "radius_m": 200, "min_level": "yellow", **corr}}


def test_corroboration_by_a_neighbour_within_radius_raises_one_level():
    eng = Engine(rulebook(corroborating_rule()), make_inventory(3, spacing_m=150.0))
    out = feed(eng, ["S000"], [0], [30])
    assert out.warnings[-1].level_name == "yellow"
    out = feed(eng, ["S001"], [0], [30])          # 150 m away, also yellow
    w = out.warnings[-1]
    assert (w.event, w.level_name) == ("escalated", "orange")
    assert "corroborated by 2 sensors" in w.reason


def test_no_corroboration_when_too_far_unless_on_the_same_segment():
    inv = make_inventory(2, spacing_m=300.0)
    eng = Engine(rulebook(corroborating_rule()), inv)
    out = feed(eng, ["S000", "S001"], [0, 0], [30, 30])
    assert out.warnings[-1].level_name == "yellow"  # 300 m > 200 m
    segments = {"S000": frozenset({"gas:L1"}), "S001": frozenset({"gas:L1", "gas:L2"})}
    eng = Engine(rulebook(corroborating_rule()), inv, segments=segments)
    out = feed(eng, ["S000", "S001"], [0, 0], [30, 30])
    assert out.warnings[-1].level_name == "orange"
    eng = Engine(rulebook(corroborating_rule(same_segment=False)), inv, segments=segments)
    assert feed(eng, ["S000", "S001"], [0, 0], [30, 30]).warnings[-1].level_name == "yellow"


def forecast_book(**extra):
    rule = {"id": "ch4", **CH4, "thresholds": {"blue": 10, "yellow": 25, "orange": 50,
                                               "red": 80}, "cluster_radius_m": 500}
    fc = {"id": "fc", "hazard": "gas_plume", "quantity": "ch4_lel_pct", "unit": "%LEL",
          "thresholds": {"yellow": 10, "orange": 25}, "max_level": "orange",
          "cluster_radius_m": 500, **extra}
    return rulebook(rule, forecasts=[fc])


def test_forecast_raises_a_model_warning_before_any_sensor_then_sensors_join():
    targets = pd.DataFrame({"id": ["P-school"], "x_m": [100.0], "y_m": [0.0]})
    eng = Engine(forecast_book(), make_inventory(2), targets=targets)
    out = eng.forecast("fc", 60.0, {"P-school": (30.0, 300.0)})
    (w,) = out.warnings
    assert (w.event, w.level_name, w.basis, w.certainty) == ("raised", "orange", "model",
                                                             "Likely")
    assert w.first_exceedance_s == 300.0 and w.sensors == ()
    # the same forecast again: no change, no event
    assert eng.forecast("fc", 120.0, {"P-school": (31.0, 300.0)}).warnings == []
    # a sensor 100 m from the school alarms red: joins the same incident, now observed
    w2 = feed(eng, ["S000"], [200], [90]).warnings[-1]
    assert (w2.warning_id, w2.level_name, w2.basis, w2.certainty) == (
        w.warning_id, "red", "sensors", "Observed")


def test_forecast_level_is_capped_and_clears_when_no_longer_predicted():
    targets = pd.DataFrame({"id": ["T1"], "x_m": [5000.0], "y_m": [0.0]})
    eng = Engine(forecast_book(), make_inventory(1), targets=targets)
    assert eng.forecast("fc", 0.0, {"T1": (99.0, 10.0)}).warnings[0].level_name == "orange"
    w = eng.forecast("fc", 60.0, {"T1": (1.0, float("nan"))}).warnings[0]
    assert w.event == "cleared"
    with pytest.raises(KeyError, match="detection rule"):
        eng.forecast("ch4", 0.0, {})


def test_protected_target_inside_lifts_level_and_population_too():
    from citytwin.twin.synthetic import synthetic_city

    twin = synthetic_city(7, "tiny")
    target = twin.protected_targets.iloc[0]
    p = target.geometry.representative_point()
    inv = make_inventory(1)
    inv.loc[0, ["x_m", "y_m"]] = [p.x + 20.0, p.y]
    rule = {"id": "ch4", **CH4, "thresholds": {"blue": 10, "yellow": 25}, "area":
            {"buffer_m": 60}}
    book = rulebook(rule, impact={"protected_target_level": "orange"})
    w = feed(Engine(book, inv, twin=twin), ["S000"], [0], [12]).warnings[0]
    assert w.level_name == "orange" and target["id"] in w.targets
    assert "protected target" in w.reason
    book = rulebook(rule, impact={"population_levels": {"red": 1}})
    w = feed(Engine(book, inv, twin=twin), ["S000"], [0], [12]).warnings[0]
    assert (w.population >= 1) == (w.level_name == "red")


def test_three_level_rulebook():
    book = Rulebook.model_validate({"name": "t3", "levels": ["yellow", "orange", "red"],
                                    "rules": [{"id": "ch4", **CH4, "thresholds": {
                                        "yellow": 25, "orange": 50, "red": 80}}]})
    eng = Engine(book, make_inventory(1))
    levels = [w.level_name for w in feed(eng, ["S000"] * 3, [0, 1, 2], [30, 60, 90]).warnings]
    assert levels == ["yellow", "orange", "red"]


@pytest.mark.parametrize("bad, match", [
    ({"rules": [{"id": "c", **CH4, "kind": "composite", "thresholds": {"blue": 1},
                 "composite": {"of": ["later"]}}, {"id": "later", **CH4,
                                                   "thresholds": {"blue": 1}}]},
     "must be rules listed before it"),
    ({"rules": [{"id": "c", **CH4, "kind": "composite", "thresholds": {"blue": 1}}]},
     "needs a 'composite' section"),
    ({"rules": [{"id": "a", **CH4, "thresholds": {"blue": 1}},
                {"id": "c", **CH4, "kind": "composite", "thresholds": {"blue": 1},
                 "composite": {"of": ["a"]}, "area": {"model_level": "blue"}}]},
     "model_threshold"),
    ({"forecasts": [{"id": "f", "hazard": "h", "quantity": "q", "unit": "u",
                     "thresholds": {"blue": 1}, "max_level": "purple"}]}, "max_level"),
    ({"impact": {"protected_target_level": "amber"}}, "impact names unknown level"),
    ({"rules": [{"id": "a", **CH4, "thresholds": {"blue": 10, "yellow": 20},
                 "overrides": [{"sensors": ["S1"], "thresholds": {"blue": 30}}]}]},
     "overrides.0"),
])
def test_rulebook_rejects_inconsistent_rules(tmp_path, bad, match):
    import yaml

    from citytwin.alerting.rulebook import load_rulebook

    data = {"name": "x", "levels": LEVELS,
            "rules": [{"id": "base", **CH4, "thresholds": {"blue": 10}}], **bad}
    path = tmp_path / "rb.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=match) as err:
        load_rulebook(path)
    assert str(path) in str(err.value)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=60),
       debounce=st.sampled_from([(1, 1), (2, 3), (3, 5)]),
       hysteresis=st.sampled_from([0.0, 3.0, 7.5]))
def test_compiled_kernel_matches_numpy_reference(values, debounce, hysteresis):
    thresholds = {"blue": 10, "yellow": 25, "orange": 50, "red": 80}
    book = rulebook({"id": "ch4", **CH4, "thresholds": thresholds, "hysteresis": hysteresis,
                     "debounce": {"n": debounce[0], "m": debounce[1]}})
    state = DetectionState(book, make_inventory(1))
    ref = LevelDetector(np.array([10.0, 25, 50, 80]), hysteresis, *debounce, n_sensors=1)
    for t, v in enumerate(values):
        state.run(np.array([0]), np.array([v]), np.array([float(t)]), np.array([True]))
        ref.update(np.array([0]), np.array([v]), np.array([float(t)]))
        assert state.level[0, 0] == ref.level[0]
        assert np.array_equal(state.since[:1, 0], ref.exceed_since_s, equal_nan=True)


def test_rule_unit_must_match_the_sensors_it_reads():
    rule = {"id": "ch4", **CH4, "unit": "ppm", "thresholds": {"blue": 10}}
    with pytest.raises(InputError, match=r"rules.0.unit.*takes readings in 'ppm' but sensor "
                       r"S000 reports '%LEL'"):
        Engine(rulebook(rule), make_inventory(1))


def test_falling_rate_grades_a_reservoir_draining():
    rule = {"id": "fall", "hazard": "dam_break", "quantity": "reservoir_level_m", "unit": "m",
            "kind": "rate_of_rise", "direction": "falling", "window_s": 100,
            "thresholds": {"yellow": 0.01, "orange": 0.05, "red": 0.2}}
    inv = make_inventory(1)
    inv["quantity"], inv["unit"], inv["type_id"] = "reservoir_level_m", "m", "reservoir_level"
    eng = Engine(rulebook(rule), inv)
    rising = eng.process(ObservationBatch(np.array(["S000"] * 3, dtype=object),
                                          np.array([0, 60, 120.0]), np.array([30, 31, 32.0]),
                                          "m"))
    assert rising.alarms == []  # rising 1 m/min is no fall
    out = eng.process(ObservationBatch(np.array(["S000"] * 2, dtype=object),
                                       np.array([180, 240.0]), np.array([31.7, 31.4]), "m"))
    # 0.3 m/min down over the 100 s window (32.0 → 31.7 → 31.4)
    assert out.alarms[-1].to_level == 4 and out.alarms[-1].value == pytest.approx(0.3)


def test_arrival_levels_grade_forecasts_by_time_left():
    fc = {"id": "arr", "hazard": "dam_break", "quantity": "depth_m", "unit": "m",
          "thresholds": {"yellow": 0.15}, "arrival_levels": {"red": 1800, "orange": 3600},
          "cluster_radius_m": 10}
    targets = pd.DataFrame({"id": ["A", "B", "C", "D"], "x_m": [0, 1e4, 2e4, 3e4],
                            "y_m": [0.0] * 4})
    book = rulebook({"id": "ch4", **CH4, "thresholds": {"blue": 10}}, forecasts=[fc])
    eng = Engine(book, make_inventory(1), targets=targets)
    t = 1000.0
    out = eng.forecast("arr", t, {"A": (0.5, t + 600), "B": (0.5, t + 2400),
                                  "C": (0.5, t + 5000), "D": (0.1, float("nan"))})
    levels = {a.sensor_id: a.to_level for a in out.alarms}
    assert levels == {"A": 4, "B": 3, "C": 2}   # D: predicted below 15 cm, no warning
    assert {w.level_name for w in out.warnings} == {"red", "orange", "yellow"}


def test_one_forecast_reaching_several_places_is_one_event():
    targets = pd.DataFrame({"id": ["T1", "T2", "T3"], "x_m": [100.0, 120.0, 140.0],
                            "y_m": [0.0] * 3})
    eng = Engine(forecast_book(), make_inventory(1), targets=targets)
    out = eng.forecast("fc", 0.0, {t: (30.0, 60.0) for t in ("T1", "T2", "T3")})
    assert len(out.alarms) == 3 and {a.warning_id for a in out.alarms} == {"W-0001"}
    (w,) = out.warnings
    assert w.event == "raised" and "T1, T2, T3" in w.reason
    (w2,) = eng.forecast("fc", 60.0, {"T1": (0.0, float("nan")), "T2": (0.0, float("nan")),
                                      "T3": (30.0, 60.0)}).warnings
    assert w2.event == "updated" and "reaches T3" in w2.reason
