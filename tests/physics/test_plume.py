"""Gaussian puff plume: analytic cases, conservation, wind shifts, calm, stepping."""

import math

import numpy as np
import pytest
from shapely.geometry import Point

from citytwin.physics import puffsum
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.gas import kg_m3_to_ppm, ppm_to_lel_pct
from citytwin.physics.plume import GaussianPuffPlume


def plume(**overrides) -> GaussianPuffPlume:
    kwargs = dict(
        source_xy_m=(0.0, 0.0),
        source_height_m=1.0,
        release=ReleaseSchedule.constant(0.0, math.inf, 0.1),
        wind=WindSeries.constant(5.0, 270.0),
        stability="D",
        terrain="rural",
    )
    kwargs.update(overrides)
    return GaussianPuffPlume(**kwargs)


def steady_plume_kg_m3(x, y, z, q, u, h, stability, terrain, sigma0):
    """Steady Gaussian plume with ground reflection (PHYSICS.md), Briggs sigmas by hand
    (rural D and urban D rows) with the source size added in quadrature."""
    if (stability, terrain) == ("D", "rural"):
        sy = 0.08 * x * (1 + 0.0001 * x) ** -0.5
        sz = 0.06 * x * (1 + 0.0015 * x) ** -0.5
    elif (stability, terrain) == ("D", "urban"):
        sy = 0.16 * x * (1 + 0.0004 * x) ** -0.5
        sz = 0.14 * x * (1 + 0.0003 * x) ** -0.5
    else:
        raise NotImplementedError
    sy = np.sqrt(sigma0**2 + sy**2)
    sz = np.sqrt(sigma0**2 + sz**2)
    vert = np.exp(-((z - h) ** 2) / (2 * sz**2)) + np.exp(-((z + h) ** 2) / (2 * sz**2))
    return q / (2 * math.pi * u * sy * sz) * np.exp(-(y**2) / (2 * sy**2)) * vert


def test_single_puff_by_hand():
    # 1 kg released over [0, 1] s -> one puff born at t = 0.5 s. Wind 2 m/s from the west.
    # At t = 50.5 s: centre (100, 0), travel 100 m. Urban D, sigma0 = 1 m:
    #   sigma_y(100) = 16/sqrt(1.04) = 15.6893 -> sigma_h = sqrt(1 + 15.6893^2) = 15.7211
    #   sigma_z(100) = 14/sqrt(1.03) = 13.7946 -> sigma_z = sqrt(1 + 13.7946^2) = 13.8308
    p = plume(
        release=ReleaseSchedule.constant(0.0, 1.0, 1.0),
        wind=WindSeries.constant(2.0, 270.0),
        terrain="urban",
        source_height_m=2.0,
    )
    p.advance_to(50.5)
    assert p.puff_count == 1
    puffs = p.puffs()
    assert puffs["x_m"][0] == pytest.approx(100.0) and puffs["y_m"][0] == pytest.approx(0.0)
    sh = math.sqrt(1 + (16 / math.sqrt(1.04)) ** 2)
    sz = math.sqrt(1 + (14 / math.sqrt(1.03)) ** 2)
    assert sh == pytest.approx(15.7211, rel=1e-5) and sz == pytest.approx(13.8308, rel=1e-5)
    assert puffs["sigma_h_m"][0] == pytest.approx(sh, rel=1e-12)
    assert puffs["sigma_z_m"][0] == pytest.approx(sz, rel=1e-12)

    def by_hand(x, y, z):
        r2 = (x - 100.0) ** 2 + y**2
        vert = math.exp(-((z - 2) ** 2) / (2 * sz**2)) + math.exp(-((z + 2) ** 2) / (2 * sz**2))
        return 1.0 / ((2 * math.pi) ** 1.5 * sh**2 * sz) * math.exp(-r2 / (2 * sh**2)) * vert

    pts = np.array([[100.0, 0.0, 2.0], [100.0, 0.0, 0.0], [120.0, -10.0, 1.5], [70.0, 5.0, 10.0]])
    expected = [by_hand(*pt) for pt in pts]
    # centre at z = H = 2: 1/((2 pi)^1.5 * 247.153 * 13.8308) * (1 + exp(-4^2/(2 * 191.29)))
    #   = 1/53837 * 1.95904 = 3.6388e-5 kg/m3
    assert expected[0] == pytest.approx(3.6388e-5, rel=1e-4)
    np.testing.assert_allclose(p.sample("ch4_kg_m3", pts), expected, rtol=1e-12)


