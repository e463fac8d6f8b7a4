"""Dispersion coefficients and Pasquill stability classes.

- Briggs (1973) σy, σz for open-country (rural) and urban terrain, as tabulated in
  Griffiths (1994, Atmos. Environ. 28, 2861) and Hanna, Briggs & Hosker (1982, *Handbook
  on Atmospheric Diffusion*, Table 4.5); PHYSICS.md "Gas plume". Valid ~100 m – 10 km; used
  unchanged (linear in x) closer in. Urban A/B share a row and urban E/F share a row; the
  urban σz for A/B grows as 0.24x(1+0.001x)^(+1/2).
- Pasquill (1961) / Turner (1970) stability classes from 10 m wind speed and daytime
  insolation or night-time cloud cover (NOAA READY "Pasquill stability classes" table).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

STABILITY_CLASSES = ("A", "B", "C", "D", "E", "F")
TERRAINS = ("rural", "urban")

# (a, b, c): sigma = a * x * (1 + b * x) ** c
_BRIGGS: dict[str, dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]]] = {
    "rural": {
        "A": ((0.22, 0.0001, -0.5), (0.20, 0.0, 0.0)),
        "B": ((0.16, 0.0001, -0.5), (0.12, 0.0, 0.0)),
        "C": ((0.11, 0.0001, -0.5), (0.08, 0.0002, -0.5)),
        "D": ((0.08, 0.0001, -0.5), (0.06, 0.0015, -0.5)),
        "E": ((0.06, 0.0001, -0.5), (0.03, 0.0003, -1.0)),
        "F": ((0.04, 0.0001, -0.5), (0.016, 0.0003, -1.0)),
    },
    "urban": {
        "A": ((0.32, 0.0004, -0.5), (0.24, 0.001, 0.5)),
        "B": ((0.32, 0.0004, -0.5), (0.24, 0.001, 0.5)),
        "C": ((0.22, 0.0004, -0.5), (0.20, 0.0, 0.0)),
        "D": ((0.16, 0.0004, -0.5), (0.14, 0.0003, -0.5)),
        "E": ((0.11, 0.0004, -0.5), (0.08, 0.0015, -0.5)),
        "F": ((0.11, 0.0004, -0.5), (0.08, 0.0015, -0.5)),
    },
}


def check_stability(stability: str) -> str:
    """Return ``stability`` if it is one of A–F, else raise ValueError naming the allowed."""
    if stability not in STABILITY_CLASSES:
        raise ValueError(
            f"unknown stability class {stability!r}; allowed: {', '.join(STABILITY_CLASSES)}"
        )
    return stability


def check_terrain(terrain: str) -> str:
    """Return ``terrain`` if it is 'rural' or 'urban', else raise ValueError."""
    if terrain not in TERRAINS:
        raise ValueError(f"unknown terrain {terrain!r}; allowed: {', '.join(TERRAINS)}")
    return terrain


def briggs_sigmas(
    distance_m: ArrayLike, stability: str, terrain: str
) -> tuple[np.ndarray, np.ndarray]:
    """Briggs (1973) (σy, σz) in metres at downwind (travel) distance ``distance_m``.

    Formulas exactly as in the PHYSICS.md table (Griffiths 1994). Negative distances are
    rejected; x = 0 gives 0.
    """
    x = np.asarray(distance_m, dtype=np.float64)
    if np.any(x < 0.0):
        raise ValueError("distance_m must be >= 0")
    return briggs_sigmas_from(x, briggs_coefficients(stability, terrain))


BriggsCoefficients = tuple[tuple[float, float, float], tuple[float, float, float]]


def briggs_coefficients(stability: str, terrain: str) -> BriggsCoefficients:
    """The Briggs (a, b, c) pairs for σy and σz of a stability class and terrain."""
    check_stability(stability)
    check_terrain(terrain)
    return _BRIGGS[terrain][stability]


def briggs_sigmas_from(x: np.ndarray, coefficients: BriggsCoefficients
                       ) -> tuple[np.ndarray, np.ndarray]:
    """σ = a·x·(1 + b·x)^c for travel distances ``x`` ≥ 0 (unchecked: the engines' inner
    loop, with coefficients checked once by ``briggs_coefficients``)."""
    (ay, by, cy), (az, bz, cz) = coefficients
    return ay * x * (1.0 + by * x) ** cy, az * x * (1.0 + bz * x) ** cz


Insolation = Literal["strong", "moderate", "slight", "overcast"]

# Rows: wind-speed bands <2, 2-3, 3-5, 5-6, >6 m/s.
# Columns: strong, moderate, slight insolation; night thin overcast or >= 4/8 cloud; <= 3/8.
_PASQUILL_TABLE = (
    ("A", "AB", "B", "E", "F"),
    ("AB", "B", "C", "E", "F"),
    ("B", "BC", "C", "D", "E"),
    ("C", "CD", "D", "D", "D"),
    ("C", "D", "D", "D", "D"),
)
_INSOLATION_COLUMN = {"strong": 0, "moderate": 1, "slight": 2}


def pasquill_stability_class(
    wind_speed_m_s: float,
    insolation: str | None,
    night_cloud_fraction: float | None,
    *,
    intermediate: Literal["stable", "unstable"] = "stable",
) -> str:
    """Pasquill–Gifford class A–F from the Turner/Pasquill table (Pasquill 1961).

    Day: ``insolation`` in {"strong", "moderate", "slight"}, or "overcast" for class D
    (table note 3: D for overcast skies by day or night). Night: ``insolation=None`` and
    ``night_cloud_fraction`` in [0, 1]: thin overcast or ≥ 4/8 cloud vs ≤ 3/8 (fractions in
    between count as clear); 8/8 (fully overcast) gives D.
    Wind-speed bands at 10 m: [0, 2), [2, 3), [3, 5), [5, 6], > 6 m/s.
    Table cells with two classes (A–B, B–C, C–D) resolve to the more stable one by default
    (higher ground-level concentrations from near-ground sources); pass
    ``intermediate="unstable"`` for the other.
    """
    u = float(wind_speed_m_s)
    if not (np.isfinite(u) and u >= 0.0):
        raise ValueError(f"wind_speed_m_s must be finite and >= 0, got {wind_speed_m_s}")
    if intermediate not in ("stable", "unstable"):
        raise ValueError(f"intermediate must be 'stable' or 'unstable', got {intermediate!r}")
    if u < 2.0:
        row = 0
    elif u < 3.0:
        row = 1
    elif u < 5.0:
        row = 2
    elif u <= 6.0:
        row = 3
    else:
        row = 4

    if insolation is not None:
        if insolation == "overcast":
            return "D"
        if insolation not in _INSOLATION_COLUMN:
            raise ValueError(
                f"unknown insolation {insolation!r}; allowed: strong, moderate, slight, "
                "overcast, or None for night"
            )
        col = _INSOLATION_COLUMN[insolation]
    else:
        if night_cloud_fraction is None:
            raise ValueError("at night (insolation=None) night_cloud_fraction is required")
        cloud = float(night_cloud_fraction)
        if not 0.0 <= cloud <= 1.0:
            raise ValueError(f"night_cloud_fraction must be in [0, 1], got {night_cloud_fraction}")
        if cloud >= 1.0:
            return "D"
        col = 3 if cloud >= 0.5 else 4

    cell = _PASQUILL_TABLE[row][col]
    if len(cell) == 2:
        return cell[1] if intermediate == "stable" else cell[0]
    return cell
