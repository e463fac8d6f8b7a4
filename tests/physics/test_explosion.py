"""Gas explosion: TNT equivalence and the Mills overpressure fit, by hand."""

import numpy as np
import pytest

from citytwin.physics.explosion import (
    DAMAGE_LEVELS_KPA,
    EXPLOSIVE_RANGE_LEL_PCT,
    distance_for_overpressure_m,
    methane_in_space_kg,
    overpressure_kpa,
    tnt_equivalent_kg,
)


def test_known_values_by_hand():
    # 1 kg methane at 10 % efficiency: 0.1 × 50 MJ / 4.68 MJ/kg
    assert tnt_equivalent_kg(1.0, 0.1) == pytest.approx(0.1 * 50 / 4.68, rel=1e-12)
    # Z = 10 m/kg^(1/3): 1772/1000 − 114/100 + 108/10 = 11.432 kPa
    assert overpressure_kpa(10.0, 1.0) == pytest.approx(11.432, rel=1e-12)
    # Hopkinson scaling: 8 kg at 20 m is Z = 10 again
    assert overpressure_kpa(20.0, 8.0) == pytest.approx(11.432, rel=1e-12)
    # 2 m³ at 200 %LEL = 10 % vol methane; ρ = p M / (R T) at 15 °C = 0.6784 kg/m³
    assert methane_in_space_kg(2.0, 200.0) == pytest.approx(0.2 * 0.67835, rel=1e-4)
    assert EXPLOSIVE_RANGE_LEL_PCT == (100.0, pytest.approx(300.0))


def test_distance_inverts_overpressure_and_zones_nest():
    for w in (0.01, 1.0, 250.0):
        radii = [distance_for_overpressure_m(p, w) for p in DAMAGE_LEVELS_KPA.values()]
        for p, r in zip(DAMAGE_LEVELS_KPA.values(), radii, strict=True):
            assert overpressure_kpa(r, w) == pytest.approx(p, rel=1e-9)
        assert radii[0] > radii[1]  # windows break farther out than buildings fall
    r = np.linspace(1, 200, 500)
    assert (np.diff(overpressure_kpa(r, 5.0)) < 0).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match="efficiency"):
        tnt_equivalent_kg(1.0, 0.0)
    with pytest.raises(ValueError, match="tnt_kg"):
        overpressure_kpa(10.0, 0.0)
    with pytest.raises(ValueError, match="p_kpa"):
        distance_for_overpressure_m(-1.0, 1.0)