def test_single_puff_mass_integral():
    p = plume(release=ReleaseSchedule.constant(0.0, 1.0, 1.0), terrain="urban")
    p.advance_to(40.5)  # centre at 200 m
    pf = p.puffs()
    sh, sz, cx = pf["sigma_h_m"][0], pf["sigma_z_m"][0], pf["x_m"][0]
    n = 81
    dx = 10 * sh / n
    xs = cx - 5 * sh + (np.arange(n) + 0.5) * dx
    ys = -5 * sh + (np.arange(n) + 0.5) * dx
    dz = (1.0 + 6 * sz) / 60
    zs = (np.arange(60) + 0.5) * dz
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    conc = p.sample("ch4_kg_m3", np.column_stack([X.ravel(), Y.ravel(), Z.ravel()]))
    assert conc.sum() * dx * dx * dz == pytest.approx(1.0, rel=0.01)
    assert p.mass_airborne_kg() == pytest.approx(1.0)
    assert p.released_mass_kg() == pytest.approx(1.0)


@pytest.mark.parametrize("x", [200.0, 500.0])
def test_crosswind_mass_flux_equals_release_rate(x):
    """u ∫∫ C dy dz = Q. The puffs also spread along the wind, which adds about
    (sigma_y/x)^2 to the advective flux (0.6 % in rural D); within 2 %."""
    q, u = 0.1, 5.0
    p = plume(release=ReleaseSchedule.constant(0.0, math.inf, q), wind=WindSeries.constant(u, 270))
    p.advance_to(600.0)
    sy = 0.08 * x * (1 + 0.0001 * x) ** -0.5
    sz = 0.06 * x * (1 + 0.0015 * x) ** -0.5
    ys = np.linspace(-6 * sy, 6 * sy, 241)
    zs = np.linspace(0.0, 8 * sz, 161)
    Y, Z = np.meshgrid(ys, zs, indexing="ij")
    pts = np.column_stack([np.full(Y.size, x), Y.ravel(), Z.ravel()])
    conc = p.sample("ch4_kg_m3", pts).reshape(Y.shape)
    flux = u * np.trapezoid(np.trapezoid(conc, zs, axis=1), ys)
    assert flux == pytest.approx(q, rel=0.02)


@pytest.mark.parametrize("terrain", ["rural", "urban"])
def test_steady_train_matches_gaussian_plume(terrain):
    q, u, h = 0.1, 5.0, 1.0
    p = plume(
        release=ReleaseSchedule.constant(0.0, math.inf, q),
        wind=WindSeries.constant(u, 270),
        terrain=terrain,
        source_height_m=h,
    )
    p.advance_to(600.0)
    xs = np.arange(100.0, 1001.0, 50.0)
    pts = np.column_stack([xs, np.zeros_like(xs), np.full_like(xs, 1.5)])
    puff = p.sample("ch4_kg_m3", pts)
    analytic = steady_plume_kg_m3(xs, 0.0, 1.5, q, u, h, "D", terrain, p.initial_sigma_m)
    np.testing.assert_allclose(puff, analytic, rtol=0.05)


def test_default_puff_interval_gives_smooth_near_field():
    """1 s puffs at 5 m/s (5 m apart): no visible puff-to-puff ripple beyond 20 m (urban D)."""
    p = plume(terrain="urban")
    p.advance_to(300.0)
    xs = np.arange(20.0, 100.0, 0.25)
    pts = np.column_stack([xs, np.zeros_like(xs), np.full_like(xs, 1.5)])
    ratio = p.sample("ch4_kg_m3", pts) / steady_plume_kg_m3(
        xs, 0.0, 1.5, 0.1, 5.0, 1.0, "D", "urban", p.initial_sigma_m
    )
    assert np.all(np.abs(ratio - 1.0) < 0.02)


