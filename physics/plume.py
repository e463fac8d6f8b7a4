"""Gaussian puff model of an above-ground methane plume (engine kind ``"gas_plume"``).

A release is represented by Gaussian puffs, one per ``puff_interval_s``, each carrying the
exact integral of the release rate over its interval and born at the mass-weighted mean
release time of that interval. Puffs move with the wind of the moment (midpoint rule per
step) and grow with their travel distance s through the Briggs (1973) curves,
σh² = σ0² + σy(s)², σz² = σ0² + σz(s)² (source size σ0 in quadrature). The concentration is
the sum of ground-reflected puffs (Zannetti 1990 §7.2; CALPUFF, Scire et al. 2000, eq. 2-1):

  C = Σ M_i / ((2π)^{3/2} σh_i² σz_i) · exp(−r_i²/(2σh_i²))
      · [exp(−(z−H)²/(2σz_i²)) + exp(−(z+H)²/(2σz_i²))]

In steady wind the puff train reproduces the steady Gaussian plume
C = Q/(2π u σy σz) · exp(−y²/2σy²) · [...] (PHYSICS.md "Gas plume"); see
``benchmarks/validation/plume_validation.py``.

Calm: the travel distance used for growth advances at max(speed, ``calm_wind_m_s``), so a
cloud keeps diluting in calm air while its centre only moves with the real wind. σ ≥ σ0 > 0,
so no expression divides by zero.

Merging (``merge=True``, the default): one puff per second makes a 1-hour release ~3600
puffs, yet puffs released seconds apart sit u·Δt apart with σh of tens to hundreds of metres
once they are old. As in established puff models (HYSPLIT merges puffs of the same position
and size, Draxler & Hess 1998, routine PUFMRG; SCIPUFF merges overlapping puffs conserving
their moments, Sykes et al. 1998, PC-SCIPUFF technical documentation) neighbours in release
order that overlap closely are replaced by one puff conserving mass, centroid and second
moments (the moment-preserving Gaussian merge, Salmond 1990; Runnalls 2007); details and
the one unavoidable choice (circular puffs) in ``_merge_pass``. Each puff therefore carries
σ² offsets: σh² = var0h + σy(s)², σz² = var0z + σz(s)², with var0 = σ0² until merged.
Puffs younger than ``merge_min_age_s`` are never merged (near field unchanged). A 1-hour
release keeps ~200–300 puffs instead of ~3600; the field differs from the unmerged one by
≤ 2.5 % wherever it exceeds 1 % of its crosswind maximum (urban D and E/F with a wind
shift, and a calm period; ``tests/physics/test_plume_merging.py``).

Stepping: committed puff states sit on the fixed grid t0 + k·Δt; a time between grid
points is reached by one partial step from the last committed state (kept as a separate
view). Merging runs only on committed steps with k divisible by ``merge_every_steps``.
Hence many small ``advance_to`` calls give exactly the state of one large call.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from citytwin.physics import puffsum
from citytwin.physics.base import (
    Bounds,
    FieldGrid,
    HazardEngine,
    QuantityInfo,
    as_points,
    grid_axes,
    register_engine,
)
from citytwin.physics.dispersion import (
    briggs_coefficients,
    briggs_sigmas_from,
    check_stability,
    check_terrain,
)
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.gas import (
    CH4_LEL_VOL_FRAC,
    STANDARD_PRESSURE_PA,
    STANDARD_TEMPERATURE_K,
    gas_density_kg_m3,
)
from citytwin.physics.numba_setup import BACKENDS, HAVE_NUMBA, njit
from citytwin.physics.weather import Weather, wind_series

_NORM = 1.0 / (2.0 * math.pi) ** 1.5

DEFAULT_PUFF_INTERVAL_S = 1.0
"""Puff release interval. A train of puffs spaced d = u·Δt apart ripples along the wind by
about 2·exp(−2π²σh²/d²) (first Fourier mode of a sampled Gaussian), i.e. < 1 % once
d < 1.9 σh. With Δt = 1 s at u = 5 m/s (d = 5 m) and σ0 = 1 m the centreline is smooth to
±1.5 % beyond 20 m in urban class D (σy ≈ 0.16x) and beyond ~30 m in rural D (σy ≈ 0.08x);
closer in, a Gaussian point-source model is not meaningful anyway. Slower wind is smoother.
A 1-hour release is 3600 puffs (a few ms per 10 000 points in the binned kernel); merging
(module docstring) cuts that to a few hundred."""


DEFAULT_MERGE_EVERY_STEPS = 10
"""Merging runs on committed grid steps k with k % this == 0 (deterministic)."""
DEFAULT_MERGE_MIN_AGE_S = 60.0
"""Puffs younger than this are never merged, so the near field is the unmerged one."""
DEFAULT_MERGE_SEPARATION_SIGMAS = 0.2
"""Merge neighbours whose centres are at most this × the smaller σh apart. A merge widens
the circular puff across the separation by ½·var ≤ d²/8, i.e. σh² by ≤ 0.5 % at 0.2; the
relative error at the 1 %-of-maximum edge of a plume is ~4× the relative σ² excess. 0.5
(fewer puffs: ~125 instead of ~230 for 1 h) gives ~15 % there, 0.25 gives ~3.5 %
(measured, urban E)."""
DEFAULT_MERGE_SIGMA_RATIO = 1.05
"""... and whose σh and σz differ by at most this factor: two concentric puffs with σ
ratio r differ from their moment-matched merge by ≈ (15/8)(r − 1)² at the centre (0.5 %
at 1.05). In calm air, where puffs pile up at the source, this is the binding criterion."""
_MAX_MERGE_PASSES = 16


# ------------------------------------------------------------------ compiled stepping
# The "numba" backend steps puffs with the kernels below: the same arithmetic as the NumPy
# reference path (``GaussianPuffPlume._step`` / ``_merge_pass``), operation for operation, on
# one (7, n) state array whose rows are x, y, travel, mass, var0h, var0z, t_birth. Results
# equal the reference path's to round-off: the one difference is x**c in the Briggs curves for
# c ∉ {0, ±1, 0.5, 2}, where NumPy may use its SIMD power (≈1 ulp apart from libm's pow,
# which the kernels call). No parallelism: bit-identical run to run.
_ROWS = 7
_P_CALM, _P_SX, _P_SY, _P_S0SQ, _P_MINC, _P_RANGE, _P_AGE, _P_SEP, _P_RATIO = range(9)


def _jit(func):  # noqa: ANN001, ANN202 - decorator
    return njit(cache=True)(func)


@_jit
def _interp1(x: float, xp: np.ndarray, fp: np.ndarray) -> float:
    """``forcing.interp_scalar`` (np.interp at one point, same arithmetic)."""
    n = xp.size
    if x <= xp[0]:
        return fp[0]
    if x >= xp[n - 1]:
        return fp[n - 1]
    lo, hi = 0, n  # bisect_right: first index with xp[index] > x
    while lo < hi:
        mid = (lo + hi) // 2
        if x < xp[mid]:
            hi = mid
        else:
            lo = mid + 1
    j = lo - 1
    if xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    value = slope * (x - xp[j]) + fp[j]
    if value != value:
        value = slope * (x - xp[j + 1]) + fp[j + 1]
        if value != value and fp[j] == fp[j + 1]:
            value = fp[j]
    return value


@_jit
def _wind_at(t: float, wt: np.ndarray, ws: np.ndarray, wu: np.ndarray,
             wv: np.ndarray) -> tuple[float, float, float]:
    """(u, v, speed) at ``t``: ``WindSeries.velocity_at`` and ``speed_at``."""
    speed = _interp1(t, wt, ws)
    u = _interp1(t, wt, wu)
    v = _interp1(t, wt, wv)
    norm = math.hypot(u, v)
    if norm <= 1e-12 * max(speed, 1.0) or speed == 0.0:
        return 0.0, 0.0, speed
    return speed * u / norm, speed * v / norm, speed


@_jit
def _pairwise_leaf(a: np.ndarray, lo: int, n: int) -> float:
    """NumPy's pairwise sum of a block of n ≤ 128 values (8 accumulators)."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@_jit
