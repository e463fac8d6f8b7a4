"""Issue 11 item 1: the default rulebook's dam-break rules warn on what signals a failure —
a reservoir level falling faster than spillways explain — not on a rain-fed rise, not on
gauge noise, and their forecast only from a dam-break model; warning areas stay in the twin.
"""

import numpy as np
import pandas as pd
import shapely

from citytwin.alerting import Engine, ObservationBatch
from citytwin.alerting.impact import OPEN_PLACE_DENSITY_P_M2
from citytwin.alerting.rulebook import load_rulebook
from citytwin.twin.synthetic import synthetic_city


def gauge() -> pd.DataFrame:
    return pd.DataFrame({"sensor_id": ["tower"], "type_id": "reservoir_level",
                         "quantity": "reservoir_level_m", "unit": "m", "x_m": [400370.0],
                         "y_m": [3401050.0]})


def readings(levels_m: np.ndarray, seed: int = 1) -> ObservationBatch:
    """One reading a minute as the catalogue's radar gauge gives it: ±5 mm noise (sd),
    1 cm steps."""
    rng = np.random.default_rng(seed)
    v = np.round((levels_m + rng.normal(0.0, 0.005, len(levels_m))) / 0.01) * 0.01
    t = np.arange(len(levels_m)) * 60.0
    return ObservationBatch(np.full(len(v), "tower", dtype=object), t, v, "m")


def test_noise_and_a_rain_fed_rise_raise_no_dam_break_warning():
    """Before: a 1 cm step over one minute graded as 0.01 m/min (yellow fall or rise), and
    a rain-fed rise opened a dam-break warning (reservoir_level_rise warned)."""
    for seed in range(20):
        still = Engine(load_rulebook(), gauge()).process(readings(np.full(120, 62.0), seed))
        assert still.alarms == [] and still.warnings == []
        rise = 62.0 + 0.012 * np.arange(120)  # 1.2 cm/min of flood inflow for two hours
        out = Engine(load_rulebook(), gauge()).process(readings(rise, seed))
        assert out.warnings == []  # the operator is alarmed; nobody is told to evacuate
        assert {a.rule_id for a in out.alarms} <= {"reservoir_level_rise"}


def test_a_breach_fall_warns_once_and_holds_its_level_under_noise():
    fall = np.concatenate([np.full(30, 62.0), 62.0 - 0.3 * np.arange(1, 31)])  # 0.3 m/min
    out = Engine(load_rulebook(), gauge()).process(readings(fall))
    assert out.warnings[0].event == "raised"
    assert {w.hazard for w in out.warnings} == {"dam_break"}
    levels = [w.level for w in out.warnings if w.event in ("raised", "escalated",
                                                            "deescalated")]
    assert levels == sorted(levels) and levels[-1] == 4  # only up, to red: no flapping
    first = min(w.known_at_s for w in out.warnings)
    assert 30 * 60 < first <= 35 * 60  # within 5 minutes of the breach


def test_a_gap_in_the_gauge_readings_does_not_clear_a_breach_warning():
    """Six minutes without readings in the middle of a breach leave too short a span for a
    rate: that is no evidence either way, so the warning holds (it was cleared, then raised
    anew, when a missing rate graded as 'below')."""
    fall = np.concatenate([np.full(10, 62.0), 62.0 - 0.3 * np.arange(1, 41)])
    batch = readings(fall)
    keep = (batch.time_s < 25 * 60) | (batch.time_s >= 31 * 60)
    gap = ObservationBatch(batch.sensor_id[keep], batch.time_s[keep], batch.value[keep], "m")
    out = Engine(load_rulebook(), gauge()).process(gap)
    events = [w.event for w in out.warnings]
    assert events[0] == "raised" and "cleared" not in events
    assert len({w.warning_id for w in out.warnings}) == 1


def test_forecast_of_an_absent_hazard_and_areas_beyond_the_twin():
    """A run's engine told which hazards exist ignores another hazard's forecast; an area
    provider drawing beyond the twin (a 1e300 kg/s release) is clipped to the twin."""
    twin = synthetic_city(7, "tiny")
    xmin, ymin, xmax, ymax = twin.terrain.bounds
    huge = shapely.box(xmin - 5e3, ymin - 5e3, xmax + 5e3, ymax + 5e3)
    inv = gauge().assign(x_m=[(xmin + xmax) / 2], y_m=[(ymin + ymax) / 2])
    eng = Engine(load_rulebook(), inv, twin=twin, area_provider=lambda *a: huge)
    eng.attribute_to({"urban_flood": {"depth_m", "rain_mm_h"}})
    place = str(twin.places["id"].iloc[0])
    assert eng.forecast("dam_break_arrival", 60.0, {place: (2.0, 120.0)}).warnings == []
    eng.attribute_to({"dam_break": {"depth_m", "reservoir_level_m"}})
    out = eng.forecast("dam_break_arrival", 60.0, {place: (2.0, 120.0)})
    (w,) = out.warnings
    area = shapely.from_wkt(w.area_wkt)
    assert shapely.box(*twin.terrain.bounds).buffer(0.01).covers(area)
    assert w.area_m2 <= (xmax - xmin) * (ymax - ymin) + 1.0
    open_places = sum(min(g.area * OPEN_PLACE_DENSITY_P_M2, c) for g, c in
                      zip(twin.places.geometry, twin.places["capacity"], strict=True))
    assert w.population <= twin.population + open_places


def test_attribution_is_replaced_by_each_call_and_goes_only_to_warned_hazards():
    """``attribute_to`` describes the run as it is now (a second call replaces the first, it
    does not leave a rule silenced), and a rule only reports as a present hazard that the
    rulebook itself warns of (the routing covers exactly those: no KeyError mid-run)."""
    inv = pd.DataFrame({"sensor_id": ["g"], "type_id": "water_level", "quantity": "depth_m",
                        "unit": "m", "x_m": [0.0], "y_m": [0.0]})
    deep = ObservationBatch(np.array(["g", "g"], dtype=object), [0.0, 60.0], [0.6, 0.6], "m")

    def hazards_warned(*attributions) -> set[str]:
        eng = Engine(load_rulebook(), inv)
        for a in attributions:
            eng.attribute_to(a)
        return {w.hazard for w in eng.process(deep).warnings}

    assert hazards_warned({"gas_plume": {"ch4_lel_pct"}}, {"urban_flood": {"depth_m"}}) == {
        "urban_flood"}
    assert hazards_warned({"dam_break": {"depth_m"}}) == {"dam_break"}
    assert hazards_warned({"pipe_burst": {"depth_m"}}) == set()  # not in the rulebook


def test_a_rate_span_the_window_cannot_hold_is_refused():
    import pytest

    from citytwin.alerting.rulebook import Rulebook

    data = load_rulebook().model_dump(mode="json")
    fall = next(r for r in data["rules"] if r["id"] == "reservoir_level_fall")
    fall["min_span_s"] = fall["window_s"] + 1
    with pytest.raises(ValueError, match="reservoir_level_fall\\): min_span_s 301 s needs a "
                                         "rate_of_rise rule and at most its window_s"):
        Rulebook.model_validate(data)
