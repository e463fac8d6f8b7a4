"""The synthetic city: deterministic, complete and physically sensible."""

import numpy as np
import pytest
from geopandas.testing import assert_geodataframe_equal

from citytwin.twin.synthetic import SIZES_M, synthetic_city


@pytest.fixture(scope="module")
def city():
    return synthetic_city(seed=3)


def test_same_seed_same_city(city):
    again = synthetic_city(seed=3)
    assert np.array_equal(city.terrain.elevation_m, again.terrain.elevation_m)
    assert_geodataframe_equal(city.buildings, again.buildings)
    for name in city.networks:
        assert_geodataframe_equal(city.networks[name].links, again.networks[name].links)
    assert_geodataframe_equal(city.places, again.places)


def test_other_seed_other_buildings(city):
    other = synthetic_city(seed=4)
    assert not np.allclose(city.buildings["height_m"], other.buildings["height_m"])


def test_layers_present_and_projected(city):
    assert city.crs.is_projected and city.crs.axis_info[0].unit_name == "metre"
    assert set(city.networks) == {"gas", "water", "drainage"}
    kinds = set(city.networks["gas"].nodes["kind"])
    assert {"valve_well", "junction", "station"} <= kinds
    assert "outfall" in set(city.networks["drainage"].nodes["kind"])
    place_kinds = set(city.places["kind"])
    assert {"school", "hospital", "plaza", "transit_station", "shelter",
            "hazard_source"} <= place_kinds
    assert city.population > 0 and (city.buildings["height_m"] > 0).all()
    assert city.buildings["use"].nunique() >= 4


def test_every_network_is_one_connected_piece_without_dangling_links(city):
    for net in city.networks.values():
        assert net.dangling_links() == []
        assert len(np.unique(net.components())) == 1


def test_buildings_and_nodes_inside_terrain(city):
    b = city.buildings.total_bounds
    assert city.terrain.contains(np.array([b[0], b[2]]), np.array([b[1], b[3]])).all()
    for net in city.networks.values():
        assert city.terrain.contains(net.nodes.geometry.x, net.nodes.geometry.y).all()


def test_reservoir_held_by_the_dam(city):
    pool = city.reservoirs.set_index("kind").loc["pool"]
    dam = city.reservoirs.set_index("kind").loc["dam"]
    assert pool.geometry.area > 10_000
    # The pool lies north of (upstream of) the dam, below the normal level < crest.
    assert pool.geometry.bounds[1] > dam.geometry.bounds[1]
    assert pool["normal_level_m"] < pool["crest_level_m"]
    x, y = dam.geometry.interpolate(0.5, normalized=True).xy
    ground_at_dam = city.terrain.elevation_at(np.array(x), np.array(y))[0]
    assert ground_at_dam == pytest.approx(pool["crest_level_m"], abs=0.5)
    # The valley floor downstream of the dam is lower than the normal pool level.
    assert city.terrain.elevation_m[-1].min() < pool["normal_level_m"]


def test_river_valley_falls_southward(city):
    z = city.terrain.elevation_m
    assert z[-1].min() < z[z.shape[0] // 2].min()  # last row is the southern edge


def test_larger_sizes_scale_and_bad_size_is_rejected():
    tiny, small = synthetic_city(0, "tiny"), synthetic_city(0, "small")
    assert len(small.buildings) > len(tiny.buildings)
    assert small.terrain.shape[0] == int(SIZES_M["small"] / 5)
    with pytest.raises(ValueError, match="unknown synthetic city size 'huge'"):
        synthetic_city(0, "huge")
    with pytest.raises(ValueError, match="must be ≥ 600 m"):
        synthetic_city(0, 100)


def test_passes_twin_validation_without_warnings(city):
    from citytwin.twin.validation import validate_twin

    assert validate_twin(city, "synthetic") == []