def _pairwise_sum(a: np.ndarray, n: int) -> float:
    """``np.sum(a[:n])`` with NumPy's rounding: blocks of ≤ 128 summed by ``_pairwise_leaf``,
    larger ranges split at n/2 (rounded down to a multiple of 8) and the halves added
    (NumPy's recursion, unrolled with a stack: numba's cache cannot hold recursive code)."""
    if n <= 128:
        return _pairwise_leaf(a, 0, n)
    t_lo = np.empty(128, dtype=np.int64)
    t_n = np.empty(128, dtype=np.int64)
    t_phase = np.empty(128, dtype=np.int64)
    vals = np.empty(128)
    nt = 1
    nv = 0
    t_lo[0], t_n[0], t_phase[0] = 0, n, 0
    while nt > 0:
        nt -= 1
        lo, m, phase = t_lo[nt], t_n[nt], t_phase[nt]
        if m <= 128:
            vals[nv] = _pairwise_leaf(a, lo, m)
            nv += 1
        elif phase == 0:
            m2 = m // 2
            m2 -= m2 % 8
            t_lo[nt], t_n[nt], t_phase[nt] = lo, m, 1  # combine after both halves
            t_lo[nt + 1], t_n[nt + 1], t_phase[nt + 1] = lo + m2, m - m2, 0
            t_lo[nt + 2], t_n[nt + 2], t_phase[nt + 2] = lo, m2, 0  # left half first
            nt += 3
        else:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
    return vals[0]


@_jit
def _release_in(t0: float, t1: float, rs: np.ndarray, re: np.ndarray,
                rr: np.ndarray) -> tuple[float, float]:
    """``ReleaseSchedule.mass_and_centroid`` over [t0, t1]: mass and mean release time."""
    if t1 <= t0:
        return 0.0, 0.5 * (t0 + t1)
    nseg = rs.size
    if nseg >= 8:  # the schedule sums these with np.sum (pairwise)
        seg = np.empty(nseg)
        mom = np.empty(nseg)
        for j in range(nseg):
            lo, hi = max(rs[j], t0), min(re[j], t1)
            seg[j] = rr[j] * max(hi - lo, 0.0)
            mom[j] = seg[j] * 0.5 * (lo + hi)
        mass = _pairwise_sum(seg, nseg)
        moment = _pairwise_sum(mom, nseg)
    else:
        mass = 0.0
        moment = 0.0
        for j in range(nseg):
            lo, hi = max(rs[j], t0), min(re[j], t1)
            s = rr[j] * max(hi - lo, 0.0)
            mass += s
            moment += s * 0.5 * (lo + hi)
    if mass <= 0.0:
        return 0.0, 0.5 * (t0 + t1)
    return mass, min(max(moment / mass, t0), t1)


@_jit
def _briggs1(x: float, a: float, b: float, c: float) -> float:
    """σ = a·x·(1 + b·x)^c (``dispersion.briggs_sigmas_from``; NumPy's exact fast paths for
    the exponents 0, ±1, 0.5, 2)."""
    base = 1.0 + b * x
    if c == 0.0:
        p = 1.0
    elif c == 1.0:
        p = base
    elif c == -1.0:
        p = 1.0 / base
    elif c == 0.5:
        p = math.sqrt(base)
    elif c == 2.0:
        p = base * base
    else:
        p = base**c
    return a * x * p


@_jit
def _sigmas1(st: np.ndarray, i: int, brg: np.ndarray) -> tuple[float, float]:
    """σh, σz of puff ``i``: √(var0 + σ_Briggs(travel)²) (``GaussianPuffPlume._sigmas``)."""
    s = st[2, i]
    sy = _briggs1(s, brg[0], brg[1], brg[2])
    sz = _briggs1(s, brg[3], brg[4], brg[5])
    return math.sqrt(st[4, i] + sy * sy), math.sqrt(st[5, i] + sz * sz)


