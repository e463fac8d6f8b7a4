"""Chang & Hanna (2004) statistics on hand-made pairs."""

import math

import numpy as np
import pytest

from citytwin.physics.stats import (
    fac2,
    fractional_bias,
    geometric_mean_bias,
    geometric_variance,
    nmse,
)


def test_perfect_model():
    o = np.array([1.0, 2.0, 5.0])
    assert fractional_bias(o, o) == 0.0
    assert nmse(o, o) == 0.0
    assert fac2(o, o) == 1.0
    assert geometric_mean_bias(o, o) == 1.0
    assert geometric_variance(o, o) == 1.0


def test_by_hand():
    o = np.array([1.0, 2.0, 4.0, 1.0])
    p = np.array([2.0, 2.0, 1.0, 3.0])
    # o mean 2, p mean 2 -> FB 0; NMSE = mean(1, 0, 9, 4) / 4 = 3.5 / 4
    assert fractional_bias(o, p) == 0.0
    assert nmse(o, p) == pytest.approx(0.875)
    # ratios 2, 1, 0.25, 3 -> two of four within a factor of two
    assert fac2(o, p) == 0.5
    # ln(o/p) = ln .5, 0, ln 4, ln(1/3)
    logs = [math.log(0.5), 0.0, math.log(4.0), math.log(1 / 3)]
    assert geometric_mean_bias(o, p) == pytest.approx(math.exp(sum(logs) / 4))
    assert geometric_variance(o, p) == pytest.approx(math.exp(sum(v * v for v in logs) / 4))
    # under-prediction by half everywhere: FB = 2 (1 - 0.5) / 1.5 = 2/3
    assert fractional_bias(o, 0.5 * o) == pytest.approx(2 / 3)


def test_errors():
    with pytest.raises(ValueError, match="equal"):
        nmse([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        geometric_mean_bias([0.0], [1.0])