def test_zero_before_release_starts():
    p = plume(release=ReleaseSchedule.constant(100.3, 400.0, 0.5))
    pts = np.column_stack([np.linspace(-50, 500, 200), np.zeros(200), np.full(200, 1.0)])
    for t in (0.0, 50.0, 100.0, 100.3):
        p.advance_to(t)
        assert p.puff_count == 0
        assert np.all(p.sample("ch4_ppm", pts) == 0.0)
        assert p.released_mass_kg() == 0.0
    p.advance_to(100.8)
    assert p.puff_count == 1
    assert p.released_mass_kg() == pytest.approx(0.5 * 0.5)
    assert p.sample("ch4_ppm", np.array([[0.0, 0.0, 1.0]]))[0] > 0.0


def test_source_clears_after_release_stops():
    p = plume(release=ReleaseSchedule.constant(0.0, 300.0, 0.1))
    src = np.array([[0.0, 0.0, 1.5], [20.0, 0.0, 1.5]])
    p.advance_to(200.0)
    during = p.sample("ch4_kg_m3", src)
    assert np.all(during > 1e-5)
    p.advance_to(3000.0)  # last puff left the source 2700 s ago at 5 m/s
    after = p.sample("ch4_kg_m3", src)
    assert np.all(after < 1e-12 * during)
    assert p.released_mass_kg() == pytest.approx(30.0)


def test_wind_shift_turns_new_puffs_north():
    # wind from the west until 600 s, then from the south; release starts after the shift
    wind = WindSeries(
        np.array([0.0, 600.0, 601.0]), np.array([4.0, 4.0, 4.0]), np.array([270.0, 270.0, 180.0])
    )
    p = plume(wind=wind, release=ReleaseSchedule.constant(700.0, math.inf, 0.1))
    p.advance_to(1000.0)
    north = p.sample("ch4_ppm", np.array([[0.0, 300.0, 1.5], [0.0, 800.0, 1.5]]))
    east = p.sample("ch4_ppm", np.array([[300.0, 0.0, 1.5], [800.0, 0.0, 1.5]]))
    assert np.all(north > 1.0)
    assert np.all(east < 1e-6 * north)
    assert np.all(p.puffs()["y_m"] >= 0.0)
    np.testing.assert_allclose(p.puffs()["x_m"], 0.0, atol=1e-9)


def test_wind_shift_moves_existing_cloud():
    wind = WindSeries(
        np.array([0.0, 300.0, 301.0]), np.array([4.0, 4.0, 4.0]), np.array([270.0, 270.0, 180.0])
    )
    p = plume(wind=wind, release=ReleaseSchedule.constant(0.0, 100.0, 0.1))
    p.advance_to(500.0)
    pf = p.puffs()
    # every puff went east until 300 s, then north for 199.5 s
    np.testing.assert_allclose(pf["y_m"], 4.0 * 199.5 + 4.0 * (300.5 - 300.0) / 2, atol=3.0)
    assert np.all(pf["x_m"] > 4.0 * 200 - 10)


def test_calm_stays_finite_and_near_source():
    p = plume(
        wind=WindSeries.constant(0.0, 0.0),
        release=ReleaseSchedule.constant(0, 600, 0.01),
        merge=False,  # pins the per-puff travel of unmerged puffs
    )
    p.advance_to(900.0)
    pf = p.puffs()
    np.testing.assert_array_equal(pf["x_m"], 0.0)
    np.testing.assert_array_equal(pf["y_m"], 0.0)
    # sigma grows with the calm travel 0.5 m/s * age, so the cloud still dilutes
    assert pf["travel_m"].max() == pytest.approx(0.5 * 899.5)
    pts = np.array([[0.0, 0.0, 1.5], [30.0, 0.0, 1.5], [1000.0, 0.0, 1.5]])
    for quantity in p.info:
        values = p.sample(quantity, pts)
        assert np.all(np.isfinite(values))
    conc = p.sample("ch4_kg_m3", pts)
    assert conc[0] > conc[1] > 0.0 and conc[2] == 0.0
    xmin, ymin, xmax, ymax = p.default_bounds()
    assert max(-xmin, -ymin, xmax, ymax) < 4 * pf["sigma_h_m"].max() + 1e-9
    assert p.mass_airborne_kg() == pytest.approx(6.0)


def test_calm_growth_off_keeps_source_size():
    p = plume(
        wind=WindSeries.constant(0.0, 0.0),
        calm_wind_m_s=0.0,
        release=ReleaseSchedule.constant(0, 10, 0.01),
    )
    p.advance_to(100.0)
    np.testing.assert_allclose(p.puffs()["sigma_h_m"], p.initial_sigma_m)
    assert np.all(np.isfinite(p.sample("ch4_ppm", np.zeros((1, 3)))))


