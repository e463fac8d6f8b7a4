"""Hot loops of the local-inertial flood model: one time step on a raster.

Scheme (Bates, Horritt & Fewtrell 2010, J. Hydrol. 387:33–45, eq. 11, with the θ-weighting of
de Almeida, Bates, Freer & Souvignet 2012, Water Resour. Res. 48, W05528, eq. 8), per face
between cells a and b (flux q in m²/s, positive from a to b):

    h_f   = max(η_a, η_b) − max(z_a, z_b)                        (face flow depth)
    q*    = θ q + (1 − θ)/2 (q_prev + q_next)                      (neighbour faces, same axis)
    q_t   = (q'_1 + q'_2 + q'_3 + q'_4)/4         (the 4 faces of the other axis around it)
    q_new = [q* − Δt A − g h_f Δt (η_b − η_a)/Δx] / [1 + g Δt n² sqrt(q² + q_t²) / h_f^{7/3}]

and no flow where h_f ≤ ``dry``. Friction acts on the magnitude of the discharge vector, the
other component q_t taken as the mean of the last step's 4 faces of the other axis that
touch the two cells (``fric2d``; LISFLOOD-FP's default "2D friction", LISFLOOD-FP 8 source
fp_acc.cpp ``CalcFPQxAcc``/``CalcFPQyAcc``: qy_avg of the 4 Qyold faces, qvect =
sqrt(q0² + qy_avg²)); with ``fric2d`` off q_t = 0 and the divisor uses |q| as Bates et al.
(2010) eq. 11. Optionally (``froude_max`` > 0) |q_new| is capped at Fr_max·h_f·sqrt(g h_f),
the Froude limiter of CAESAR-Lisflood (Coulthard et al. 2013, Earth Surf. Process. Landf.
38:1897; HAIL-CAESAR ``froude_limit``), on interior and edge faces, before the positivity
limiter. A = 0 for the local-inertial scheme; with ``advect`` it is
the convective acceleration ∂(qu)/∂x + ∂(qv)/∂y in the upwind, momentum-conservative form of
Stelling & Duinmeijer (2003, Int. J. Numer. Meth. Fluids 43:1329): mass flux through each cell
centre (and corner, for the cross term) times the upwind face velocity u = q/h_f of the last
step. With ``limit_side`` a neighbour deeper than the face enters q* with q·h_f/h_f,neighbour
(its velocity times this face's depth) instead of q, so a thin face beside a deep one is not
handed the deep face's discharge (with 1-D friction the published form produced 10–35 m/s
spikes in steep shallow sheet flow).
h_f^{-7/3} uses a division-free inverse cube root (``INV_CBRT_MAGIC32``).

Positivity and exact volume balance: each cell's total outflow over the step is limited to the
water it holds; a face's flux is multiplied by the limiter factor of its donor (upwind) cell,
f = min(1, h Δx / (Δt Σ q_out)), so both neighbours see the same flux and h never goes
negative (beyond round-off, clipped at 0). Continuity: h += Δt/Δx (q_in − q_out) per axis,
then rain (active cells) and a constant-rate loss (infiltration, at most the water present).
Velocities (diagnostics, advection, the advective Δt limit) are face velocities q/h_f, as
LISFLOOD-FP reports them; a cell's speed combines the mean of its two faces per axis.

Boundaries (one type per edge; ``BC_CLOSED``/``BC_FREE``/``BC_STAGE``):
- closed: q = 0.
- stage: a ghost cell beyond the edge with the edge cell's bed and water level ``level``
  (never below the bed); the face uses the interior formula without θ-weighting and with
  friction on |q| (as LISFLOOD-FP's HFIX/HVAR boundaries; LISFLOOD-FP 8.0 source,
  boundary.cpp).
- free: outflow only, q = (|q| + g h Δt S) / (1 + g Δt n² |q| / h^{7/3}) with h the edge
  cell's depth and S = |η_edge − η_inner|/Δx the local water-surface slope (LISFLOOD-FP's FREE
  boundary with no slope given, acceleration solver; LISFLOOD-FP 8.0 source, boundary.cpp;
  Shaw et al. 2021, GMD 14:3577).

Layout: ``qx[r, c]`` is the face west of cell (r, c) (``c = ncols``: east edge), positive
toward +col (east); ``qy[r, c]`` is the face north of cell (r, c) (``r = nrows``: south
edge), positive toward +row (south). Rows are row 0 = north. All float64.

Two backends give the same numbers (bit for bit in the tests):
- ``step_numba``: one fused sweep per chunk of rows (``prange`` over chunks). Inside a chunk
  row k computes its faces and limiter, then finishes continuity of row k−1, so each array is
  streamed about once per step; the per-row loops are branch-free and vectorise. The first
  and last row of every chunk read neighbours from other chunks and are finished in a
  second, short parallel pass. Every value is computed by the same expressions whatever the
  chunking, so results do not depend on the thread count.
- ``step_numpy``: whole-array NumPy (reference path).

The q_t sums are evaluated in the same order in both backends ((q'_1 + q'_2) + q'_3) + q'_4,
so the 2-D friction keeps them identical.
"""

from __future__ import annotations

import math

import numpy as np

from citytwin.physics.numba_setup import (  # noqa: F401  (numba re-exported for tests/benchmarks)
    BACKENDS,
    HAVE_NUMBA,
    njit,
    numba,
    prange,
)

G_M_S2 = 9.81
"""Gravitational acceleration (m/s²)."""

BC_CLOSED = 0
BC_FREE = 1
BC_STAGE = 2
EDGES = ("north", "south", "west", "east")
"""Order of the per-edge arrays ``bc_type`` / ``bc_level`` passed to the kernels."""
NORTH, SOUTH, WEST, EAST = 0, 1, 2, 3

BIG_Z_M = 1.0e6
"""Bed elevation used internally for blocked cells: every face touching one has h_f = 0."""


# --------------------------------------------------------------------------- h^(-7/3)
INV_CBRT_MAGIC32 = 0x54A23000
"""Initial guess of x^(-1/3) from the float32 bit pattern i of x: bits(y0) = MAGIC − i/3
(the exponent divided by −3; the constant minimises the worst relative error, 3.4 %, over
1e-4–1e7 m; found by a scan). i/3 is computed as (i · 0x55555556) >> 32, exact for
0 <= i < 2^31, so the loop has no division and vectorises. Four Newton steps
y ← y (4 − x y³)/3 in float64 bring y to ~1 ulp (7e-16, measured), so h^(-7/3) = y⁷ needs no
libm call (the "fast inverse square root" idea, Lomont 2003, applied to the cube root)."""
_THIRD = 1.0 / 3.0
_DIV3_MAGIC = 0x55555556

