"""SensorNetwork: construction checks, cadence groups, lookups and placement on a twin."""

from __future__ import annotations

import numpy as np
import pytest

from citytwin.sensors_sim.network import COLUMNS, SensorNetwork, place_on_network_nodes
from citytwin.twin.errors import InputError
from tests.sensors_sim.support import EPSG, gauge, gauge_records


def _rec(sid: str, **kw: object) -> dict:
    return {"sensor_id": sid, "type_id": "test_gauge", "x_m": 1.0, "y_m": 2.0, **kw}


def test_from_records_fills_defaults_from_the_catalogue():
    cat = gauge(interval_s=30.0)
    net = SensorNetwork.from_records([_rec("A", z_m=1.5), _rec("B")], cat)
    assert list(net.table.columns) == list(COLUMNS)
    assert len(net) == 2
    row = net.table.iloc[1]
    assert row["quantity"] == "test_value_u" and row["unit"] == "u"
    assert row["group_id"] == "test_gauge" and row["interval_s"] == 30.0
    assert row["z_m"] == 0.0 and row["asset_id"] is None
    np.testing.assert_array_equal(net.xyz_m([0, 1]), [[1.0, 2.0, 1.5], [1.0, 2.0, 0.0]])


def test_table_rows_round_trip_through_from_records():
    cat = gauge()
    net = SensorNetwork.from_records(gauge_records(3, asset_network="gas", asset_id="n1"), cat)
    again = SensorNetwork.from_records(net.table.to_dict("records"), cat)
    assert again.table.equals(net.table)


def test_duplicate_ids_are_named():
    with pytest.raises(InputError) as info:
        SensorNetwork.from_records([_rec("A"), _rec("B"), _rec("A")], gauge())
    assert info.value.field == "sensor_id"
    assert "duplicate sensor id(s) ['A']" in str(info.value)
    assert "(feature A)" in str(info.value)


def test_unknown_type_is_named_with_the_sensor():
    with pytest.raises(InputError) as info:
        SensorNetwork.from_records([_rec("A"), _rec("B", type_id="sonar")], gauge())
    assert info.value.field == "type_id" and info.value.feature_id == "B"
    assert "unknown sensor type 'sonar'" in str(info.value)


@pytest.mark.parametrize("field", ["x_m", "y_m", "z_m"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, "here"])
def test_non_finite_coordinates_name_field_and_sensor(field, bad):
    with pytest.raises(InputError) as info:
        SensorNetwork.from_records([_rec("A"), _rec("B", **{field: bad})], gauge())
    assert info.value.field == field and info.value.feature_id == "B"
    assert f"{field} must be a finite number" in str(info.value)


@pytest.mark.parametrize(
    ("records", "field", "feature", "text"),
    [
        ([{"sensor_id": "A", "type_id": "test_gauge", "x_m": 1.0}], "y_m", "A", "missing y_m"),
        ([{"type_id": "test_gauge", "x_m": 1.0, "y_m": 1.0}], "sensor_id", "record #0",
         "missing sensor_id"),
        ([_rec("A", colour="red")], "record", "A", "unknown key(s) ['colour']"),
        ([_rec("A", unit="ppm")], "unit", "A", "unit 'ppm' disagrees with sensor type"),
        ([_rec("A", interval_s=-1.0)], "interval_s", "A", "interval_s must be > 0"),
        ([_rec(" ")], "sensor_id", "row 0", "sensor_id must be non-empty"),
    ],
)
def test_record_errors(records, field, feature, text):
    with pytest.raises(InputError) as info:
        SensorNetwork.from_records(records, gauge())
    assert (info.value.field, info.value.feature_id) == (field, feature)
    assert text in str(info.value)


def test_a_group_may_not_mix_intervals():
    with pytest.raises(InputError) as info:
        SensorNetwork.from_records([_rec("A", group_id="g", interval_s=10.0),
                                    _rec("B", group_id="g", interval_s=60.0)], gauge())
    assert info.value.field == "group_id" and info.value.feature_id == "g"
    assert "mixes interval_s values [10.0, 60.0]" in str(info.value)


