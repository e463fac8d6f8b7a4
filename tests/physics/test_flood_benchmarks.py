"""Real-benchmark data for the flood engine: EA 2D Test 4 and Merewether (ARR P15).

Parsers and loaders are checked against values stated in the files and their READMEs; a
coarse EA Test 4 run checks the wave order and peak depths against LISFLOOD-FP; a coarse
Merewether run checks the flood reaches the observation points. Everything needs
``../shared`` and skips without it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

VALIDATION_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "validation"


def _module(name: str):
    """Import a module of ``benchmarks/validation`` (not a package) by its path."""
    if name in sys.modules:
        return sys.modules[name]
    if str(VALIDATION_DIR) not in sys.path:
        sys.path.insert(0, str(VALIDATION_DIR))
    spec = importlib.util.spec_from_file_location(name, VALIDATION_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ea():
    return _module("ea_benchmarks")


@pytest.fixture(scope="module")
def test4_dir(shared_dir: Path) -> Path:
    path = shared_dir / "benchmarks" / "ea2d" / "test4"
    if not (path / "ea4.bdy").is_file():
        pytest.skip(f"{path} not present in ../shared")
    return path


@pytest.fixture(scope="module")
def merewether_dir(shared_dir: Path) -> Path:
    path = shared_dir / "realdata" / "merewether"
    if not (path / "topography1.zip").is_file():
        pytest.skip(f"{path} not present in ../shared")
    return path


@pytest.fixture(scope="module")
def mw(merewether_dir: Path):
    return _module("merewether_data").load_merewether(merewether_dir)


# --- EA Test 4 files ------------------------------------------------------------------------


def test_ea4_case_from_lisflood_files(ea, test4_dir):
    case = ea.load_ea4(test4_dir)
    assert case.manning_n == 0.05
    assert case.sim_time_s == 18000.0
    assert case.inflow_y_m == (990.0, 1010.0)
    assert case.inflow_q_m3_s.max() == pytest.approx(20.0)  # 1 m²/s on a 20 m line
    np.testing.assert_allclose(case.inflow_times_s, [0, 300, 3600, 14400, 18000])
    assert case.edges == {"E": "FREE", "S": "FREE", "N": "FREE"}
    assert case.point_ids == ["1", "2", "3", "4", "5", "6"]
    np.testing.assert_allclose(case.points_xy_m[[0, 5]], [[50, 1000], [300, 1300]])
    volume = np.trapezoid(case.inflow_q_m3_s, case.inflow_times_s)
    assert volume == pytest.approx(285_000.0)


def test_bdy_time_units_and_several_series(ea, tmp_path):
    path = tmp_path / "x.bdy"
    path.write_text("# c\na\n2 hours\n0 0\n5 1\nb\n1 seconds\n3 7\n", encoding="utf-8")
    series = ea.read_bdy(path)
    np.testing.assert_allclose(series["a"].times_s, [0, 3600])
    np.testing.assert_allclose(series["a"].values, [0, 5])
    np.testing.assert_allclose(series["b"].times_s, [7])


def test_reference_stage_files(ea, test4_dir):
    """Peak depths as listed in ../shared/benchmarks/ea2d/README.md."""
    acc = ea.read_stage_output(test4_dir / "reference" / "ea4-1m-acc.stage")
    dg2 = ea.read_stage_output(test4_dir / "reference" / "ea4-5m-dg2.stage")
    np.testing.assert_allclose(acc.depth_m.max(axis=0),
                               [0.3293, 0.2771, 0.2288, 0.2010, 0.1805, 0.1761])
    np.testing.assert_allclose(dg2.depth_m.max(axis=0),
                               [0.3251, 0.2745, 0.2275, 0.2002, 0.1800, 0.1755])
    assert acc.times_s[-1] == pytest.approx(18000.405)
    np.testing.assert_allclose(acc.xy_m, ea.read_stage_points(test4_dir / "ea4.stage"))
    arrivals = [ea.arrival_time_s(acc.times_s, acc.depth_m[:, i]) for i in range(6)]
    assert 600 < arrivals[0] < 700 and 3600 < arrivals[4] < 3720 and 3900 < arrivals[5] < 4000
    assert np.all(np.diff(arrivals[:5]) > 0)


def test_arrival_and_rmse_metrics(ea):
    t = np.array([0.0, 10.0, 20.0])
    assert ea.arrival_time_s(t, np.array([0.0, 0.0, 0.02]), 0.01) == pytest.approx(15.0)
    assert np.isnan(ea.arrival_time_s(t, np.zeros(3), 0.01))
    assert ea.rmse_on_reference(t, np.zeros(3), t, np.full(3, 0.5)) == pytest.approx(0.5)


# --- Merewether files -----------------------------------------------------------------------


def test_merewether_dem_and_layers(mw):
    assert mw.elevation_m.shape == (416, 321)
    assert mw.crs.to_epsg() == 32756
    assert mw.cell_size_m == pytest.approx(0.99993681)
    assert np.isnan(mw.elevation_m).sum() == 73
    # PROVENANCE.md says all in the first column; in fact 41 at the top of the west column
    # and 32 at the east end of the south row, both on high ground away from the flow
    assert np.isnan(mw.elevation_m[:41, 0]).all() and np.isnan(mw.elevation_m[-1, 289:]).all()
    assert np.nanmin(mw.elevation_m) == pytest.approx(16.4731, abs=1e-4)
    assert np.nanmax(mw.elevation_m) == pytest.approx(51.9693, abs=1e-4)
    assert len(mw.houses) == 57
    assert "house032_033" in mw.houses and "house030" not in mw.houses
    blocked = mw.blocked()
    area = sum(p.area for p in mw.houses.values())
    # rasterised footprints (+ the 73 NODATA cells) match the polygon area to a few per cent
    assert (blocked.sum() - 73) * mw.cell_size_m**2 == pytest.approx(area, rel=0.03)
    n = mw.manning_n()
    assert set(np.unique(n)) == {0.02, 0.04}
    assert (n == 0.02).sum() * mw.cell_size_m**2 == pytest.approx(mw.road.intersection(
        mw.extent).area, rel=0.03)


def test_merewether_observations(mw):
    mod = _module("merewether_data")
    assert mod.INFLOW_M3_S == 19.7
    obs = {o.point_id: o for o in mw.observations}
    assert sorted(obs) == ["0", "1", "2", "3", "4"]
    assert obs["4"].observed_m == 23.01 and obs["4"].tuflow_m == 22.77
    assert obs["2"].observed_draft_m == 23.5
    assert mw.transect_distance_m.tolist() == [3.0 * k for k in range(12)]
    assert mw.transect_speed_m_s.max() == 3.7
    assert mw.transect_depth_m.max() == 0.55
    xy = mw.transect_xy_m()
    np.testing.assert_allclose(xy[0], mod.TRANSECT_START_M)


def test_merewether_coarsening_keeps_georeference(mw):
    c2 = mw.coarsened(2)
    assert c2.elevation_m.shape == (208, 160)
    assert c2.cell_size_m == pytest.approx(2 * mw.cell_size_m)
    assert (c2.transform.c, c2.transform.f) == (mw.transform.c, mw.transform.f)
    assert np.nanmean(c2.elevation_m) == pytest.approx(np.nanmean(mw.elevation_m), abs=0.2)


# --- coarse engine runs -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ea4_coarse(test4_dir):
    """EA Test 4 on a 20 m grid, the full 5 h, depths every 60 s at the six points."""
    pytest.importorskip("citytwin.physics.flood")
    v = _module("ea4_validation")
    case = v.load_ea4(test4_dir)
    reference = v.read_stage_output(test4_dir / "reference" / "ea4-1m-acc.stage")
    result = v.run_case(case, 20.0, record_step_s=60.0)
    return case, reference, result, v.compare(case, result, reference)


def test_ea4_coarse_wave_order_and_arrival(ea4_coarse):
    *_, rows = ea4_coarse
    arrivals = [r["arrival_s"] for r in rows]
    # along the axis y = 1000 m the front reaches 50, 100, 200, 300, 400 m in that order
    assert np.all(np.diff(arrivals[:5]) > 0)
    assert arrivals[5] > arrivals[3]  # point 6 (300, 1300) after point 4 (300, 1000)
    for r in rows[:5]:  # loose at 20 m (the validation applies +-5 min at 5 and 10 m)
        assert abs(r["arrival_s"] - r["ref_arrival_s"]) < 600.0, r


def test_ea4_coarse_peak_depths(ea4_coarse):
    *_, rows = ea4_coarse
    peaks = [r["peak_m"] for r in rows]
    assert np.all(np.diff(peaks[:5]) < 0)  # shallower away from the inflow
    for r in rows:  # loose at 20 m (the validation applies +-2 cm at 5 and 10 m)
        assert r["peak_m"] == pytest.approx(r["ref_peak_m"], abs=0.03), r


def test_ea4_coarse_volume(ea4_coarse):
    _, _, result, _ = ea4_coarse
    mb = result["engine"].mass_balance()
    assert mb.inflow_m3 == pytest.approx(285_000.0, rel=1e-9)
    assert abs(mb.relative_error) < 1e-9


def test_merewether_coarse_run(merewether_dir):
    """4 m cells, 600 s: water reaches every observation point and the volume balances."""
    pytest.importorskip("citytwin.physics.flood")
    v = _module("merewether_validation")
    case = v.load_merewether(merewether_dir).coarsened(4)
    blocked = case.blocked()
    inflows = v.inlet_inflows(case, blocked)
    assert sum(i.hydrograph.at(0.0) for i in inflows) == pytest.approx(19.7)
    result = v.run_case(case, duration_s=600.0)
    for item in result["observations"]:
        assert item["steady_wse_m"] > item["ground_m"] + 0.01, item
        assert abs(item["steady_wse_m"] - item["obs"].observed_m) < 1.0, item
    mb = result["engine"].mass_balance()
    assert mb.inflow_m3 == pytest.approx(19.7 * 600.0, rel=1e-9)
    assert abs(mb.relative_error) < 1e-9


def test_validation_rows_say_skipped_without_shared(monkeypatch, tmp_path):
    """Without ../shared each case returns one row with ``passed`` None (not a silent pass)."""
    for name, attr in (("ea4_validation", "TEST4_DIR"), ("merewether_validation", "CASE_DIR")):
        module = _module(name)
        monkeypatch.setattr(module, attr, tmp_path / "absent")
        rows = module.run()
        assert len(rows) == 1
        assert rows[0]["passed"] is None and rows[0]["metric"].startswith("SKIPPED")
        assert set(rows[0]) == {"engine", "case", "metric", "value", "criterion", "passed",
                                "wall_s"}
