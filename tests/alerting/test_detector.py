"""Threshold levels, hysteresis and N-of-M debounce, one sensor at a time."""

import numpy as np

from citytwin.alerting.detector import LevelDetector

THRESHOLDS = np.array([10.0, 25.0, 50.0, 80.0])


def levels_for(values, n=1, m=1, hysteresis=0.0):
    det = LevelDetector(THRESHOLDS, hysteresis, n, m, n_sensors=1)
    out = []
    for t, v in enumerate(values):
        det.update(np.array([0]), np.array([float(v)]), np.array([float(t)]))
        out.append(int(det.level[0]))
    return out


def test_levels_follow_thresholds_without_debounce():
    assert levels_for([0, 10, 24.9, 25, 50, 79.9, 80, 100, 5]) == [0, 1, 1, 2, 3, 3, 4, 4, 0]


def test_hysteresis_holds_level_until_value_falls_below_threshold_minus_h():
    # yellow at 25, h = 5: 21 holds yellow, 19.9 drops to blue (still ≥ 10 - 5).
    assert levels_for([26, 21, 19.9, 6, 4.9], hysteresis=5) == [2, 2, 1, 1, 0]


def test_without_hysteresis_chatter_follows_every_crossing():
    assert levels_for([26, 24, 26, 24], hysteresis=0) == [2, 1, 2, 1]
    assert levels_for([26, 24, 26, 24], hysteresis=3) == [2, 2, 2, 2]


def test_two_of_three_debounce_rejects_single_spikes():
    assert levels_for([0, 90, 0, 0, 90, 0, 0], n=2, m=3) == [0, 0, 0, 0, 0, 0, 0]


def test_two_of_three_raises_on_second_exceedance_and_clears_after_two_lows():
    assert levels_for([30, 0, 30, 30, 0, 0, 0], n=2, m=3) == [0, 0, 2, 2, 2, 0, 0]


def test_three_level_rule_skips_unused_level():
    det = LevelDetector(np.array([np.nan, 25.0, 50.0, np.nan]), 0.0, 1, 1, n_sensors=1)
    det.update(np.array([0]), np.array([90.0]), np.array([0.0]))
    assert det.level[0] == 3  # orange is the highest defined level


def test_first_exceedance_time_is_before_debounced_raise():
    det = LevelDetector(THRESHOLDS, 0.0, 3, 3, n_sensors=1)
    for t, v in enumerate([0, 12, 13, 14]):
        det.update(np.array([0]), np.array([float(v)]), np.array([t * 10.0]))
    assert det.level[0] == 1
    assert det.exceed_since_s[0] == 10.0


def test_sensors_are_independent_in_one_call():
    det = LevelDetector(THRESHOLDS, 0.0, 1, 1, n_sensors=3)
    det.update(np.array([0, 2]), np.array([30.0, 90.0]), np.array([0.0, 0.0]))
    assert det.level.tolist() == [2, 0, 4]
