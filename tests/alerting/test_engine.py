"""The engine: warnings, recipients, areas, input errors, and streaming = batch."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.alerting import Engine, Observation, ObservationBatch, load_rulebook
from citytwin.alerting.rulebook import Rulebook
from citytwin.twin.errors import InputError

from .conftest import make_inventory, simple_rulebook


def batch(ids, times, values, unit="%LEL"):
    return ObservationBatch(np.array(ids, dtype=object), np.array(times, float),
                            np.array(values, float), unit)


def test_default_rulebook_loads_with_four_levels():
    rb = load_rulebook()
    assert rb.levels == ["blue", "yellow", "orange", "red"]
    ch4 = next(r for r in rb.rules if r.id == "ch4_confined_space")
    assert ch4.thresholds == {"blue": 10, "yellow": 25, "orange": 50, "red": 80}


def test_warning_raised_escalated_and_cleared_with_routing(inventory):
    eng = Engine(simple_rulebook(), inventory)
    out = eng.process(batch(["S000"], [0], [30]))
    assert [(a.from_level, a.to_level) for a in out.alarms] == [(0, 2)]
    (w,) = out.warnings
    # yellow gas leak, nobody inside: the owner closes it (small loop, default routing table)
    assert (w.event, w.level_name, w.sensors, w.loop, w.lead_unit, w.recipients) == (
        "raised", "yellow", ("S000",), "small", "gas_company", ("gas_company",))
    assert w.area_source == "buffer" and w.area_m2 == pytest.approx(np.pi * 100**2, rel=0.01)
    assert w.basis == "sensors" and w.certainty == "Observed"
    out = eng.process(batch(["S000"], [10], [85]))
    assert (out.warnings[0].event, out.warnings[0].level_name) == ("escalated", "red")
    assert out.warnings[0].loop == "big"
    assert out.warnings[0].recipients == ("gas_company", "gas_department", "district_government",
                                          "city_emergency_command", "public")
    out = eng.process(batch(["S000"], [20], [1]))
    cleared = out.warnings[0]
    assert cleared.event == "cleared" and cleared.level == 0
    assert cleared.loop == "big"  # the all-clear goes to everyone who had the red warning


def test_nearby_alarms_join_one_warning_far_ones_do_not():
    inv = make_inventory(3, spacing_m=200.0)  # S000–S001 200 m apart, S002 400 m from S000
    inv.loc[2, "x_m"] = 5000.0
    eng = Engine(simple_rulebook(), inv)
    out = eng.process(batch(["S000", "S001", "S002"], [0, 0, 0], [30, 60, 30]))
    ids = {w.warning_id for w in out.warnings}
    assert len(ids) == 2
    joined = [w for w in out.warnings if "S001" in w.sensors][-1]
    assert joined.sensors == ("S000", "S001") and joined.level_name == "orange"


def test_model_area_used_when_provider_attached(inventory):
    import shapely

    square = shapely.box(0, 0, 50, 50)
    calls = []

    def provider(hazard, quantity, threshold, t_s):
        calls.append((hazard, quantity, threshold, t_s))
        return square

    eng = Engine(simple_rulebook(), inventory, area_provider=provider)
    (w,) = eng.process(batch(["S000"], [5], [30])).warnings
    assert w.area_source == "model" and w.area_m2 == 2500.0
    assert calls == [("gas_plume", "ch4_lel_pct", 10.0, 5.0)]


def test_unknown_sensor_is_rejected_by_name(inventory):
    eng = Engine(simple_rulebook(), inventory)
    with pytest.raises(InputError, match=r"sensor_id: unknown sensor id\(s\) \['NOPE'\]"):
        eng.process(batch(["S000", "NOPE"], [0, 0], [1, 1]))


def test_unit_mismatch_is_rejected(inventory):
    eng = Engine(simple_rulebook(), inventory)
    with pytest.raises(InputError, match="unit mismatch: sensor S000 reports 'ppm'"):
        eng.process(batch(["S000"], [0], [1], unit="ppm"))


def test_duplicates_and_out_of_order_are_rejected_and_leave_state_untouched(inventory):
    eng = Engine(simple_rulebook(), inventory)
    eng.process(batch(["S000"], [10], [1]))
    with pytest.raises(InputError, match="duplicate observation for sensor S000"):
        eng.process(batch(["S001", "S000"], [10, 10], [90, 1]))
    with pytest.raises(InputError, match="out-of-order observation for sensor S001"):
        eng.process(batch(["S001", "S001"], [20, 15], [1, 1]))
    # The rejected batches changed nothing: S001 may still report at t = 10.
    out = eng.process(batch(["S001"], [10], [90]))
    assert out.alarms[0].to_level == 4


def test_unusable_quality_and_nan_are_skipped(inventory):
    eng = Engine(simple_rulebook(), inventory)
    b = ObservationBatch(np.array(["S000", "S001"], dtype=object), np.array([0.0, 0.0]),
                         np.array([90.0, np.nan]), "%LEL", quality=np.array([2, 0]))
    assert eng.process(b).alarms == []


def test_rulebook_errors_name_the_field(tmp_path):
    from citytwin.alerting.rulebook import load_rulebook

    p = tmp_path / "rb.yaml"
    p.write_text("name: x\nlevels: [blue, yellow, red]\nrules:\n"
                 "  - {id: a, hazard: h, quantity: q, unit: u, thresholds: {blue: 5, red: 2}}\n")
    with pytest.raises(InputError, match="rb.yaml.*thresholds must increase"):
        load_rulebook(p)
    p.write_text("name: x\nlevels: [blue, yellow, red]\nrules:\n"
                 "  - {id: a, hazard: h, quantity: q, unit: u, thresholds: {blue: 5},"
                 " debounce: {n: 3, m: 2}}\n")
    with pytest.raises(InputError, match=r"rb.yaml: rules.0.debounce: .*n \(3\) must not"):
        load_rulebook(p)
    p.write_text("name: x\nlevels: [blue, yellow, red]\nrules:\n"
                 "  - {id: a, hazard: h, quantity: q, unit: u, threshold: {blue: 5}}\n")
    with pytest.raises(InputError, match="rules.0.threshold"):
        load_rulebook(p)


def _signature(outputs):
    return ([repr(a) for o in outputs for a in o.alarms],  # repr: NaN-safe equality
            [repr(w) for o in outputs for w in o.warnings])


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(0, 4), st.floats(0, 100, allow_nan=False)),
                  min_size=1, max_size=80),
    cuts=st.lists(st.integers(1, 80), max_size=6),
    debounce=st.sampled_from([(1, 1), (2, 3), (3, 5)]),
)
def test_streaming_equals_batches(data, cuts, debounce):
    """One observation at a time, or the same stream cut into batches: identical output."""
    inv = make_inventory(5, spacing_m=150.0)
    rb = simple_rulebook(*debounce, hysteresis=4.0)
    ids = [f"S{s:03d}" for s, _ in data]
    times = np.arange(len(data), dtype=float)  # a global clock: per-sensor times increase
    values = [v for _, v in data]

    stream = Engine(rb, inv)
    one = [stream.process_one(Observation(i, t, v, "%LEL"))
           for i, t, v in zip(ids, times, values, strict=True)]
    batched = Engine(rb, inv)
    edges = sorted({0, len(data), *[c for c in cuts if c < len(data)]})
    many = [batched.process(batch(ids[a:b], times[a:b], values[a:b]))
            for a, b in zip(edges, edges[1:], strict=False)]
    assert _signature(one) == _signature(many)


def test_whole_stream_in_one_batch_with_repeated_sensors_equals_streaming():
    inv = make_inventory(2, spacing_m=100.0)
    rb: Rulebook = simple_rulebook(2, 3, 2.0)
    ids = ["S000", "S001"] * 6
    vals = [30, 0, 30, 60, 0, 60, 90, 0, 0, 0, 0, 0]
    times = [t // 2 * 10.0 for t in range(12)]
    stream = Engine(rb, inv)
    one = [stream.process_one(Observation(i, t, v, "%LEL"))
           for i, t, v in zip(ids, times, vals, strict=True)]
    whole = Engine(rb, inv).process(batch(ids, times, vals))
    assert _signature(one) == _signature([whole])
    assert [(a.sensor_id, a.to_level) for a in whole.alarms] == [
        ("S000", 2), ("S001", 3), ("S000", 0), ("S001", 0)]


@pytest.mark.parametrize("sensor, t_s, unit, match", [
    ("NOPE", 20.0, "%LEL", r"sensor_id: unknown sensor id\(s\) \['NOPE'\]"),
    ("S000", 20.0, "ppm", r"unit: unit mismatch: sensor S000 reports 'ppm', the inventory"),
    ("S000", float("nan"), "%LEL", r"time_s: non-finite time for sensor S000"),
    ("S000", 10.0, "%LEL", r"time_s: duplicate observation for sensor S000"),
    ("S000", 5.0, "%LEL", r"time_s: out-of-order observation for sensor S000"),
])
def test_one_at_a_time_refuses_bad_input_exactly_as_batches_do(inventory, sensor, t_s, unit,
                                                               match):
    """process_one has its own fast path: its errors must stay those of process."""
    one, many = Engine(simple_rulebook(), inventory), Engine(simple_rulebook(), inventory)
    one.process_one(Observation("S000", 10.0, 1.0, "%LEL"))
    many.process(batch(["S000"], [10], [1]))
    with pytest.raises(InputError, match=match) as e_one:
        one.process_one(Observation(sensor, t_s, 1.0, unit))
    with pytest.raises(InputError, match=match) as e_many:
        many.process(batch([sensor], [t_s], [1], unit=unit))
    assert str(e_one.value) == str(e_many.value)


def test_a_detection_rule_is_not_a_forecast(inventory):
    with pytest.raises(KeyError, match="'ch4' is a detection rule, not a forecast"):
        Engine(simple_rulebook(), inventory).forecast("ch4", 0.0, {})