@_jit
def _step_kernel(st: np.ndarray, n: int, ta: float, tb: float, wt: np.ndarray,
                 ws: np.ndarray, wu: np.ndarray, wv: np.ndarray, rs: np.ndarray,
                 re: np.ndarray, rr: np.ndarray, brg: np.ndarray, prm: np.ndarray,
                 scratch: np.ndarray, keep: np.ndarray) -> tuple[int, float]:
    """One puff step ta → tb in place on ``st[:, :n]`` (``GaussianPuffPlume._step``):
    advect with the midpoint wind, grow the travel, emit the interval's puff, drop puffs
    whose peak is below the floor or that left the range. Returns (n, dropped kg)."""
    dt = tb - ta
    t_mid = 0.5 * (ta + tb)
    u, v, speed = _wind_at(t_mid, wt, ws, wu, wv)
    grow = max(speed, prm[_P_CALM]) * dt
    udt = u * dt
    vdt = v * dt
    for i in range(n):
        st[0, i] = st[0, i] + udt
        st[1, i] = st[1, i] + vdt
        st[2, i] = st[2, i] + grow
    m_new, t_birth = _release_in(ta, tb, rs, re, rr)
    if m_new > 0.0:
        age = tb - t_birth
        t_half = 0.5 * (t_birth + tb)
        u2, v2, speed2 = _wind_at(t_half, wt, ws, wu, wv)
        st[0, n] = prm[_P_SX] + u2 * age
        st[1, n] = prm[_P_SY] + v2 * age
        st[2, n] = max(speed2, prm[_P_CALM]) * age
        st[3, n] = m_new
        st[4, n] = prm[_P_S0SQ]
        st[5, n] = prm[_P_S0SQ]
        st[6, n] = t_birth
        n += 1
    c_peak = 2.0 * _NORM
    # a cheap sufficient test first: with exponents c ≤ 0, σ(s) ≤ a·s, so the peak is at
    # least c_peak·m / ((var0h + (ay·s)²)·√(var0z + (az·s)²)); a puff whose bound clears the
    # floor, and whose |Δ|² clears the range, by a margin far above rounding (1e-9) is kept
    # without the exact test (same decisions; the exact test decides everything else)
    bounded = brg[2] <= 0.0 and brg[5] <= 0.0
    floor_lb = prm[_P_MINC] * (1.0 + 1e-9)
    range2_lb = prm[_P_RANGE] * prm[_P_RANGE] * (1.0 - 1e-9)
    n_drop = 0
    for i in range(n):
        dx = st[0, i] - prm[_P_SX]
        dy = st[1, i] - prm[_P_SY]
        if bounded and dx * dx + dy * dy <= range2_lb:
            s_i = st[2, i]
            hy = brg[0] * s_i
            hz = brg[3] * s_i
            if c_peak * st[3, i] >= floor_lb * ((st[4, i] + hy * hy)
                                                * math.sqrt(st[5, i] + hz * hz)):
                keep[i] = True
                continue
        sh, sz = _sigmas1(st, i, brg)
        peak = c_peak * st[3, i] / (sh * sh * sz)
        dist = math.hypot(dx, dy)
        keep[i] = peak >= prm[_P_MINC] and dist <= prm[_P_RANGE]
        if not keep[i]:
            scratch[n_drop] = st[3, i]
            n_drop += 1
    if n_drop == 0:
        return n, 0.0
    dropped = _pairwise_sum(scratch, n_drop)
    w = 0
    for i in range(n):
        if keep[i]:
            if w != i:
                for r in range(_ROWS):
                    st[r, w] = st[r, i]
            w += 1
    return w, dropped


@_jit
def _merge_pass_kernel(st: np.ndarray, n: int, t_s: float, brg: np.ndarray, prm: np.ndarray,
                       sh: np.ndarray, sz: np.ndarray, d: np.ndarray,
                       sel: np.ndarray) -> int:
    """One merge pass in place on ``st[:, :n]`` (``GaussianPuffPlume._merge_pass``: same
    criteria, same pairs, same moment-preserving merge). Returns the new count (n: none)."""
    if n < 2:
        return n
    for i in range(n):
        sh[i], sz[i] = _sigmas1(st, i, brg)
    any_pair = False
    prev = False
    pos = 0
    for i in range(n - 1):
        d[i] = math.hypot(st[0, i + 1] - st[0, i], st[1, i + 1] - st[1, i])
        sh_lo, sh_hi = min(sh[i], sh[i + 1]), max(sh[i], sh[i + 1])
        sz_lo, sz_hi = min(sz[i], sz[i + 1]), max(sz[i], sz[i + 1])
        cand = (
            (t_s - st[6, i]) >= prm[_P_AGE]
            and (t_s - st[6, i + 1]) >= prm[_P_AGE]
            and d[i] <= prm[_P_SEP] * sh_lo
            and sh_hi <= prm[_P_RATIO] * sh_lo
            and sz_hi <= prm[_P_RATIO] * sz_lo
        )
        pos = pos + 1 if (cand and prev) else 0
        sel[i] = cand and pos % 2 == 0  # 1st, 3rd, ... pair of a run of candidates
        any_pair = any_pair or cand
        prev = cand
    if not any_pair:
        return n
    w = 0
    i = 0
    while i < n:
        if i < n - 1 and sel[i]:
            a, b = i, i + 1
            ma, mb = st[3, a], st[3, b]
            m = ma + mb
            wa, wb = ma / m, mb / m
            x = wa * st[0, a] + wb * st[0, b]
            y = wa * st[1, a] + wb * st[1, b]
            s = wa * st[2, a] + wb * st[2, b]
            sigma_h2 = wa * (sh[a] * sh[a]) + wb * (sh[b] * sh[b]) + 0.5 * wa * wb * (d[a] * d[a])
            sigma_z2 = wa * (sz[a] * sz[a]) + wb * (sz[b] * sz[b])
            by = _briggs1(s, brg[0], brg[1], brg[2])
            bz = _briggs1(s, brg[3], brg[4], brg[5])
            born = wa * st[6, a] + wb * st[6, b]
            st[0, w] = x
            st[1, w] = y
            st[2, w] = s
            st[3, w] = m
            st[4, w] = sigma_h2 - by * by
            st[5, w] = sigma_z2 - bz * bz
            st[6, w] = born
            i += 2
        else:
            if w != i:
                for r in range(_ROWS):
                    st[r, w] = st[r, i]
            i += 1
        w += 1
    return w


