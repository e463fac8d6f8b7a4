"""Orifice release rate: hand-computed values, choke point continuity, input errors."""

import math

import numpy as np
import pytest

from citytwin.physics.leak import critical_pressure_ratio, orifice_mass_rate_kg_s

R = 8.314462618
M = 0.01604
GAMMA = 1.31
T = 288.15
CD = 0.61
P_AMB = 101325.0


def test_critical_ratio():
    # (2 / 2.31) ** (1.31 / 0.31) = 0.865801 ** 4.225806 = 0.54393
    assert critical_pressure_ratio(1.31) == pytest.approx(0.54393, rel=1e-4)
    with pytest.raises(ValueError, match="gamma"):
        critical_pressure_ratio(1.0)


def test_choked_by_hand():
    # 4 bar(g) main, 10 mm hole: p = 501325 Pa, p_amb/p = 0.202 < 0.544 -> choked.
    # A = pi * 0.01**2 / 4 = 7.853982e-5 m2
    # (2/(g+1))**((g+1)/(g-1)) = 0.865801 ** 7.451613 = 0.341714
    # g M / (R T) = 1.31 * 0.01604 / (8.314463 * 288.15) = 8.770470e-6 s2/m2
    # sqrt(8.770470e-6 * 0.341714) = 1.731183e-3 s/m
    # mdot = 0.61 * 7.853982e-5 * 501325 * 1.731183e-3 = 0.0415798 kg/s
    area = math.pi * 0.01**2 / 4
    factor = (2 / (GAMMA + 1)) ** ((GAMMA + 1) / (GAMMA - 1))
    by_hand = CD * area * 501325.0 * math.sqrt(GAMMA * M / (R * T) * factor)
    assert by_hand == pytest.approx(0.0415798, rel=1e-5)
    assert orifice_mass_rate_kg_s(400_000.0, 0.01) == pytest.approx(by_hand, rel=1e-12)


def test_subsonic_by_hand_and_incompressible_limit():
    # 20 mbar(g) service pipe, 20 mm hole: r = 101325 / 103325 = 0.980644 > 0.544 -> subsonic.
    # r**(2/g) - r**((g+1)/g) = 0.004479076
    # mdot = 0.61 * 3.141593e-4 * 103325 * sqrt(2 M/(R T) * g/(g-1) * 0.004479076)
    #      = 0.00996839 kg/s
    p = 103325.0
    r = P_AMB / p
    area = math.pi * 0.02**2 / 4
    bracket = r ** (2 / GAMMA) - r ** ((GAMMA + 1) / GAMMA)
    by_hand = CD * area * p * math.sqrt(2 * M / (R * T) * GAMMA / (GAMMA - 1) * bracket)
    assert by_hand == pytest.approx(0.00996839, rel=1e-5)
    got = orifice_mass_rate_kg_s(2000.0, 0.02)
    assert got == pytest.approx(by_hand, rel=1e-12)
    # small drop x = dp/p: expanding the bracket to second order in x gives Bernoulli with the
    # upstream density times the expansion factor 1 - 3x/(4 gamma)  (here 0.98892)
    rho = p * M / (R * T)
    x = 2000.0 / p
    bernoulli = CD * area * math.sqrt(2 * rho * 2000.0)
    assert got == pytest.approx(bernoulli * (1 - 3 * x / (4 * GAMMA)), rel=5e-4)


def test_continuous_at_choke_point():
    r_c = critical_pressure_ratio(GAMMA)
    # the two branches' square-root arguments are equal at r = r_c
    subsonic = 2 * GAMMA / (GAMMA - 1) * (r_c ** (2 / GAMMA) - r_c ** ((GAMMA + 1) / GAMMA))
    choked = GAMMA * (2 / (GAMMA + 1)) ** ((GAMMA + 1) / (GAMMA - 1))
    assert subsonic == pytest.approx(choked, rel=1e-12)
    p_choke_gauge = P_AMB / r_c - P_AMB
    eps = 1e-7 * (p_choke_gauge + P_AMB)
    below = orifice_mass_rate_kg_s(p_choke_gauge - eps, 0.01)
    at = orifice_mass_rate_kg_s(p_choke_gauge, 0.01)
    above = orifice_mass_rate_kg_s(p_choke_gauge + eps, 0.01)
    assert below < at < above
    # no jump: a relative pressure step of 1e-7 changes the rate by about 1e-7
    assert (above - below) / at < 1e-6
    # choked flow is linear in absolute pressure
    q1 = orifice_mass_rate_kg_s(1e6, 0.01)
    q2 = orifice_mass_rate_kg_s(2 * (1e6 + P_AMB) - P_AMB, 0.01)
    assert q2 == pytest.approx(2 * q1, rel=1e-12)


def test_zero_pressure_and_vectorised():
    rates = orifice_mass_rate_kg_s(np.array([0.0, 2000.0, 400_000.0]), 0.01)
    assert rates.shape == (3,)
    assert rates[0] == 0.0
    assert np.all(np.diff(rates) > 0)
    # proportional to hole area
    assert orifice_mass_rate_kg_s(1e5, 0.02) == pytest.approx(
        4 * orifice_mass_rate_kg_s(1e5, 0.01), rel=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pressure_gauge_pa": -1.0, "hole_diameter_m": 0.01}, "pressure_gauge_pa"),
        ({"pressure_gauge_pa": 1e5, "hole_diameter_m": 0.0}, "hole_diameter_m"),
        ({"pressure_gauge_pa": 1e5, "hole_diameter_m": -0.01}, "hole_diameter_m"),
        ({"pressure_gauge_pa": 1e5, "hole_diameter_m": 0.01, "temperature_k": 0.0}, "temperature"),
        (
            {"pressure_gauge_pa": 1e5, "hole_diameter_m": 0.01, "discharge_coefficient": 1.5},
            "discharge_coefficient",
        ),
    ],
)
def test_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        orifice_mass_rate_kg_s(**kwargs)
