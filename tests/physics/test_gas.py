"""Methane properties and unit conversions."""

import numpy as np
import pytest

from citytwin.physics.gas import (
    CH4_LEL_IEC_VOL_FRAC,
    CH4_LEL_VOL_FRAC,
    CH4_UEL_VOL_FRAC,
    gas_density_kg_m3,
    kg_m3_to_ppm,
    lel_pct_to_ppm,
    ppm_to_kg_m3,
    ppm_to_lel_pct,
)


def test_constants():
    assert CH4_LEL_VOL_FRAC == 0.05
    assert CH4_LEL_IEC_VOL_FRAC == 0.044
    assert CH4_UEL_VOL_FRAC == 0.15


def test_density_ideal_gas_by_hand():
    # rho = p M / (R T) = 101325 * 0.01604 / (8.314462618 * 288.15) = 1625.253 / 2395.843
    assert gas_density_kg_m3(288.15, 101325.0) == pytest.approx(0.678372, rel=1e-5)
    # 20 °C: 0.6673 kg/m3 (PHYSICS.md quotes 0.66 kg/m3)
    assert gas_density_kg_m3(293.15, 101325.0) == pytest.approx(0.66680, rel=1e-4)


def test_density_rejects_non_physical():
    with pytest.raises(ValueError, match="temperature_k"):
        gas_density_kg_m3(0.0, 101325.0)
    with pytest.raises(ValueError, match="pressure_pa"):
        gas_density_kg_m3(288.15, -1.0)


def test_ppm_conversion_by_hand_and_vectorised():
    rho = 101325 * 0.01604 / (8.314462618 * 288.15)
    conc = np.array([0.0, rho * 1e-6, rho * 0.05])
    np.testing.assert_allclose(kg_m3_to_ppm(conc), [0.0, 1.0, 50_000.0], rtol=1e-12)
    np.testing.assert_allclose(ppm_to_kg_m3(kg_m3_to_ppm(conc)), conc, rtol=1e-12)
    # colder air: the same mass concentration is fewer ppm (denser methane)
    assert kg_m3_to_ppm(1e-3, 273.15) < kg_m3_to_ppm(1e-3, 288.15)


def test_lel_basis():
    assert ppm_to_lel_pct(500.0) == pytest.approx(1.0)  # 5 % basis: 1 %LEL = 500 ppm
    assert ppm_to_lel_pct(50_000.0) == pytest.approx(100.0)
    assert ppm_to_lel_pct(440.0, lel_vol_frac=0.044) == pytest.approx(1.0)
    np.testing.assert_allclose(ppm_to_lel_pct(np.array([0.0, 5000.0])), [0.0, 10.0])
    assert lel_pct_to_ppm(ppm_to_lel_pct(1234.0, 0.044), 0.044) == pytest.approx(1234.0)
    with pytest.raises(ValueError, match="lel_vol_frac"):
        ppm_to_lel_pct(100.0, lel_vol_frac=5.0)
