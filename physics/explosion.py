"""Gas explosion in a confined space: TNT equivalence and blast overpressure vs distance.

The method (PHYSICS.md, "Explosion in a confined space"): the fuel in the space is
converted to an equivalent TNT charge,

    W_TNT = η · m_fuel · ΔH_c / E_TNT                         (kg)

with the explosion efficiency η (the share of the combustion energy that goes into the
blast; 0.1 is a usual upper value for a confined gas explosion), the heat of combustion of
methane ΔH_c = 50.0 MJ/kg (lower heating value) and the blast energy of TNT
E_TNT = 4.68 MJ/kg (CCPS, *Guidelines for Evaluating the Characteristics of Vapor Cloud
Explosions, Flash Fires and BLEVEs*, 1994). Peak side-on overpressure at the scaled
distance Z = R / W^(1/3) (m/kg^(1/3)) follows the fit of Mills (1987), *The design of
concrete structure to resist explosions and weapon effects*, 1st Int. Conf. on Concrete
for Hazard Protection, Edinburgh:

    P_s = 1772/Z³ − 114/Z² + 108/Z                           (kPa)

Damage levels by overpressure are those of PHYSICS.md: ~7 kPa window breakage,
~35 kPa heavy building damage. These are screening estimates for drills and what-if
studies (the order of magnitude of the zones), not a blast-design calculation.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from citytwin.physics.gas import CH4_LEL_VOL_FRAC, CH4_UEL_VOL_FRAC, gas_density_kg_m3

CH4_HEAT_OF_COMBUSTION_J_KG = 50.0e6
"""Methane lower heating value (J/kg)."""

TNT_BLAST_ENERGY_J_KG = 4.68e6
"""Blast energy of TNT used for TNT equivalence (CCPS 1994), J/kg."""

#: Damage level → peak side-on overpressure (kPa) at which it begins (PHYSICS.md).
DAMAGE_LEVELS_KPA = {"window_breakage": 7.0, "heavy_building_damage": 35.0}

#: Methane's explosive range in %LEL: from the LEL (100 %) to the UEL (300 %).
EXPLOSIVE_RANGE_LEL_PCT = (100.0, 100.0 * CH4_UEL_VOL_FRAC / CH4_LEL_VOL_FRAC)


def tnt_equivalent_kg(fuel_kg: float, efficiency: float = 0.1,
                      heat_of_combustion_j_kg: float = CH4_HEAT_OF_COMBUSTION_J_KG) -> float:
    """TNT-equivalent charge (kg) of ``fuel_kg`` burning with blast ``efficiency``."""
    if not fuel_kg >= 0:
        raise ValueError(f"fuel_kg must be ≥ 0, got {fuel_kg}")
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must be in (0, 1], got {efficiency}")
    return efficiency * fuel_kg * heat_of_combustion_j_kg / TNT_BLAST_ENERGY_J_KG


def methane_in_space_kg(volume_m3: float, conc_lel_pct: float,
                        temperature_k: float = 288.15, pressure_pa: float = 101325.0) -> float:
    """Mass of methane (kg) in a well-mixed space of ``volume_m3`` at ``conc_lel_pct``."""
    vol_frac = conc_lel_pct / 100.0 * CH4_LEL_VOL_FRAC
    return float(volume_m3 * vol_frac * gas_density_kg_m3(temperature_k, pressure_pa))


def overpressure_kpa(distance_m: ArrayLike, tnt_kg: float) -> np.ndarray:
    """Peak side-on overpressure (kPa) at ``distance_m`` from a ``tnt_kg`` charge (Mills)."""
    if not tnt_kg > 0:
        raise ValueError(f"tnt_kg must be > 0, got {tnt_kg}")
    z = np.asarray(distance_m, dtype=float) / np.cbrt(tnt_kg)
    with np.errstate(divide="ignore"):
        inv = 1.0 / z
    return 1772.0 * inv**3 - 114.0 * inv**2 + 108.0 * inv


def distance_for_overpressure_m(p_kpa: float, tnt_kg: float) -> float:
    """Distance (m) at which the overpressure falls to ``p_kpa``: the one real positive root
    of the Mills cubic in x = 1/Z (its derivative 5316x² − 228x + 108 has no real root, so
    the overpressure falls monotonically with distance)."""
    if not p_kpa > 0:
        raise ValueError(f"p_kpa must be > 0, got {p_kpa}")
    roots = np.roots([1772.0, -114.0, 108.0, -p_kpa])  # in x = 1/Z
    x = roots[(abs(roots.imag) < 1e-9) & (roots.real > 0)].real
    return float(np.cbrt(tnt_kg) / x.min())
