"""The measurement model: statistics, lag, quantisation, clipping, faults, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from citytwin.sensors_sim import measurement as msr
from citytwin.sensors_sim.measurement import (
    QUALITY_CLIPPED,
    QUALITY_DROPPED,
    QUALITY_OFFLINE,
    QUALITY_OK,
    QUALITY_STUCK,
    MeasurementModel,
    draw_episodes,
    expected_offline_fraction,
)
from citytwin.sensors_sim.network import SensorNetwork
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import rng_for
from tests.sensors_sim.support import gauge, gauge_records

DAY_S = 86_400.0


def _model(n: int, seed: int = 1, duration_s: float = DAY_S, ideal: bool = False,
           prefix: str = "S", **changes: object) -> tuple[MeasurementModel, SensorNetwork]:
    cat = gauge(**changes)
    net = SensorNetwork.from_records(gauge_records(n, prefix), cat)
    return MeasurementModel(net, cat, seed=seed, duration_s=duration_s, ideal=ideal), net


def _run(model: MeasurementModel, times_s: np.ndarray, truth) -> dict[str, np.ndarray]:
    """Measure the (single) group at ``times_s``; ``truth(t)`` gives the true values."""
    [group] = model.network.groups()
    batches = [model.measure(group, t, truth(t)) for t in times_s]
    return {k: np.stack([getattr(b, k) for b in batches])
            for k in ("time_s", "received_s", "value", "valid", "quality")}


def test_quality_codes_match_alerting():
    obs = pytest.importorskip("citytwin.alerting.observation")
    for name in ("QUALITY_OK", "QUALITY_CLIPPED", "QUALITY_DROPPED", "QUALITY_OFFLINE",
                 "QUALITY_STUCK"):
        assert getattr(msr, name) == getattr(obs, name)


def test_mean_is_truth_plus_bias_and_sd_is_noise_sd():
    n, k, noise, bias_sd = 200, 2000, 0.5, 2.0
    model, _ = _model(n, noise_sd=noise, bias_sd=bias_sd, resolution=1e-3)
    out = _run(model, np.arange(k) * 10.0, lambda t: np.full(n, 10.0))
    err = out["value"] - 10.0
    # per-sensor mean of k samples: standard error 0.5/√2000 = 0.011; 5σ tolerance
    np.testing.assert_allclose(err.mean(axis=0), model.bias, atol=0.06)
    resid = err - model.bias
    assert resid.std() == pytest.approx(noise, rel=0.02)
    # biases across 200 sensors: sd within 15 % (3σ of the sd estimate), mean within 3σ
    assert model.bias.std() == pytest.approx(bias_sd, rel=0.15)
    assert abs(model.bias.mean()) < 3 * bias_sd / math.sqrt(n)
    assert (out["quality"] == QUALITY_OK).all() and out["valid"].all()


def test_drift_grows_linearly_with_time():
    n, drift_sd = 500, 0.3  # units/day
    model, _ = _model(n, drift_per_day_sd=drift_sd, duration_s=10 * DAY_S)
    times = np.array([0.0, DAY_S, 10 * DAY_S])
    out = _run(model, times, lambda t: np.zeros(n))
    np.testing.assert_allclose(out["value"], np.outer(times, model.drift_per_s), atol=1e-6)
    assert (model.drift_per_s * DAY_S).std() == pytest.approx(drift_sd, rel=0.1)


def test_drop_fraction_matches_probability():
    n, k, p = 500, 400, 0.1
    model, _ = _model(n, drop_probability=p)
    out = _run(model, np.arange(k) * 10.0, lambda t: np.ones(n))
    dropped = out["quality"] == QUALITY_DROPPED
    # 200 000 Bernoulli(0.1) trials: sd 0.00067; tolerance 0.003 (4.5σ)
    assert dropped.mean() == pytest.approx(p, abs=0.003)
    assert np.isnan(out["value"][dropped]).all()
    assert not out["valid"][dropped].any()
    assert out["valid"][~dropped].all() and np.isfinite(out["value"][~dropped]).all()


def test_offline_fraction_and_schedule():
    n, rate, mean_s, duration = 1000, 4.0, 7200.0, 5 * DAY_S
    model, net = _model(n, offline_rate_per_day=rate, offline_mean_duration_s=mean_s,
                        duration_s=duration)
    times = np.arange(0.0, duration + 1, 300.0)
    out = _run(model, times, lambda t: np.ones(n))
    offline = out["quality"] == QUALITY_OFFLINE
    expected = expected_offline_fraction(rate, mean_s, times).mean()  # ≈ 0.28
    assert offline.mean() == pytest.approx(expected, abs=0.015)
    assert np.isnan(out["value"][offline]).all() and not out["valid"][offline].any()
    # exactly the drawn schedule: offline at t iff some episode has start ≤ t < end
    for i in (0, 17, 999):
        ep = model.offline_episodes(net.sensor_ids[i])
        truth = ((ep[:, :1].T <= times[:, None]) & (times[:, None] < ep[:, 1:].T)).any(axis=1)
        np.testing.assert_array_equal(offline[:, i], truth)
    # Poisson count (mean 20 per sensor) and exponential durations
    episodes = [model.offline_episodes(i) for i in range(n)]
    counts = np.array([len(e) for e in episodes])
    assert counts.mean() == pytest.approx(rate * 5, abs=3 * math.sqrt(20 / n))
    durations = np.concatenate([e[:, 1] - e[:, 0] for e in episodes])
    assert durations.mean() == pytest.approx(mean_s, rel=0.03)
    starts = np.concatenate([e[:, 0] for e in episodes])
    assert starts.min() >= 0 and starts.max() <= duration


def test_stuck_value_is_frozen_at_the_last_reading():
    n = 300
    model, net = _model(n, noise_sd=0.5, stuck_rate_per_day=3.0, stuck_mean_duration_s=3600.0)
    times = np.arange(0.0, DAY_S, 60.0)
    out = _run(model, times, lambda t: np.full(n, t / 100.0))  # a ramp: stuck is visible
    stuck = out["quality"] == QUALITY_STUCK
    assert stuck.any() and out["valid"][stuck].all()
    seen = 0
    for i in range(n):
        for start, end in model.stuck_episodes(i):
            ticks = np.flatnonzero((times >= start) & (times < end))
            if len(ticks) == 0 or ticks[0] == 0:
                continue
            assert stuck[ticks, i].all()
            np.testing.assert_array_equal(out["value"][ticks, i], out["value"][ticks[0] - 1, i])
            seen += 1
    assert seen > 100
    # outside episodes the value follows the ramp (noise 0.5) again
    free = ~stuck
    resid = out["value"] - times[:, None] / 100.0 - model.bias
    assert np.abs(resid[free]).max() < 5 * 0.5


def test_quantised_to_resolution():
    n, res = 50, 0.25
    model, _ = _model(n, noise_sd=1.0, bias_sd=1.0, resolution=res)
    out = _run(model, np.arange(100) * 10.0, lambda t: np.full(n, 3.1))
    steps = out["value"] / res
    np.testing.assert_allclose(steps, np.rint(steps), atol=1e-9)
    assert len(np.unique(out["value"])) > 10


def test_quantisation_rounds_to_nearest_step():
    model, _ = _model(4, resolution=0.5)
    [group] = model.network.groups()
    b = model.measure(group, 0.0, np.array([0.24, 0.26, -0.74, 1.0]))
    np.testing.assert_array_equal(b.value, [0.0, 0.5, -0.5, 1.0])


def test_clipping_to_range_is_flagged():
    model, _ = _model(5, range_min=0.0, range_max=100.0, resolution=1.0)
    [group] = model.network.groups()
    b = model.measure(group, 0.0, np.array([-5.0, 0.0, 50.0, 100.0, 250.0]))
    np.testing.assert_array_equal(b.value, [0.0, 0.0, 50.0, 100.0, 100.0])
    np.testing.assert_array_equal(b.quality, [QUALITY_CLIPPED, 0, 0, 0, QUALITY_CLIPPED])
    assert b.valid.all()


@pytest.mark.parametrize("interval_s", [1.0, 2.0])
def test_step_response_reaches_90_percent_at_t90(interval_s):
    t90 = 20.0
    model, _ = _model(1, response_t90_s=t90)
    times = np.arange(0.0, 60.0 + interval_s, interval_s)
    out = _run(model, times, lambda t: np.array([0.0 if t == 0 else 100.0]))
    v = out["value"][:, 0]
    first = times[np.argmax(v >= 90.0 - 1e-6)]
    assert abs(first - t90) <= interval_s  # ±1 sample
    tau = t90 / math.log(10.0)
    np.testing.assert_allclose(v, 100.0 * (1.0 - np.exp(-times / tau)), atol=1e-5)


def test_lag_is_exact_for_irregular_steps():
    model, _ = _model(1, response_t90_s=20.0)
    out = _run(model, np.array([0.0, 3.0, 4.5, 20.0]),
               lambda t: np.array([0.0 if t == 0 else 100.0]))
    assert out["value"][-1, 0] == pytest.approx(90.0, abs=1e-5)


def test_first_sample_initialises_the_lag_to_the_truth():
    model, _ = _model(3, response_t90_s=600.0)
    [group] = model.network.groups()
    np.testing.assert_allclose(model.measure(group, 50.0, np.array([5.0, 7.0, 9.0])).value,
                               [5.0, 7.0, 9.0], atol=1e-6)


def test_latency_shifts_received_time(catalogue):
    net = SensorNetwork.from_records(
        [{"sensor_id": f"M{i}", "type_id": "methane_detector", "x_m": 0.0, "y_m": float(i)}
         for i in range(20)], catalogue)
    model = MeasurementModel(net, catalogue, seed=3, duration_s=3600.0)
    [group] = net.groups()
    b = model.measure(group, 120.0, np.full(20, 30.0))
    np.testing.assert_array_equal(b.time_s, np.full(20, 120.0))
    np.testing.assert_array_equal(b.received_s, b.time_s + catalogue["methane_detector"].latency_s)
    np.testing.assert_array_equal(b.indices, np.arange(20))


# --- determinism --------------------------------------------------------------------------

FAULTY = dict(noise_sd=0.3, bias_sd=1.0, drift_per_day_sd=0.5, response_t90_s=30.0,
              resolution=0.01, drop_probability=0.05, offline_rate_per_day=5.0,
              offline_mean_duration_s=1800.0, stuck_rate_per_day=5.0,
              stuck_mean_duration_s=1800.0, latency_s=2.0)


def test_same_seed_gives_identical_arrays():
    runs = []
    for _ in range(2):
        model, _ = _model(100, seed=9, **FAULTY)
        runs.append(_run(model, np.arange(0.0, DAY_S, 600.0),
                         lambda t: 50 + 10 * np.sin(np.arange(100) + t / 3600)))
    for key in runs[0]:
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    other, _ = _model(100, seed=10, **FAULTY)
    assert not np.array_equal(other.bias, _model(100, seed=9, **FAULTY)[0].bias)


def test_per_sensor_draws_do_not_depend_on_other_sensors_or_order():
    cat = gauge(**FAULTY)
    recs = gauge_records(30)
    base = MeasurementModel(SensorNetwork.from_records(recs, cat), cat, seed=4,
                            duration_s=10 * DAY_S)
    shuffled = [recs[i] for i in np.random.default_rng(0).permutation(len(recs))]
    extra = shuffled + [{"sensor_id": "NEW", "type_id": "test_gauge", "x_m": 0.0, "y_m": 0.0}]
    other_net = SensorNetwork.from_records(extra, cat)
    other = MeasurementModel(other_net, cat, seed=4, duration_s=10 * DAY_S)
    j = other_net.index_of(base.network.sensor_ids)
    np.testing.assert_array_equal(other.bias[j], base.bias)
    np.testing.assert_array_equal(other.drift_per_s[j], base.drift_per_s)
    for sid in base.network.sensor_ids:
        np.testing.assert_array_equal(other.offline_episodes(sid), base.offline_episodes(sid))
        np.testing.assert_array_equal(other.stuck_episodes(sid), base.stuck_episodes(sid))
    # the bias is the first normal of the sensor's own stream
    z = rng_for(4, "sensor", "S0007").standard_normal(1)[0]
    assert base.bias[7] == pytest.approx(z * FAULTY["bias_sd"])


def test_a_counterfactual_group_leaves_the_base_group_unchanged():
    cat = gauge(**FAULTY)
    recs = gauge_records(40)
    extra = [{"sensor_id": "CF-1", "type_id": "test_gauge", "x_m": 5.0, "y_m": 5.0,
              "group_id": "counterfactual"}]
    outs = []
    for records in (recs, recs + extra):
        net = SensorNetwork.from_records(records, cat)
        model = MeasurementModel(net, cat, seed=11, duration_s=DAY_S)
        group = next(g for g in net.groups() if g.group_id == "test_gauge")
        outs.append([model.measure(group, t, np.full(40, 20.0)).value
                     for t in np.arange(0.0, 7200.0, 10.0)])
    np.testing.assert_array_equal(np.array(outs[0]), np.array(outs[1]))


def test_episodes_of_a_longer_run_extend_those_of_a_shorter_one():
    short = draw_episodes(rng_for(1, "sensor", "A"), 10.0, 600.0, DAY_S)
    long = draw_episodes(rng_for(1, "sensor", "A"), 10.0, 600.0, 3 * DAY_S)
    assert len(long) > len(short) > 0
    np.testing.assert_array_equal(long[: len(short)], short)
    assert draw_episodes(rng_for(1, "x"), 0.0, 600.0, DAY_S).shape == (0, 2)


# --- ideal mode and errors -----------------------------------------------------------------

def test_ideal_mode_returns_the_truth_exactly():
    n = 50
    model, _ = _model(n, ideal=True, **FAULTY, range_max=10.0)
    rng = np.random.default_rng(5)
    times = np.arange(0.0, DAY_S, 900.0)
    truths = rng.uniform(-500, 500, size=(len(times), n))  # far outside range_max too
    out = _run(model, times, lambda t: truths[int(t // 900)])
    np.testing.assert_array_equal(out["value"], truths)
    np.testing.assert_array_equal(out["received_s"], out["time_s"])
    assert out["valid"].all() and (out["quality"] == QUALITY_OK).all()


def test_measure_errors():
    model, net = _model(3)
    [group] = net.groups()
    with pytest.raises(ValueError, match=r"true_values has shape \(2,\), group 'test_gauge' "
                                         r"needs \(3,\)"):
        model.measure(group, 0.0, np.zeros(2))
    model.measure(group, 10.0, np.zeros(3))
    with pytest.raises(ValueError, match="time went backwards for group 'test_gauge'"):
        model.measure(group, 5.0, np.zeros(3))
    with pytest.raises(ValueError, match="true_values is not finite for sensor 'S0001' at 20 s"):
        model.measure(group, 20.0, np.array([0.0, np.nan, 1.0]))
    other = SensorNetwork.from_records(gauge_records(3, group_id="elsewhere"), gauge())
    with pytest.raises(ValueError, match="'elsewhere' is not one of this model's"):
        model.measure(other.groups()[0], 20.0, np.zeros(3))


def test_model_errors(catalogue):
    net = SensorNetwork.from_records(gauge_records(2), gauge())
    with pytest.raises(InputError) as info:
        MeasurementModel(net, catalogue, seed=1, duration_s=10.0)
    assert info.value.field == "type_id" and info.value.feature_id == "S0000"
    assert "unknown sensor type(s) ['test_gauge']" in str(info.value)
    with pytest.raises(InputError, match="duration_s: must be a finite number ≥ 0"):
        MeasurementModel(net, gauge(), seed=1, duration_s=-1.0)


def test_shipped_methane_detector_end_to_end(catalogue):
    """A clean-air baseline and a 40 %LEL plateau read as the spec says (±2 %LEL-ish)."""
    n = 400
    net = SensorNetwork.from_records(
        [{"sensor_id": f"M{i}", "type_id": "methane_detector", "x_m": 0.0, "y_m": float(i)}
         for i in range(n)], catalogue)
    model = MeasurementModel(net, catalogue, seed=2, duration_s=3600.0)
    out = _run(model, np.arange(0.0, 3600.0, 10.0), lambda t: np.full(n, 0.0 if t < 600 else 40.0))
    late = out["value"][-60:]  # long after the step (t90 = 20 s)
    ok = out["quality"][-60:] == QUALITY_OK
    err = late[ok] - 40.0
    assert abs(err.mean()) < 0.3
    assert np.mean(np.abs(err) <= 2.5) > 0.9
    steps = out["value"][np.isfinite(out["value"])]
    np.testing.assert_array_equal(steps, np.rint(steps))  # 1 %LEL resolution
    assert steps.min() >= 0.0 and steps.max() <= 100.0