if HAVE_NUMBA:
    from llvmlite import ir as _llir
    from numba.core import types as _nbtypes
    from numba.extending import intrinsic

    @intrinsic
    def _f32_bits(typingctx, x):
        """Reinterpret a float32 as int32 (no conversion)."""
        sig = _nbtypes.int32(_nbtypes.float32)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llir.IntType(32))

        return sig, codegen

    @intrinsic
    def _bits_f32(typingctx, i):
        """Reinterpret an int32 as float32 (no conversion)."""
        sig = _nbtypes.float32(_nbtypes.int32)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llir.FloatType())

        return sig, codegen

    @intrinsic
    def _f64_bits(typingctx, x):
        """Reinterpret a float64 as int64 (no conversion)."""
        sig = _nbtypes.int64(_nbtypes.float64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llir.IntType(64))

        return sig, codegen

    @intrinsic
    def _bits_f64(typingctx, i):
        """Reinterpret an int64 as float64 (no conversion)."""
        sig = _nbtypes.float64(_nbtypes.int64)

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llir.DoubleType())

        return sig, codegen


@njit(cache=True, error_model="numpy")
def _inv_h73(h):
    """h^(-7/3) for 1e-30 < h < 1e30 (see ``INV_CBRT_MAGIC32``); ``np_inv_h73`` is the same
    arithmetic."""
    i = np.int64(_f32_bits(np.float32(h)))
    q = (i * _DIV3_MAGIC) >> 32
    y = np.float64(_bits_f32(np.int32(INV_CBRT_MAGIC32 - q)))
    y = y * (4.0 - h * y * y * y) * _THIRD
    y = y * (4.0 - h * y * y * y) * _THIRD
    y = y * (4.0 - h * y * y * y) * _THIRD
    y = y * (4.0 - h * y * y * y) * _THIRD
    y2 = y * y
    return y * y2 * y2 * y2


def np_inv_h73(h: np.ndarray) -> np.ndarray:
    """NumPy twin of ``_inv_h73`` (meaningless, not an error, where h <= 0)."""
    h = np.asarray(h, dtype=np.float64)
    with np.errstate(all="ignore"):
        i = h.astype(np.float32).view(np.int32).astype(np.int64)
        q = (i * _DIV3_MAGIC) >> 32
        y = (INV_CBRT_MAGIC32 - q).astype(np.int32).view(np.float32).astype(np.float64)
        for _ in range(4):
            y = y * (4.0 - h * y * y * y) * _THIRD
        y2 = y * y
        return y * y2 * y2 * y2


# --------------------------------------------------------------------------- face formulas
@njit(cache=True, error_model="numpy")
def _face(q0, qt, qm, hm, qp, hp, eta_a, eta_b, z_a, z_b, c_theta, c_side, gdt, gdt_dx, n2, dry,
          adv_dt, limit_side):
    """(flux m²/s from a to b, face depth h_f) of an interior face; see module docstring.
    ``qt``: the other discharge component at this face (mean of the 4 surrounding faces of the
    other axis, last step; 0 for 1-D friction), so friction acts on |q| = sqrt(q0² + qt²).
    ``qm, hm``, ``qp, hp``: discharge and flow depth of the neighbouring faces on the same axis
    (θ-weighting). ``limit_side``: a neighbour deeper than this face contributes its velocity
    × h_f instead of its discharge, so a thin face next to a deep one is not handed the deep
    face's flow (``False``: de Almeida et al. 2012 as published);
    ``adv_dt``: Δt × convective acceleration (0 for the pure local-inertial scheme).
    The Froude cap is applied afterwards (``_cap_row``). Branch-free (the friction term is
    evaluated at max(h_f, dry) and discarded on dry faces) so the row loops vectorise; with
    n = 0 the divisor is exactly 1."""
    hf = max(eta_a, eta_b) - max(z_a, z_b)
    wm = min(1.0, hf / max(hm, dry)) if limit_side else 1.0
    wp = min(1.0, hf / max(hp, dry)) if limit_side else 1.0
    side = qm * wm + qp * wp
    num = c_theta * q0 + c_side * side - adv_dt - gdt_dx * hf * (eta_b - eta_a)
    hfe = max(hf, dry)
    q = num / (1.0 + gdt * n2 * math.sqrt(q0 * q0 + qt * qt) * _inv_h73(hfe))
    return (q if hf > dry else 0.0), hf


@njit(cache=True, error_model="numpy")
def _cap_row(q, hf, lo, hi, fr_lim):
    """Froude cap |q| <= fr_lim · h_f^{3/2} (fr_lim = Fr_max·sqrt(g)) on faces lo..hi − 1 of
    a row. A separate loop: inside ``_face`` the clamp stopped the face loops vectorising
    (3x slower, measured)."""
    for c in range(lo, hi):
        h = hf[c]
        qlim = fr_lim * h * math.sqrt(h)
        q[c] = min(max(q[c], -qlim), qlim)


@njit(cache=True, error_model="numpy")
def _edge_out(kind, level, q0_out, h_c, z_c, eta_c, eta_in, gdt, gdt_dx, n2, dry, fr_lim):
    """(outward flux m²/s, face depth) through a domain edge next to a cell (h_c, z_c, η_c)
    whose inner neighbour has level ``eta_in``: stage (ghost cell at ``level``) or free
    (LISFLOOD-FP FREE); closed edges carry nothing. Friction on the normal discharge only
    (as LISFLOOD-FP's boundary faces); |q| capped at ``fr_lim``·h_f^{3/2}."""
    if kind == BC_STAGE:
        eta_g = max(level, z_c)
        hf = max(eta_c, eta_g) - z_c
        if hf <= dry:
            return 0.0, hf
        num = q0_out - gdt_dx * hf * (eta_g - eta_c)
    elif kind == BC_FREE:
        hf = h_c
        if hf <= dry:
            return 0.0, hf
        num = abs(q0_out) + gdt_dx * hf * abs(eta_c - eta_in)
    else:
        return 0.0, 0.0
    q = num / (1.0 + gdt * n2 * abs(q0_out) * _inv_h73(hf))
    qlim = fr_lim * hf * math.sqrt(hf)
    return min(max(q, -qlim), qlim), hf


