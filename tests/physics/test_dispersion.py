"""Briggs (1973) sigmas against the PHYSICS.md table; Pasquill stability classes."""

import math

import numpy as np
import pytest

from citytwin.physics.dispersion import briggs_sigmas, pasquill_stability_class

# The table transcribed from PHYSICS.md, one formula per cell: (sigma_y(x), sigma_z(x)).
TABLE = {
    ("rural", "A"): (lambda x: 0.22 * x * (1 + 0.0001 * x) ** -0.5, lambda x: 0.20 * x),
    ("rural", "B"): (lambda x: 0.16 * x * (1 + 0.0001 * x) ** -0.5, lambda x: 0.12 * x),
    ("rural", "C"): (
        lambda x: 0.11 * x * (1 + 0.0001 * x) ** -0.5,
        lambda x: 0.08 * x * (1 + 0.0002 * x) ** -0.5,
    ),
    ("rural", "D"): (
        lambda x: 0.08 * x * (1 + 0.0001 * x) ** -0.5,
        lambda x: 0.06 * x * (1 + 0.0015 * x) ** -0.5,
    ),
    ("rural", "E"): (
        lambda x: 0.06 * x * (1 + 0.0001 * x) ** -0.5,
        lambda x: 0.03 * x / (1 + 0.0003 * x),
    ),
    ("rural", "F"): (
        lambda x: 0.04 * x * (1 + 0.0001 * x) ** -0.5,
        lambda x: 0.016 * x / (1 + 0.0003 * x),
    ),
    ("urban", "A"): (
        lambda x: 0.32 * x * (1 + 0.0004 * x) ** -0.5,
        lambda x: 0.24 * x * (1 + 0.001 * x) ** 0.5,
    ),
    ("urban", "C"): (lambda x: 0.22 * x * (1 + 0.0004 * x) ** -0.5, lambda x: 0.20 * x),
    ("urban", "D"): (
        lambda x: 0.16 * x * (1 + 0.0004 * x) ** -0.5,
        lambda x: 0.14 * x * (1 + 0.0003 * x) ** -0.5,
    ),
    ("urban", "E"): (
        lambda x: 0.11 * x * (1 + 0.0004 * x) ** -0.5,
        lambda x: 0.08 * x * (1 + 0.0015 * x) ** -0.5,
    ),
}
TABLE[("urban", "B")] = TABLE[("urban", "A")]  # urban A and B share a row
TABLE[("urban", "F")] = TABLE[("urban", "E")]  # urban E and F share a row


@pytest.mark.parametrize(("terrain", "stability"), sorted(TABLE))
@pytest.mark.parametrize("x", [100.0, 1000.0, 5000.0])
def test_table_values(terrain, stability, x):
    fy, fz = TABLE[(terrain, stability)]
    sy, sz = briggs_sigmas(x, stability, terrain)
    assert float(sy) == pytest.approx(fy(x), rel=1e-12)
    assert float(sz) == pytest.approx(fz(x), rel=1e-12)


@pytest.mark.parametrize(
    ("terrain", "stability", "x", "sigma_y", "sigma_z"),
    [
        # 0.32*1000/sqrt(1.4) = 270.449 ; 0.24*1000*sqrt(2) = 339.411 (grows faster than x)
        ("urban", "A", 1000.0, 270.449, 339.411),
        ("urban", "B", 1000.0, 270.449, 339.411),
        # 16/sqrt(1.04) = 15.6893 ; 14/sqrt(1.03) = 13.7946
        ("urban", "D", 100.0, 15.6893, 13.7946),
        # 0.11*5000/sqrt(3) = 317.543 ; 0.08*5000/sqrt(8.5) = 137.199
        ("urban", "F", 5000.0, 317.543, 137.199),
        # 80/sqrt(1.1) = 76.2770 ; 60/sqrt(2.5) = 37.9473
        ("rural", "D", 1000.0, 76.2770, 37.9473),
        # 200/sqrt(1.5) = 163.299 ; 80/2.5 = 32.0
        ("rural", "F", 5000.0, 163.299, 32.0),
    ],
)
def test_literal_values(terrain, stability, x, sigma_y, sigma_z):
    sy, sz = briggs_sigmas(x, stability, terrain)
    assert float(sy) == pytest.approx(sigma_y, rel=1e-5)
    assert float(sz) == pytest.approx(sigma_z, rel=1e-5)


def test_vectorised_and_zero():
    x = np.array([0.0, 100.0, 1000.0])
    sy, sz = briggs_sigmas(x, "D", "urban")
    assert sy.shape == sz.shape == (3,)
    assert sy[0] == 0.0 and sz[0] == 0.0
    assert np.all(np.diff(sy) > 0) and np.all(np.diff(sz) > 0)


def test_errors_name_value_and_allowed():
    with pytest.raises(ValueError, match=r"'G'.*A, B, C, D, E, F"):
        briggs_sigmas(100.0, "G", "urban")
    with pytest.raises(ValueError, match=r"'suburban'.*rural, urban"):
        briggs_sigmas(100.0, "D", "suburban")
    with pytest.raises(ValueError, match="distance_m"):
        briggs_sigmas(-1.0, "D", "urban")


@pytest.mark.parametrize(
    ("u", "insolation", "cloud", "expected"),
    [
        (1.0, "strong", None, "A"),
        (1.0, "moderate", None, "B"),  # A-B -> more stable by default
        (1.0, "slight", None, "B"),
        (2.5, "strong", None, "B"),  # A-B
        (2.5, "moderate", None, "B"),
        (2.5, "slight", None, "C"),
        (4.0, "strong", None, "B"),
        (4.0, "moderate", None, "C"),  # B-C
        (4.0, "slight", None, "C"),
        (5.5, "strong", None, "C"),
        (5.5, "moderate", None, "D"),  # C-D
        (5.5, "slight", None, "D"),
        (7.0, "strong", None, "C"),
        (7.0, "moderate", None, "D"),
        (7.0, "slight", None, "D"),
        (1.0, None, 0.75, "E"),  # night, >= 4/8 cloud
        (1.0, None, 0.25, "F"),  # night, <= 3/8 cloud
        (2.5, None, 4 / 8, "E"),
        (2.5, None, 3 / 8, "F"),
        (4.0, None, 0.5, "D"),
        (4.0, None, 0.0, "E"),
        (5.5, None, 0.0, "D"),
        (8.0, None, 0.0, "D"),
        (1.0, "overcast", None, "D"),
        (1.0, None, 1.0, "D"),  # overcast night
    ],
)
def test_pasquill_table(u, insolation, cloud, expected):
    assert pasquill_stability_class(u, insolation, cloud) == expected


def test_pasquill_intermediate_unstable_and_errors():
    assert pasquill_stability_class(1.0, "moderate", None, intermediate="unstable") == "A"
    assert pasquill_stability_class(5.5, "moderate", None, intermediate="unstable") == "C"
    with pytest.raises(ValueError, match="night_cloud_fraction"):
        pasquill_stability_class(3.0, None, None)
    with pytest.raises(ValueError, match="'blazing'"):
        pasquill_stability_class(3.0, "blazing", None)
    with pytest.raises(ValueError, match="wind_speed_m_s"):
        pasquill_stability_class(-1.0, "strong", None)
    with pytest.raises(ValueError, match="wind_speed_m_s"):
        pasquill_stability_class(math.nan, "strong", None)
