"""Who a flood reaches: known values on a still pond over the tiny city."""

import numpy as np

from physics.flood import LocalInertialFlood, hazard_rating
from scenarios.flood_impact import describe, flood_impact
from twin.synthetic import synthetic_city


def test_a_still_pond_reaches_every_building_at_once_with_its_depth():
    twin = synthetic_city(7, "tiny")
    z = twin.terrain.elevation_m
    level = float(np.nanmax(z)) + 0.4        # water 0.4 m above the highest ground
    engine = LocalInertialFlood.from_twin(twin, initial_depth_m=level - z, drains=False,
                                          boundaries="closed")
    engine.advance_to(1.0)
    impact = flood_impact(engine, twin)
    buildings = impact[impact["what"] == "building"]
    assert len(buildings) == len(twin.buildings)
    assert buildings["people"].sum() == twin.population
    assert (buildings["arrival_time_s"] == 0.0).all()       # wet from the start
    assert (buildings["max_depth_m"] >= 0.4 - 1e-6).all()
    expected = hazard_rating(buildings["max_depth_m"], buildings["max_velocity_m_s"])
    assert np.allclose(buildings["hazard_rating"], expected, atol=1e-3)
    assert set(impact.loc[impact["protected"], "id"]) == set(twin.protected_targets["id"])
    assert describe(impact, "pond").startswith(
        f"pond: flood ≥ 15 cm reached {len(twin.buildings)} building(s)")


def test_a_dry_city_has_no_impact():
    twin = synthetic_city(7, "tiny")
    engine = LocalInertialFlood.from_twin(twin, drains=False)
    engine.advance_to(10.0)
    assert flood_impact(engine, twin).empty
