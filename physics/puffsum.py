"""Hot loop: concentration of a set of Gaussian puffs at many points.

C(x, y, z) = Σ_i M_i / ((2π)^{3/2} σh_i² σz_i) · exp(−r_i² / (2σh_i²))
             · [exp(−(z−H)² / (2σz_i²)) + exp(−(z+H)² / (2σz_i²))]

(ground-reflected Gaussian puff: Zannetti 1990, *Air Pollution Modeling*, §7.2; Scire et
al. 2000, CALPUFF User's Guide, eq. 2-1). A puff contributes only within ``cutoff · σh``
horizontally (5σh leaves out exp(−12.5) ≈ 4e-6 of its mass), in both backends.

Two backends give the same numbers to round-off (≤ 1e-12 relative; tested):
- ``"numba"``: the sample points are counting-sorted into a uniform grid of bins over their
  bounding box (~16 points per bin); a puff visits only the bins its cutoff circle touches,
  row strip by row strip. When the points sit on few distinct heights (fields, sensors at a
  handful of mounting heights) amplitude × vertical factor is tabulated per puff and height,
  leaving one exponential per puff–point pair. Rows of bins run in parallel (``prange``);
  every point still sums its puffs in index order, so results do not depend on the thread
  count. Compiled with ``@njit(cache=True, parallel=True)``.
- ``"numpy"``: a plain loop over puffs, vectorised over the points (reference path).

Threading (fork-safe layer, calls serialised with a lock): ``physics.numba_setup``.
"""

from __future__ import annotations

import math
import types

import numpy as np

from citytwin.physics.numba_setup import (  # noqa: F401  (numba re-exported for benchmarks)
    BACKENDS,
    HAVE_NUMBA,
    KERNEL_LOCK,
    get_num_threads,
    njit,
    numba,
    prange,
)

DEFAULT_BACKEND = "numba" if HAVE_NUMBA else "numpy"
"""Module-level default backend; tests and benchmarks may switch it."""

DEFAULT_CUTOFF = 5.0
"""Horizontal cutoff radius in units of σh."""

_NORM = 1.0 / (2.0 * math.pi) ** 1.5
_POINTS_PER_BIN = 16
_MAX_BINS_PER_AXIS = 2048
_MAX_LEVELS = 16
_SERIAL_MAX_POINTS = 4096
"""Point sets up to this size are summed by the serial kernel (same results)."""


def _sum_numpy(px, py, pz, cx, cy, sh, sz, mass, height_m, cutoff):
    """Reference implementation: loop over puffs, vectorised over points."""
    out = np.zeros(px.size)
    for i in range(cx.size):
        r_cut = cutoff * sh[i]
        dx = px - cx[i]
        dy = py - cy[i]
        r2 = dx * dx + dy * dy
        sel = r2 <= r_cut * r_cut
        if not sel.any():
            continue
        a_h = 0.5 / (sh[i] * sh[i])
        a_z = 0.5 / (sz[i] * sz[i])
        amp = mass[i] * _NORM / (sh[i] * sh[i] * sz[i])
        z = pz[sel]
        dzm = z - height_m
        dzp = z + height_m
        hr = r2[sel] * a_h
        out[sel] += amp * (np.exp(-(hr + dzm * dzm * a_z)) + np.exp(-(hr + dzp * dzp * a_z)))
    return out