@njit(cache=True, error_model="numpy")
def _vel(q, hf, dry):
    """Face velocity q / h_f (m/s), 0 on dry faces (h_f <= dry)."""
    return q / max(hf, dry) if hf > dry else 0.0


@njit(cache=True, error_model="numpy")
def _upwind(flux, v_neg_side, v_pos_side):
    """Momentum flux ``flux`` × the velocity upwind of it."""
    return flux * (v_neg_side if flux > 0.0 else v_pos_side)


@njit(cache=True, error_model="numpy")
def _adv_x(r, c, qx0, qy0, hfx0, nr, nc, dry):
    """Convective acceleration ∂(q u)/∂x + ∂(q v)/∂y (m²/s²) at interior x-face (r, c):
    donor-cell momentum fluxes through the two cell centres and the two corners, each the
    mass flux there times the upwind face velocity (Stelling & Duinmeijer 2003, Int. J.
    Numer. Meth. Fluids 43:1329, momentum-conservative form). Needs 1 <= c <= nc − 1."""
    u_m = _vel(qx0[r, c - 1], hfx0[r, c - 1], dry)
    u_0 = _vel(qx0[r, c], hfx0[r, c], dry)
    u_p = _vel(qx0[r, c + 1], hfx0[r, c + 1], dry)
    f_w = _upwind(0.5 * (qx0[r, c - 1] + qx0[r, c]), u_m, u_0)
    f_e = _upwind(0.5 * (qx0[r, c] + qx0[r, c + 1]), u_0, u_p)
    u_n = _vel(qx0[r - 1, c], hfx0[r - 1, c], dry) if r > 0 else u_0
    u_s = _vel(qx0[r + 1, c], hfx0[r + 1, c], dry) if r < nr - 1 else u_0
    f_n = _upwind(0.5 * (qy0[r, c - 1] + qy0[r, c]), u_n, u_0)
    f_s = _upwind(0.5 * (qy0[r + 1, c - 1] + qy0[r + 1, c]), u_0, u_s)
    return (f_e - f_w) + (f_s - f_n)


@njit(cache=True, error_model="numpy")
def _adv_y(i, c, qx0, qy0, hfy0, nr, nc, dry):
    """As ``_adv_x`` for the interior y-face between rows i − 1 and i (1 <= i <= nr − 1)."""
    v_m = _vel(qy0[i - 1, c], hfy0[i - 1, c], dry)
    v_0 = _vel(qy0[i, c], hfy0[i, c], dry)
    v_p = _vel(qy0[i + 1, c], hfy0[i + 1, c], dry)
    f_n = _upwind(0.5 * (qy0[i - 1, c] + qy0[i, c]), v_m, v_0)
    f_s = _upwind(0.5 * (qy0[i, c] + qy0[i + 1, c]), v_0, v_p)
    v_w = _vel(qy0[i, c - 1], hfy0[i, c - 1], dry) if c > 0 else v_0
    v_e = _vel(qy0[i, c + 1], hfy0[i, c + 1], dry) if c < nc - 1 else v_0
    f_w = _upwind(0.5 * (qx0[i - 1, c] + qx0[i, c]), v_w, v_0)
    f_e = _upwind(0.5 * (qx0[i - 1, c + 1] + qx0[i, c + 1]), v_0, v_e)
    return (f_s - f_n) + (f_e - f_w)


# --------------------------------------------------------------------------- numba kernel
@njit(cache=True, error_model="numpy")
def _n2_at(n2, uniform, r, c):
    return n2[0, 0] if uniform else n2[r, c]


@njit(cache=True, error_model="numpy")
def _y_edge(i, c, h, z, qy0, n2, n_uni, nr, gdt, gdt_dx, dry, bc_type, bc_level, fr_lim):
    """(raw flux positive toward +row, face depth) of the north (i = 0) or south (i = nr)
    edge face in column c."""
    if i == 0:
        eta_in = z[1, c] + h[1, c] if nr > 1 else z[0, c] + h[0, c]
        q, hf = _edge_out(bc_type[NORTH], bc_level[NORTH], -qy0[0, c], h[0, c], z[0, c],
                          z[0, c] + h[0, c], eta_in, gdt, gdt_dx, _n2_at(n2, n_uni, 0, c), dry,
                          fr_lim)
        return -q, hf
    r = nr - 1
    eta_in = z[r - 1, c] + h[r - 1, c] if nr > 1 else z[r, c] + h[r, c]
    return _edge_out(bc_type[SOUTH], bc_level[SOUTH], qy0[nr, c], h[r, c], z[r, c],
                     z[r, c] + h[r, c], eta_in, gdt, gdt_dx, _n2_at(n2, n_uni, r, c), dry,
                     fr_lim)


@njit(cache=True, error_model="numpy")
def _y_faces(i, out, hf_out, h, z, qx0, qy0, hfy0, n2, n_uni, c_theta, c_side, gdt, gdt_dx,
             dry, advect, dt_dx, limit_side, wt, fr_lim):
    """Raw fluxes and depths of the interior y-faces between rows i − 1 and i. ``wt``: 0.25
    (2-D friction: mean of the 4 x-faces around each y-face) or 0 (1-D friction)."""
    nr, nc = h.shape
    h_a = h[i - 1]
    h_b = h[i]
    z_a = z[i - 1]
    z_b = z[i]
    q0 = qy0[i]
    qm = qy0[i - 1]
    qp = qy0[i + 1]
    hm = hfy0[i - 1]
    hp = hfy0[i + 1]
    xa = qx0[i - 1]  # x-faces of the two cells: west/east of row i - 1, then of row i
    xb = qx0[i]
    if advect:  # separate loops per loop-invariant case so each one vectorises
        for c in range(nc):
            n2f = n2[0, 0] if n_uni else 0.5 * (n2[i - 1, c] + n2[i, c])
            adv = dt_dx * _adv_y(i, c, qx0, qy0, hfy0, nr, nc, dry)
            qt = wt * (((xa[c] + xa[c + 1]) + xb[c]) + xb[c + 1])
            out[c], hf_out[c] = _face(q0[c], qt, qm[c], hm[c], qp[c], hp[c], z_a[c] + h_a[c],
                                      z_b[c] + h_b[c], z_a[c], z_b[c], c_theta, c_side, gdt,
                                      gdt_dx, n2f, dry, adv, limit_side)
    elif n_uni:
        n2s = n2[0, 0]
        for c in range(nc):
            qt = wt * (((xa[c] + xa[c + 1]) + xb[c]) + xb[c + 1])
            out[c], hf_out[c] = _face(q0[c], qt, qm[c], hm[c], qp[c], hp[c], z_a[c] + h_a[c],
                                      z_b[c] + h_b[c], z_a[c], z_b[c], c_theta, c_side, gdt,
                                      gdt_dx, n2s, dry, 0.0, limit_side)
    else:
        n2_a = n2[i - 1]
        n2_b = n2[i]
        for c in range(nc):
            qt = wt * (((xa[c] + xa[c + 1]) + xb[c]) + xb[c + 1])
            out[c], hf_out[c] = _face(q0[c], qt, qm[c], hm[c], qp[c], hp[c], z_a[c] + h_a[c],
                                      z_b[c] + h_b[c], z_a[c], z_b[c], c_theta, c_side, gdt,
                                      gdt_dx, 0.5 * (n2_a[c] + n2_b[c]), dry, 0.0,
                                      limit_side)
    if fr_lim < np.inf:
        _cap_row(out, hf_out, 0, nc, fr_lim)


