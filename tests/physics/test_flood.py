"""Local-inertial flood engine (``physics.flood``): conservation, boundaries, forcing, backends,
analytic dam break, hazard rating, input errors, twin coupling. No timing assertions."""

import math

import numpy as np
import pytest
from affine import Affine

from citytwin.physics import flood_kernels as fk
from citytwin.physics.flood import (
    DEFAULT_INLET_CAPACITY_M3_S,
    DrainInlets,
    Hydrograph,
    LineInflow,
    LocalInertialFlood,
    PointInflow,
    StageBoundary,
    hazard_class,
    hazard_rating,
)
from citytwin.physics.rainfall import MM_H_TO_M_S, RainSeries, chicago_storm, chicago_total_mm
from citytwin.twin.errors import InputError

G = 9.81
BACKENDS = ["numba", "numpy"] if fk.HAVE_NUMBA else ["numpy"]


def transform(nrows: int, dx: float = 5.0, x0: float = 0.0) -> Affine:
    return Affine(dx, 0.0, x0, 0.0, -dx, nrows * dx)


def rough_bed(nr: int, nc: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 2.0, (nr, nc))


# --------------------------------------------------------------------------- forcing types
def test_hydrograph_volume_is_the_exact_integral():
    hy = Hydrograph(np.array([0.0, 100.0, 200.0]), np.array([0.0, 10.0, 0.0]))
    assert hy.volume_m3(0.0, 200.0) == pytest.approx(1000.0, rel=1e-14)
    # q(50) = 5, q(100) = 10, q(150) = 5: two trapezoids of 50 s
    assert hy.volume_m3(50.0, 150.0) == pytest.approx(750.0, rel=1e-14)
    assert hy.volume_m3(-100.0, 0.0) == 0.0  # end values held (0)
    assert hy.volume_m3(150.0, 50.0) == 0.0
    ramp = Hydrograph(np.array([0.0, 10.0]), np.array([2.0, 4.0]))
    assert ramp.volume_m3(-10.0, 20.0) == pytest.approx(2 * 10 + 30 + 4 * 10, rel=1e-14)
    assert ramp.at(5.0) == 3.0 and ramp.at(99.0) == 4.0
    # sum over arbitrary sub-intervals == whole
    cuts = np.sort(np.random.default_rng(1).uniform(0, 200, 37))
    edges = np.concatenate(([0.0], cuts, [200.0]))
    parts = sum(hy.volume_m3(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True))
    assert parts == pytest.approx(1000.0, rel=1e-13)


# --------------------------------------------------------------------------- at rest, boundaries
@pytest.mark.parametrize("backend", BACKENDS)
def test_lake_at_rest_on_rough_bed_with_islands(backend):
    z = rough_bed(24, 30, seed=3)
    level = 1.3  # ~1/3 of the cells stick out as islands
    h0 = np.maximum(level - z, 0.0)
    model = LocalInertialFlood(z, transform(24), initial_depth_m=h0, manning_n=0.02,
                               boundaries="closed", backend=backend)
    model.advance_to(300.0)
    assert model.steps > 50
    assert np.max(np.abs(model.depth_m - h0)) < 1e-12
    assert float(np.max(model.max_velocity_m_s)) < 1e-10
    assert np.max(np.abs(model.qx_m2_s)) < 1e-12 and np.max(np.abs(model.qy_m2_s)) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_closed_boundaries_lose_no_water(backend):
    nr, nc = 12, 40
    z = np.zeros((nr, nc))
    h0 = np.tile(np.linspace(2.0, 0.2, nc), (nr, 1))  # tilted surface: sloshes against walls
    model = LocalInertialFlood(z, transform(nr), initial_depth_m=h0, manning_n=0.01,
                               boundaries="closed", backend=backend)
    model.advance_to(200.0)
    mb = model.mass_balance()
    assert mb.boundary_out_m3 == 0.0 and mb.boundary_in_m3 == 0.0
    assert abs(mb.storage_m3 - mb.initial_m3) / mb.initial_m3 < 1e-13
    assert abs(mb.relative_error) < 1e-13
    assert np.ptp(model.depth_m) < np.ptp(h0)  # it did move