def test_a_group_may_not_mix_quantities(catalogue):
    cat = {**catalogue, **gauge()}
    recs = [_rec("A", group_id="g"), _rec("B", type_id="water_level", group_id="g",
                                          interval_s=10.0)]
    with pytest.raises(InputError, match="cadence group 'g' mixes quantity"):
        SensorNetwork.from_records(recs, cat)


def test_groups_partition_the_network_sorted_by_id():
    recs = ([_rec(f"a{i}", group_id="zeta", interval_s=5.0) for i in range(3)]
            + [_rec(f"b{i}", group_id="alpha", interval_s=60.0) for i in range(2)]
            + [_rec("c0", group_id="zeta", interval_s=5.0)])
    net = SensorNetwork.from_records(recs, gauge())
    groups = net.groups()
    assert [g.group_id for g in groups] == ["alpha", "zeta"]
    assert [g.interval_s for g in groups] == [60.0, 5.0]
    np.testing.assert_array_equal(groups[0].indices, [3, 4])
    np.testing.assert_array_equal(groups[1].indices, [0, 1, 2, 5])
    everything = np.sort(np.concatenate([g.indices for g in groups]))
    np.testing.assert_array_equal(everything, np.arange(len(net)))
    assert groups[0].indices.dtype == np.int64
    assert not groups[0].indices.flags.writeable


def test_index_of_maps_ids_and_names_unknown_ones():
    net = SensorNetwork.from_records(gauge_records(5), gauge())
    np.testing.assert_array_equal(net.index_of(["S0003", "S0000"]), [3, 0])
    np.testing.assert_array_equal(net.index_of("S0004"), [4])
    with pytest.raises(InputError) as info:
        net.index_of(["S0001", "X-9", "Y-1"])
    assert info.value.field == "sensor_id"
    assert "unknown sensor id(s) ['X-9', 'Y-1']" in str(info.value)


def test_concat_keeps_order_and_rejects_duplicates():
    a = SensorNetwork.from_records(gauge_records(2, "A"), gauge())
    b = SensorNetwork.from_records(gauge_records(3, "B"), gauge())
    both = SensorNetwork.concat(a, b)
    assert list(both.sensor_ids) == ["A0000", "A0001", "B0000", "B0001", "B0002"]
    with pytest.raises(InputError, match=r"duplicate sensor id\(s\) \['A0000', 'A0001'\]"):
        SensorNetwork.concat(a, b, a)
    assert len(SensorNetwork.concat()) == 0


def test_to_geodataframe(tiny_twin):
    net = place_on_network_nodes(tiny_twin, catalogue=None)
    gdf = net.to_geodataframe(tiny_twin.crs)
    assert gdf.crs.to_epsg() == EPSG
    np.testing.assert_allclose(gdf.geometry.x, net.table["x_m"])
    np.testing.assert_allclose(gdf.geometry.y, net.table["y_m"])
    assert list(gdf["sensor_id"]) == list(net.sensor_ids)


# --- placement on a twin ----------------------------------------------------------------------

def test_one_sensor_at_every_valve_well(tiny_twin, catalogue):
    net = place_on_network_nodes(tiny_twin, catalogue=catalogue)
    assert list(net.sensor_ids) == ["CH4-G-v1", "CH4-G-v2", "CH4-G-v3", "CH4-G-v4"]
    assert list(net.table["asset_id"]) == ["G-v1", "G-v2", "G-v3", "G-v4"]
    assert set(net.table["asset_network"]) == {"gas"}
    assert set(net.table["quantity"]) == {"ch4_lel_pct"}
    assert set(net.table["z_m"]) == {0.5}
    assert set(net.table["interval_s"]) == {10.0}  # from the catalogue
    nodes = tiny_twin.networks["gas"].nodes.set_index("id")
    for _, row in net.table.iterrows():
        p = nodes.geometry[row["asset_id"]]
        assert (row["x_m"], row["y_m"]) == (p.x, p.y)
    [group] = net.groups()
    assert group.group_id == "methane_detector" and group.interval_s == 10.0