@njit(cache=True, error_model="numpy")
def _momentum_row(r, h, z, qx0, qy0, hfx0, hfy0, qxr, qyr, hfx1, hfy1, n2, n_uni, nr, nc,
                  c_theta, c_side, gdt, gdt_dx, dry, bc_type, bc_level, advect, dt_dx,
                  limit_side, wt, fr_lim):
    """Raw x-faces of row r and the y-faces south of it (and north of row 0), with their
    flow depths."""
    e = nc - 1
    eta_in = z[r, 1] + h[r, 1] if nc > 1 else z[r, 0] + h[r, 0]
    q, hf = _edge_out(bc_type[WEST], bc_level[WEST], -qx0[r, 0], h[r, 0], z[r, 0],
                      z[r, 0] + h[r, 0], eta_in, gdt, gdt_dx, _n2_at(n2, n_uni, r, 0), dry,
                      fr_lim)
    qxr[r, 0] = -q
    hfx1[r, 0] = hf
    eta_in = z[r, e - 1] + h[r, e - 1] if nc > 1 else z[r, e] + h[r, e]
    q, hf = _edge_out(bc_type[EAST], bc_level[EAST], qx0[r, nc], h[r, e], z[r, e],
                      z[r, e] + h[r, e], eta_in, gdt, gdt_dx, _n2_at(n2, n_uni, r, e), dry,
                      fr_lim)
    qxr[r, nc] = q
    hfx1[r, nc] = hf
    hr = h[r]
    zr = z[r]
    q0 = qx0[r]
    h0 = hfx0[r]
    yn = qy0[r]  # y-faces of the row's cells: north, then south
    ys = qy0[r + 1]
    out = qxr[r]
    hfo = hfx1[r]
    if advect:  # separate loops per loop-invariant case so each one vectorises
        for c in range(1, nc):
            n2f = n2[0, 0] if n_uni else 0.5 * (n2[r, c - 1] + n2[r, c])
            adv = dt_dx * _adv_x(r, c, qx0, qy0, hfx0, nr, nc, dry)
            qt = wt * (((yn[c - 1] + yn[c]) + ys[c - 1]) + ys[c])
            out[c], hfo[c] = _face(q0[c], qt, q0[c - 1], h0[c - 1], q0[c + 1], h0[c + 1],
                                   zr[c - 1] + hr[c - 1], zr[c] + hr[c], zr[c - 1], zr[c],
                                   c_theta, c_side, gdt, gdt_dx, n2f, dry, adv, limit_side)
    elif n_uni:
        n2s = n2[0, 0]
        for c in range(1, nc):
            qt = wt * (((yn[c - 1] + yn[c]) + ys[c - 1]) + ys[c])
            out[c], hfo[c] = _face(q0[c], qt, q0[c - 1], h0[c - 1], q0[c + 1], h0[c + 1],
                                   zr[c - 1] + hr[c - 1], zr[c] + hr[c], zr[c - 1], zr[c],
                                   c_theta, c_side, gdt, gdt_dx, n2s, dry, 0.0, limit_side)
    else:
        n2r = n2[r]
        for c in range(1, nc):
            qt = wt * (((yn[c - 1] + yn[c]) + ys[c - 1]) + ys[c])
            out[c], hfo[c] = _face(q0[c], qt, q0[c - 1], h0[c - 1], q0[c + 1], h0[c + 1],
                                   zr[c - 1] + hr[c - 1], zr[c] + hr[c], zr[c - 1], zr[c],
                                   c_theta, c_side, gdt, gdt_dx, 0.5 * (n2r[c - 1] + n2r[c]),
                                   dry, 0.0, limit_side)
    if fr_lim < np.inf:
        _cap_row(out, hfo, 1, nc, fr_lim)
    if r == 0:
        for c in range(nc):
            qyr[0, c], hfy1[0, c] = _y_edge(0, c, h, z, qy0, n2, n_uni, nr, gdt, gdt_dx, dry,
                                            bc_type, bc_level, fr_lim)
    if r + 1 == nr:
        for c in range(nc):
            qyr[nr, c], hfy1[nr, c] = _y_edge(nr, c, h, z, qy0, n2, n_uni, nr, gdt, gdt_dx,
                                              dry, bc_type, bc_level, fr_lim)
    else:
        _y_faces(r + 1, qyr[r + 1], hfy1[r + 1], h, z, qx0, qy0, hfy0, n2, n_uni, c_theta,
                 c_side, gdt, gdt_dx, dry, advect, dt_dx, limit_side, wt, fr_lim)


@njit(cache=True, error_model="numpy")
def _limiter_row(r, qn, h, qxr, qyr, f, dt_dx):
    """Limiter factor f = min(1, h / (Δt/Δx Σ q_out)) of every cell in row r; ``qn``: the
    raw north faces of the row."""
    nc = h.shape[1]
    hr = h[r]
    qx = qxr[r]
    qs = qyr[r + 1]
    fr = f[r]
    for c in range(nc):
        out = max(qx[c + 1], 0.0) + max(-qx[c], 0.0) + max(qs[c], 0.0) + max(-qn[c], 0.0)
        od = out * dt_dx
        hc = hr[c]
        fr[c] = hc / od if od > hc else 1.0


