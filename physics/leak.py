"""Gas release rate through a hole in a pressurised main (orifice / source model).

Isentropic ideal-gas flow through an orifice (Crowl & Louvar, *Chemical Process Safety*,
3rd ed. 2011, §4.6 eqs. 4-48 and 4-50; TNO Yellow Book CPR 14E §2.5.2.3):

- choked (sonic) when p_amb / p < r_c = (2/(γ+1))^(γ/(γ−1))  (≈ 0.54 for γ = 1.31):
  ṁ = Cd · A · p · sqrt(γ M / (R T) · (2/(γ+1))^((γ+1)/(γ−1)))
- subsonic otherwise, with r = p_amb / p:
  ṁ = Cd · A · p · sqrt(2 M / (R T) · γ/(γ−1) · (r^(2/γ) − r^((γ+1)/γ)))

p is the absolute upstream pressure, T the upstream (gas) temperature. The two forms are
equal at r = r_c, so ṁ is continuous across the choke point.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from citytwin.physics.gas import CH4_GAMMA, CH4_MOLAR_MASS_KG_MOL, R_J_MOL_K, STANDARD_PRESSURE_PA


def critical_pressure_ratio(gamma: float = CH4_GAMMA) -> float:
    """r_c = (2/(γ+1))^(γ/(γ−1)): flow is choked when p_amb / p_abs < r_c."""
    if not gamma > 1.0:
        raise ValueError(f"gamma must be > 1, got {gamma}")
    return (2.0 / (gamma + 1.0)) ** (gamma / (gamma - 1.0))


def orifice_mass_rate_kg_s(
    pressure_gauge_pa: ArrayLike,
    hole_diameter_m: ArrayLike,
    temperature_k: float = 288.15,
    discharge_coefficient: float = 0.61,
    ambient_pa: float = STANDARD_PRESSURE_PA,
    gamma: float = CH4_GAMMA,
    molar_mass_kg_mol: float = CH4_MOLAR_MASS_KG_MOL,
) -> np.ndarray | float:
    """Mass release rate (kg/s) of a gas through a sharp-edged circular hole.

    Choked or subsonic isentropic orifice flow (Crowl & Louvar 2011, eqs. 4-48/4-50; see
    module docstring). Vectorised over pressure and diameter. Cd = 0.61 is the sharp-edged
    orifice value (Crowl & Louvar §4.2; use ~1.0 for a full-bore rupture).
    """
    p_g = np.asarray(pressure_gauge_pa, dtype=np.float64)
    d = np.asarray(hole_diameter_m, dtype=np.float64)
    if not np.all(np.isfinite(p_g)) or np.any(p_g < 0.0):
        raise ValueError(
            f"pressure_gauge_pa must be finite and >= 0 Pa (gauge), got {pressure_gauge_pa}"
        )
    if not np.all(np.isfinite(d)) or np.any(d <= 0.0):
        raise ValueError(f"hole_diameter_m must be finite and > 0 m, got {hole_diameter_m}")
    if not temperature_k > 0.0:
        raise ValueError(f"temperature_k must be > 0 K, got {temperature_k}")
    if not 0.0 < discharge_coefficient <= 1.0:
        raise ValueError(f"discharge_coefficient must be in (0, 1], got {discharge_coefficient}")
    if not ambient_pa > 0.0:
        raise ValueError(f"ambient_pa must be > 0 Pa, got {ambient_pa}")
    if not molar_mass_kg_mol > 0.0:
        raise ValueError(f"molar_mass_kg_mol must be > 0, got {molar_mass_kg_mol}")
    r_c = critical_pressure_ratio(gamma)

    p_abs = p_g + ambient_pa
    area_m2 = 0.25 * np.pi * d * d
    m_over_rt = molar_mass_kg_mol / (R_J_MOL_K * temperature_k)
    ratio = ambient_pa / p_abs

    choked_term = gamma * m_over_rt * (2.0 / (gamma + 1.0)) ** ((gamma + 1.0) / (gamma - 1.0))
    r = np.maximum(ratio, r_c)  # subsonic branch only evaluated where it applies
    bracket = r ** (2.0 / gamma) - r ** ((gamma + 1.0) / gamma)
    subsonic_term = 2.0 * m_over_rt * gamma / (gamma - 1.0) * bracket
    term = np.where(ratio < r_c, choked_term, np.maximum(subsonic_term, 0.0))
    rate = discharge_coefficient * area_m2 * p_abs * np.sqrt(term)
    return rate[()] if rate.ndim == 0 else rate
