"""The puff-summation kernel: analytic single puff, backends agree, edge cases."""

import concurrent.futures as cf
import math
import multiprocessing as mp
import sys

import numpy as np
import pytest

from citytwin.physics import puffsum
from citytwin.physics.puffsum import puff_concentration

needs_numba = pytest.mark.skipif(not puffsum.HAVE_NUMBA, reason="numba not installed")


def one_puff(xyz, cx=0.0, cy=0.0, sh=10.0, sz=5.0, m=2.0, h=1.0, **kw):
    return puff_concentration(
        np.asarray(xyz, dtype=float),
        np.array([cx]),
        np.array([cy]),
        np.array([sh]),
        np.array([sz]),
        np.array([m]),
        h,
        **kw,
    )


@pytest.mark.parametrize("backend", puffsum.BACKENDS)
def test_single_puff_by_hand(backend):
    # C = M / ((2 pi)^1.5 sh^2 sz) exp(-r^2/(2 sh^2)) [exp(-(z-H)^2/(2 sz^2)) + exp(-(z+H)^2/...)]
    # centre, z = H = 1: 2 / (15.7496 * 100 * 5) * (1 + exp(-4/50)) = 2.53975e-4 * 1.923116
    pts = [[0.0, 0.0, 1.0], [10.0, 0.0, 1.0], [6.0, 8.0, 0.0], [49.9, 0.0, 1.0], [50.1, 0.0, 1.0]]
    got = one_puff(pts, backend=backend)
    amp = 2.0 / ((2 * math.pi) ** 1.5 * 100.0 * 5.0)
    assert amp == pytest.approx(2.53975e-4, rel=1e-5)
    vert_h = 1.0 + math.exp(-4.0 / 50.0)
    vert_0 = 2.0 * math.exp(-1.0 / 50.0)
    expected = [
        amp * vert_h,
        amp * math.exp(-0.5) * vert_h,
        amp * math.exp(-0.5) * vert_0,  # r = 10 m
        amp * math.exp(-(49.9**2) / 200.0) * vert_h,  # just inside the 5 sigma cutoff
        0.0,  # just outside
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=0.0)
    assert got[0] == pytest.approx(4.88421e-4, rel=1e-5)


def random_case(seed: int, n_points: int, n_puffs: int, z_levels: int | None):
    rng = np.random.default_rng(seed)
    pts = np.column_stack(
        [rng.uniform(-500, 500, n_points), rng.uniform(-300, 300, n_points), np.zeros(n_points)]
    )
    if z_levels is None:
        pts[:, 2] = rng.uniform(0.0, 5.0, n_points)
    else:
        pts[:, 2] = rng.choice(np.linspace(0.0, 4.0, z_levels), n_points)
    # puffs inside, across the edges of and well outside the points' box
    cx = rng.uniform(-900, 900, n_puffs)
    cy = rng.uniform(-700, 700, n_puffs)
    sh = rng.uniform(0.5, 150.0, n_puffs)
    sz = rng.uniform(0.5, 60.0, n_puffs)
    m = rng.uniform(0.0, 2.0, n_puffs)
    return pts, cx, cy, sh, sz, m


@needs_numba
@pytest.mark.parametrize("z_levels", [1, 3, None])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numba_equals_numpy(seed, z_levels):
    pts, *puffs = random_case(seed, 3000, 400, z_levels)
    fast = puff_concentration(pts, *puffs, 1.5, backend="numba")
    ref = puff_concentration(pts, *puffs, 1.5, backend="numpy")
    assert np.count_nonzero(ref) > 1000
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0.0)
    assert np.array_equal(fast == 0.0, ref == 0.0)


@needs_numba
@pytest.mark.parametrize(
    "pts",
    [
        np.array([[3.0, 4.0, 1.5]]),  # one point
        np.tile([[3.0, 4.0, 1.5]], (50, 1)),  # all at one place
        np.column_stack([np.linspace(-200, 200, 101), np.zeros(101), np.full(101, 1.5)]),
        np.column_stack([np.zeros(101), np.linspace(-200, 200, 101), np.full(101, 1.5)]),
    ],
    ids=["one", "coincident", "line-x", "line-y"],
)
def test_degenerate_point_sets(pts):
    _, *puffs = random_case(5, 10, 200, 1)
    fast = puff_concentration(pts, *puffs, 1.0, backend="numba")
    ref = puff_concentration(pts, *puffs, 1.0, backend="numpy")
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0.0)


@needs_numba
def test_independent_of_thread_count_and_repeatable():
    import numba

    pts, *puffs = random_case(3, 5000, 300, 2)
    ref = puff_concentration(pts, *puffs, 1.0, backend="numba")
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        single = puff_concentration(pts, *puffs, 1.0, backend="numba")
    finally:
        numba.set_num_threads(previous)
    assert np.array_equal(single, ref)
    with cf.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: puff_concentration(pts, *puffs, 1.0), range(8)))
    assert all(np.array_equal(r, ref) for r in results)


def _sample_in_child(_: int) -> float:
    pts, *puffs = random_case(4, 500, 50, 1)
    return float(puff_concentration(pts, *puffs, 1.0, backend="numba").sum())


@needs_numba
@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_usable_in_processes_forked_after_use():
    """Process-pool ensembles fork after the parent ran the kernel (GNU OpenMP would abort)."""
    expected = _sample_in_child(0)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        assert list(pool.map(_sample_in_child, range(2))) == [expected, expected]


def test_empty_inputs_and_backend_check():
    assert puff_concentration(np.empty((0, 3)), *([np.array([1.0])] * 5), 1.0).shape == (0,)
    empty = np.empty(0)
    got = puff_concentration(np.zeros((4, 3)), empty, empty, empty, empty, empty, 1.0)
    np.testing.assert_array_equal(got, np.zeros(4))
    with pytest.raises(ValueError, match=r"'cuda'.*numba, numpy"):
        one_puff([[0.0, 0.0, 0.0]], backend="cuda")


def test_one_numba_setup_for_all_kernels():
    from citytwin.physics import flood, flood_kernels, numba_setup, plume

    assert puffsum.BACKENDS is flood_kernels.BACKENDS is plume.BACKENDS is numba_setup.BACKENDS
    assert puffsum.KERNEL_LOCK is flood.KERNEL_LOCK is numba_setup.KERNEL_LOCK
    assert puffsum.HAVE_NUMBA is flood_kernels.HAVE_NUMBA is numba_setup.HAVE_NUMBA