@njit(cache=True, error_model="numpy")
def _lim(q, f_pos, f_neg):
    """Flux scaled by the limiter of its donor: ``f_pos`` if q > 0, else ``f_neg``."""
    return q * (f_pos if q > 0.0 else f_neg)


@njit(cache=True, error_model="numpy")
def _row_sum(a):
    """Sum of a 1-D array with four interleaved accumulators (order fixed)."""
    n = a.size
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    m = n - n % 4
    for c in range(0, m, 4):
        s0 += a[c]
        s1 += a[c + 1]
        s2 += a[c + 2]
        s3 += a[c + 3]
    for c in range(m, n):
        s0 += a[c]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True, error_model="numpy")
def _continuity_row(r, h, qxr, qyr, qx1, qy1, hfx1, hfy1, f, nr, nc, dt_dx, vol_per_q,
                    rain_mode, rain_depth, rain_grid, rain_scale, active, has_blocked,
                    n_active_row, loss_mode, loss_depth, loss_grid, loss_scale, loss_buf, track,
                    t_new, arr_depth, dry, max_h, max_v, arrival, row_hmax, row_umax,
                    row_rain, row_loss, row_bout, row_bin):
    """Limited fluxes of row r's faces (written to qx1/qy1), depth update, sources, stats."""
    fr = f[r]
    qxr_r = qxr[r]
    qx1_r = qx1[r]
    # limited x-faces (west edge: donor is cell 0 when flowing out; east edge likewise)
    qx1_r[0] = _lim(qxr_r[0], 1.0, fr[0])
    for c in range(1, nc):
        qx1_r[c] = _lim(qxr_r[c], fr[c - 1], fr[c])
    qx1_r[nc] = _lim(qxr_r[nc], fr[nc - 1], 1.0)
    # limited north faces of the row (row 0: the north edge)
    qn_r = qy1[r]
    qyr_n = qyr[r]
    if r == 0:
        for c in range(nc):
            qn_r[c] = _lim(qyr_n[c], 1.0, fr[c])
    else:
        fu = f[r - 1]
        for c in range(nc):
            qn_r[c] = _lim(qyr_n[c], fu[c], fr[c])
    # limited south faces: recomputed here (row r + 1 writes them), or the south edge
    qyr_s = qyr[r + 1]
    qs_r = qy1[r + 1]
    last = r == nr - 1
    if last:
        for c in range(nc):
            qs_r[c] = _lim(qyr_s[c], fr[c], 1.0)
    # boundary volumes of this row
    bout = max(-qx1_r[0], 0.0) + max(qx1_r[nc], 0.0)
    bin_ = max(qx1_r[0], 0.0) + max(-qx1_r[nc], 0.0)
    if r == 0:
        for c in range(nc):
            bout += max(-qn_r[c], 0.0)
            bin_ += max(qn_r[c], 0.0)
    if last:
        for c in range(nc):
            bout += max(qs_r[c], 0.0)
            bin_ += max(-qs_r[c], 0.0)
    hr = h[r]
    fd = f[r + 1] if not last else fr
    act = active[r] if has_blocked else active[0]
    rain_row = rain_grid[r] if rain_mode == 2 else rain_grid[0]
    loss_row = loss_grid[r] if loss_mode == 2 else loss_grid[0]
    lbuf = loss_buf[r] if loss_mode != 0 else loss_buf[0]
    hfx_r = hfx1[r]
    hfn_r = hfy1[r]
    hfs_r = hfy1[r + 1]
    hbits = 0
    ubits = 0
    for c in range(nc):
        qw = qx1_r[c]
        qe = qx1_r[c + 1]
        qn = qn_r[c]
        qs = qs_r[c] if last else _lim(qyr_s[c], fr[c], fd[c])
        hn = max(hr[c] + dt_dx * (qw - qe + qn - qs), 0.0)
        is_act = (not has_blocked) or act[c] != 0
        if rain_mode == 1:
            hn += rain_depth if is_act else 0.0
        elif rain_mode == 2:
            hn += rain_row[c] * rain_scale if is_act else 0.0
        if loss_mode != 0:
            lo = loss_depth if loss_mode == 1 else loss_row[c] * loss_scale
            lo = min(lo, hn) if is_act else 0.0
            hn -= lo
            lbuf[c] = lo
        hr[c] = hn
        hbits = max(hbits, _f64_bits(hn))
        uw = _vel(qw, hfx_r[c], dry)
        ue = _vel(qe, hfx_r[c + 1], dry)
        vn = _vel(qn, hfn_r[c], dry)
        vs = _vel(qs, hfs_r[c], dry)
        # fastest face velocity (for the advective time-step limit)
        ubits = max(ubits, _f64_bits(max(max(abs(uw), abs(ue)), max(abs(vn), abs(vs)))))
        if track:
            mh = max_h[r, c]
            max_h[r, c] = hn if hn > mh else mh
            ux = 0.5 * (uw + ue)
            uy = 0.5 * (vn + vs)
            sp = math.sqrt(ux * ux + uy * uy)
            mv = max_v[r, c]
            max_v[r, c] = sp if (hn > dry and sp > mv) else mv
            ar = arrival[r, c]
            arrival[r, c] = t_new if (hn >= arr_depth and ar != ar) else ar
    row_hmax[r] = _bits_f64(hbits)
    row_umax[r] = _bits_f64(ubits)
    if rain_mode == 1:
        row_rain[r] = rain_depth * n_active_row[r]
    elif rain_mode == 2:
        s = 0.0
        for c in range(nc):
            if (not has_blocked) or act[c] != 0:
                s += rain_row[c] * rain_scale
        row_rain[r] = s
    else:
        row_rain[r] = 0.0
    row_loss[r] = _row_sum(lbuf) if loss_mode != 0 else 0.0
    row_bout[r] = bout * vol_per_q
    row_bin[r] = bin_ * vol_per_q


