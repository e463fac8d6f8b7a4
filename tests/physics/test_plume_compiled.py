"""The plume's compiled paths against its NumPy reference path.

- Stepping (backend "numba": ``_advance_kernel``) is the reference ``_step``/``_merge_pass``
  operation for operation: with the same elementary functions on both sides (libm's pow in
  the Briggs curves, libm's hypot in the wind) every puff state is equal bit for bit, and
  as they are (NumPy's SIMD pow, Python's hypot) equal to round-off.
- ``field`` (separable grid kernel) equals ``sample`` at the cell centres to ≤ 1e-12.
- ``forecast_copy`` (shared immutable state) behaves like a deep copy.
"""

from __future__ import annotations

import copy
import math
import types

import numpy as np
import pytest

from citytwin.physics import forcing, puffsum
from citytwin.physics import plume as plume_mod
from citytwin.physics.base import HazardEngine, adaptive_resolution_m
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.plume import GaussianPuffPlume

pytestmark = pytest.mark.skipif(not puffsum.HAVE_NUMBA, reason="numba not installed")

STATE_KEYS = ("x_m", "y_m", "travel_m", "mass_kg", "t_birth_s", "sigma_h_m", "sigma_z_m")


def varied_cases(seed: int = 5, n_cases: int = 14):
    """Plume constructor arguments over varied histories: 1–7 wind samples with calms and
    reversals, 1–4 or 12 release segments, all stability classes and terrains, range and
    concentration drops, merging on and off, a non-unit puff interval."""
    rng = np.random.default_rng(seed)
    for case in range(n_cases):
        n = 1 + case % 7
        times = np.sort(rng.uniform(0, 1500, n))
        times[0] = 0.0
        speed = rng.uniform(0, 4, n)
        if case % 3 == 2:
            speed[rng.integers(0, n)] = 0.0
        if case == 5:  # exact reversal: interpolated u, v vanish mid-way
            times, speed = np.array([0.0, 600.0]), np.array([2.0, 2.0])
            from_deg = np.array([90.0, 270.0])
        else:
            from_deg = rng.uniform(0, 360, n)
        if case % 4 == 3:  # 12 segments: the schedule sums them with np.sum
            rel = ReleaseSchedule(np.sort(rng.uniform(0, 1200, 12)), rng.uniform(0, 2, 12))
        else:
            rel = ReleaseSchedule(np.array([30.0, 400.0, 900.0, 1200.0][: 1 + case % 4]),
                                  np.array([2.0, 0.5, 3.0, 0.0][: 1 + case % 4]))
        yield dict(
            source_xy_m=(10.0, -5.0),
            source_height_m=0.5,
            release=rel,
            wind=WindSeries(times, speed, from_deg),
            stability="ABCDEF"[case % 6],
            terrain=("urban", "rural")[case % 2],
            max_range_m=(10_000.0, 800.0)[case % 2],
            min_conc_kg_m3=(1e-11, 1e-7)[(case // 2) % 2],
            puff_interval_s=(1.0, 0.7)[(case // 5) % 2],
            merge=case != 7,
        ), rng


def histories(backend: str) -> list[tuple]:
    """States after irregular ``advance_to`` calls, and of a forecast run 900 s ahead."""
    out = []
    for kwargs, rng in varied_cases():
        p = GaussianPuffPlume(backend=backend, **kwargs)
        for t in np.cumsum(rng.uniform(0.1, 80.0, 50)):
            p.advance_to(float(t))
            out.append((p.puff_count, p.puffs(), p.dropped_mass_kg(), p.mass_airborne_kg()))
        f = p.forecast_copy()
        f.advance_to(p.t_s + 900.5)
        out.append((f.puff_count, f.puffs(), f.dropped_mass_kg(), f.mass_airborne_kg()))
    return out


@pytest.fixture
def libm_reference(monkeypatch):
    """Make the NumPy reference path use the elementary functions the kernels use: libm pow
    for the Briggs curves (NumPy may use its own SIMD pow, ≈1 ulp apart) and libm hypot for
    the wind direction (Python's math.hypot is a different, also ≈1 ulp, algorithm)."""
    from numba import njit

    @njit(cache=False)
    def briggs_column(x, a, b, c):
        out = np.empty(x.size)
        for i in range(x.size):
            out[i] = plume_mod._briggs1(x[i], a, b, c)
        return out

    def briggs_libm(x, coefficients):
        (ay, by, cy), (az, bz, cz) = coefficients
        x = np.ascontiguousarray(x, dtype=np.float64)
        return briggs_column(x, ay, by, cy), briggs_column(x, az, bz, cz)

    shim = types.SimpleNamespace(**{k: getattr(math, k) for k in dir(math) if k[0] != "_"})
    shim.hypot = lambda a, b: float(np.hypot(a, b))
    monkeypatch.setattr(plume_mod, "briggs_sigmas_from", briggs_libm)
    monkeypatch.setattr(forcing, "math", shim)


def test_compiled_stepping_is_the_reference_bit_for_bit(libm_reference):
    fast, ref = histories("numba"), histories("numpy")
    assert len(fast) == len(ref) > 700
    assert sum(r[0] for r in ref) > 20_000  # puffs in all the states compared
    assert any(r[2] > 0.0 for r in ref)  # puffs were dropped
    for (n_a, a, drop_a, mass_a), (n_b, b, drop_b, mass_b) in zip(fast, ref, strict=True):
        assert n_a == n_b
        for key in STATE_KEYS:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        assert drop_a == drop_b and mass_a == mass_b


def test_compiled_stepping_equals_the_reference_to_round_off():
    fast, ref = histories("numba"), histories("numpy")
    for (n_a, a, drop_a, mass_a), (n_b, b, drop_b, mass_b) in zip(fast, ref, strict=True):
        assert n_a == n_b
        for key in STATE_KEYS:
            scale = max(1.0, float(np.max(np.abs(b[key]), initial=0.0)))
            np.testing.assert_allclose(a[key], b[key], rtol=1e-12, atol=1e-12 * scale,
                                       err_msg=key)
        assert drop_a == pytest.approx(drop_b, rel=1e-12, abs=0.0)
        assert mass_a == pytest.approx(mass_b, rel=1e-12, abs=0.0)


def test_incremental_compiled_equals_one_shot():
    kwargs, _ = next(varied_cases(seed=3))
    one = GaussianPuffPlume(backend="numba", **kwargs)
    one.advance_to(2000.25)
    many = GaussianPuffPlume(backend="numba", **kwargs)
    rng = np.random.default_rng(1)
    t = 0.0
    while t < 2000.25:
        t = min(2000.25, t + float(rng.uniform(0.01, 37.0)))
        many.advance_to(t)
    a, b = one.puffs(), many.puffs()
    for key in STATE_KEYS:
        np.testing.assert_array_equal(a[key], b[key])
    assert one.dropped_mass_kg() == many.dropped_mass_kg()


def test_pairwise_sum_is_numpys():
    rng = np.random.default_rng(3)
    for n in [*range(0, 300), 1000, 4099, 100_000]:
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-5, 5, n)
        assert plume_mod._pairwise_sum(a, n) == np.sum(a)


def test_release_and_wind_lookups_are_the_forcing_ones():
    rng = np.random.default_rng(8)
    for nseg in (1, 2, 7, 8, 12, 200):
        rel = ReleaseSchedule(np.sort(rng.uniform(0, 100, nseg)), rng.uniform(0, 3, nseg))
        ends = np.append(rel.times_s[1:], np.inf)
        for t0 in rng.uniform(-5, 110, 200):
            t1 = t0 + float(rng.choice([0.0, 0.3, 1.0, 40.0]))
            assert plume_mod._release_in(t0, t1, rel.times_s, ends, rel.rate_kg_s) == (
                rel.mass_and_centroid(t0, t1))
    wind = WindSeries(np.array([0.0, 10.0, 20.0, 30.0]), np.array([2.0, 0.0, 3.0, 3.0]),
                      np.array([90.0, 90.0, 270.0, 100.0]))
    for t in [*rng.uniform(-5, 40, 500), 0.0, 10.0, 20.0, 30.0]:
        u, v, speed = plume_mod._wind_at(t, wind.times_s, wind.speed_m_s, wind.u_m_s,
                                         wind.v_m_s)
        assert speed == wind.speed_at(t)
        np.testing.assert_allclose((u, v), wind.velocity_at(t), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("terrain", ["urban", "rural"])
def test_field_equals_sampling_at_cell_centres(terrain):
    p = GaussianPuffPlume(
        source_xy_m=(3.3, -7.1), source_height_m=1.0,
        release=ReleaseSchedule.constant(0.0, 3000.0, 0.5),
        wind=WindSeries(np.array([0.0, 900.0, 1500.0]), np.array([2.0, 0.5, 3.0]),
                        np.array([250.0, 180.0, 100.0])),
        stability="E", terrain=terrain,
    )
    n_fields = 0
    for t in (30.0, 600.0, 2400.0):
        p.advance_to(t)
        xmin, ymin, xmax, ymax = p.default_bounds()
        bounds_list = [None, (xmin + 0.3 * (xmax - xmin), ymin - 100.0, xmax + 500.0, ymax),
                       (xmax + 10.0, ymax + 10.0, xmax + 50.0, ymax + 20.0),  # off the cloud
                       (0.0, 0.0, 1.0, 1.0)]  # one cell
        for bounds in bounds_list:
            for z in (0.0, 1.5, 4.0):
                for res in (adaptive_resolution_m(p.default_bounds()), 7.3):
                    for q in ("ch4_kg_m3", "ch4_lel_pct"):
                        got = p.field(q, z_m=z, bounds=bounds, resolution_m=res)
                        ref = HazardEngine.field(p, q, z_m=z, bounds=bounds, resolution_m=res)
                        np.testing.assert_array_equal(got.xs_m, ref.xs_m)
                        np.testing.assert_array_equal(got.ys_m, ref.ys_m)
                        assert (got.t_s, got.units, got.z_m, got.resolution_m) == (
                            ref.t_s, ref.units, ref.z_m, ref.resolution_m)
                        np.testing.assert_array_equal(got.values > 0, ref.values > 0)
                        np.testing.assert_allclose(got.values, ref.values, rtol=1e-12, atol=0)
                        n_fields += 1
    assert n_fields == 3 * 4 * 3 * 2 * 2


def test_field_of_an_empty_plume_and_errors():
    p = GaussianPuffPlume(source_xy_m=(0.0, 0.0), source_height_m=1.0,
                          release=ReleaseSchedule.constant(100.0, 200.0, 1.0),
                          wind=WindSeries.constant(2.0, 270.0))
    grid = p.field("ch4_ppm", resolution_m=10.0)
    assert grid.values.shape == (10, 10) and not grid.values.any()
    with pytest.raises(KeyError, match="nope"):
        p.field("nope")
    with pytest.raises(ValueError, match="non-finite"):
        p.field("ch4_ppm", z_m=math.nan)


def test_serial_binned_kernel_equals_the_parallel_one():
    rng = np.random.default_rng(4)
    for n_pts in (1, 153, 4000):
        pts = np.column_stack([rng.uniform(-900, 900, n_pts), rng.uniform(-900, 900, n_pts),
                               rng.choice([0.3, 1.5, 2.0], n_pts)])
        cx, cy = rng.uniform(-600, 600, 300), rng.uniform(-600, 600, 300)
        sh = rng.uniform(2, 200, 300)
        args = (np.ascontiguousarray(pts[:, 0]), np.ascontiguousarray(pts[:, 1]),
                np.ascontiguousarray(pts[:, 2]), cx, cy, sh, 0.5 * sh,
                rng.uniform(0.1, 1.0, 300), 0.5, 5.0)
        serial = puffsum._sum_numba_serial(*args, 1)
        for nthreads in (1, 2):
            np.testing.assert_array_equal(puffsum._sum_numba(*args, nthreads), serial)


def test_forecast_copy_is_independent_and_equals_a_deep_copy():
    kwargs, _ = next(varied_cases(seed=11))
    p = GaussianPuffPlume(**kwargs)
    p.advance_to(700.0)
    before = p.puffs()
    f = p.forecast_copy()
    deep = copy.deepcopy(p)
    deep.wind = f.wind
    f.advance_to(1500.0)
    deep.advance_to(1500.0)
    for key in STATE_KEYS:
        np.testing.assert_array_equal(p.puffs()[key], before[key])
        np.testing.assert_array_equal(f.puffs()[key], deep.puffs()[key])
    assert p.t_s == 700.0 and f.t_s == 1500.0
    assert f.release is p.release and f.wind is not p.wind