@_jit
def _advance_kernel(packed: np.ndarray, k: int, t: float, t0: float, dt: float, tol: float,
                    dropped: float, merge_every: int, wt: np.ndarray, ws: np.ndarray,
                    wu: np.ndarray, wv: np.ndarray, rs: np.ndarray, re: np.ndarray,
                    rr: np.ndarray, brg: np.ndarray, prm: np.ndarray
                    ) -> tuple[np.ndarray, int, float, np.ndarray, float, np.ndarray, np.ndarray]:
    """``GaussianPuffPlume.advance_to`` from the committed state ``packed`` (7, n) at grid
    step ``k``: committed steps t0 + k·dt while ≤ t + tol (merging, unless merge_every is 0,
    after steps k % merge_every == 0), then a partial step to ``t``. Returns (committed,
    k, its dropped kg, view state at t, its dropped kg, view σh, view σz)."""
    n = packed.shape[1]
    k1 = k
    while t0 + (k1 + 1) * dt <= t + tol:
        k1 += 1
    cap = n + (k1 - k) + 1
    buf = np.empty((_ROWS, cap))
    buf[:, :n] = packed
    scratch = np.empty(cap)
    keep = np.empty(cap, dtype=np.bool_)
    sh = np.empty(cap)
    sz = np.empty(cap)
    d = np.empty(cap)
    sel = np.empty(cap, dtype=np.bool_)
    for kk in range(k, k1):
        tb = t0 + (kk + 1) * dt
        n, lost = _step_kernel(buf, n, t0 + kk * dt, tb, wt, ws, wu, wv, rs, re, rr, brg,
                               prm, scratch, keep)
        dropped += lost
        if merge_every > 0 and (kk + 1) % merge_every == 0:
            for _ in range(_MAX_MERGE_PASSES):
                n_merged = _merge_pass_kernel(buf, n, tb, brg, prm, sh, sz, d, sel)
                if n_merged == n:
                    break
                n = n_merged
    committed = buf[:, :n].copy()
    dropped_committed = dropped
    t_grid = t0 + k1 * dt
    if t - t_grid > tol:
        n, lost = _step_kernel(buf, n, t_grid, t, wt, ws, wu, wv, rs, re, rr, brg, prm,
                               scratch, keep)
        dropped += lost
        view = buf[:, :n].copy()
    else:
        view = committed
    sigma_h = np.empty(n)
    sigma_z = np.empty(n)
    for i in range(n):
        sigma_h[i], sigma_z[i] = _sigmas1(view, i, brg)
    return committed, k1, dropped_committed, view, dropped, sigma_h, sigma_z


@dataclass(frozen=True)
class _Puffs:
    """Puff state, in release order: centres, travel distance s (for σ growth), mass, the
    σ² offsets (σh² = var0h + σy(s)², σz² = var0z + σz(s)²; σ0² until merged) and the
    mass-weighted birth time."""

    x_m: np.ndarray
    y_m: np.ndarray
    travel_m: np.ndarray
    mass_kg: np.ndarray
    var0h_m2: np.ndarray
    var0z_m2: np.ndarray
    t_birth_s: np.ndarray
    stacked: np.ndarray | None = None
    """The (7, n) array the fields are rows of, when built by ``from_packed``."""

    @classmethod
    def empty(cls) -> _Puffs:
        e = np.empty(0)
        return cls(e, e, e, e, e, e, e)

    def __len__(self) -> int:
        return int(self.x_m.size)

    def packed(self) -> np.ndarray:
        """The state as one (7, n) array (rows in field order), for the compiled kernels."""
        if self.stacked is not None:
            return self.stacked
        return np.stack((self.x_m, self.y_m, self.travel_m, self.mass_kg, self.var0h_m2,
                         self.var0z_m2, self.t_birth_s))

    @classmethod
    def from_packed(cls, packed: np.ndarray) -> _Puffs:
        """Row views of a (7, n) state array (never written to afterwards)."""
        return cls(*packed, stacked=packed)


_SHARED_ATTRS = frozenset({
    "release", "wind", "_briggs", "_committed", "_view", "_sigma_h", "_sigma_z",
    "_kernel_cache", "source_xy_m",
})
"""Attributes ``GaussianPuffPlume._copy`` shares between a plume and its copy."""
_IMMUTABLE = (bool, int, float, str, type(None))