def test_linear_in_release_rate():
    wind = WindSeries(np.array([0.0, 400.0]), np.array([3.0, 6.0]), np.array([250.0, 300.0]))
    rel = ReleaseSchedule(np.array([0.0, 100.0, 500.0]), np.array([0.05, 0.2, 0.0]))
    rel3 = ReleaseSchedule(rel.times_s, 3 * rel.rate_kg_s)
    a = plume(wind=wind, release=rel, min_conc_kg_m3=0.0)
    b = plume(wind=wind, release=rel3, min_conc_kg_m3=0.0)
    a.advance_to(700.0)
    b.advance_to(700.0)
    rng = np.random.default_rng(3)
    pf = a.puffs()
    near = rng.integers(0, a.puff_count, 500)
    pts = np.column_stack(
        [
            pf["x_m"][near] + rng.normal(0, 30, 500),
            pf["y_m"][near] + rng.normal(0, 30, 500),
            rng.uniform(0, 5, 500),
        ]
    )
    ca = a.sample("ch4_kg_m3", pts)
    assert np.count_nonzero(ca) > 400
    np.testing.assert_allclose(b.sample("ch4_kg_m3", pts), 3 * ca, rtol=1e-12)


def shifting_plume(**overrides):
    wind = WindSeries(
        np.array([0.0, 600.0, 900.0]), np.array([4.0, 2.0, 5.0]), np.array([270.0, 200.0, 120.0])
    )
    rel = ReleaseSchedule(np.array([30.0, 400.0, 1000.0]), np.array([0.02, 0.1, 0.0]))
    return plume(wind=wind, release=rel, terrain="urban", **overrides)


@pytest.mark.skipif(not puffsum.HAVE_NUMBA, reason="numba not installed")
def test_numba_path_equals_numpy_path():
    fast = shifting_plume(backend="numba")
    slow = shifting_plume(backend="numpy")
    fast.advance_to(1200.0)
    slow.advance_to(1200.0)
    rng = np.random.default_rng(11)
    pts = np.column_stack(
        [
            rng.uniform(-1000, 3000, 4000),
            rng.uniform(-1000, 3000, 4000),
            rng.choice([0.0, 1.5, 3.0], 4000),
        ]
    )
    ref = slow.sample("ch4_kg_m3", pts)
    assert np.count_nonzero(ref) > 500
    np.testing.assert_allclose(fast.sample("ch4_kg_m3", pts), ref, rtol=1e-12, atol=0.0)
    pts[:, 2] = rng.uniform(0.0, 4.0, 4000)  # every point at its own height
    np.testing.assert_allclose(
        fast.sample("ch4_kg_m3", pts), slow.sample("ch4_kg_m3", pts), rtol=1e-12, atol=0.0
    )


def test_incremental_advance_equals_one_shot():
    # unmerged puffs (> 100 of them); with merging: tests/physics/test_plume_merging.py
    one = shifting_plume(merge=False)
    one.advance_to(1234.5)
    many = shifting_plume(merge=False)
    rng = np.random.default_rng(5)
    t = 0.0
    while t < 1234.5:
        t = min(1234.5, t + float(rng.uniform(0.01, 3.7)))
        many.advance_to(t)
    assert many.t_s == one.t_s == 1234.5
    a, b = one.puffs(), many.puffs()
    assert one.puff_count == many.puff_count > 100
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-9)
    pts = np.column_stack(
        [np.linspace(-500, 3000, 300), np.linspace(-500, 2000, 300), np.full(300, 1.5)]
    )
    np.testing.assert_allclose(
        many.sample("ch4_ppm", pts), one.sample("ch4_ppm", pts), rtol=1e-12, atol=0.0
    )
    assert many.released_mass_kg() == pytest.approx(one.released_mass_kg(), rel=1e-12)