@pytest.mark.parametrize("backend", BACKENDS)
def test_free_boundary_lets_water_leave_and_accounts_for_it(backend):
    nr, nc = 10, 30
    z = np.tile(np.linspace(3.0, 0.0, nc), (nr, 1))  # slopes down to the east (1 %)
    model = LocalInertialFlood(z, transform(nr), initial_depth_m=0.2, manning_n=0.03,
                               boundaries={"east": "free"}, backend=backend)
    model.advance_to(900.0)
    mb = model.mass_balance()
    assert mb.boundary_out_m3 > 0.5 * mb.initial_m3
    assert mb.boundary_in_m3 == 0.0  # a free edge never lets water in
    assert mb.boundary_net_out_m3 == mb.boundary_out_m3
    assert abs(mb.relative_error) < 1e-12
    assert mb.storage_m3 == pytest.approx(mb.initial_m3 - mb.boundary_out_m3, rel=1e-10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_stage_boundary_fills_a_basin_to_the_stage(backend):
    nr, nc = 8, 20
    z = np.zeros((nr, nc))
    model = LocalInertialFlood(z, transform(nr), manning_n=0.1,  # rough: the seiche damps
                               boundaries={"west": StageBoundary(1.0)}, backend=backend)
    model.advance_to(3600.0)
    assert np.max(np.abs(model.depth_m - 1.0)) < 1e-3
    mb = model.mass_balance()
    assert -mb.boundary_net_out_m3 == pytest.approx(mb.storage_m3, rel=1e-10)
    assert mb.boundary_in_m3 > mb.storage_m3  # it sloshed in and out through the edge
    assert abs(mb.relative_error) < 1e-12
    # a basin above the stage drains down to it
    high = LocalInertialFlood(z, transform(nr), initial_depth_m=1.5, manning_n=0.1,
                              boundaries={"west": StageBoundary(1.0)}, backend=backend)
    high.advance_to(3600.0)
    assert np.max(np.abs(high.depth_m - 1.0)) < 1e-3
    assert high.mass_balance().boundary_net_out_m3 == pytest.approx(0.5 * nr * nc * 25.0,
                                                                     rel=1e-3)


def test_stage_boundary_holds_the_level_and_can_vary_in_time():
    nr, nc = 6, 10
    z = rough_bed(nr, nc, seed=5) * 0.5
    still = LocalInertialFlood(z, transform(nr), initial_depth_m=2.0 - z,
                               boundaries=StageBoundary(2.0))
    still.advance_to(120.0)
    assert np.max(np.abs(still.depth_m + z - 2.0)) < 1e-12
    ramp = Hydrograph(np.array([0.0, 600.0]), np.array([1.0, 2.0]))
    rising = LocalInertialFlood(np.zeros((nr, nc)), transform(nr), initial_depth_m=1.0,
                                boundaries={"north": StageBoundary(ramp)})
    rising.advance_to(1800.0)
    assert np.max(np.abs(rising.depth_m - 2.0)) < 1e-3


# --------------------------------------------------------------------------- forcing budget
def budget_model(backend: str, **extra) -> LocalInertialFlood:
    nr, nc = 16, 20
    z = rough_bed(nr, nc, seed=11)
    blocked = np.zeros((nr, nc), dtype=bool)
    blocked[5:8, 6:9] = True
    hydro = Hydrograph(np.array([0.0, 120.0, 400.0]), np.array([0.0, 2.0, 0.5]))
    inflows = (
        PointInflow(12.5, 62.5, hydro, name="pipe"),
        LineInflow(52.5, 2.5, 52.5, 40.0, Hydrograph(np.array([0.0]), np.array([0.3])),
                   name="weir"),
    )
    drains = DrainInlets(np.array([72.5, 72.5, 27.5]), np.array([32.5, 32.5, 12.5]),
                         np.array([0.05, 0.02, 0.1]), ("g1", "g2", "g3"))
    return LocalInertialFlood(
        z, transform(nr), manning_n=0.03, rain=RainSeries.constant(36.0, 0.0, 500.0),
        infiltration_mm_h=5.0, inflows=inflows, drains=drains, blocked=blocked,
        boundaries={"east": "free", "south": StageBoundary(0.5)}, backend=backend, **extra)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rain_inflow_drains_and_losses_close_the_budget(backend):
    model = budget_model(backend)
    model.advance_to(600.0)
    mb = model.mass_balance()
    n_open = int((~model.blocked).sum())
    rain = 36.0 * MM_H_TO_M_S * 500.0 * n_open * model.cell_area_m2
    assert mb.rain_m3 == pytest.approx(rain, rel=1e-12)
    inflow = sum(q.hydrograph.volume_m3(0.0, 600.0) for q in model.inflows)
    assert mb.inflow_m3 == pytest.approx(inflow, rel=1e-12)
    assert mb.infiltration_m3 > 0.0 and mb.drained_m3 > 0.0 and mb.boundary_out_m3 > 0.0
    assert abs(mb.relative_error) < 1e-12
    assert np.all(model.depth_m[model.blocked] == 0.0)
    assert np.all(model.depth_m >= 0.0)
    # drained never exceeds capacity · time, per inlet
    assert np.all(model.drained_by_inlet_m3 <= model.drains.capacity_m3_s * 600.0 * (1 + 1e-12))
    # the log has one entry per output interval and each one balances
    assert [b.t_s for b in model.balance_log] == pytest.approx(np.arange(60.0, 601.0, 60.0))
    assert max(abs(b.relative_error) for b in model.balance_log) < 1e-12


def test_drains_remove_at_most_capacity_and_never_more_than_present():
    h = np.full((3, 3), 0.1)
    area = 25.0  # 2.5 m³ per cell
    for drain in (fk.drains_numpy, fk.drains_numba) if fk.HAVE_NUMBA else (fk.drains_numpy,):
        hh = h.copy()
        rows, cols = np.array([1, 1, 0]), np.array([1, 1, 0])
        removed = drain(hh, rows, cols, np.array([2.0, 2.0, 1.0]), area)
        # first inlet takes its 2.0 m³, the second only the 0.5 m³ left, the third its 1.0
        assert removed == pytest.approx([2.0, 0.5, 1.0], rel=1e-14)
        assert hh[1, 1] == 0.0 and hh[0, 0] == pytest.approx(0.06, rel=1e-14)
    # in the engine: a drain far larger than the water empties its cell and never overdraws
    model = LocalInertialFlood(np.zeros((5, 5)), transform(5), initial_depth_m=0.01,
                               drains=DrainInlets([12.5], [12.5], [100.0], ("big",)))
    model.advance_to(600.0)
    mb = model.mass_balance()
    assert mb.drained_m3 <= mb.initial_m3 * (1 + 1e-12)
    assert np.all(model.depth_m >= 0.0) and abs(mb.relative_error) < 1e-12
    # a small drain removes exactly capacity · t while its cell holds water
    small = LocalInertialFlood(np.zeros((5, 5)), transform(5), initial_depth_m=0.01,
                               drains=DrainInlets([12.5], [12.5], [0.001], ("small",)))
    small.advance_to(100.0)
    assert small.mass_balance().drained_m3 == pytest.approx(0.1, rel=1e-12)


# --------------------------------------------------------------------------- backends
def wet_dry_model(backend: str, **extra) -> LocalInertialFlood:
    nr, nc = 20, 26
    rng = np.random.default_rng(7)
    z = rough_bed(nr, nc, seed=7) + np.linspace(0.0, 2.0, nc)
    h0 = np.zeros((nr, nc))
    h0[4:12, 2:9] = 2.5  # a column collapsing over dry, rough ground: moving wet/dry fronts
    n = rng.uniform(0.01, 0.06, (nr, nc))
    blocked = rng.random((nr, nc)) < 0.05
    return LocalInertialFlood(
        z, transform(nr), manning_n=n, initial_depth_m=h0, blocked=blocked,
        rain=RainSeries.constant(20.0), boundaries={"east": "free", "north": StageBoundary(1.0)},
        backend=backend, **extra)


BACKEND_OPTIONS = [
    {},  # defaults: 2-D (vector) friction, θ-weighting "discharge", no Froude cap
    {"advection": True},
    {"friction": "1d"},
    {"theta_weighting": "depth_limited"},
    {"froude_limit": 0.5},  # binds on the collapsing column (checked below)
]


@pytest.mark.skipif(not fk.HAVE_NUMBA, reason="needs numba")
@pytest.mark.parametrize("options", BACKEND_OPTIONS, ids=lambda o: ",".join(o) or "defaults")
def test_numba_and_numpy_backends_agree(options):
    a = wet_dry_model("numba", **options)
    b = wet_dry_model("numpy", **options)
    for t in np.arange(20.0, 201.0, 20.0):
        a.advance_to(t)
        b.advance_to(t)
    assert a.steps == b.steps > 100
    for name in ("depth_m", "qx_m2_s", "qy_m2_s", "max_velocity_m_s", "max_depth_m"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.arrival_time_s, b.arrival_time_s, rtol=0, atol=1e-9)
    wet = a.depth_m > 0.01
    assert 0 < wet.sum() < wet.size  # fronts inside the domain
    assert a.mass_balance().error_m3 == pytest.approx(b.mass_balance().error_m3, abs=1e-9)
    if "froude_limit" in options:
        assert froude_cap_ratio(a) == pytest.approx(1.0, abs=1e-12)  # the cap is reached


def froude_cap_ratio(model: LocalInertialFlood) -> float:
    """Largest |q| / (Fr_max h_f sqrt(g h_f)) over the wet faces of the last step."""
    ratios = []
    for q, hf in ((model.qx_m2_s, model._hfx), (model.qy_m2_s, model._hfy)):
        wet = hf > model.dry_depth_m
        cap = model.froude_limit * hf[wet] * np.sqrt(G * hf[wet])
        ratios.append(np.max(np.abs(q[wet]) / cap, initial=0.0))
    return float(max(ratios))


def test_defaults_are_vector_friction_published_theta_weighting_and_cfl_0_6():
    model = LocalInertialFlood(np.zeros((3, 3)), transform(3))
    assert model.friction == "2d" and model.theta_weighting == "discharge"
    assert model.theta == 0.7 and model.cfl == 0.6 and model.froude_limit == 0.0
    with pytest.raises(InputError, match="friction"):
        LocalInertialFlood(np.zeros((3, 3)), transform(3), friction="3d")
    with pytest.raises(InputError, match="froude_limit"):
        LocalInertialFlood(np.zeros((3, 3)), transform(3), froude_limit=-1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_uniform_diagonal_sheet_flow_obeys_manning(backend):
    """Steady uniform flow down a plane sloping at 45° to the grid: with friction on the
    discharge vector |q| = h^{5/3} S^{1/2} / n (Manning); friction on each face-normal
    component alone gives 2^{1/4} × that (each axis feels slope S/√2 but only its own q)."""
    nc, dx, slope, n, h0 = 80, 5.0, 0.01, 0.03, 0.1
    xc = (np.arange(nc) + 0.5) * dx
    x, y = np.meshgrid(xc, xc[::-1])
    z = -slope * (x + y) / math.sqrt(2.0)
    manning = h0 ** (5.0 / 3.0) * math.sqrt(slope) / n
    centre = slice(35, 45)  # the walls' disturbance travels < 110 m in 60 s
    for friction, expected in (("2d", 1.0), ("1d", 2.0 ** 0.25)):
        model = LocalInertialFlood(z, transform(nc, dx), manning_n=n, initial_depth_m=h0,
                                   friction=friction, backend=backend)
        model.advance_to(60.0)  # ~16 friction relaxation times
        qx = model.qx_m2_s[centre, centre]
        qy = model.qy_m2_s[centre, centre]
        assert np.ptp(model.depth_m[centre, centre]) < 1e-12  # still uniform there
        assert math.hypot(qx.mean(), qy.mean()) / manning == pytest.approx(expected, rel=1e-5)
        assert qx.mean() == pytest.approx(-qy.mean(), rel=1e-12)  # east and north, equal


def test_spreading_from_a_point_is_isotropic_with_vector_friction():
    """Flat plane, 2 m³/s into the centre cell: arrival (1 cm) 150 m away along the axes vs
    along the diagonals. 1-D friction under-resists oblique flow and the flood reaches the
    diagonal points ~15 % sooner; with friction on the discharge vector within 5 %."""
    n, dx, r = 101, 5.0, 150.0
    half = n * dx / 2.0
    axis = [[r, 0.0], [-r, 0.0], [0.0, r], [0.0, -r]]
    d = r / math.sqrt(2.0)
    diagonal = [[d, d], [-d, d], [d, -d], [-d, -d]]
    ratio = {}
    for friction in ("2d", "1d"):
        model = LocalInertialFlood(
            np.zeros((n, n)), Affine(dx, 0.0, -half, 0.0, -dx, half), manning_n=0.05,
            inflows=(PointInflow(0.0, 0.0, Hydrograph.constant(2.0)),), friction=friction)
        model.advance_to(2400.0)
        t_axis = model.arrival_time_at(axis)
        t_diag = model.arrival_time_at(diagonal)
        assert np.all(np.isfinite(t_axis)) and np.all(np.isfinite(t_diag))
        assert np.ptp(t_axis) == 0.0 and np.ptp(t_diag) == 0.0  # 4-fold symmetric
        ratio[friction] = float(t_diag[0] / t_axis[0])
    assert abs(ratio["2d"] - 1.0) < 0.05
    assert ratio["1d"] < 0.88  # the anisotropy the vector friction removes


@pytest.mark.parametrize("backend", BACKENDS)
def test_froude_limit_caps_face_discharge(backend):
    nr, nc = 12, 40
    z = np.tile(np.linspace(10.0, 0.0, nc), (nr, 1))  # 5 % slope to the east, smooth
    kwargs = dict(manning_n=0.012, initial_depth_m=0.05, rain=RainSeries.constant(50.0),
                  boundaries={"east": "free"}, backend=backend)
    free = LocalInertialFlood(z, transform(nr), **kwargs)
    free.advance_to(120.0)
    free.froude_limit = 1.0  # only to measure the ratio: this run had no cap
    assert froude_cap_ratio(free) > 1.5  # supercritical sheet flow without a cap
    capped = LocalInertialFlood(z, transform(nr), froude_limit=1.0, **kwargs)
    capped.advance_to(120.0)
    assert froude_cap_ratio(capped) == pytest.approx(1.0, abs=1e-12)
    assert abs(capped.mass_balance().relative_error) < 1e-12
    u, v = capped.velocity_components()
    assert float(np.max(np.hypot(u, v))) < float(np.max(np.hypot(*free.velocity_components())))


@pytest.mark.skipif(not fk.HAVE_NUMBA, reason="needs numba")
def test_results_do_not_depend_on_the_thread_count():
    before = fk.get_num_threads()
    try:
        runs = []
        for threads in sorted({1, min(2, fk.numba.config.NUMBA_NUM_THREADS)}):
            fk.set_num_threads(threads)
            model = wet_dry_model("numba")
            model._chunks = fk.chunk_bounds(model.shape[0], 3 if threads == 1 else 1)
            model.advance_to(60.0)
            runs.append(model.depth_m.copy())
        single = wet_dry_model("numba")
        single._chunks = np.array([0, single.shape[0]], dtype=np.int64)  # one chunk
        single.advance_to(60.0)
        runs.append(single.depth_m)
    finally:
        fk.set_num_threads(before)
    for other in runs[1:]:
        assert np.array_equal(runs[0], other)


# --------------------------------------------------------------------------- dam break
def ritter_run(n_cells: int, advection: bool = True):
    h0, half, t_end = 1.0, 50.0, 5.0
    dx = 2 * half / n_cells
    xs = -half + (np.arange(n_cells) + 0.5) * dx
    model = LocalInertialFlood(
        np.zeros((1, n_cells)), Affine(dx, 0.0, -half, 0.0, -dx, dx), manning_n=0.0,
        initial_depth_m=np.where(xs < 0.0, h0, 0.0)[None, :], dry_depth_m=1e-6,
        advection=advection)
    model.advance_to(t_end)
    return xs, model


def test_ritter_dry_bed_dam_break():
    """Ritter (1892): h = 4 h0/9 and u = 2 c0/3 at the dam; h = (2 c0 − x/t)²/(9 g)."""
    h0, t = 1.0, 5.0
    c0 = math.sqrt(G * h0)
    xs, model = ritter_run(800)
    h = model.depth_m[0]
    i0 = int(np.searchsorted(xs, 0.0))
    assert 0.5 * (h[i0 - 1] + h[i0]) == pytest.approx(4.0 * h0 / 9.0, rel=0.02)
    u, _ = model.velocity_components(np.zeros(2, dtype=int), np.array([i0 - 1, i0]))
    assert float(np.mean(u)) == pytest.approx(2.0 * c0 / 3.0, rel=0.03)
    # where the analytic depth is 0.1 m: x = t (2 c0 − sqrt(9 g 0.1))
    front = xs[np.flatnonzero(h >= 0.1).max()]
    assert front == pytest.approx(t * (2 * c0 - math.sqrt(9 * G * 0.1)), rel=0.05)
    # undisturbed water behind the rarefaction head at −c0 t (up to a numerical precursor)
    assert np.all(np.abs(h[xs < -1.3 * c0 * t] - h0) < 1e-5)
    assert abs(model.mass_balance().relative_error) < 1e-13
    # the pure local-inertial scheme (no advection) cannot carry the supercritical front:
    _, local = ritter_run(800, advection=False)
    hl = local.depth_m[0]
    assert xs[np.flatnonzero(hl >= 0.1).max()] < 0.8 * front


# --------------------------------------------------------------------------- hazard
def test_hazard_rating_known_values():
    # HR = d (v + 0.5) + DF, FD2321/TR2 Table 3.1 debris factors
    assert hazard_rating(0.2, 0.0) == pytest.approx(0.1)  # d <= 0.25: DF 0
    assert hazard_rating(0.5, 1.0, "urban") == pytest.approx(1.75)  # DF 1
    assert hazard_rating(0.5, 1.0, "woodland") == pytest.approx(1.25)  # DF 0.5
    assert hazard_rating(0.5, 1.0, "pasture") == pytest.approx(0.75)  # DF 0
    assert hazard_rating(1.0, 0.5, "pasture") == pytest.approx(1.5)  # d > 0.75: DF 0.5
    assert hazard_rating(0.5, 2.5, "pasture") == pytest.approx(2.0)  # v > 2: DF 0.5
    assert hazard_rating(0.2, 0.0, "conservative") == pytest.approx(0.6)
    assert hazard_rating(0.0, 3.0) == 0.0
    assert list(hazard_class([0.0, 0.5, 1.0, 1.5, 2.5])) == [
        "none", "low", "moderate", "significant", "extreme"]
    with pytest.raises(ValueError, match="land_use"):
        hazard_rating(1.0, 1.0, "moon")
    # the engine's sampled hazard is the formula on its own depth and speed
    xs, model = ritter_run(200)
    pts = np.column_stack([xs, np.full_like(xs, 0.25), np.zeros_like(xs)])
    d = model.sample("depth_m", pts)
    v = model.sample("velocity_m_s", pts)
    expected = hazard_rating(np.where(d > model.dry_depth_m, d, 0.0), v)
    np.testing.assert_allclose(model.sample("hazard_rating", pts), expected, rtol=1e-14)


# --------------------------------------------------------------------------- outputs
def test_arrival_times_gauges_and_sampling():
    xs, model = ritter_run(200)
    arr = model.arrival_time_s[0]
    wet = np.isfinite(arr)
    assert np.all(np.isnan(arr[xs > 40.0]))  # never reached
    ahead = (xs > 0.0) & wet
    assert np.all(np.diff(arr[ahead]) >= 0.0)  # later farther downstream
    assert np.all(arr[xs < 0.0] == 0.0)  # wet from the start
    assert np.array_equal(model.arrival_time_at(np.column_stack([xs, np.full_like(xs, 0.2)])),
                          arr, equal_nan=True)
    assert np.isnan(model.arrival_time_at([[1e6, 0.0]]))[0]
    # gauges record at each output time
    model2 = LocalInertialFlood(np.zeros((1, 40)), Affine(1.0, 0, 0, 0, -1.0, 1.0),
                                initial_depth_m=np.r_[np.ones(10), np.zeros(30)][None, :],
                                output_interval_s=2.0)
    model2.add_gauges([[5.5, 0.5], [20.5, 0.5]])
    model2.advance_to(10.0)
    times, depth = model2.time_series([[20.5, 0.5], [5.5, 0.5]], "depth_m")
    assert times == pytest.approx([0.0, 2.0, 4.0, 6.0, 8.0, 10.0])
    assert depth.shape == (6, 2) and depth[0, 1] == 1.0 and depth[0, 0] == 0.0
    assert depth[-1, 0] > 0.0  # the wave reached x = 20 m
    with pytest.raises(KeyError, match="add_gauges"):
        model2.time_series([[30.5, 0.5]])
    # sampling: 0 outside, wse = ground + depth
    assert model2.sample("depth_m", np.array([[-5.0, 0.5, 0.0]]))[0] == 0.0
    p = np.array([[5.5, 0.5, 1.0]])
    assert model2.sample("wse_m", p)[0] == model2.sample("depth_m", p)[0]


def test_chicago_storm_volume_reaches_the_grid_exactly():
    storm = chicago_storm(10.662, 0.811, 8.0, 0.711, 10.0, 7200.0, peak_ratio=0.4, step_s=300.0)
    model = LocalInertialFlood(np.zeros((6, 7)), transform(6), rain=storm,
                               boundaries="closed")
    model.advance_to(7300.0)
    depth_m = chicago_total_mm(10.662, 0.811, 8.0, 0.711, 10.0, 7200.0) / 1000.0
    assert model.mass_balance().rain_m3 == pytest.approx(depth_m * 42 * 25.0, rel=1e-12)
    assert np.allclose(model.depth_m, depth_m, rtol=1e-12)  # flat, closed: uniform


# --------------------------------------------------------------------------- input errors
def test_bad_inputs_raise_clear_errors():
    z = np.zeros((5, 6))
    holes = z.copy()
    holes[1, 2] = np.nan
    holes[3, 4] = np.nan
    with pytest.raises(InputError, match=r"elevation_m.*2 cells.*row 1, col 2"):
        LocalInertialFlood(holes, transform(5))
    LocalInertialFlood(holes, transform(5), blocked=np.isnan(holes))  # holes under blocked: ok
    with pytest.raises(InputError, match=r"intensity_mm_h.*negative"):
        RainSeries(np.array([0.0, 60.0]), np.array([5.0, -1.0]))
    with pytest.raises(InputError, match="non-square"):
        LocalInertialFlood(z, Affine(5.0, 0, 0, 0, -4.0, 20.0))
    with pytest.raises(InputError, match=r"manning_n.*shape \(4, 6\).*\(5, 6\)"):
        LocalInertialFlood(z, transform(5), manning_n=np.full((4, 6), 0.03))
    with pytest.raises(InputError, match=r"boundaries.*'up'"):
        LocalInertialFlood(z, transform(5), boundaries={"up": "free"})
    with pytest.raises(InputError, match=r"boundaries.*'open'"):
        LocalInertialFlood(z, transform(5), boundaries="open")
    with pytest.raises(InputError, match=r"inflows\[0\].*'pipe'.*outside"):
        LocalInertialFlood(z, transform(5), inflows=(
            PointInflow(100.0, 10.0, Hydrograph.constant(1.0), name="pipe"),))
    with pytest.raises(InputError, match=r"drains.*outside"):
        LocalInertialFlood(z, transform(5), drains=DrainInlets([-1.0], [1.0], [0.1], ("d",)))
    with pytest.raises(InputError, match="initial_depth_m"):
        LocalInertialFlood(z, transform(5), initial_depth_m=-1.0)
    with pytest.raises(InputError, match="backend"):
        LocalInertialFlood(z, transform(5), backend="fortran")
    blocked = np.zeros((5, 6), dtype=bool)
    blocked[2, 3] = True
    with pytest.raises(InputError, match=r"inflows\[0\].*'pipe' lies only on blocked cells"):
        LocalInertialFlood(z, transform(5), blocked=blocked, inflows=(
            PointInflow(17.5, 12.5, Hydrograph.constant(1.0), name="pipe"),))
    gridded = RainSeries(np.array([0.0]), np.full((1, 4, 6), 5.0))
    with pytest.raises(InputError, match=r"rain: gridded intensity has cells \(4, 6\).*\(5, 6\)"):
        LocalInertialFlood(z, transform(5), rain=gridded)
    model = LocalInertialFlood(z, transform(5))
    with pytest.raises(ValueError, match="10.0"):
        model.advance_to(10.0)
        model.advance_to(5.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_finite_depths_stop_the_run(backend):
    # a column so tall that its first fluxes overflow: the next step refuses to go on
    h0 = np.zeros((5, 6))
    h0[2, 3] = 1e300
    model = LocalInertialFlood(np.zeros((5, 6)), transform(5), initial_depth_m=h0,
                               backend=backend)
    with pytest.raises(FloatingPointError, match="depths or velocities became non-finite"):
        with np.errstate(over="ignore", invalid="ignore"):
            model.advance_to(10.0)


# --------------------------------------------------------------------------- twin
@pytest.fixture(scope="module")
def city():
    from citytwin.twin.synthetic import synthetic_city

    return synthetic_city(seed=7, size="tiny")


def test_from_twin_blocks_buildings_and_drains_at_manholes(city):
    storm = RainSeries.constant(60.0, 0.0, 600.0)
    model = LocalInertialFlood.from_twin(city, rain=storm)
    assert model.shape == city.terrain.shape and model.crs == city.crs
    assert 0 < model.blocked.sum() < model.blocked.size
    nodes = city.networks["drainage"].nodes
    manholes = nodes[nodes["kind"] == "manhole"]
    assert len(model.drains) + len(model.skipped_inlets) == len(manholes)
    assert np.all(model.drains.capacity_m3_s == DEFAULT_INLET_CAPACITY_M3_S["manhole"])
    model.advance_to(900.0)
    mb = model.mass_balance()
    assert mb.drained_m3 > 0.0 and abs(mb.relative_error) < 1e-12
    assert np.all(model.depth_m[model.blocked] == 0.0)
    assert model.boundaries["north"] == "free"

    raised = LocalInertialFlood.from_twin(city, buildings="raised", building_raise_m=3.0,
                                          drains=False, manning_by_use={"residential": 0.2})
    assert not raised.blocked.any() and raised.drains is None
    lift = raised.ground_m - city.terrain.elevation_m
    assert set(np.unique(lift).round(9)) == {0.0, 3.0}
    assert (lift > 0).sum() == model.blocked.sum()
    rough = raised.manning_n == 0.2
    assert rough.any() and np.all(lift[rough] == 3.0)  # only inside (residential) footprints
