import numpy as np
import pandas as pd
import pytest

from citytwin.alerting.rulebook import HazardInfo, Rulebook

#: How the test rulebooks' hazards read in CAP (a rulebook's ``hazard_info``; alerting tests
#: need no physics module).
HAZARD_INFO = {
    "gas_plume": HazardInfo(categories=["Safety", "Fire"], event="Gas leak",
                           public_responses=("Evacuate", "Avoid", "Prepare", "Monitor"),
                           instruction="Keep away from the area; no flames."),
    "urban_flood": HazardInfo(categories=["Met"], event="Urban flood",
                              public_responses=("Evacuate", "Avoid", "Prepare", "Monitor"),
                              instruction="Avoid underpasses."),
    "crowd_crush": HazardInfo(categories=["Safety"], event="Crowd crush",
                              public_responses=("Avoid", "Avoid", "Avoid", "Monitor"),
                              instruction="Do not enter the area."),
}


def make_inventory(n: int, spacing_m: float = 1000.0) -> pd.DataFrame:
    """n methane detectors on a line, ``spacing_m`` apart (far apart: one warning each)."""
    return pd.DataFrame({
        "sensor_id": [f"S{i:03d}" for i in range(n)], "type_id": "methane_detector",
        "quantity": "ch4_lel_pct", "unit": "%LEL", "x_m": np.arange(n) * spacing_m,
        "y_m": np.zeros(n)})


def simple_rulebook(n: int = 1, m: int = 1, hysteresis: float = 0.0) -> Rulebook:
    return Rulebook.model_validate({
        "name": "test", "levels": ["blue", "yellow", "orange", "red"],
        "rules": [{"id": "ch4", "hazard": "gas_plume", "quantity": "ch4_lel_pct",
                   "unit": "%LEL", "sensor_types": ["methane_detector"],
                   "thresholds": {"blue": 10, "yellow": 25, "orange": 50, "red": 80},
                   "hysteresis": hysteresis, "debounce": {"n": n, "m": m},
                   "cluster_radius_m": 300, "area": {"buffer_m": 100, "model_level": "blue"}}]})


@pytest.fixture
def inventory():
    return make_inventory(3)