@njit(cache=True, parallel=True, error_model="numpy")
def step_numba(h, z, n2, n_uni, qx0, qy0, hfx0, hfy0, qxr, qyr, qx1, qy1, hfx1, hfy1, f, dt,
               dx, theta, limit_side, fric2d, froude_max, dry, advect, bc_type, bc_level,
               rain_mode, rain_depth, rain_grid, rain_scale, active, has_blocked, n_active_row,
               loss_mode, loss_depth, loss_grid, loss_scale, loss_buf, track, t_new, arr_depth,
               max_h, max_v, arrival, row_hmax, row_umax, row_rain, row_loss, row_bout, row_bin,
               chunks):
    """One time step in place (see module docstring); per-row sums go to ``row_*``.

    ``qx0/qy0`` and ``hfx0/hfy0``: fluxes and face depths of the previous step (read);
    ``qxr/qyr``/``f``/``loss_buf``: scratch; ``qx1/qy1``, ``hfx1/hfy1``: this step's
    (written). ``row_bout/row_bin``: boundary outflow / inflow volume (m³) per row;
    ``row_rain``/``row_loss``: depth sums (m); ``row_hmax``/``row_umax``: largest depth and
    face speed per row. ``fric2d``: friction on the discharge vector (else the normal
    component); ``froude_max``: Froude cap on face discharges (0: none). Gridded inputs not
    in use may be (1, 1) dummies.
    """
    nr, nc = h.shape
    c_theta = theta
    c_side = 0.5 * (1.0 - theta)
    gdt = G_M_S2 * dt
    gdt_dx = gdt / dx
    dt_dx = dt / dx
    vol_per_q = dt * dx
    wt = 0.25 if fric2d else 0.0
    fr_lim = froude_max * math.sqrt(G_M_S2) if froude_max > 0.0 else np.inf
    nchunks = chunks.size - 1
    for k in prange(nchunks):
        s = chunks[k]
        e = chunks[k + 1]
        qn_first = np.empty(nc)
        hf_first = np.empty(nc)
        for r in range(s, e):
            _momentum_row(r, h, z, qx0, qy0, hfx0, hfy0, qxr, qyr, hfx1, hfy1, n2, n_uni, nr,
                          nc, c_theta, c_side, gdt, gdt_dx, dry, bc_type, bc_level, advect,
                          dt_dx, limit_side, wt, fr_lim)
            if r == s and r > 0:  # north faces belong to the chunk above: recompute here
                _y_faces(r, qn_first, hf_first, h, z, qx0, qy0, hfy0, n2, n_uni, c_theta,
                         c_side, gdt, gdt_dx, dry, advect, dt_dx, limit_side, wt, fr_lim)
                _limiter_row(r, qn_first, h, qxr, qyr, f, dt_dx)
            else:
                _limiter_row(r, qyr[r], h, qxr, qyr, f, dt_dx)
            if r - 1 > s:
                _continuity_row(r - 1, h, qxr, qyr, qx1, qy1, hfx1, hfy1, f, nr, nc, dt_dx,
                                vol_per_q, rain_mode, rain_depth, rain_grid, rain_scale,
                                active, has_blocked, n_active_row, loss_mode, loss_depth,
                                loss_grid, loss_scale, loss_buf, track, t_new, arr_depth, dry,
                                max_h, max_v, arrival, row_hmax, row_umax, row_rain, row_loss,
                                row_bout, row_bin)
    for k in prange(nchunks):
        s = chunks[k]
        e = chunks[k + 1]
        _continuity_row(s, h, qxr, qyr, qx1, qy1, hfx1, hfy1, f, nr, nc, dt_dx, vol_per_q,
                        rain_mode, rain_depth, rain_grid, rain_scale, active, has_blocked,
                        n_active_row, loss_mode, loss_depth, loss_grid, loss_scale, loss_buf,
                        track, t_new, arr_depth, dry, max_h, max_v, arrival, row_hmax,
                        row_umax, row_rain, row_loss, row_bout, row_bin)
        if e - 1 > s:
            _continuity_row(e - 1, h, qxr, qyr, qx1, qy1, hfx1, hfy1, f, nr, nc, dt_dx,
                            vol_per_q, rain_mode, rain_depth, rain_grid, rain_scale, active,
                            has_blocked, n_active_row, loss_mode, loss_depth, loss_grid,
                            loss_scale, loss_buf, track, t_new, arr_depth, dry, max_h, max_v,
                            arrival, row_hmax, row_umax, row_rain, row_loss, row_bout, row_bin)


@njit(cache=True, error_model="numpy")
def drains_numba(h, rows, cols, max_vol_m3, area_m2):
    """Remove min(max_vol, h·area) at each inlet in order; returns removed volume per inlet."""
    out = np.zeros(rows.size)
    for i in range(rows.size):
        r = rows[i]
        c = cols[i]
        avail = h[r, c] * area_m2
        v = max_vol_m3[i]
        if v > avail:
            v = avail
        if v > 0.0:
            h[r, c] = h[r, c] - v / area_m2
            if h[r, c] < 0.0:
                h[r, c] = 0.0
            out[i] = v
    return out


def drains_numpy(h, rows, cols, max_vol_m3, area_m2):
    """Reference for ``drains_numba`` (same order, same arithmetic)."""
    out = np.zeros(rows.size)
    for i in range(rows.size):
        r, c = int(rows[i]), int(cols[i])
        avail = h[r, c] * area_m2
        v = min(float(max_vol_m3[i]), avail)
        if v > 0.0:
            h[r, c] = max(h[r, c] - v / area_m2, 0.0)
            out[i] = v
    return out