def test_node_kinds_and_options(tiny_twin, catalogue):
    net = place_on_network_nodes(tiny_twin, node_kinds=("junction", "station"),
                                 group_id="drill", interval_s=2.0, height_m=0.3,
                                 id_prefix="X:", catalogue=catalogue)
    assert list(net.sensor_ids) == ["X:G-st", "X:G-j1"]
    assert set(net.table["group_id"]) == {"drill"}
    assert set(net.table["interval_s"]) == {2.0}
    assert set(net.table["z_m"]) == {0.3}


@pytest.mark.parametrize(
    ("min_age", "expected"),
    [
        (None, ["G-v1", "G-v2", "G-v3", "G-v4"]),
        (10, ["G-v1", "G-v2", "G-v3"]),  # G-v4 only touches a link with no install year
        (12, ["G-v1", "G-v3"]),  # G-v2 touches only the 2015 link (11 years)
        (20, ["G-v1", "G-v3"]),  # G-v3's link (2006) is exactly 20 years old: included
        (21, ["G-v1"]),
        (40, []),
    ],
)
def test_age_filter_keeps_wells_on_old_mains(tiny_twin, catalogue, min_age, expected):
    net = place_on_network_nodes(tiny_twin, min_link_age_years=min_age, year=2026,
                                 catalogue=catalogue)
    assert list(net.table["asset_id"]) == expected


def test_age_filter_depends_on_year(tiny_twin, catalogue):
    net = place_on_network_nodes(tiny_twin, min_link_age_years=20, year=2035,
                                 catalogue=catalogue)
    assert list(net.table["asset_id"]) == ["G-v1", "G-v2", "G-v3"]


def test_placement_ids_do_not_depend_on_other_nodes(tiny_twin, catalogue):
    before = place_on_network_nodes(tiny_twin, catalogue=catalogue)
    nodes = tiny_twin.networks["gas"].nodes
    tiny_twin.networks["gas"].nodes = nodes.iloc[::-1].reset_index(drop=True)
    after = place_on_network_nodes(tiny_twin, catalogue=catalogue)
    assert sorted(after.sensor_ids) == sorted(before.sensor_ids)
    i, j = before.index_of(["CH4-G-v2"])[0], after.index_of(["CH4-G-v2"])[0]
    np.testing.assert_array_equal(before.xyz_m([i]), after.xyz_m([j]))


def test_placement_errors(tiny_twin, catalogue):
    with pytest.raises(InputError) as info:
        place_on_network_nodes(tiny_twin, network="water", catalogue=catalogue)
    assert info.value.field == "network"
    assert "the twin has no 'water' network (it has ['gas'])" in str(info.value)
    with pytest.raises(InputError, match="unknown sensor type 'sonar'"):
        place_on_network_nodes(tiny_twin, type_id="sonar", catalogue=catalogue)


def test_two_placements_concat_into_two_groups(tiny_twin, catalogue):
    wells = place_on_network_nodes(tiny_twin, catalogue=catalogue)
    junctions = place_on_network_nodes(tiny_twin, node_kinds=("junction",), group_id="j",
                                       interval_s=60.0, catalogue=catalogue)
    net = SensorNetwork.concat(wells, junctions)
    assert [(g.group_id, g.interval_s, len(g)) for g in net.groups()] == [
        ("j", 60.0, 1), ("methane_detector", 10.0, 4)]
    with pytest.raises(InputError, match="mixes interval_s"):
        clash = place_on_network_nodes(tiny_twin, node_kinds=("junction",),
                                       interval_s=60.0, catalogue=catalogue)
        SensorNetwork.concat(wells, clash)
