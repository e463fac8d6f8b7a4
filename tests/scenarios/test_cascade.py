"""Cascades: gas in the explosive range in a confined space + ignition → an explosion,
recorded as a chain; blast zones from TNT equivalence."""


import numpy as np
import pytest

from citytwin.physics.explosion import distance_for_overpressure_m
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.scenarios.run.cascade import GAS_QUANTITY
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario
from citytwin.twin.errors import InputError

from .conftest import short_scenario


def boom(rate_per_h):
    return [{"id": "boom", "kind": "gas_explosion", "hazard": "main-strike",
             "ignition_rate_per_h": rate_per_h, "volume_m3": 2.0, "efficiency": 0.1}]


def prepared(write_scenario, name="s.yaml", **changes):
    path = write_scenario(short_scenario(**changes), name)
    return prepare(load_scenario(path), source=str(path), base_dir=path.parent)


def test_a_certain_ignition_explodes_at_the_first_check_in_the_explosive_range(
        write_scenario, tmp_path):
    # 3600/h over a 10 s check: p = 1 − e^(−10) — ignition is all but certain
    run = prepared(write_scenario, cascades=boom(3600.0))
    result = simulate(run, tmp_path / "run")
    chain = read_table(result.archive_path, "hazard_chain")
    assert len(chain) == 1 and chain["parent"].iloc[0] == "main-strike"
    assert chain["rule"].iloc[0] == "boom"
    # the first check at which a watched space holds 100–300 %LEL, found independently
    c = run.cascades[0]
    fresh = prepared(write_scenario, "fresh.yaml").hazards[0]
    first = None
    for t in np.arange(0.0, 900.0 + 1e-9, 10.0):
        fresh.advance_to(t)
        conc = fresh.sample(GAS_QUANTITY, c.xyz_m)
        if ((conc >= 100) & (conc <= 300)).any():
            first = t
            break
    assert first is not None and chain["time_s"].iloc[0] == first
    line = [d for _, k, _, d in result.timeline if k == "explosion"][0]
    assert line["zones"]["window_breakage"]["radius_m"] == pytest.approx(
        distance_for_overpressure_m(7.0, line["tnt_kg"]), abs=0.01)
    assert 100 <= line["conc_lel_pct"] <= 300


def test_no_ignition_no_explosion_and_the_draws_are_reproducible(write_scenario, tmp_path):
    run = prepared(write_scenario, cascades=boom(1e-9))
    result = simulate(run, tmp_path / "quiet")
    assert read_table(result.archive_path, "hazard_chain").empty
    a = simulate(prepared(write_scenario, "a.yaml", cascades=boom(20.0)), tmp_path / "a")
    b = simulate(prepared(write_scenario, "b.yaml", cascades=boom(20.0)), tmp_path / "b")
    ta = read_table(a.archive_path, "hazard_chain")
    tb = read_table(b.archive_path, "hazard_chain")
    assert len(ta) == 1 and ta.equals(tb)   # 20/h: it goes off, at the same draw each time


def test_bad_cascades_name_the_field(write_scenario):
    bad = boom(1.0)
    bad[0]["hazard"] = "nope"
    with pytest.raises(InputError, match=r"cascades\.0\.hazard.*no hazard 'nope'"):
        prepared(write_scenario, cascades=bad)
    bad = boom(1.0)
    bad[0]["spaces"] = {"node_kinds": ["volcano"]}
    with pytest.raises(InputError, match=r"cascades\.0\.spaces\.node_kinds"):
        prepared(write_scenario, cascades=bad)
    bad = boom(-1.0)
    with pytest.raises(InputError, match=r"cascades\.0\.ignition_rate_per_h"):
        prepared(write_scenario, cascades=bad)


def test_buildings_inside_uses_the_index_and_counts_like_a_full_scan():
    import shapely

    from citytwin.alerting.impact import ImpactIndex
    from citytwin.scenarios.run.cascade import blast_zones
    from citytwin.twin.synthetic import synthetic_city

    twin = synthetic_city(7, "tiny")
    index = ImpactIndex(twin)
    geoms = twin.buildings.geometry.to_numpy()
    x0, y0, x1, y1 = twin.terrain.bounds
    for r in (5.0, 60.0, 250.0, 5000.0):
        area = shapely.Point((x0 + x1) / 2, (y0 + y1) / 2).buffer(r)
        assert index.buildings_inside(area) == int(shapely.intersects(geoms, area).sum())
    assert index.buildings_inside(shapely.Polygon()) == 0
    centre = ((x0 + x1) / 2, (y0 + y1) / 2)
    assert blast_zones(twin, centre, 5.0, impact=index) == blast_zones(twin, centre, 5.0)
