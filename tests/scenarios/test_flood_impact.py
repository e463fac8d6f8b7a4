"""Who a flood reaches: known values on a still pond over the tiny city."""

import numpy as np

from citytwin.physics.flood import LocalInertialFlood, hazard_rating
from citytwin.physics.flood_impact import describe, flood_impact
from citytwin.twin.synthetic import synthetic_city


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


def test_forecasts_watch_a_place_inside_a_building_at_its_walls():
    """A kindergarten given as a point inside its (blocked, dry) building: sampled at the
    point the pond around it reads 0 m; on the ring around the building it reads 0.4 m."""
    import shapely

    from citytwin.alerting.rulebook import Forecast
    from citytwin.physics.flood_impact import footprints_of, ring_points
    from citytwin.scenarios.run.kernel import FORECAST_RING_M, forecast_targets

    twin = synthetic_city(7, "tiny")
    z = twin.terrain.elevation_m
    engine = LocalInertialFlood.from_twin(twin, initial_depth_m=float(np.nanmax(z)) + 0.4 - z,
                                          drains=False, boundaries="closed")
    place = twin.places.set_index("id").geometry["P-kindergarten-1"]
    rule = Forecast(id="f", hazard="dam_break", quantity="depth_m", unit="m",
                    thresholds={"yellow": 0.15}, horizon_s=60, step_s=30)
    at_point = forecast_targets([engine], rule, 0.0, np.array([[place.x, place.y, 0.0]]),
                                ["K"])
    assert at_point["K"][0] == 0.0
    x, y = ring_points(footprints_of(np.array([shapely.Point(place.x, place.y)]), twin),
                       FORECAST_RING_M)
    at_walls = forecast_targets([engine], rule, 0.0, np.column_stack([x, y, 0 * x]), ["K"])
    assert at_walls["K"][0] >= 0.4 - 1e-6 and at_walls["K"][1] == 30.0
    assert engine.t_s == 0.0  # forecasts run on copies