@register_engine
class GaussianPuffPlume(HazardEngine):
    """Above-ground methane plume as a sum of ground-reflected Gaussian puffs."""

    render_quantity = "ch4_lel_pct"
    kind = "gas_plume"
    info = {
        "ch4_kg_m3": QuantityInfo("kg/m3", "methane mass concentration in air"),
        "ch4_ppm": QuantityInfo("ppm", "methane volume fraction, parts per million"),
        "ch4_lel_pct": QuantityInfo("%LEL", "methane as percent of the lower explosive limit"),
    }

    def __init__(
        self,
        *,
        source_xy_m: tuple[float, float],
        source_height_m: float,
        release: ReleaseSchedule,
        wind: WindSeries,
        stability: str = "D",
        terrain: str = "urban",
        puff_interval_s: float = DEFAULT_PUFF_INTERVAL_S,
        initial_sigma_m: float = 1.0,
        calm_wind_m_s: float = 0.5,
        temperature_k: float = STANDARD_TEMPERATURE_K,
        pressure_pa: float = STANDARD_PRESSURE_PA,
        lel_vol_frac: float = CH4_LEL_VOL_FRAC,
        max_range_m: float = 10_000.0,
        min_conc_kg_m3: float = 1e-11,
        cutoff_sigmas: float = puffsum.DEFAULT_CUTOFF,
        t0_s: float = 0.0,
        backend: str | None = None,
        merge: bool = True,
        merge_every_steps: int = DEFAULT_MERGE_EVERY_STEPS,
        merge_min_age_s: float = DEFAULT_MERGE_MIN_AGE_S,
        merge_separation_sigmas: float = DEFAULT_MERGE_SEPARATION_SIGMAS,
        merge_sigma_ratio: float = DEFAULT_MERGE_SIGMA_RATIO,
    ) -> None:
        """Build an idle plume at ``t0_s`` (release before ``t0_s`` is ignored).

        ``max_range_m``: puffs whose centre is farther from the source are dropped (Briggs
        curves are valid to ~10 km). ``min_conc_kg_m3``: puffs whose peak concentration is
        below it are dropped. Dropped mass is counted in ``dropped_mass_kg()``.
        ``backend``: "numba" or "numpy" (``None``: ``puffsum.DEFAULT_BACKEND``).
        ``merge``: consolidate overlapping old puffs (module docstring); the ``merge_*``
        parameters are documented at their ``DEFAULT_MERGE_*`` constants. ``merge=False``
        gives the plain one-puff-per-interval model.
        """
        sx, sy = (float(v) for v in source_xy_m)
        checks = {
            "source_xy_m": (source_xy_m, math.isfinite(sx) and math.isfinite(sy)),
            "source_height_m": (
                source_height_m,
                math.isfinite(source_height_m) and source_height_m >= 0.0,
            ),
            "puff_interval_s": (
                puff_interval_s,
                math.isfinite(puff_interval_s) and puff_interval_s > 0.0,
            ),
            "initial_sigma_m": (
                initial_sigma_m,
                math.isfinite(initial_sigma_m) and initial_sigma_m > 0.0,
            ),
            "calm_wind_m_s": (calm_wind_m_s, math.isfinite(calm_wind_m_s) and calm_wind_m_s >= 0),
            "temperature_k": (temperature_k, temperature_k > 0.0),
            "pressure_pa": (pressure_pa, pressure_pa > 0.0),
            "lel_vol_frac": (lel_vol_frac, 0.0 < lel_vol_frac < 1.0),
            "max_range_m": (max_range_m, max_range_m > 0.0),
            "min_conc_kg_m3": (min_conc_kg_m3, min_conc_kg_m3 >= 0.0),
            "cutoff_sigmas": (cutoff_sigmas, math.isfinite(cutoff_sigmas) and cutoff_sigmas > 0),
            "t0_s": (t0_s, math.isfinite(t0_s)),
            "merge_every_steps": (
                merge_every_steps,
                isinstance(merge_every_steps, (int, np.integer))
                and not isinstance(merge_every_steps, bool)
                and merge_every_steps >= 1,
            ),
            "merge_min_age_s": (
                merge_min_age_s,
                math.isfinite(merge_min_age_s) and merge_min_age_s >= 0.0,
            ),
            "merge_separation_sigmas": (
                merge_separation_sigmas,
                math.isfinite(merge_separation_sigmas) and merge_separation_sigmas >= 0.0,
            ),
            "merge_sigma_ratio": (
                merge_sigma_ratio,
                math.isfinite(merge_sigma_ratio) and merge_sigma_ratio >= 1.0,
            ),
        }
        bad = {name: value for name, (value, ok) in checks.items() if not ok}
        if bad:
            raise ValueError(f"invalid GaussianPuffPlume arguments: {bad}")
        if not isinstance(release, ReleaseSchedule):
            raise TypeError("release must be a ReleaseSchedule")
        if not isinstance(wind, WindSeries):
            raise TypeError("wind must be a WindSeries")
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}")

        self.source_xy_m = (sx, sy)
        self.source_height_m = float(source_height_m)
        self.release = release
        self.wind = wind
        self.stability = check_stability(stability)
        self.terrain = check_terrain(terrain)
        self._briggs = briggs_coefficients(self.stability, self.terrain)
        self.puff_interval_s = float(puff_interval_s)
        self.initial_sigma_m = float(initial_sigma_m)
        self.calm_wind_m_s = float(calm_wind_m_s)
        self.temperature_k = float(temperature_k)
        self.pressure_pa = float(pressure_pa)
        self.lel_vol_frac = float(lel_vol_frac)
        # unit conversions (``_convert``): fixed at construction with T, p and the LEL
        self._density_kg_m3 = gas_density_kg_m3(self.temperature_k, self.pressure_pa)
        self._lel_pct_per_ppm = 1e-4 / self.lel_vol_frac
        self.max_range_m = float(max_range_m)
        self.min_conc_kg_m3 = float(min_conc_kg_m3)
        self.cutoff_sigmas = float(cutoff_sigmas)
        self.t0_s = float(t0_s)
        self.backend = backend
        self.merge = bool(merge)
        self.merge_every_steps = int(merge_every_steps)
        self.merge_min_age_s = float(merge_min_age_s)
        self.merge_separation_sigmas = float(merge_separation_sigmas)
        self.merge_sigma_ratio = float(merge_sigma_ratio)

        self.t_s = self.t0_s
        self._k = 0  # committed state is at t0 + k * dt
        self._committed = _Puffs.empty()
        self._committed_dropped_kg = 0.0
        self._set_view(self._committed, self._committed_dropped_kg)

    # ------------------------------------------------------------------ stepping
    def _grid_time(self, k: int) -> float:
        return self.t0_s + k * self.puff_interval_s

    def _step(self, puffs: _Puffs, ta: float, tb: float) -> tuple[_Puffs, float]:
        """Advance ``puffs`` from ta to tb and emit the interval's puff; return dropped mass."""
        dt = tb - ta
        t_mid = 0.5 * (ta + tb)
        u, v = self.wind.velocity_at(t_mid)
        grow = max(self.wind.speed_at(t_mid), self.calm_wind_m_s) * dt
        x = puffs.x_m + u * dt
        y = puffs.y_m + v * dt
        travel = puffs.travel_m + grow
        mass, var0h, var0z, born = puffs.mass_kg, puffs.var0h_m2, puffs.var0z_m2, puffs.t_birth_s

        m_new, t_birth = self.release.mass_and_centroid(ta, tb)
        if m_new > 0.0:
            age = tb - t_birth
            t_half = 0.5 * (t_birth + tb)
            u2, v2 = self.wind.velocity_at(t_half)
            grow2 = max(self.wind.speed_at(t_half), self.calm_wind_m_s) * age
            sx, sy = self.source_xy_m
            s0sq = self.initial_sigma_m**2
            # the new puff appended to every column at once (one allocation, not seven)
            n = len(x)
            cols = np.empty((7, n + 1))
            for row, old in enumerate((x, y, travel, mass, var0h, var0z, born)):
                cols[row, :n] = old
            cols[:, n] = (sx + u2 * age, sy + v2 * age, grow2, m_new, s0sq, s0sq, t_birth)
            x, y, travel, mass, var0h, var0z, born = cols

        stepped = _Puffs(x, y, travel, mass, var0h, var0z, born)
        sigma_h, sigma_z = self._sigmas(stepped)
        peak = 2.0 * _NORM * mass / (sigma_h * sigma_h * sigma_z)
        dist = np.hypot(x - self.source_xy_m[0], y - self.source_xy_m[1])
        keep = (peak >= self.min_conc_kg_m3) & (dist <= self.max_range_m)
        dropped = float(np.sum(mass[~keep]))
        if dropped or not keep.all():
            stepped = _Puffs(*(a[keep] for a in (x, y, travel, mass, var0h, var0z, born)))
        return stepped, dropped

    def _sigmas(self, puffs: _Puffs) -> tuple[np.ndarray, np.ndarray]:
        """σh, σz (m): σ² offsets (σ0² unless merged) plus Briggs at the travel distance."""
        sy, sz = briggs_sigmas_from(puffs.travel_m, self._briggs)
        return np.sqrt(puffs.var0h_m2 + sy * sy), np.sqrt(puffs.var0z_m2 + sz * sz)

    def _merge(self, puffs: _Puffs, t_s: float) -> _Puffs:
        """Consolidate neighbours in release order that overlap (see ``_merge_pass``)."""
        for _ in range(_MAX_MERGE_PASSES):
            merged = self._merge_pass(puffs, t_s)
            if merged is None:
                break
            puffs = merged
        return puffs

    def _merge_pass(self, puffs: _Puffs, t_s: float) -> _Puffs | None:
        """One pass of pairwise merging; ``None`` if no pair qualifies.

        Pair (i, i+1) qualifies when both are at least ``merge_min_age_s`` old, their centres
        are at most ``merge_separation_sigmas`` × the smaller σh apart, and the larger σh and
        σz are at most ``merge_sigma_ratio`` × the smaller. In a run of qualifying pairs the
        1st, 3rd, … (oldest first) are merged, so the merged pairs are disjoint. The merged
        puff conserves mass, the centroid (first moments) and the second moments
        (moment-preserving Gaussian merge, Salmond 1990; Runnalls 2007):
          σz² = Σw σz_i²;  σh² = Σw σh_i² + ½ Σw |c_i − c̄|²  (w = m_i/M)
        (puffs share the release height, so the centres have no vertical spread). The ½: the
        centres' variance var = Σw |c_i − c̄|² lies along their separation, which a circular
        puff (σx = σy) cannot hold in one axis, so σh² conserves the trace of the horizontal
        covariance (the radial moment ⟨r²⟩): the merged puff is ½·var too wide across and
        ½·var too narrow along the separation; ½·var ≤ d²/8 ≤ 0.005 σh² at the default
        threshold. Travel s and birth time are mass-weighted means (so the merged puff is
        neither older nor younger than its mass); the σ² offsets var0 are set so that
        var0 + σ(s)² is the merged σ², so later growth follows the Briggs curve from s and
        matches the pair's mean growth up to terms of second order in their travel
        difference. var0 may drop below σ0² (even below 0 where σz(s) is concave) but
        var0 + σ(s')² ≥ merged σ² > 0 for s' ≥ s, as the Briggs σ never decrease.
        """
        n = len(puffs)
        if n < 2:
            return None
        sh, sz = self._sigmas(puffs)
        old = (t_s - puffs.t_birth_s) >= self.merge_min_age_s
        d = np.hypot(np.diff(puffs.x_m), np.diff(puffs.y_m))
        sh_lo, sh_hi = np.minimum(sh[:-1], sh[1:]), np.maximum(sh[:-1], sh[1:])
        sz_lo, sz_hi = np.minimum(sz[:-1], sz[1:]), np.maximum(sz[:-1], sz[1:])
        cand = (
            old[:-1]
            & old[1:]
            & (d <= self.merge_separation_sigmas * sh_lo)
            & (sh_hi <= self.merge_sigma_ratio * sh_lo)
            & (sz_hi <= self.merge_sigma_ratio * sz_lo)
        )
        if not cand.any():
            return None
        idx = np.arange(n - 1)
        run_start = cand.copy()
        run_start[1:] &= ~cand[:-1]
        first = np.maximum.accumulate(np.where(run_start, idx, 0))
        a = np.flatnonzero(cand & ((idx - first) % 2 == 0))
        b = a + 1

        ma, mb = puffs.mass_kg[a], puffs.mass_kg[b]
        m = ma + mb
        wa, wb = ma / m, mb / m
        x = puffs.x_m.copy()
        y = puffs.y_m.copy()
        travel = puffs.travel_m.copy()
        mass = puffs.mass_kg.copy()
        var0h = puffs.var0h_m2.copy()
        var0z = puffs.var0z_m2.copy()
        born = puffs.t_birth_s.copy()
        x[a] = wa * puffs.x_m[a] + wb * puffs.x_m[b]
        y[a] = wa * puffs.y_m[a] + wb * puffs.y_m[b]
        s = wa * puffs.travel_m[a] + wb * puffs.travel_m[b]
        sigma_h2 = wa * sh[a] ** 2 + wb * sh[b] ** 2 + 0.5 * wa * wb * d[a] ** 2
        sigma_z2 = wa * sz[a] ** 2 + wb * sz[b] ** 2
        by, bz = briggs_sigmas_from(s, self._briggs)
        travel[a] = s
        mass[a] = m
        var0h[a] = sigma_h2 - by * by
        var0z[a] = sigma_z2 - bz * bz
        born[a] = wa * puffs.t_birth_s[a] + wb * puffs.t_birth_s[b]
        keep = np.ones(n, dtype=bool)
        keep[b] = False
        return _Puffs(*(v[keep] for v in (x, y, travel, mass, var0h, var0z, born)))

    def _set_view(self, puffs: _Puffs, dropped_kg: float) -> None:
        self._view = puffs
        self._view_dropped_kg = dropped_kg
        self._sigma_h, self._sigma_z = self._sigmas(puffs)

    def advance_to(self, t_s: float) -> None:
        """Advance to ``t_s`` in steps of ``puff_interval_s`` on the grid t0 + k·Δt.

        Raises ValueError (naming both times) if ``t_s`` is before the current time.
        """
        t = self.check_not_backwards(t_s)
        dt = self.puff_interval_s
        tol = 1e-9 * dt
        if self._compiled():
            self._advance_compiled(t, tol)
            self.t_s = t
            return
        puffs, dropped = self._committed, self._committed_dropped_kg
        while self._grid_time(self._k + 1) <= t + tol:
            ta, tb = self._grid_time(self._k), self._grid_time(self._k + 1)
            puffs, lost = self._step(puffs, ta, tb)
            dropped += lost
            self._k += 1
            if self.merge and self._k % self.merge_every_steps == 0:
                puffs = self._merge(puffs, tb)
        self._committed, self._committed_dropped_kg = puffs, dropped
        t_grid = self._grid_time(self._k)
        if t - t_grid > tol:
            puffs, lost = self._step(puffs, t_grid, t)
            dropped += lost
        self._set_view(puffs, dropped)
        self.t_s = t

    def _compiled(self) -> bool:
        """Whether stepping uses the compiled kernels (backend "numba", the default)."""
        backend = puffsum.DEFAULT_BACKEND if self.backend is None else self.backend
        return backend == "numba" and HAVE_NUMBA

    def _kernel_inputs(self) -> tuple[np.ndarray, ...]:
        """Wind, release and parameter arrays for ``_advance_kernel`` (cached per wind)."""
        cached = self.__dict__.get("_kernel_cache")
        if cached is not None and cached[0] is self.wind and cached[1] is self.release:
            return cached[2]
        w, r = self.wind, self.release
        ends = np.append(r.times_s[1:], np.inf)
        (ay, by, cy), (az, bz, cz) = self._briggs
        sx, sy = self.source_xy_m
        prm = np.array([self.calm_wind_m_s, sx, sy, self.initial_sigma_m**2, self.min_conc_kg_m3,
                        self.max_range_m, self.merge_min_age_s, self.merge_separation_sigmas,
                        self.merge_sigma_ratio])
        inputs = (w.times_s, w.speed_m_s, w.u_m_s, w.v_m_s, r.times_s, ends, r.rate_kg_s,
                  np.array([ay, by, cy, az, bz, cz]), prm)
        self._kernel_cache = (w, r, inputs)
        return inputs

    def _advance_compiled(self, t: float, tol: float) -> None:
        """``advance_to`` by ``_advance_kernel`` (same steps, same merges, compiled)."""
        committed, k, dropped_c, view, dropped_v, sigma_h, sigma_z = _advance_kernel(
            self._committed.packed(), self._k, t, self.t0_s, self.puff_interval_s, tol,
            self._committed_dropped_kg, self.merge_every_steps if self.merge else 0,
            *self._kernel_inputs(),
        )
        self._k = int(k)
        self._committed = _Puffs.from_packed(committed)
        self._committed_dropped_kg = float(dropped_c)
        self._view = self._committed if view is committed else _Puffs.from_packed(view)
        self._view_dropped_kg = float(dropped_v)
        self._sigma_h, self._sigma_z = sigma_h, sigma_z

    # ------------------------------------------------------------------ queries
    def forecast_copy(self) -> GaussianPuffPlume:
        """A copy whose future wind is the wind now, held (persistence forecast): the
        platform knows the wind observed at ``t_s``, not the scenario's later shifts. The
        release keeps its schedule (the source term is taken as known)."""
        twin = self._copy()
        u, v = self.wind.velocity_at(self.t_s)
        speed = self.wind.speed_at(self.t_s)
        if math.hypot(u, v) > 0.0:
            from_deg = math.degrees(math.atan2(-u, -v)) % 360.0
        else:  # calm: keep the last given direction
            from_deg = float(np.interp(self.t_s, self.wind.times_s, self.wind.from_deg))
        twin.wind = WindSeries.constant(speed, from_deg)
        return twin

    def _copy(self) -> GaussianPuffPlume:
        """An independent copy, as ``copy.deepcopy`` would give, sharing what is never
        modified in place: the puff state arrays (every step builds new ones), the frozen
        forcing and the kernel inputs. Any other attribute is deep-copied."""
        twin = copy.copy(self)
        for name, value in vars(self).items():
            if name not in _SHARED_ATTRS and not isinstance(value, _IMMUTABLE):
                setattr(twin, name, copy.deepcopy(value))
        return twin

    def is_active(self) -> bool:
        """Gas is aloft (a release has started and not all of it has left the domain)."""
        return self.mass_airborne_kg() > 0.0

    @property
    def puff_count(self) -> int:
        """Number of live puffs at ``t_s``."""
        return len(self._view)

    def mass_airborne_kg(self) -> float:
        """Sum of live puff masses (kg)."""
        return float(np.sum(self._view.mass_kg))

    def released_mass_kg(self) -> float:
        """∫ release rate dt from ``t0_s`` to ``t_s`` (kg)."""
        return self.release.mass_between(self.t0_s, self.t_s)

    def dropped_mass_kg(self) -> float:
        """Mass of puffs dropped by ``max_range_m`` / ``min_conc_kg_m3`` so far (kg)."""
        return self._view_dropped_kg

    def puffs(self) -> dict[str, np.ndarray]:
        """Copy of the live puff state: x_m, y_m, travel_m, mass_kg, t_birth_s (mass-weighted
        for merged puffs), sigma_h_m, sigma_z_m."""
        v = self._view
        return {
            "x_m": v.x_m.copy(),
            "y_m": v.y_m.copy(),
            "travel_m": v.travel_m.copy(),
            "mass_kg": v.mass_kg.copy(),
            "t_birth_s": v.t_birth_s.copy(),
            "sigma_h_m": self._sigma_h.copy(),
            "sigma_z_m": self._sigma_z.copy(),
        }

    def concentration_kg_m3(self, xyz_m: ArrayLike) -> np.ndarray:
        """Methane mass concentration (kg/m³) at points of shape (n, 3)."""
        pts = as_points(xyz_m)
        if pts.shape[0] == 0 or self.puff_count == 0:
            return np.zeros(pts.shape[0])
        v = self._view
        return puffsum.puff_concentration(
            pts,
            v.x_m,
            v.y_m,
            self._sigma_h,
            self._sigma_z,
            v.mass_kg,
            self.source_height_m,
            cutoff=self.cutoff_sigmas,
            backend=self.backend,
        )

    def _convert(self, quantity: str, conc_kg_m3: np.ndarray) -> np.ndarray:
        """kg/m³ to ``quantity``: ``gas.kg_m3_to_ppm`` and ``gas.ppm_to_lel_pct`` (the same
        operations, with the methane density and the LEL factor computed at construction)."""
        if quantity == "ch4_kg_m3":
            return conc_kg_m3
        ppm = 1e6 * np.asarray(conc_kg_m3, dtype=np.float64) / self._density_kg_m3
        if quantity == "ch4_ppm":
            return ppm
        return ppm * self._lel_pct_per_ppm

    def sample(self, quantity: str, xyz_m: np.ndarray) -> np.ndarray:
        """``quantity`` at points ``xyz_m`` (shape (n, 3), z above ground) as float64 (n,)."""
        self.check_quantity(quantity)
        return self._convert(quantity, self.concentration_kg_m3(xyz_m))

    def field(
        self,
        quantity: str,
        *,
        z_m: float = 1.5,
        bounds: Bounds | None = None,
        resolution_m: float = 5.0,
    ) -> FieldGrid:
        """``quantity`` on a regular grid at height ``z_m`` (``HazardEngine.field``): with the
        "numba" backend by ``puffsum.grid_concentration`` (separable horizontal Gaussian; the
        values of ``sample`` at the cell centres to round-off), else by ``sample``."""
        if not self._compiled():
            return super().field(quantity, z_m=z_m, bounds=bounds, resolution_m=resolution_m)
        self.check_quantity(quantity)
        xs, ys = grid_axes(self.default_bounds() if bounds is None else bounds, resolution_m)
        z = float(z_m)
        if not math.isfinite(z):
            raise ValueError("xyz_m contains non-finite coordinates")
        if self.puff_count == 0:
            conc = np.zeros((ys.size, xs.size))
        else:
            v = self._view
            conc = puffsum.grid_concentration(
                xs, ys, z, v.x_m, v.y_m, self._sigma_h, self._sigma_z, v.mass_kg,
                self.source_height_m, cutoff=self.cutoff_sigmas,
            )
        return FieldGrid(xs_m=xs, ys_m=ys, values=self._convert(quantity, conc),
                         quantity=quantity, units=self.info[quantity].units, t_s=self.t_s,
                         resolution_m=float(resolution_m), z_m=z)

    def default_bounds(self) -> Bounds:
        """Extent of the puff cloud, centres ± 4σh (source ± 50 m when there are no puffs)."""
        if self.puff_count == 0:
            sx, sy = self.source_xy_m
            return (sx - 50.0, sy - 50.0, sx + 50.0, sy + 50.0)
        v, r = self._view, 4.0 * self._sigma_h
        return (
            float(np.min(v.x_m - r)),
            float(np.min(v.y_m - r)),
            float(np.max(v.x_m + r)),
            float(np.max(v.y_m + r)),
        )

    @classmethod
    def in_weather(cls, weather: Weather, xy_m: tuple[float, float], height_m: float,
                   release: ReleaseSchedule) -> GaussianPuffPlume:
        """A release at ``xy_m``, ``height_m`` above ground, in a scenario's weather block."""
        return cls(source_xy_m=xy_m, source_height_m=height_m, release=release,
                   wind=wind_series(weather), stability=weather.stability,
                   terrain=weather.terrain, temperature_k=weather.temperature_k,
                   pressure_pa=weather.pressure_pa)

    @classmethod
    def example(cls) -> GaussianPuffPlume:
        """10 g/s leak at 1 m height, 3 m/s wind from the west, urban D, 5 min in."""
        plume = cls(
            source_xy_m=(0.0, 0.0),
            source_height_m=1.0,
            release=ReleaseSchedule.constant(0.0, 600.0, 0.01),
            wind=WindSeries.constant(3.0, 270.0),
            stability="D",
            terrain="urban",
        )
        plume.advance_to(300.0)
        return plume