def chunk_bounds(nrows: int, nthreads: int) -> np.ndarray:
    """Row chunk boundaries for ``step_numba``: ~64 rows per chunk, >= 4 chunks per thread
    when the grid allows, at least 3 rows per chunk."""
    per = max(3, min(64, nrows // max(1, 4 * nthreads)))
    starts = np.arange(0, nrows, per, dtype=np.int64)
    bounds = np.append(starts, nrows).astype(np.int64)
    if bounds.size > 2 and bounds[-1] - bounds[-2] < 3:
        bounds = np.delete(bounds, -2)  # merge a short tail into the previous chunk
    return bounds


# --------------------------------------------------------------------------- NumPy reference
def _np_vel(q, hf, dry):
    with np.errstate(all="ignore"):
        return np.where(hf > dry, q / np.maximum(hf, dry), 0.0)


def _np_upwind(flux, v_neg_side, v_pos_side):
    return flux * np.where(flux > 0.0, v_neg_side, v_pos_side)


def _np_adv_x(qx0, qy0, hfx0, dry):
    """``_adv_x`` for all interior x-faces (array (nr, nc − 1))."""
    u = _np_vel(qx0, hfx0, dry)  # (nr, nc + 1)
    u_m, u_0, u_p = u[:, :-2], u[:, 1:-1], u[:, 2:]
    f_w = _np_upwind(0.5 * (qx0[:, :-2] + qx0[:, 1:-1]), u_m, u_0)
    f_e = _np_upwind(0.5 * (qx0[:, 1:-1] + qx0[:, 2:]), u_0, u_p)
    u_n = np.concatenate([u_0[:1], u_0[:-1]], axis=0)
    u_s = np.concatenate([u_0[1:], u_0[-1:]], axis=0)
    f_n = _np_upwind(0.5 * (qy0[:-1, :-1] + qy0[:-1, 1:]), u_n, u_0)
    f_s = _np_upwind(0.5 * (qy0[1:, :-1] + qy0[1:, 1:]), u_0, u_s)
    return (f_e - f_w) + (f_s - f_n)


def _np_adv_y(qx0, qy0, hfy0, dry):
    """``_adv_y`` for all interior y-faces (array (nr − 1, nc))."""
    v = _np_vel(qy0, hfy0, dry)  # (nr + 1, nc)
    v_m, v_0, v_p = v[:-2], v[1:-1], v[2:]
    f_n = _np_upwind(0.5 * (qy0[:-2] + qy0[1:-1]), v_m, v_0)
    f_s = _np_upwind(0.5 * (qy0[1:-1] + qy0[2:]), v_0, v_p)
    v_w = np.concatenate([v_0[:, :1], v_0[:, :-1]], axis=1)
    v_e = np.concatenate([v_0[:, 1:], v_0[:, -1:]], axis=1)
    f_w = _np_upwind(0.5 * (qx0[:-1, :-1] + qx0[1:, :-1]), v_w, v_0)
    f_e = _np_upwind(0.5 * (qx0[:-1, 1:] + qx0[1:, 1:]), v_0, v_e)
    return (f_s - f_n) + (f_e - f_w)


def _np_face(q0, qt, qm, hm, qp, hp, eta_a, eta_b, z_a, z_b, c_theta, c_side, gdt, gdt_dx,
             n2, dry, adv_dt, limit_side, fr_lim):
    hf = np.maximum(eta_a, eta_b) - np.maximum(z_a, z_b)
    if limit_side:
        with np.errstate(all="ignore"):
            side = (qm * np.minimum(1.0, hf / np.maximum(hm, dry))
                    + qp * np.minimum(1.0, hf / np.maximum(hp, dry)))
    else:
        side = qm * 1.0 + qp * 1.0
    num = c_theta * q0 + c_side * side - adv_dt - gdt_dx * hf * (eta_b - eta_a)
    hfe = np.maximum(hf, dry)
    with np.errstate(all="ignore"):
        q = num / (1.0 + gdt * n2 * np.sqrt(q0 * q0 + qt * qt) * np_inv_h73(hfe))
    q = np.where(hf > dry, q, 0.0)
    if fr_lim < np.inf:  # Froude cap (``_cap_row``)
        qlim = fr_lim * hf * np.sqrt(hf)
        q = np.minimum(np.maximum(q, -qlim), qlim)
    return q, hf


def _np_edge_out(kind, level, q0_out, h_c, z_c, eta_c, eta_in, gdt, gdt_dx, n2, dry, fr_lim):
    if kind == BC_CLOSED:
        return np.zeros_like(h_c), np.zeros_like(h_c)
    if kind == BC_STAGE:
        eta_g = np.maximum(level, z_c)
        hf = np.maximum(eta_c, eta_g) - z_c
        num = q0_out - gdt_dx * hf * (eta_g - eta_c)
    else:
        hf = h_c
        num = np.abs(q0_out) + gdt_dx * hf * np.abs(eta_c - eta_in)
    with np.errstate(all="ignore"):
        q = num / (1.0 + gdt * n2 * np.abs(q0_out) * np_inv_h73(hf))
        qlim = fr_lim * hf * np.sqrt(hf)
        q = np.minimum(np.maximum(q, -qlim), qlim)
    return np.where(hf > dry, q, 0.0), hf


def step_numpy(h, z, n2, n_uni, qx0, qy0, hfx0, hfy0, qxr, qyr, qx1, qy1, hfx1, hfy1, f, dt,
               dx, theta, limit_side, fric2d, froude_max, dry, advect, bc_type, bc_level,
               rain_mode, rain_depth, rain_grid, rain_scale, active, has_blocked, n_active_row,
               loss_mode, loss_depth, loss_grid, loss_scale, loss_buf, track, t_new, arr_depth,
               max_h, max_v, arrival, row_hmax, row_umax, row_rain, row_loss, row_bout, row_bin,
               chunks=None):
    """NumPy reference of ``step_numba`` (same arguments; same depths and fluxes bit for bit
    in our tests, accounting sums to round-off)."""
    nr, nc = h.shape
    c_theta = theta
    c_side = 0.5 * (1.0 - theta)
    gdt = G_M_S2 * dt
    gdt_dx = gdt / dx
    dt_dx = dt / dx
    vol_per_q = dt * dx
    wt = 0.25 if fric2d else 0.0
    fr_lim = froude_max * math.sqrt(G_M_S2) if froude_max > 0.0 else np.inf
    eta = z + h
    if n_uni:
        n2_cell = np.full((nr, nc), n2[0, 0])
        n2x = n2[0, 0]
        n2y = n2[0, 0]
    else:
        n2_cell = n2
        n2x = 0.5 * (n2[:, :-1] + n2[:, 1:])
        n2y = 0.5 * (n2[:-1, :] + n2[1:, :])
    if advect:
        adv_x = dt_dx * _np_adv_x(qx0, qy0, hfx0, dry)
        adv_y = dt_dx * _np_adv_y(qx0, qy0, hfy0, dry)
    else:
        adv_x = adv_y = 0.0
    # the other discharge component at each interior face (2-D friction): the mean of the 4
    # faces of the other axis around it, same summation order as the numba kernel
    qt_x = wt * (((qy0[:-1, :-1] + qy0[:-1, 1:]) + qy0[1:, :-1]) + qy0[1:, 1:])
    qt_y = wt * (((qx0[:-1, :-1] + qx0[:-1, 1:]) + qx0[1:, :-1]) + qx0[1:, 1:])
    # interior faces
    qxr[:, 1:nc], hfx1[:, 1:nc] = _np_face(
        qx0[:, 1:nc], qt_x, qx0[:, 0:nc - 1], hfx0[:, 0:nc - 1], qx0[:, 2:nc + 1],
        hfx0[:, 2:nc + 1], eta[:, :-1], eta[:, 1:], z[:, :-1], z[:, 1:], c_theta, c_side, gdt,
        gdt_dx, n2x, dry, adv_x, limit_side, fr_lim)
    qyr[1:nr, :], hfy1[1:nr, :] = _np_face(
        qy0[1:nr, :], qt_y, qy0[0:nr - 1, :], hfy0[0:nr - 1, :], qy0[2:nr + 1, :],
        hfy0[2:nr + 1, :], eta[:-1, :], eta[1:, :], z[:-1, :], z[1:, :], c_theta, c_side, gdt,
        gdt_dx, n2y, dry, adv_y, limit_side, fr_lim)
    # edges
    in_w = eta[:, 1] if nc > 1 else eta[:, 0]
    in_e = eta[:, nc - 2] if nc > 1 else eta[:, nc - 1]
    in_n = eta[1, :] if nr > 1 else eta[0, :]
    in_s = eta[nr - 2, :] if nr > 1 else eta[nr - 1, :]
    q, hfx1[:, 0] = _np_edge_out(bc_type[WEST], bc_level[WEST], -qx0[:, 0], h[:, 0], z[:, 0],
                                 eta[:, 0], in_w, gdt, gdt_dx, n2_cell[:, 0], dry, fr_lim)
    qxr[:, 0] = -q
    qxr[:, nc], hfx1[:, nc] = _np_edge_out(
        bc_type[EAST], bc_level[EAST], qx0[:, nc], h[:, nc - 1], z[:, nc - 1], eta[:, nc - 1],
        in_e, gdt, gdt_dx, n2_cell[:, nc - 1], dry, fr_lim)
    q, hfy1[0, :] = _np_edge_out(bc_type[NORTH], bc_level[NORTH], -qy0[0, :], h[0, :],
                                 z[0, :], eta[0, :], in_n, gdt, gdt_dx, n2_cell[0, :], dry, fr_lim)
    qyr[0, :] = -q
    qyr[nr, :], hfy1[nr, :] = _np_edge_out(
        bc_type[SOUTH], bc_level[SOUTH], qy0[nr, :], h[nr - 1, :], z[nr - 1, :],
        eta[nr - 1, :], in_s, gdt, gdt_dx, n2_cell[nr - 1, :], dry, fr_lim)
    # limiter
    out = (np.maximum(qxr[:, 1:], 0.0) + np.maximum(-qxr[:, :-1], 0.0)
           + np.maximum(qyr[1:, :], 0.0) + np.maximum(-qyr[:-1, :], 0.0))
    od = out * dt_dx
    with np.errstate(invalid="ignore", divide="ignore"):
        f[:] = np.where(od > h, h / od, 1.0)
    # limited fluxes: q * f(donor); donor = upwind cell, 1 for inflow through an edge
    one_col = np.ones((nr, 1))
    one_row = np.ones((1, nc))
    f_pos = np.concatenate([one_col, f], axis=1)  # q > 0 at x-face c: cell c - 1
    f_neg = np.concatenate([f, one_col], axis=1)  # q <= 0 at x-face c: cell c
    qx1[:] = qxr * np.where(qxr > 0.0, f_pos, f_neg)
    f_pos = np.concatenate([one_row, f], axis=0)
    f_neg = np.concatenate([f, one_row], axis=0)
    qy1[:] = qyr * np.where(qyr > 0.0, f_pos, f_neg)
    # continuity
    qw, qe = qx1[:, :-1], qx1[:, 1:]
    qn, qs = qy1[:-1, :], qy1[1:, :]
    hn = np.maximum(h + dt_dx * (qw - qe + qn - qs), 0.0)
    act = (active != 0) if has_blocked else np.ones((nr, nc), dtype=bool)
    if rain_mode == 1:
        hn = hn + np.where(act, rain_depth, 0.0)
        row_rain[:] = rain_depth * n_active_row
    elif rain_mode == 2:
        rain = np.where(act, rain_grid * rain_scale, 0.0)
        hn = hn + rain
        row_rain[:] = rain.sum(axis=1)
    else:
        row_rain[:] = 0.0
    if loss_mode != 0:
        lo = np.full((nr, nc), loss_depth) if loss_mode == 1 else loss_grid * loss_scale
        loss = np.where(act, np.minimum(lo, hn), 0.0)
        hn = hn - loss
        row_loss[:] = loss.sum(axis=1)
    else:
        row_loss[:] = 0.0
    h[:] = hn
    ux = _np_vel(qx1, hfx1, dry)
    vy = _np_vel(qy1, hfy1, dry)
    uw, ue, vn, vs = ux[:, :-1], ux[:, 1:], vy[:-1, :], vy[1:, :]
    umax = np.maximum(np.maximum(np.abs(uw), np.abs(ue)), np.maximum(np.abs(vn), np.abs(vs)))
    row_umax[:] = umax.max(axis=1)
    if track:
        np.maximum(max_h, hn, out=max_h)
        cu = 0.5 * (uw + ue)
        cv = 0.5 * (vn + vs)
        sp = np.sqrt(cu * cu + cv * cv)
        np.copyto(max_v, sp, where=(hn > dry) & (sp > max_v))
        np.copyto(arrival, t_new, where=(hn >= arr_depth) & np.isnan(arrival))
    row_hmax[:] = hn.max(axis=1)
    bout = np.maximum(-qx1[:, 0], 0.0) + np.maximum(qx1[:, nc], 0.0)
    bin_ = np.maximum(qx1[:, 0], 0.0) + np.maximum(-qx1[:, nc], 0.0)
    bout[0] += np.maximum(-qy1[0, :], 0.0).sum()
    bin_[0] += np.maximum(qy1[0, :], 0.0).sum()
    bout[nr - 1] += np.maximum(qy1[nr, :], 0.0).sum()
    bin_[nr - 1] += np.maximum(-qy1[nr, :], 0.0).sum()
    row_bout[:] = bout * vol_per_q
    row_bin[:] = bin_ * vol_per_q


def set_num_threads(n: int) -> None:
    """Set numba's thread count for the flood kernels (no-op without numba)."""
    if HAVE_NUMBA:
        numba.set_num_threads(int(n))


def get_num_threads() -> int:
    """numba's current thread count (1 without numba)."""
    return int(numba.get_num_threads()) if HAVE_NUMBA else 1