def test_mass_balance_with_dropping():
    p = shifting_plume(max_range_m=1500.0, merge=False)
    p.advance_to(1100.0)
    assert p.puff_count > 100
    assert p.dropped_mass_kg() > 0.0
    total = p.mass_airborne_kg() + p.dropped_mass_kg()
    assert total == pytest.approx(p.released_mass_kg(), rel=1e-12)
    assert p.released_mass_kg() == pytest.approx(0.02 * 370 + 0.1 * 600)
    d = np.hypot(p.puffs()["x_m"], p.puffs()["y_m"])
    assert d.max() <= 1500.0


def test_unit_conversions_consistent():
    p = shifting_plume(lel_vol_frac=0.044, temperature_k=278.15, pressure_pa=98_000.0)
    p.advance_to(800.0)
    pts = np.column_stack([np.linspace(0, 800, 50), np.linspace(0, 300, 50), np.full(50, 1.5)])
    kg = p.sample("ch4_kg_m3", pts)
    ppm = p.sample("ch4_ppm", pts)
    lel = p.sample("ch4_lel_pct", pts)
    assert np.count_nonzero(kg) > 10
    np.testing.assert_allclose(ppm, kg_m3_to_ppm(kg, 278.15, 98_000.0), rtol=1e-12)
    np.testing.assert_allclose(lel, ppm / 440.0, rtol=1e-12)  # 1 %LEL = 440 ppm (IEC basis)
    np.testing.assert_allclose(lel, ppm_to_lel_pct(ppm, 0.044), rtol=1e-12)


def test_field_and_footprint():
    p = plume(release=ReleaseSchedule.constant(0.0, math.inf, 0.05))
    p.advance_to(300.0)
    grid = p.field("ch4_lel_pct", resolution_m=5.0)
    np.testing.assert_allclose(
        grid.values.ravel(), p.sample("ch4_lel_pct", grid.points_xyz()), rtol=1e-12
    )
    xmin, ymin, xmax, ymax = grid.bounds
    assert xmin < 0.0 < xmax and ymin < 0.0 < ymax
    assert xmax > 1400.0  # the cloud front is at 5 m/s * 300 s = 1500 m
    fp = p.footprint("ch4_ppm", 100.0)
    peak_xy = grid.points_xyz()[np.argmax(grid.values), :2]
    assert fp.contains(Point(*peak_xy))
    # the 100 ppm area is a narrow plume downwind of the source
    minx, miny, maxx, maxy = fp.bounds
    assert minx < 10.0 and maxx > 50.0 and maxy - miny < maxx - minx


def test_constructor_errors():
    with pytest.raises(ValueError, match="puff_interval_s"):
        plume(puff_interval_s=0.0)
    with pytest.raises(ValueError, match="initial_sigma_m"):
        plume(initial_sigma_m=0.0)
    with pytest.raises(ValueError, match="'G'"):
        plume(stability="G")
    with pytest.raises(ValueError, match="'forest'"):
        plume(terrain="forest")
    with pytest.raises(TypeError, match="ReleaseSchedule"):
        plume(release=0.1)
    with pytest.raises(ValueError, match="backend"):
        plume(backend="gpu")


def test_forecast_copy_holds_the_wind_observed_now():
    """A forecast made at 600 s knows the westerly blowing then, not the later shift to a
    southerly that the scenario scripts for 1200 s (persistence)."""
    from citytwin.physics.forcing import ReleaseSchedule, WindSeries
    from citytwin.physics.plume import GaussianPuffPlume

    wind = WindSeries(np.array([0.0, 1000.0, 1200.0]), np.array([3.0, 3.0, 3.0]),
                      np.array([270.0, 270.0, 180.0]))
    plume = GaussianPuffPlume(source_xy_m=(0.0, 0.0), source_height_m=1.0,
                              release=ReleaseSchedule.constant(0.0, 1e9, 1.0), wind=wind)
    plume.advance_to(600.0)
    ahead = plume.forecast_copy()
    ahead.advance_to(1800.0)
    truth = plume.forecast_copy()
    truth.wind = wind  # the scripted future
    truth.advance_to(1800.0)
    east, north = np.array([[1500.0, 0.0, 1.5]]), np.array([[0.0, 1500.0, 1.5]])
    assert ahead.sample("ch4_kg_m3", east)[0] > 100 * ahead.sample("ch4_kg_m3", north)[0]
    assert truth.sample("ch4_kg_m3", north)[0] > 100 * ahead.sample("ch4_kg_m3", north)[0]
    assert plume.t_s == 600.0
