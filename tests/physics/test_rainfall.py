"""Rain forcing (``physics.rainfall``): block series, gridded rain, Chicago design storm."""

import math

import numpy as np
import pytest

from citytwin.physics.rainfall import (
    MM_H_TO_M_S,
    RainSeries,
    chicago_cumulative_mm,
    chicago_storm,
    chicago_total_mm,
    idf_intensity_mm_min,
)
from citytwin.twin.errors import InputError

BEIJING = dict(A=10.662, C=0.811, b=8.0, n=0.711)  # GB 50014 commentary example, A in mm/min


def test_block_series_steps_and_exact_depths():
    rain = RainSeries(np.array([0.0, 600.0, 1200.0]), np.array([10.0, 30.0, 0.0]))
    assert rain.intensity_at(-1.0) == 0.0
    assert rain.intensity_at(0.0) == 10.0 and rain.intensity_at(600.0) == 30.0
    assert rain.intensity_at(1e6) == 0.0
    assert rain.rate_m_s_at(300.0) == pytest.approx(10.0 / 3.6e6)
    # 10 mm/h for 600 s + 30 mm/h for 600 s = (10 + 30) / 6 mm
    assert rain.depth_m(-100.0, 5000.0) == pytest.approx(40.0 / 6.0 / 1000.0, rel=1e-14)
    assert rain.depth_m(300.0, 900.0) == pytest.approx((10 * 300 + 30 * 300) / 3.6e6, rel=1e-14)
    assert rain.depth_m(900.0, 300.0) == 0.0
    const = RainSeries.constant(12.0)
    assert const.depth_m(0.0, 3600.0) == pytest.approx(0.012, rel=1e-14)
    assert RainSeries.constant(12.0, 100.0, 200.0).depth_m(0.0, 1e9) == pytest.approx(
        12.0 * 100.0 * MM_H_TO_M_S)


def test_gridded_series():
    grid = np.stack([np.full((2, 3), 5.0), np.arange(6.0).reshape(2, 3)])
    rain = RainSeries(np.array([0.0, 60.0]), grid)
    assert rain.gridded
    np.testing.assert_allclose(rain.depth_m(0.0, 120.0),
                               (5.0 * 60.0 + grid[1] * 60.0) * MM_H_TO_M_S, rtol=1e-14)
    assert rain.rate_m_s_at(90.0).shape == (2, 3)
    rain.check_grid((2, 3))
    with pytest.raises(InputError, match=r"^flood engine: rain: gridded intensity has cells "
                                         r"\(2, 3\), the DEM has \(3, 3\)"):
        rain.check_grid((3, 3))
    assert rain.index_at(-1.0) == -1 and rain.index_at(60.0) == 1 and rain.index_at(59.9) == 0


def test_bad_rain_is_rejected_with_the_field_named():
    with pytest.raises(InputError, match=r"intensity_mm_h.*1 negative.*-2"):
        RainSeries(np.array([0.0, 10.0]), np.array([1.0, -2.0]))
    with pytest.raises(InputError, match=r"intensity_mm_h.*non-finite"):
        RainSeries(np.array([0.0, 10.0]), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="strictly increasing"):
        RainSeries(np.array([0.0, 0.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="shape"):
        RainSeries(np.array([0.0, 10.0]), np.array([1.0, 2.0, 3.0]))


def test_idf_formula_units():
    # i = A (1 + C lg P) / (t + b)^n in mm/min; P = 10 yr, t = 60 min
    i = idf_intensity_mm_min(**BEIJING, return_period_yr=10.0, t_min=60.0)
    assert i == pytest.approx(10.662 * 1.811 / 68.0**0.711, rel=1e-14)
    assert 0.5 < i < 2.0  # ~1 mm/min = 60 mm/h over an hour: a heavy 10-year storm


def test_chicago_storm_total_peak_and_windows():
    D = 7200.0
    r = 0.4
    storm = chicago_storm(**BEIJING, return_period_yr=10.0, duration_s=D, peak_ratio=r,
                          step_s=60.0)
    total_mm = chicago_total_mm(**BEIJING, return_period_yr=10.0, duration_s=D)
    assert total_mm == pytest.approx(
        idf_intensity_mm_min(**BEIJING, return_period_yr=10.0, t_min=120.0) * 120.0)
    assert storm.depth_m(0.0, D + 1e4) * 1000.0 == pytest.approx(total_mm, rel=1e-12)
    assert storm.intensity_at(D) == 0.0  # ends with 0
    # the peak block holds t_p = r D and is the largest
    k = int(np.argmax(storm.intensity_mm_h))
    assert storm.times_s[k] <= r * D < storm.times_s[k + 1]
    # every window around the peak (r T before, (1 - r) T after) holds the IDF depth a T/(T+b)^n
    a = BEIJING["A"] * (1 + BEIJING["C"] * math.log10(10.0))
    for T_min in (5.0, 17.0, 60.0, 120.0):
        t0 = r * D - r * T_min * 60.0
        t1 = r * D + (1 - r) * T_min * 60.0
        cum = chicago_cumulative_mm(**BEIJING, return_period_yr=10.0, duration_s=D,
                                    peak_ratio=r, t_s=np.array([t0, t1]))
        assert cum[1] - cum[0] == pytest.approx(a * T_min / (T_min + BEIJING["b"]) ** 0.711,
                                                rel=1e-12)
    # instantaneous peak intensity a / b^n mm/min bounds every block average
    assert storm.intensity_mm_h.max() < a / BEIJING["b"] ** 0.711 * 60.0
    cum = chicago_cumulative_mm(**BEIJING, return_period_yr=10.0, duration_s=D, peak_ratio=r,
                                t_s=np.linspace(0.0, D, 500))
    assert np.all(np.diff(cum) >= 0.0)


@pytest.mark.parametrize("r", [0.0, 1.0])
def test_chicago_storm_peak_at_the_ends(r):
    storm = chicago_storm(**BEIJING, return_period_yr=2.0, duration_s=3600.0, peak_ratio=r,
                          step_s=120.0)
    total = chicago_total_mm(**BEIJING, return_period_yr=2.0, duration_s=3600.0)
    assert storm.depth_m(0.0, 1e5) * 1000.0 == pytest.approx(total, rel=1e-12)
    k = int(np.argmax(storm.intensity_mm_h))
    assert k == (0 if r == 0.0 else storm.intensity_mm_h.size - 2)


def test_chicago_storm_rejects_bad_parameters():
    with pytest.raises(ValueError, match="n=1.5"):
        chicago_storm(10.0, 0.8, 8.0, 1.5, 10.0, 3600.0)
    with pytest.raises(ValueError, match="peak_ratio"):
        chicago_storm(10.0, 0.8, 8.0, 0.7, 10.0, 3600.0, peak_ratio=1.2)
    with pytest.raises(ValueError, match="lg P"):
        chicago_storm(10.0, -2.0, 8.0, 0.7, 10.0, 3600.0)
