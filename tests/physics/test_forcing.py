"""Release schedules and wind series."""

import math

import numpy as np
import pytest

from citytwin.physics.forcing import ReleaseSchedule, WindSeries


def test_release_steps_and_exact_integral():
    rel = ReleaseSchedule(np.array([10.0, 20.0, 30.0]), np.array([1.0, 3.0, 0.0]))
    np.testing.assert_array_equal(
        rel.rate_at(np.array([0.0, 10.0, 19.9, 20.0, 35.0])), [0.0, 1.0, 1.0, 3.0, 0.0]
    )
    assert rel.mass_between(0.0, 100.0) == pytest.approx(10 * 1.0 + 10 * 3.0)
    assert rel.mass_between(15.0, 25.0) == pytest.approx(5 * 1.0 + 5 * 3.0)
    assert rel.mass_between(25.0, 15.0) == 0.0
    mass, centroid = rel.mass_and_centroid(15.0, 25.0)
    # 5 kg centred at 17.5 s and 15 kg centred at 22.5 s
    assert mass == pytest.approx(20.0)
    assert centroid == pytest.approx((5 * 17.5 + 15 * 22.5) / 20)
    assert rel.mass_and_centroid(40.0, 50.0) == (0.0, 45.0)


def test_release_constant_helper():
    rel = ReleaseSchedule.constant(60.0, 660.0, 0.02)
    assert rel.mass_between(0.0, 1e6) == pytest.approx(0.02 * 600)
    forever = ReleaseSchedule.constant(0.0, math.inf, 0.5)
    assert forever.mass_between(0.0, 100.0) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="stop_s"):
        ReleaseSchedule.constant(10.0, 5.0, 1.0)


@pytest.mark.parametrize(
    ("times", "rates", "match"),
    [
        ([0.0, 0.0], [1.0, 1.0], "strictly increasing"),
        ([0.0, 1.0], [1.0], "shape"),
        ([0.0], [-1.0], ">= 0"),
        ([], [], "non-empty"),
    ],
)
def test_release_validation(times, rates, match):
    with pytest.raises(ValueError, match=match):
        ReleaseSchedule(np.array(times), np.array(rates))


def test_wind_directions_meteorological():
    # from 270 (west) blows toward +x; from 0 (north) toward -y; from 90 toward -x
    for from_deg, expected in [
        (270.0, (4.0, 0.0)),
        (0.0, (0.0, -4.0)),
        (90.0, (-4.0, 0.0)),
        (180.0, (0.0, 4.0)),
    ]:
        u, v = WindSeries.constant(4.0, from_deg).velocity_at(123.0)
        assert (u, v) == pytest.approx(expected, abs=1e-12)


def test_wind_veer_keeps_speed():
    wind = WindSeries(np.array([0.0, 100.0]), np.array([5.0, 5.0]), np.array([270.0, 180.0]))
    u, v = wind.velocity_at(50.0)
    assert math.hypot(u, v) == pytest.approx(5.0)  # no dip half-way through a 90 deg veer
    assert math.degrees(math.atan2(u, v)) == pytest.approx(45.0)  # toward north-east
    # held constant outside the series
    assert wind.velocity_at(-10.0) == pytest.approx((5.0, 0.0))
    assert wind.velocity_at(1e6) == pytest.approx((0.0, 5.0), abs=1e-12)


def test_wind_calm_and_reversal_are_finite():
    calm = WindSeries(np.array([0.0, 100.0]), np.array([0.0, 4.0]), np.array([0.0, 270.0]))
    assert calm.velocity_at(0.0) == (0.0, 0.0)
    u, v = calm.velocity_at(50.0)  # direction from the non-calm end, speed interpolated
    assert (u, v) == pytest.approx((2.0, 0.0), abs=1e-12)
    rev = WindSeries(np.array([0.0, 100.0]), np.array([3.0, 3.0]), np.array([270.0, 90.0]))
    assert rev.velocity_at(50.0) == (0.0, 0.0)


def test_wind_validation():
    with pytest.raises(ValueError, match="speed_m_s"):
        WindSeries(np.array([0.0]), np.array([-1.0]), np.array([0.0]))
    with pytest.raises(ValueError, match="equal shapes"):
        WindSeries(np.array([0.0, 1.0]), np.array([1.0]), np.array([0.0, 0.0]))