def _sum_binned(px, py, pz, cx, cy, sh, sz, mass, height_m, cutoff, nthreads):  # pragma: no cover
    """Binned puff summation (compiled by numba; see module docstring)."""
    n = px.size
    out = np.zeros(n)
    npuff = cx.size
    if n == 0 or npuff == 0:
        return out
    xmin = px[0]
    xmax = px[0]
    ymin = py[0]
    ymax = py[0]
    for j in range(1, n):
        xmin = min(xmin, px[j])
        xmax = max(xmax, px[j])
        ymin = min(ymin, py[j])
        ymax = max(ymax, py[j])
    width = xmax - xmin
    height = ymax - ymin
    nbins_target = max(1, n // _POINTS_PER_BIN)
    if width > 0.0 and height > 0.0:
        size = math.sqrt(width * height / nbins_target)
    elif width > 0.0 or height > 0.0:
        size = max(width, height) / nbins_target
    else:
        size = 1.0
    size = max(size, max(width, height) / _MAX_BINS_PER_AXIS, 1e-9)
    inv = 1.0 / size
    nbx = min(int(width * inv) + 1, _MAX_BINS_PER_AXIS)
    nby = min(int(height * inv) + 1, _MAX_BINS_PER_AXIS)

    # counting sort of the points into bins (row-major); sorted copies for locality
    bin_of = np.empty(n, dtype=np.int64)
    start = np.zeros(nbx * nby + 1, dtype=np.int64)
    for j in range(n):
        bx = min(int((px[j] - xmin) * inv), nbx - 1)
        by = min(int((py[j] - ymin) * inv), nby - 1)
        b = by * nbx + bx
        bin_of[j] = b
        start[b + 1] += 1
    for b in range(nbx * nby):
        start[b + 1] += start[b]
    order = np.empty(n, dtype=np.int64)
    fill = start[:-1].copy()
    for j in range(n):
        b = bin_of[j]
        order[fill[b]] = j
        fill[b] += 1
    sx = np.empty(n)
    sy = np.empty(n)
    szp = np.empty(n)
    for k in range(n):
        j = order[k]
        sx[k] = px[j]
        sy[k] = py[j]
        szp[k] = pz[j]

    # few distinct heights: tabulate amplitude x vertical factor per puff and height
    # (one linear scan, given up at the 17th distinct height; np.unique would sort)
    zs = np.empty(_MAX_LEVELS)
    nlev = 0
    use_levels = True
    lev = np.zeros(n, dtype=np.int64)
    for k in range(n):
        m = 0
        while m < nlev and zs[m] != szp[k]:
            m += 1
        if m == nlev:
            if nlev == _MAX_LEVELS:
                use_levels = False
                break
            zs[nlev] = szp[k]
            nlev += 1
        lev[k] = m

    # per-puff constants; rows touched (by0 > by1: puff misses the points' box)
    amp = np.empty(npuff)
    a_h = np.empty(npuff)
    a_z = np.empty(npuff)
    by0 = np.empty(npuff, dtype=np.int64)
    by1 = np.empty(npuff, dtype=np.int64)
    vert = np.zeros((npuff, nlev if use_levels else 1))
    for i in range(npuff):
        r_cut = cutoff * sh[i]
        a_h[i] = 0.5 / (sh[i] * sh[i])
        a_z[i] = 0.5 / (sz[i] * sz[i])
        amp[i] = mass[i] * _NORM / (sh[i] * sh[i] * sz[i])
        if (
            cx[i] + r_cut < xmin
            or cx[i] - r_cut > xmax
            or cy[i] + r_cut < ymin
            or (cy[i] - r_cut > ymax)
        ):
            by0[i] = 1
            by1[i] = 0
            continue
        by0[i] = int(min(max(math.floor((cy[i] - r_cut - ymin) * inv), 0.0), nby - 1.0))
        by1[i] = int(min(max(math.floor((cy[i] + r_cut - ymin) * inv), 0.0), nby - 1.0))
        if use_levels:
            for m in range(nlev):
                dzm = zs[m] - height_m
                dzp = zs[m] + height_m
                vert[i, m] = amp[i] * (
                    math.exp(-dzm * dzm * a_z[i]) + math.exp(-dzp * dzp * a_z[i])
                )

    # rows of bins are independent: interleave them over the threads for balance
    rows = np.empty(nby, dtype=np.int64)
    t = 0
    for first in range(nthreads):
        for by in range(first, nby, nthreads):
            rows[t] = by
            t += 1
    acc = np.zeros(n)
    # (loop-local names carry a p_ prefix: numba's parfor must not see them as shared)
    for task in prange(nby):
        p_by = rows[task]
        p_ylo = ymin + p_by * size
        p_yhi = p_ylo + size
        p_row = p_by * nbx
        for p_i in range(npuff):
            if p_by < by0[p_i] or p_by > by1[p_i]:
                continue
            p_cx = cx[p_i]
            p_cy = cy[p_i]
            p_rcut = cutoff * sh[p_i]
            p_rcut2 = p_rcut * p_rcut
            # columns this row's strip of the cutoff circle touches
            p_dyn = max(0.0, p_ylo - p_cy, p_cy - p_yhi)
            p_half2 = p_rcut2 - p_dyn * p_dyn
            if p_half2 < 0.0:
                continue
            p_half = math.sqrt(p_half2)
            p_c1f = math.floor((p_cx + p_half - xmin) * inv)
            if p_c1f < 0.0:
                continue  # this strip of the circle lies left of the points' box
            # clamp like the points were clamped when binned (last column takes the edge)
            p_c0 = int(min(max(math.floor((p_cx - p_half - xmin) * inv), 0.0), nbx - 1.0))
            p_c1 = int(min(p_c1f, nbx - 1.0))
            p_ah = a_h[p_i]
            p_az = a_z[p_i]
            p_am = amp[p_i]
            for p_k in range(start[p_row + p_c0], start[p_row + p_c1 + 1]):
                p_dx = sx[p_k] - p_cx
                p_dy = sy[p_k] - p_cy
                p_r2 = p_dx * p_dx + p_dy * p_dy
                if p_r2 <= p_rcut2:
                    if use_levels:
                        acc[p_k] += math.exp(-p_r2 * p_ah) * vert[p_i, lev[p_k]]
                    else:
                        p_dzm = szp[p_k] - height_m
                        p_dzp = szp[p_k] + height_m
                        p_hr = p_r2 * p_ah
                        acc[p_k] += p_am * (
                            math.exp(-(p_hr + p_dzm * p_dzm * p_az))
                            + math.exp(-(p_hr + p_dzp * p_dzp * p_az))
                        )
    for k in range(n):
        out[order[k]] = acc[k]
    return out


def _sum_grid(xs, ys, z, cx, cy, sh, sz, mass, height_m, cutoff):  # pragma: no cover
    """The same sum on a regular grid at one height (compiled by numba; see ``grid_concentration``).

    exp(−r²a) = exp(−dx²a)·exp(−dy²a): per puff one exponential per grid column and row of its
    cutoff box, then one product per point. A point takes a puff iff dx² + dy² ≤ (cutoff·σh)²
    with the binned kernel's dx, dy (so the same points as there), and sums its puffs in index
    order; no parallelism.
    """
    ny = ys.size
    nx = xs.size
    out = np.zeros((ny, nx))
    npuff = cx.size
    if nx == 0 or ny == 0 or npuff == 0:
        return out
    # grid spacing from the ends (axes are regular); index ranges below get a 1-cell margin
    # and the exact cutoff test decides, so the spacing's rounding does not matter
    step_x = (xs[nx - 1] - xs[0]) / (nx - 1) if nx > 1 else 1.0
    step_y = (ys[0] - ys[ny - 1]) / (ny - 1) if ny > 1 else 1.0
    dx2 = np.empty(nx)
    ex = np.empty(nx)
    for i in range(npuff):
        r_cut = cutoff * sh[i]
        r_cut2 = r_cut * r_cut
        a_h = 0.5 / (sh[i] * sh[i])
        a_z = 0.5 / (sz[i] * sz[i])
        amp = mass[i] * _NORM / (sh[i] * sh[i] * sz[i])
        dzm = z - height_m
        dzp = z + height_m
        vert = amp * (math.exp(-dzm * dzm * a_z) + math.exp(-dzp * dzp * a_z))
        c0f = math.floor((cx[i] - r_cut - xs[0]) / step_x) - 1.0
        c1f = math.ceil((cx[i] + r_cut - xs[0]) / step_x) + 1.0
        r0f = math.floor((ys[0] - (cy[i] + r_cut)) / step_y) - 1.0
        r1f = math.ceil((ys[0] - (cy[i] - r_cut)) / step_y) + 1.0
        if c1f < 0.0 or c0f > nx - 1.0 or r1f < 0.0 or r0f > ny - 1.0:
            continue
        c0 = int(max(c0f, 0.0))
        c1 = int(min(c1f, nx - 1.0))
        r0 = int(max(r0f, 0.0))
        r1 = int(min(r1f, ny - 1.0))
        for c in range(c0, c1 + 1):
            dx = xs[c] - cx[i]
            dx2[c] = dx * dx
            ex[c] = math.exp(-dx2[c] * a_h)
        lo = c0
        hi = c1
        for r in range(r0, r1 + 1):
            dy = ys[r] - cy[i]
            dy2 = dy * dy
            if dy2 > r_cut2:
                continue
            # the columns with dx² + dy² ≤ r_cut² form one run (dx² is monotone either side
            # of the centre): trim the box's column range from both ends
            lo = c0
            while lo <= c1 and dx2[lo] + dy2 > r_cut2:
                lo += 1
            hi = c1
            while hi >= lo and dx2[hi] + dy2 > r_cut2:
                hi -= 1
            w = math.exp(-dy2 * a_h) * vert
            for c in range(lo, hi + 1):
                out[r, c] += ex[c] * w
    return out


def _renamed(func, name):  # noqa: ANN001, ANN202
    """A copy of ``func`` under another name: numba's cache keys on the qualified name, so a
    serial and a parallel compilation of one body need distinct names."""
    copy = types.FunctionType(func.__code__, func.__globals__, name, func.__defaults__,
                              func.__closure__)
    copy.__qualname__ = name
    return copy


if HAVE_NUMBA:
    _sum_numba = njit(cache=True, parallel=True)(_sum_binned)
    # the same kernel without threads, for point sets too small to pay a parallel launch
    # (~0.1 ms on a busy machine); bit-identical to the parallel one (per-point sum order)
    _sum_numba_serial = njit(cache=True)(_renamed(_sum_binned, "_sum_binned_serial"))
    _sum_grid_numba = njit(cache=True)(_sum_grid)


def puff_concentration(
    xyz_m: np.ndarray,
    centre_x_m: np.ndarray,
    centre_y_m: np.ndarray,
    sigma_h_m: np.ndarray,
    sigma_z_m: np.ndarray,
    mass_kg: np.ndarray,
    height_m: float,
    *,
    cutoff: float = DEFAULT_CUTOFF,
    backend: str | None = None,
) -> np.ndarray:
    """Sum of ground-reflected Gaussian puffs (kg/m³) at points ``xyz_m`` (shape (n, 3)).

    Puff arrays are 1-D of equal length; σ must be > 0. ``backend`` is "numba" or "numpy"
    (default ``DEFAULT_BACKEND``).
    """
    backend = DEFAULT_BACKEND if backend is None else backend
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")
    pts = np.ascontiguousarray(xyz_m, dtype=np.float64)
    px = np.ascontiguousarray(pts[:, 0])
    py = np.ascontiguousarray(pts[:, 1])
    pz = np.ascontiguousarray(pts[:, 2])
    arrays = [
        np.ascontiguousarray(a, dtype=np.float64)
        for a in (centre_x_m, centre_y_m, sigma_h_m, sigma_z_m, mass_kg)
    ]
    if backend == "numba" and HAVE_NUMBA:
        if px.size <= _SERIAL_MAX_POINTS:
            return _sum_numba_serial(px, py, pz, *arrays, float(height_m), float(cutoff), 1)
        with KERNEL_LOCK:
            nthreads = get_num_threads()
            return _sum_numba(px, py, pz, *arrays, float(height_m), float(cutoff), nthreads)
    return _sum_numpy(px, py, pz, *arrays, float(height_m), float(cutoff))


def grid_concentration(
    xs_m: np.ndarray,
    ys_m: np.ndarray,
    z_m: float,
    centre_x_m: np.ndarray,
    centre_y_m: np.ndarray,
    sigma_h_m: np.ndarray,
    sigma_z_m: np.ndarray,
    mass_kg: np.ndarray,
    height_m: float,
    *,
    cutoff: float = DEFAULT_CUTOFF,
) -> np.ndarray:
    """``puff_concentration`` at the cell centres of a regular grid at height ``z_m``, as a
    (ys.size, xs.size) array: point (xs[col], ys[row]) in [row, col] (``base.grid_points``
    order). Equal to the "numba" backend on those points to round-off (≤ 1e-12 relative;
    tested), with the horizontal Gaussian factored into a column and a row exponential
    (numba only; ``xs_m`` ascending and ``ys_m`` descending, each evenly spaced).
    """
    if not HAVE_NUMBA:  # pragma: no cover
        raise RuntimeError("grid_concentration needs numba")
    xs = np.ascontiguousarray(xs_m, dtype=np.float64)
    ys = np.ascontiguousarray(ys_m, dtype=np.float64)
    arrays = [
        np.ascontiguousarray(a, dtype=np.float64)
        for a in (centre_x_m, centre_y_m, sigma_h_m, sigma_z_m, mass_kg)
    ]
    return _sum_grid_numba(xs, ys, float(z_m), *arrays, float(height_m), float(cutoff))
