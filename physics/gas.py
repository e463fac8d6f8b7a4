"""Methane properties and concentration unit conversions.

Sources:
- Molar mass 16.04 g/mol: NIST Chemistry WebBook, SRD 69, "Methane" (CAS 74-82-8).
- Heat-capacity ratio γ = cp/cv ≈ 1.31 near 15 °C, 1 atm: Perry's Chemical Engineers'
  Handbook, 8th ed., Table 2-156 (ideal-gas cp) / Engineering Toolbox; PHYSICS.md.
- Flammability limits in air: LEL 5.0 % vol, UEL 15 % vol (Coward & Jones 1952, US Bureau
  of Mines Bulletin 503; NFPA 325); LEL 4.4 % vol under IEC 60079-20-1:2010. The LEL basis
  is a parameter everywhere (``lel_vol_frac``).
- Gas constant R = 8.314462618 J/(mol K): CODATA 2018 (exact since the 2019 SI).
- Ideal gas: ρ = p M / (R T); volume (mole) fraction of a trace gas = C R T / (p M).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

R_J_MOL_K = 8.314462618
"""Molar gas constant (CODATA 2018)."""

CH4_MOLAR_MASS_KG_MOL = 0.01604
"""Methane molar mass (NIST WebBook: 16.0425 g/mol, rounded as in PHYSICS.md)."""

CH4_GAMMA = 1.31
"""Methane heat-capacity ratio cp/cv near ambient temperature."""

CH4_LEL_VOL_FRAC = 0.05
#: The quantity name of methane as percent of its LEL (what detectors, fits and cascades read).
CH4_LEL_QUANTITY = "ch4_lel_pct"
"""Lower explosive limit, volume fraction (5.0 % vol; classic basis)."""

CH4_LEL_IEC_VOL_FRAC = 0.044
"""Lower explosive limit under IEC 60079-20-1 (4.4 % vol)."""

CH4_UEL_VOL_FRAC = 0.15
"""Upper explosive limit, volume fraction (15 % vol)."""

STANDARD_TEMPERATURE_K = 288.15
"""15 °C, ISO 13443 standard reference conditions for natural gas."""

STANDARD_PRESSURE_PA = 101325.0
"""1 atm."""


def gas_density_kg_m3(
    temperature_k: ArrayLike = STANDARD_TEMPERATURE_K,
    pressure_pa: ArrayLike = STANDARD_PRESSURE_PA,
    molar_mass_kg_mol: float = CH4_MOLAR_MASS_KG_MOL,
) -> np.ndarray | float:
    """Ideal-gas density ρ = p M / (R T) (default: pure methane), kg/m³."""
    t = np.asarray(temperature_k, dtype=np.float64)
    p = np.asarray(pressure_pa, dtype=np.float64)
    if np.any(t <= 0.0):
        raise ValueError(f"temperature_k must be > 0 K, got {temperature_k}")
    if np.any(p <= 0.0):
        raise ValueError(f"pressure_pa must be > 0 Pa, got {pressure_pa}")
    rho = p * molar_mass_kg_mol / (R_J_MOL_K * t)
    return rho[()] if rho.ndim == 0 else rho


def kg_m3_to_ppm(
    conc_kg_m3: ArrayLike,
    temperature_k: ArrayLike = STANDARD_TEMPERATURE_K,
    pressure_pa: ArrayLike = STANDARD_PRESSURE_PA,
) -> np.ndarray | float:
    """Methane mass concentration (kg/m³) to ppm by volume: 1e6 · C / ρ_CH4(T, p)."""
    c = np.asarray(conc_kg_m3, dtype=np.float64)
    ppm = 1e6 * c / gas_density_kg_m3(temperature_k, pressure_pa)
    return ppm[()] if np.ndim(ppm) == 0 else ppm


def ppm_to_kg_m3(
    ppm: ArrayLike,
    temperature_k: ArrayLike = STANDARD_TEMPERATURE_K,
    pressure_pa: ArrayLike = STANDARD_PRESSURE_PA,
) -> np.ndarray | float:
    """Methane ppm by volume to mass concentration (kg/m³); inverse of ``kg_m3_to_ppm``."""
    v = np.asarray(ppm, dtype=np.float64)
    c = 1e-6 * v * gas_density_kg_m3(temperature_k, pressure_pa)
    return c[()] if np.ndim(c) == 0 else c


def ppm_to_lel_pct(ppm: ArrayLike, lel_vol_frac: float = CH4_LEL_VOL_FRAC) -> np.ndarray | float:
    """ppm by volume to % of the lower explosive limit: 1e-6 · ppm / LEL · 100.

    On the 5 % vol basis 1 % LEL = 500 ppm; on the IEC 4.4 % basis 1 % LEL = 440 ppm.
    """
    if not 0.0 < lel_vol_frac < 1.0:
        raise ValueError(f"lel_vol_frac must be a volume fraction in (0, 1), got {lel_vol_frac}")
    v = np.asarray(ppm, dtype=np.float64)
    pct = v * (1e-4 / lel_vol_frac)
    return pct[()] if pct.ndim == 0 else pct


def lel_pct_to_ppm(
    lel_pct: ArrayLike, lel_vol_frac: float = CH4_LEL_VOL_FRAC
) -> np.ndarray | float:
    """% LEL to ppm by volume; inverse of ``ppm_to_lel_pct``."""
    if not 0.0 < lel_vol_frac < 1.0:
        raise ValueError(f"lel_vol_frac must be a volume fraction in (0, 1), got {lel_vol_frac}")
    v = np.asarray(lel_pct, dtype=np.float64)
    ppm = v * (lel_vol_frac * 1e4)
    return ppm[()] if ppm.ndim == 0 else ppm
