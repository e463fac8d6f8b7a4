"""2-D local-inertial flood model (engine kind ``"flood"``): rain, inflows, drains, boundaries.

Scheme: the local-inertial ("acceleration") form of the shallow-water equations on a raster,
Bates, Horritt & Fewtrell (2010), J. Hydrol. 387:33–45, with the θ-weighted momentum update of
de Almeida, Bates, Freer & Souvignet (2012), Water Resour. Res. 48:W05528 (θ = 0.7 default):

    q_new = [θ q + (1 − θ)/2 (q_prev + q_next) − g h_f Δt ∂η/∂x] / [1 + g Δt n² |q⃗| / h_f^{7/3}]
    |q⃗| = sqrt(q² + q_t²),   h_f = max(η_i, η_j) − max(z_i, z_j),   ∂h/∂t = −∇·q + rain − losses

on a staggered grid (depths at cell centres, unit-width discharges on faces). Friction acts on
the magnitude of the discharge vector, q_t being the other component at the face (the mean of
the 4 faces of the other axis around it, last step): LISFLOOD-FP's acceleration solver does
this by default ("2D friction", ``fricSolver2D``; its ``1Dfriction`` keyword restores |q|;
LISFLOOD-FP 8 source, fp_acc.cpp ``CalcFPQxAcc``/``CalcFPQyAcc``; Shaw et al. 2021, GMD
14:3577). Bates et al. (2010) eq. 11 as published uses the face-normal |q| only
(``friction="1d"``); that under-resists flow oblique to the grid, so a flood spread about
16 % faster along the diagonals than along the axes (arrival at 150 m from a point source on
a flat plane) and EA Test 4 peaks were 1–1.3 cm low; with the vector form the axis/diagonal
difference is about 4 % and the Test 4 peaks are within 0.5 cm of LISFLOOD-FP
(``benchmarks/validation/ea4_validation.py``).

Adaptive step Δt = α Δx / sqrt(g h_max) (Bates et al. 2010 eq. 12) with α = ``cfl`` = 0.6,
capped by ``max_dt_s`` and never crossing an output time or a rain-intensity change. Bates et
al. give α = 0.2–0.7 and LISFLOOD-FP defaults to 0.7, but for the 2-D staggered scheme the
linearised, frictionless von Neumann limit is α ≤ 1/√2 ≈ 0.707 (the checkerboard mode,
derived here: η^{n+1} − 2η^n + η^{n−1} = −4 g h (Δt/Δx)² [sin²(kΔx/2) + sin²(lΔx/2)] η^n),
so 0.7 leaves the deepest cells 1 % from it: on the Merewether urban case (1 m cells) ~40
deep, slow cells then emptied and refilled every step (2Δt oscillation, depth range up to
1.2 m); at 0.65 or 0.6 no cell varied by more than 2 cm once the flow was steady. Faces
with h_f ≤ ``dry_depth_m`` carry no flow. The compiled loops, boundary formulas and the
positivity limiter that makes the volume balance exact are in ``physics.flood_kernels``;
PHYSICS.md "Flood" lists the checks (lake at rest, volume balance, Ritter dam break;
``benchmarks/validation/flood_validation.py``).

Options that depart from the published scheme (all off by default):
``theta_weighting="depth_limited"`` lets a neighbour face deeper than the face being updated
enter the θ-average with its velocity × this face's depth rather than its discharge (it was
the default while friction was 1-D, when the published form gave 10–35 m/s spikes on steep,
shallow urban sheet flow; with vector friction those are gone — synthetic city storm ≤ 5.3
m/s — and it adds resistance to fast street flow: Merewether levels 0.06–0.2 m higher).
``froude_limit=Fr`` caps every face's |q| at Fr·h_f·sqrt(g h_f), as CAESAR-Lisflood does
(Coulthard et al. 2013, Earth Surf. Process. Landf. 38:1897; HAIL-CAESAR source,
``froude_limit``): it bounds spurious speeds in thin films (synthetic city storm maximum 4.3 →
3.2 m/s at Fr = 1) but also slows real supercritical street flow, and it does not remove the
oscillation above, so it is off by default. ``advection=True`` adds the convective
acceleration the local-inertial approximation drops (Stelling & Duinmeijer 2003 upwind form,
Δt also limited by the flow speed). Without it the scheme cannot carry a supercritical
dry-bed front: on Ritter's dam break the front stalls near the dam (its characteristic speed
sqrt(g h) vanishes at a dry front). With it the Ritter depth at the dam is within 0.6 % of
4h0/9. Use it for dam breaks; keep it off for rain-driven urban flooding (slower, and less
robust on steep thin films).

Forcing: ``RainSeries`` (uniform or gridded, ``physics.rainfall``), point and line inflows
with piecewise-linear ``Hydrograph``s (volume per step = exact integral), a constant-rate
loss ``infiltration_mm_h`` (while water is present), drain inlets removing at most
capacity·Δt and never more than the water in their cell, and per-edge boundaries:
``"closed"``, ``"free"`` (LISFLOOD-FP FREE: outflow at the local water-surface slope, never
inflow) or ``StageBoundary(level_m)`` (a fixed or time-varying water level beyond the edge).
``mass_balance()`` closes initial + rain + inflow + boundary inflow − infiltration − drained
− boundary outflow − storage to round-off.

Outputs: depth, speed, water-surface elevation, running maxima, the DEFRA FD2320 hazard
rating (``hazard_rating``), per-cell arrival time (``arrival_time_s``: an attribute, NaN
where never wet, so it is not a sampled quantity), the volume budget at every output time
(``balance_log``) and time series at registered gauges (``add_gauges``/``time_series``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from affine import Affine
from numpy.typing import ArrayLike

from citytwin.physics import flood_kernels as fk
from citytwin.physics.base import (
    Bounds,
    HazardEngine,
    QuantityInfo,
    as_points,
    register_engine,
)
from citytwin.physics.forcing import as_times_s
from citytwin.physics.numba_setup import KERNEL_LOCK
from citytwin.physics.rainfall import MM_H_TO_M_S, RainSeries
from citytwin.twin.errors import InputError

G_M_S2 = fk.G_M_S2


# =========================================================================== forcing types
@dataclass(frozen=True, eq=False)
class Hydrograph:
    """Piecewise-linear series (discharge in m³/s, or a level in m for ``StageBoundary``).

    ``np.interp`` semantics: linear between points, the end values held outside.
    """

    times_s: np.ndarray
    q_m3_s: np.ndarray

    def __post_init__(self) -> None:
        t = as_times_s(self.times_s, "hydrograph")
        q = np.atleast_1d(np.array(self.q_m3_s, dtype=np.float64))
        if q.shape != t.shape:
            raise ValueError(
                f"hydrograph.q_m3_s has shape {q.shape}, times_s has shape {t.shape}"
            )
        if not np.isfinite(q).all():
            raise ValueError("hydrograph.q_m3_s must be finite")
        t.setflags(write=False)
        q.setflags(write=False)
        object.__setattr__(self, "times_s", t)
        object.__setattr__(self, "q_m3_s", q)

    @classmethod
    def constant(cls, q_m3_s: float) -> Hydrograph:
        """The same value at all times."""
        return cls(np.array([0.0]), np.array([float(q_m3_s)]))

    def at(self, t_s: float) -> float:
        """Value at ``t_s`` (linear interpolation, end values held)."""
        return float(np.interp(float(t_s), self.times_s, self.q_m3_s))

    def volume_m3(self, t0_s: float, t1_s: float) -> float:
        """Exact integral over [t0_s, t1_s] (m³ for a discharge series); 0 if t1 <= t0.

        Trapezoids between the breakpoints inside the interval are exact for a
        piecewise-linear series.
        """
        t0, t1 = float(t0_s), float(t1_s)
        if not t1 > t0:
            return 0.0
        inner = self.times_s[(self.times_s > t0) & (self.times_s < t1)]
        ts = np.concatenate(([t0], inner, [t1]))
        qs = np.interp(ts, self.times_s, self.q_m3_s)
        return float(np.sum(0.5 * (qs[1:] + qs[:-1]) * np.diff(ts)))

    def max_between(self, t0_s: float, t1_s: float) -> float:
        """Largest value over [t0_s, t1_s]."""
        inner = self.times_s[(self.times_s > t0_s) & (self.times_s < t1_s)]
        ts = np.concatenate(([t0_s], inner, [t1_s]))
        return float(np.max(np.interp(ts, self.times_s, self.q_m3_s)))


@dataclass(frozen=True)
class PointInflow:
    """Discharge (``hydrograph``, m³/s) into the cell containing (x_m, y_m)."""

    x_m: float
    y_m: float
    hydrograph: Hydrograph
    name: str = "inflow"


@dataclass(frozen=True)
class LineInflow:
    """Discharge spread evenly over the (unblocked) cells the segment (x0, y0)–(x1, y1)
    crosses."""

    x0_m: float
    y0_m: float
    x1_m: float
    y1_m: float
    hydrograph: Hydrograph
    name: str = "inflow"


@dataclass(frozen=True)
class StageBoundary:
    """Water-surface elevation (m) held beyond a domain edge: a number or a ``Hydrograph``
    of levels (its ``q_m3_s`` holds the level in m). Water flows in or out through the edge
    by the local-inertial momentum equation against that level."""

    level_m: float | Hydrograph

    def level_at(self, t_s: float) -> float:
        """Level (m) at ``t_s``."""
        if isinstance(self.level_m, Hydrograph):
            return self.level_m.at(t_s)
        return float(self.level_m)


Boundary = Literal["closed", "free"] | StageBoundary
"""A domain-edge condition; ``boundaries`` takes one for all four edges or a dict
{"north"|"south"|"east"|"west": Boundary} (missing edges are closed)."""


@dataclass(frozen=True, eq=False)
class DrainInlets:
    """Drain inlets (gullies, manholes): each removes min(capacity · Δt, water in its cell)
    per step, in the order given."""

    x_m: np.ndarray
    y_m: np.ndarray
    capacity_m3_s: np.ndarray
    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        x = np.atleast_1d(np.asarray(self.x_m, dtype=np.float64)).copy()
        y = np.atleast_1d(np.asarray(self.y_m, dtype=np.float64)).copy()
        cap = np.broadcast_to(np.asarray(self.capacity_m3_s, dtype=np.float64), x.shape).copy()
        ids = tuple(str(i) for i in self.ids)
        if x.ndim != 1 or y.shape != x.shape or len(ids) != x.size:
            raise ValueError(
                f"drains: x_m, y_m, capacity_m3_s and ids must have one entry per inlet, got "
                f"{x.shape}, {y.shape}, {cap.shape}, {len(ids)}"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("drains: x_m and y_m must be finite")
        bad = ~np.isfinite(cap) | (cap < 0.0)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"drains: capacity_m3_s must be finite and >= 0; inlet {ids[i]!r} has {cap[i]}"
            )
        for a in (x, y, cap):
            a.setflags(write=False)
        object.__setattr__(self, "x_m", x)
        object.__setattr__(self, "y_m", y)
        object.__setattr__(self, "capacity_m3_s", cap)
        object.__setattr__(self, "ids", ids)

    def __len__(self) -> int:
        return int(self.x_m.size)


@dataclass(frozen=True)
class MassBalance:
    """Cumulative volume budget (m³) from the start to ``t_s``.

    error_m3 = initial + rain + inflow + boundary inflow − infiltration − drained − boundary
    outflow − storage (``boundary_net_out_m3`` = outflow − inflow through the edges);
    relative_error = error / (initial + rain + inflow + boundary inflow).
    """

    t_s: float
    storage_m3: float
    rain_m3: float
    inflow_m3: float
    infiltration_m3: float
    drained_m3: float
    boundary_net_out_m3: float
    error_m3: float
    relative_error: float
    initial_m3: float = 0.0
    boundary_in_m3: float = 0.0
    boundary_out_m3: float = 0.0


# =========================================================================== hazard rating
HAZARD_LAND_USES = ("pasture", "woodland", "urban", "conservative")

DEBRIS_FACTORS = {
    #             d ≤ 0.25   0.25 < d ≤ 0.75   d > 0.75 or v > 2 m/s
    "pasture": (0.0, 0.0, 0.5),
    "woodland": (0.0, 0.5, 1.0),
    "urban": (0.0, 1.0, 1.0),
    "conservative": (0.5, 1.0, 1.0),
}
"""Debris factor DF by depth/velocity band and dominant land use: Defra/EA (2006) *Flood Risks
to People Phase 2*, FD2321/TR2 (the FD2320 project guidance), Table 3.1 ("pasture/arable",
"woodland", "urban"). "conservative" is the precautionary choice of the Defra/EA (2008)
supplementary note on hazard ratings (DF = 0.5 in shallow water, 1 otherwise); Flood Modeller
offers the same four land-use options (help.floodmodeller.com/docs/hazard-mapping).
Depths ≤ 0.25 m take the first band whatever the speed (depth band first, as the table
rows are listed)."""

HAZARD_CLASSES = ((0.75, "low"), (1.25, "moderate"), (2.0, "significant"), (math.inf, "extreme"))
"""FD2320/TR2 hazard classes by HR: < 0.75 low ("caution"), 0.75–1.25 moderate ("danger for
some"), 1.25–2.0 significant ("danger for most"), > 2.0 extreme ("danger for all")."""


def debris_factor(
    depth_m: ArrayLike, velocity_m_s: ArrayLike, land_use: str = "urban"
) -> np.ndarray:
    """Debris factor DF (FD2321/TR2 Table 3.1, see ``DEBRIS_FACTORS``)."""
    try:
        low, mid, high = DEBRIS_FACTORS[land_use]
    except KeyError:
        raise ValueError(
            f"unknown land_use {land_use!r}; allowed: {', '.join(HAZARD_LAND_USES)}"
        ) from None
    d = np.asarray(depth_m, dtype=np.float64)
    v = np.asarray(velocity_m_s, dtype=np.float64)
    band3 = (d > 0.75) | (v > 2.0)
    return np.where(d <= 0.25, low, np.where(band3, high, mid))


def hazard_rating(
    depth_m: ArrayLike, velocity_m_s: ArrayLike, land_use: str = "urban"
) -> np.ndarray:
    """Flood hazard rating to people HR = d (v + 0.5) + DF (Defra/EA 2006, FD2320/TR2
    eq. 3.1; PHYSICS.md "Flood"); 0 where the depth is 0."""
    d = np.asarray(depth_m, dtype=np.float64)
    v = np.asarray(velocity_m_s, dtype=np.float64)
    hr = d * (v + 0.5) + debris_factor(d, v, land_use)
    return np.where(d > 0.0, hr, 0.0)


def hazard_class(hr: ArrayLike) -> np.ndarray:
    """FD2320 class names for hazard ratings (``HAZARD_CLASSES``); "none" where HR = 0."""
    hr = np.asarray(hr, dtype=np.float64)
    names = np.array(["none"] + [name for _, name in HAZARD_CLASSES], dtype=object)
    edges = np.array([lim for lim, _ in HAZARD_CLASSES[:-1]])
    idx = np.where(hr > 0.0, np.searchsorted(edges, hr, side="right") + 1, 0)
    return names[idx]


# =========================================================================== from_twin inputs
DEFAULT_INLET_CAPACITY_M3_S = {"gully": 0.03, "inlet": 0.03, "manhole": 0.08}
"""Inlet capacity by drainage-node kind (m³/s). A grated street gully takes roughly 10–35 L/s
under ponding of a few cm (single to double grate; GB 50014-2021 §5.7 design values for
Chinese grate inlets are ~20 L/s single, ~35 L/s double; UK HA102 / CIRIA C753 gully
capacities are of the same order), and a manhole node of a coarse network model stands for
the few gullies connected to it: 0.08 m³/s. Outfalls are not inlets."""

DEFAULT_CFL = 0.6
"""Default Courant number α of the adaptive step Δt = α Δx / sqrt(g h_max) (see the module
docstring)."""

DEFAULT_MANNING_N = 0.03
"""Default Manning n (s/m^(1/3)): between asphalt (0.013–0.016) and grass (0.035), a common
single value for urban overland flow (e.g. the EA 2D benchmark uses 0.03/0.05)."""


# =========================================================================== helpers
def _raster_or_scalar(value, shape, name: str, source: str, *, minimum: float = 0.0):
    """Validate a scalar or a raster of ``shape`` (finite, >= minimum); returns float or array."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        v = float(arr)
        if not (math.isfinite(v) and v >= minimum):
            raise InputError(source, f"must be finite and >= {minimum:g}, got {v}", field=name)
        return v
    if arr.shape != tuple(shape):
        raise InputError(
            source,
            f"raster has shape {arr.shape} but the DEM has shape {tuple(shape)}",
            field=name,
        )
    bad = ~np.isfinite(arr) | (arr < minimum)
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            source,
            f"{int(bad.sum())} cells are non-finite or < {minimum:g} "
            f"(first at row {r}, col {c}: {arr[r, c]})",
            field=name,
        )
    return arr.copy()


def _parse_boundaries(boundaries, source: str) -> dict[str, object]:
    edges = fk.EDGES
    if isinstance(boundaries, Mapping):
        unknown = [k for k in boundaries if k not in edges]
        if unknown:
            raise InputError(
                source,
                f"unknown edge name(s) {unknown}; use {', '.join(edges)}",
                field="boundaries",
            )
        spec = {e: boundaries.get(e, "closed") for e in edges}
    else:
        spec = {e: boundaries for e in edges}
    for edge, b in spec.items():
        if isinstance(b, StageBoundary):
            lv = b.level_m
            if not isinstance(lv, Hydrograph) and not math.isfinite(float(lv)):
                raise InputError(source, f"{edge}: stage level must be finite", field="boundaries")
            continue
        if b not in ("closed", "free"):
            raise InputError(
                source,
                f"{edge}: unknown boundary {b!r}; use 'closed', 'free' or StageBoundary(level_m)",
                field="boundaries",
            )
    return spec


# =========================================================================== the engine
@register_engine
class LocalInertialFlood(HazardEngine):
    """Local-inertial 2-D flood model on a raster (module docstring)."""

    kind = "urban_flood"
    info = {
        "depth_m": QuantityInfo("m", "water depth"),
        "velocity_m_s": QuantityInfo("m/s", "depth-averaged flow speed in the cell", "max"),
        "wse_m": QuantityInfo("m", "water-surface elevation (the ground where dry)", "max"),
        # envelopes combine by max: summing two floods' maxima would add different times
        "max_depth_m": QuantityInfo("m", "maximum water depth since the start", "max"),
        "max_velocity_m_s": QuantityInfo("m/s", "maximum flow speed since the start", "max"),
        "hazard_rating": QuantityInfo(
            "1", "flood hazard rating to people d (v + 0.5) + DF (Defra/EA FD2320)", "max"
        ),
        "rain_mm_h": QuantityInfo("mm/h", "rain intensity falling now (for rain gauges)"),
    }
    render_quantity = "max_depth_m"

    def __init__(
        self,
        elevation_m: np.ndarray,
        transform: Affine,
        *,
        manning_n: float | np.ndarray = DEFAULT_MANNING_N,
        initial_depth_m: float | np.ndarray = 0.0,
        rain: RainSeries | None = None,
        infiltration_mm_h: float | np.ndarray = 0.0,
        inflows: Sequence[PointInflow | LineInflow] = (),
        boundaries: Boundary | Mapping[str, Boundary] = "closed",
        drains: DrainInlets | None = None,
        blocked: np.ndarray | None = None,
        theta: float = 0.7,
        cfl: float = DEFAULT_CFL,
        dry_depth_m: float = 1e-3,
        max_dt_s: float = 10.0,
        output_interval_s: float = 60.0,
        backend: str = "numba",
        t_s: float = 0.0,
        crs=None,
        source: str = "<flood>",
        arrival_depth_m: float = 0.01,
        hazard_land_use: str = "urban",
        track_maxima: bool = True,
        advection: bool = False,
        theta_weighting: str | None = None,
        friction: str = "2d",
        froude_limit: float | None = None,
    ) -> None:
        """Build the model at time ``t_s`` (see the module docstring for the physics).

        ``elevation_m[row, col]``: bed elevation (m), row 0 north, square north-up cells
        given by ``transform``; NaN only where ``blocked``. ``blocked``: bool raster of
        cells with no flow and no rain (e.g. building footprints). ``manning_n``,
        ``initial_depth_m`` and ``infiltration_mm_h`` (a constant-rate loss while water is
        present): scalars or rasters. ``backend``: "numba" (compiled, parallel) or
        "numpy" (reference). ``hazard_land_use``: debris-factor column
        (``DEBRIS_FACTORS``). ``arrival_depth_m``: depth that counts as arrival.
        ``track_maxima=False`` skips the running maxima and arrival times (faster).
        ``advection=True`` adds the convective acceleration ∂(qu)/∂x + ∂(qv)/∂y that the
        local-inertial scheme drops (upwind, momentum-conservative, Stelling & Duinmeijer
        2003) and limits Δt by the flow speed too; use it for supercritical flows such as
        dam breaks onto dry land (``benchmarks/validation/flood_validation.py``, Ritter).
        ``theta_weighting``: "discharge" (default; de Almeida et al. 2012 as published:
        neighbouring faces enter with their discharge) or "depth_limited" (a neighbour deeper
        than the face enters with its velocity × the face depth; see the module docstring).
        ``friction``: "2d" (default; Manning friction on the discharge vector magnitude, as
        LISFLOOD-FP) or "1d" (on the face-normal discharge only, Bates et al. 2010 eq. 11).
        ``froude_limit``: cap each face's discharge at this Froude number,
        |q| ≤ Fr·h_f·sqrt(g h_f) (CAESAR-Lisflood practice, e.g. 0.8–1); None or 0: no cap
        (default). ``cfl``: α of the adaptive step; keep it ≤ 0.65 (module docstring).
        """
        self.source = str(source)
        src = self.source
        z = np.asarray(elevation_m, dtype=np.float64)
        if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
            raise InputError(src, f"must be a 2-D raster, got shape {z.shape}", field="elevation_m")
        nr, nc = z.shape
        self.shape = (nr, nc)
        # transform: square, north-up cells
        if not isinstance(transform, Affine):
            raise InputError(src, "must be an affine.Affine", field="transform")
        if transform.b != 0.0 or transform.d != 0.0:
            raise InputError(src, "rotated grids are not supported (b, d must be 0)",
                             field="transform")
        dx, dy = float(transform.a), float(-transform.e)
        if not (dx > 0.0 and dy > 0.0 and math.isfinite(dx) and math.isfinite(dy)):
            raise InputError(src, f"cells must be north-up with positive size, got a={dx}, "
                             f"e={transform.e}", field="transform")
        if abs(dx - dy) > 1e-9 * dx:
            raise InputError(src, f"non-square cells ({dx} m x {dy} m); resample the DEM to "
                             "square cells", field="transform")
        self.transform = transform
        self.dx_m = dx
        self.cell_area_m2 = dx * dx
        self.crs = crs
        # blocked cells and NaN holes
        if blocked is None:
            blk = np.zeros((nr, nc), dtype=bool)
        else:
            blk = np.asarray(blocked)
            if blk.shape != (nr, nc):
                raise InputError(src, f"raster has shape {blk.shape} but the DEM has shape "
                                 f"{(nr, nc)}", field="blocked")
            blk = blk.astype(bool)
        holes = ~np.isfinite(z) & ~blk
        if holes.any():
            r, c = (int(v) for v in np.argwhere(holes)[0])
            raise InputError(
                src,
                f"{int(holes.sum())} cells are NaN/non-finite outside blocked cells (first at "
                f"row {r}, col {c}); fill the holes or mark them blocked",
                field="elevation_m",
            )
        self.blocked = blk
        ground = z.copy()
        if (~np.isfinite(ground)).any():  # holes under blocked cells: report a finite ground
            ground[~np.isfinite(ground)] = np.nanmax(ground) if np.isfinite(ground).any() else 0.0
        self.ground_m = ground
        self._z = np.where(blk, fk.BIG_Z_M, ground)
        self._active = (~blk).astype(np.uint8)
        self._n_active_row = (~blk).sum(axis=1).astype(np.float64)
        self._has_blocked = bool(blk.any())
        # friction, initial depth, losses
        n = _raster_or_scalar(manning_n, (nr, nc), "manning_n", src)
        self.manning_n = n
        if np.ndim(n) == 0:
            self._n2 = np.full((1, 1), float(n) ** 2)
            self._n_uniform = True
        else:
            self._n2 = np.ascontiguousarray(n * n)
            self._n_uniform = False
        h0 = _raster_or_scalar(initial_depth_m, (nr, nc), "initial_depth_m", src)
        self._h = np.where(blk, 0.0, np.broadcast_to(h0, (nr, nc))).astype(np.float64)
        self._h = np.ascontiguousarray(self._h)
        inf = _raster_or_scalar(infiltration_mm_h, (nr, nc), "infiltration_mm_h", src)
        self.infiltration_mm_h = inf
        positive_loss = np.any(np.asarray(inf) > 0.0)
        self._loss_buf = np.full((nr, nc), 0.0) if positive_loss else np.zeros((1, 1))
        # rain
        if rain is not None:
            if not isinstance(rain, RainSeries):
                raise InputError(src, "must be a physics.rainfall.RainSeries", field="rain")
            rain.check_grid((nr, nc), src)
        self.rain = rain
        # scalar parameters
        checks = {
            "theta": (theta, 0.0 <= theta <= 1.0),
            "cfl": (cfl, 0.0 < cfl <= 1.0),
            "dry_depth_m": (dry_depth_m, math.isfinite(dry_depth_m) and dry_depth_m > 0.0),
            "max_dt_s": (max_dt_s, math.isfinite(max_dt_s) and max_dt_s > 0.0),
            "output_interval_s": (output_interval_s, output_interval_s > 0.0),
            "t_s": (t_s, math.isfinite(t_s)),
            "arrival_depth_m": (arrival_depth_m, arrival_depth_m > 0.0),
        }
        for name, (value, ok) in checks.items():
            if not ok:
                raise InputError(src, f"invalid value {value!r}", field=name)
        if backend not in fk.BACKENDS:
            raise InputError(src, f"unknown backend {backend!r}; use {', '.join(fk.BACKENDS)}",
                             field="backend")
        if backend == "numba" and not fk.HAVE_NUMBA:  # pragma: no cover
            backend = "numpy"
        if hazard_land_use not in DEBRIS_FACTORS:
            raise InputError(src, f"unknown land use {hazard_land_use!r}; use "
                             f"{', '.join(HAZARD_LAND_USES)}", field="hazard_land_use")
        self.theta = float(theta)
        self.cfl = float(cfl)
        self.dry_depth_m = float(dry_depth_m)
        self.max_dt_s = float(max_dt_s)
        self.output_interval_s = float(output_interval_s)
        self.backend = backend
        self.arrival_depth_m = float(arrival_depth_m)
        self.hazard_land_use = hazard_land_use
        self.track_maxima = bool(track_maxima)
        self.advection = bool(advection)
        if theta_weighting is None:
            theta_weighting = "discharge"
        if theta_weighting not in ("discharge", "depth_limited"):
            raise InputError(src, f"unknown option {theta_weighting!r}; use 'discharge' or "
                             "'depth_limited'", field="theta_weighting")
        self.theta_weighting = theta_weighting
        if friction not in ("2d", "1d"):
            raise InputError(src, f"unknown option {friction!r}; use '2d' or '1d'",
                             field="friction")
        self.friction = friction
        froude_limit = 0.0 if froude_limit is None else float(froude_limit)
        if not (math.isfinite(froude_limit) and froude_limit >= 0.0):
            raise InputError(src, f"invalid value {froude_limit!r} (a Froude number > 0, or 0 "
                             "for no limit)", field="froude_limit")
        self.froude_limit = froude_limit
        # boundaries
        self.boundaries = _parse_boundaries(boundaries, src)
        self._bc_type = np.array(
            [fk.BC_STAGE if isinstance(self.boundaries[e], StageBoundary)
             else fk.BC_FREE if self.boundaries[e] == "free" else fk.BC_CLOSED
             for e in fk.EDGES],
            dtype=np.int64,
        )
        self._bc_level = np.zeros(4)
        edge_beds = (self._z[0, :], self._z[-1, :], self._z[:, 0], self._z[:, -1])
        self._edge_min_bed = np.array([float(np.min(b)) for b in edge_beds])
        # inflows and drains
        self.inflows = tuple(inflows)
        self._inflow_cells = [self._inflow_cells_of(i, q) for i, q in enumerate(self.inflows)]
        self.drains = drains
        if drains is not None:
            if not isinstance(drains, DrainInlets):
                raise InputError(src, "must be a DrainInlets", field="drains")
            rows, cols, inside = self._cells_of(drains.x_m, drains.y_m)
            if not inside.all():
                k = int(np.argmin(inside))
                raise InputError(
                    src,
                    f"{int((~inside).sum())} inlets lie outside the domain {self.bounds} "
                    f"(first {drains.ids[k]!r} at ({drains.x_m[k]}, {drains.y_m[k]}))",
                    field="drains",
                )
            self._drain_rows = rows.astype(np.int64)
            self._drain_cols = cols.astype(np.int64)
            self.drained_by_inlet_m3 = np.zeros(len(drains))
        # state
        self.t_s = float(t_s)
        self.t0_s = float(t_s)
        # np.full writes every page now: zero-filled (calloc) pages first touched inside the
        # parallel kernel made steps ~2.5x slower on the 2-vCPU VM (measured, cause not
        # pinned down; page placement/huge pages are the likely suspects)
        xs_shape, ys_shape = (nr, nc + 1), (nr + 1, nc)
        self._qx = np.full(xs_shape, 0.0)
        self._qy = np.full(ys_shape, 0.0)
        self._qx_next = np.full(xs_shape, 0.0)
        self._qy_next = np.full(ys_shape, 0.0)
        self._hfx = np.full(xs_shape, 0.0)  # face flow depths of the last step (m)
        self._hfy = np.full(ys_shape, 0.0)
        self._hfx_next = np.full(xs_shape, 0.0)
        self._hfy_next = np.full(ys_shape, 0.0)
        self._qxr = np.full(xs_shape, 0.0)
        self._qyr = np.full(ys_shape, 0.0)
        self._f = np.ones((nr, nc))
        self.max_depth_m = self._h.copy()
        self.max_velocity_m_s = np.full((nr, nc), 0.0)
        self.arrival_time_s = np.where(self._h >= self.arrival_depth_m, self.t_s, np.nan)
        self._rows = {k: np.zeros(nr) for k in ("hmax", "umax", "rain", "loss", "bout", "bin")}
        self._chunk_threads = fk.get_num_threads()
        self._chunks = fk.chunk_bounds(nr, self._chunk_threads)
        self._dummy = np.zeros((1, 1))
        self._hmax = float(self._h.max()) if self._h.size else 0.0
        self._umax = 0.0
        self.initial_m3 = float(np.sum(self._h)) * self.cell_area_m2
        self.rain_m3 = 0.0
        self.inflow_m3 = 0.0
        self.infiltration_m3 = 0.0
        self.drained_m3 = 0.0
        self.boundary_out_m3 = 0.0
        self.boundary_in_m3 = 0.0
        self.steps = 0
        self.last_dt_s = float("nan")
        self.balance_log: list[MassBalance] = []
        self._next_output_s = self.t_s + self.output_interval_s
        self._gauge_cells: list[tuple[int, int]] = []
        self._gauge_times: list[float] = []
        self._gauge_values: dict[str, list[np.ndarray]] = {q: [] for q in self.info}

    # ------------------------------------------------------------------ geometry
    @property
    def bounds(self) -> Bounds:
        """(xmin, ymin, xmax, ymax) of the grid (m)."""
        nr, nc = self.shape
        x0, y0 = self.transform.c, self.transform.f
        return (x0, y0 - nr * self.dx_m, x0 + nc * self.dx_m, y0)

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre x per column and y per row (m)."""
        nr, nc = self.shape
        xs = self.transform.c + (np.arange(nc) + 0.5) * self.dx_m
        ys = self.transform.f - (np.arange(nr) + 0.5) * self.dx_m
        return xs, ys

    def _cells_of(self, x, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows, cols, inside) of the cells containing points (edges belong to the domain)."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        nr, nc = self.shape
        fc = (x - self.transform.c) / self.dx_m
        fr = (self.transform.f - y) / self.dx_m
        inside = (fc >= 0.0) & (fc <= nc) & (fr >= 0.0) & (fr <= nr)
        cols = np.clip(np.floor(fc), 0, nc - 1).astype(np.intp)
        rows = np.clip(np.floor(fr), 0, nr - 1).astype(np.intp)
        return rows, cols, inside

    def _inflow_cells_of(self, i: int, inflow) -> tuple[np.ndarray, np.ndarray]:
        src = self.source
        field = f"inflows[{i}]"
        if isinstance(inflow, PointInflow):
            xs, ys = np.array([inflow.x_m]), np.array([inflow.y_m])
        elif isinstance(inflow, LineInflow):
            length = math.hypot(inflow.x1_m - inflow.x0_m, inflow.y1_m - inflow.y0_m)
            n = max(2, int(math.ceil(8.0 * length / self.dx_m)) + 1)
            s = np.linspace(0.0, 1.0, n)
            xs = inflow.x0_m + s * (inflow.x1_m - inflow.x0_m)
            ys = inflow.y0_m + s * (inflow.y1_m - inflow.y0_m)
        else:
            raise InputError(src, f"must be a PointInflow or LineInflow, got {type(inflow)}",
                             field=field)
        if not isinstance(inflow.hydrograph, Hydrograph):
            raise InputError(src, "hydrograph must be a Hydrograph", field=field)
        if np.any(inflow.hydrograph.q_m3_s < 0.0):
            raise InputError(src, f"{inflow.name!r}: discharges must be >= 0", field=field)
        if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
            raise InputError(src, f"{inflow.name!r}: coordinates must be finite", field=field)
        rows, cols, inside = self._cells_of(xs, ys)
        if not inside.all():
            k = int(np.argmin(inside))
            raise InputError(
                src,
                f"{inflow.name!r} at ({xs[k]}, {ys[k]}) lies outside the domain {self.bounds}",
                field=field,
            )
        flat = rows * self.shape[1] + cols
        _, first = np.unique(flat, return_index=True)
        order = np.sort(first)
        rows, cols = rows[order], cols[order]
        open_ = ~self.blocked[rows, cols]
        if not open_.any():
            raise InputError(src, f"{inflow.name!r} lies only on blocked cells", field=field)
        return rows[open_].astype(np.intp), cols[open_].astype(np.intp)

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_twin(
        cls,
        twin,
        *,
        buildings: str = "blocked",
        building_raise_m: float | None = None,
        manning_by_use: Mapping[str, float] | None = None,
        drains: bool | DrainInlets = True,
        inlet_capacity_m3_s: Mapping[str, float] | None = None,
        **kwargs,
    ) -> LocalInertialFlood:
        """Flood model on the twin's terrain grid.

        ``buildings``: "blocked" (footprint cells carry no flow and no rain) or "raised"
        (the bed is raised by ``building_raise_m``, default each building's ``height_m``, so
        water flows around unless it overtops); "none" ignores them. ``manning_by_use``:
        {building use: n} applied inside footprints (raised buildings), e.g. to make them
        rough. ``drains=True``: inlets at the drainage network's manholes/gullies with
        ``DEFAULT_INLET_CAPACITY_M3_S`` (override per kind with ``inlet_capacity_m3_s``);
        nodes outside the grid or in blocked cells are skipped (``skipped_inlets``).
        Defaults that differ from ``__init__``: ``boundaries="free"`` (a city cut out of a
        larger landscape drains over its edges), ``crs=twin.crs``,
        ``source="twin <name>"``. Other keyword arguments go to ``__init__``.
        """
        import rasterio.features

        terrain = twin.terrain
        z = np.asarray(terrain.elevation_m, dtype=np.float64).copy()
        transform = terrain.transform
        shape = z.shape
        kwargs.setdefault("boundaries", "free")
        kwargs.setdefault("crs", twin.crs)
        kwargs.setdefault("source", f"twin {getattr(twin, 'name', '?')}")
        n_base = kwargs.pop("manning_n", DEFAULT_MANNING_N)
        blocked = None
        manning = n_base
        bld = twin.buildings
        if buildings not in ("blocked", "raised", "none"):
            raise InputError(kwargs["source"], f"unknown option {buildings!r}; use 'blocked', "
                             "'raised' or 'none'", field="buildings")
        if buildings != "none" and len(bld):
            idx = np.arange(1, len(bld) + 1)
            ids = rasterio.features.rasterize(
                zip(bld.geometry, idx, strict=True), out_shape=shape, transform=transform,
                fill=0, dtype="int32",
            )
            inside = ids > 0
            if buildings == "blocked":
                blocked = inside
            else:
                if building_raise_m is None:
                    heights = np.nan_to_num(bld["height_m"].to_numpy(dtype=float), nan=10.0)
                else:
                    heights = np.full(len(bld), float(building_raise_m))
                raise_by = np.concatenate(([0.0], heights))[ids]
                z = z + raise_by
            if manning_by_use:
                manning = np.broadcast_to(np.asarray(n_base, dtype=float), shape).copy()
                # per building id (0: no building): whether its use has an n, and that n;
                # looked up through the id raster in one step, like raise_by above
                uses = bld["use"].astype(str).to_numpy()
                has_n = np.concatenate(([False], [u in manning_by_use for u in uses]))
                n_of = np.concatenate(
                    ([0.0], [float(manning_by_use.get(u, 0.0)) for u in uses]))
                sel = has_n[ids]
                manning[sel] = n_of[ids[sel]]
        inlets = None
        skipped: list[str] = []
        if isinstance(drains, DrainInlets):
            inlets = drains
        elif drains and "drainage" in getattr(twin, "networks", {}):
            caps = dict(DEFAULT_INLET_CAPACITY_M3_S)
            caps.update(inlet_capacity_m3_s or {})
            nodes = twin.networks["drainage"].nodes
            kinds = nodes["kind"].astype(str).to_numpy()
            keep = np.isin(kinds, list(caps))
            sel = nodes[keep]
            xs = sel.geometry.x.to_numpy(dtype=float)
            ys = sel.geometry.y.to_numpy(dtype=float)
            cap = np.array([caps[k] for k in kinds[keep]], dtype=float)
            node_ids = sel["id"].astype(str).to_numpy()
            ok = terrain.contains(xs, ys)
            if blocked is not None and ok.any():
                col = np.clip(((xs - transform.c) / transform.a).astype(int), 0, shape[1] - 1)
                row = np.clip(((ys - transform.f) / transform.e).astype(int), 0, shape[0] - 1)
                ok &= ~blocked[row, col]
            skipped = list(node_ids[~ok])
            if ok.any():
                inlets = DrainInlets(xs[ok], ys[ok], cap[ok], tuple(node_ids[ok]))
        model = cls(z, transform, manning_n=manning, blocked=blocked, drains=inlets, **kwargs)
        model.skipped_inlets = tuple(skipped)
        return model

    @classmethod
    def example(cls) -> LocalInertialFlood:
        """A small, active instance: a 2 m column of water collapsing on a gently sloping
        40 × 40 cell (5 m) plain with light rain, 30 s after release."""
        nr = nc = 40
        dx = 5.0
        transform = Affine(dx, 0.0, 0.0, 0.0, -dx, nr * dx)
        cols = np.arange(nc)
        z = np.tile(10.0 - 0.002 * dx * cols, (nr, 1))
        h0 = np.zeros((nr, nc))
        h0[16:24, 8:16] = 2.0
        model = cls(z, transform, manning_n=0.03, initial_depth_m=h0,
                    rain=RainSeries.constant(20.0), boundaries="free", source="example")
        model.advance_to(30.0)
        return model

    # ------------------------------------------------------------------ stepping
    def _stage_hmax(self, t_s: float) -> float:
        h = 0.0
        for k, edge in enumerate(fk.EDGES):
            b = self.boundaries[edge]
            if isinstance(b, StageBoundary):
                h = max(h, b.level_at(t_s) - self._edge_min_bed[k])
        return h

    def _next_break(self, t_s: float) -> float:
        if self.rain is None:
            return math.inf
        times = self.rain.breakpoints_s
        k = int(np.searchsorted(times, t_s, side="right"))
        return float(times[k]) if k < times.size else math.inf

    def _choose_dt(self, t_target: float) -> tuple[float, float]:
        """(dt, t_new) for the next step: CFL, caps, breakpoints, and a look-ahead for the
        depth inflows add to their cells."""
        t = self.t_s
        hmax = max(self._hmax, self._stage_hmax(t))
        if not (math.isfinite(hmax) and math.isfinite(self._umax)):
            raise FloatingPointError(
                f"{self.source}: depths or velocities became non-finite at t_s={t}")
        c = self.cfl * self.dx_m
        speed = math.sqrt(G_M_S2 * hmax) + (self._umax if self.advection else 0.0)
        dt = self.max_dt_s if speed <= 0.0 else min(self.max_dt_s, c / speed)
        for inflow, (rows, cols) in zip(self.inflows, self._inflow_cells, strict=True):
            h_here = float(self._h[rows, cols].max())
            for _ in range(3):
                q = inflow.hydrograph.max_between(t, t + dt)
                h_est = h_here + q * dt / (rows.size * self.cell_area_m2)
                if h_est > 0.0:
                    dt = min(dt, c / math.sqrt(G_M_S2 * h_est))
        limit = min(t_target, self._next_output_s, self._next_break(t))
        tol = 1e-9 * max(1.0, abs(t))
        t_new = limit if limit <= t + dt + tol else t + dt
        return t_new - t, t_new

    def _step(self, dt: float, t_new: float) -> None:
        t = self.t_s
        for k, edge in enumerate(fk.EDGES):
            b = self.boundaries[edge]
            if isinstance(b, StageBoundary):
                self._bc_level[k] = b.level_at(t + 0.5 * dt)
        rain_mode, rain_depth, rain_grid, rain_scale = 0, 0.0, self._dummy, 0.0
        if self.rain is not None:
            k = self.rain.index_at(t)
            if k >= 0:
                if self.rain.gridded:
                    rain_mode, rain_grid = 2, self.rain.intensity_mm_h[k]
                    rain_scale = MM_H_TO_M_S * dt
                else:
                    i_mm_h = float(self.rain.intensity_mm_h[k])
                    if i_mm_h > 0.0:
                        rain_mode, rain_depth = 1, i_mm_h * MM_H_TO_M_S * dt
        loss_mode, loss_depth, loss_grid, loss_scale = 0, 0.0, self._dummy, 0.0
        inf = self.infiltration_mm_h
        if np.ndim(inf) == 0:
            if inf > 0.0:
                loss_mode, loss_depth = 1, float(inf) * MM_H_TO_M_S * dt
        else:
            loss_mode, loss_grid, loss_scale = 2, inf, MM_H_TO_M_S * dt
        rows = self._rows
        if self.backend == "numba" and fk.get_num_threads() != self._chunk_threads:
            self._chunk_threads = fk.get_num_threads()  # results do not depend on chunking
            self._chunks = fk.chunk_bounds(self.shape[0], self._chunk_threads)
        kernel = fk.step_numba if self.backend == "numba" else fk.step_numpy
        args = (
            self._h, self._z, self._n2, self._n_uniform, self._qx, self._qy, self._hfx,
            self._hfy, self._qxr, self._qyr, self._qx_next, self._qy_next, self._hfx_next,
            self._hfy_next, self._f, dt, self.dx_m, self.theta,
            self.theta_weighting == "depth_limited", self.friction == "2d", self.froude_limit,
            self.dry_depth_m,
            self.advection, self._bc_type, self._bc_level, rain_mode, rain_depth, rain_grid,
            rain_scale, self._active, self._has_blocked, self._n_active_row, loss_mode,
            loss_depth, loss_grid, loss_scale, self._loss_buf, self.track_maxima, t_new,
            self.arrival_depth_m, self.max_depth_m,
            self.max_velocity_m_s, self.arrival_time_s, rows["hmax"], rows["umax"], rows["rain"],
            rows["loss"], rows["bout"], rows["bin"], self._chunks,
        )
        if self.backend == "numba":
            with KERNEL_LOCK:  # numba workqueue is not thread-safe
                kernel(*args)
        else:
            kernel(*args)
        self._qx, self._qx_next = self._qx_next, self._qx
        self._qy, self._qy_next = self._qy_next, self._qy
        self._hfx, self._hfx_next = self._hfx_next, self._hfx
        self._hfy, self._hfy_next = self._hfy_next, self._hfy
        self._umax = float(np.max(rows["umax"]))
        area = self.cell_area_m2
        self.rain_m3 += float(np.sum(rows["rain"])) * area
        self.infiltration_m3 += float(np.sum(rows["loss"])) * area
        self.boundary_out_m3 += float(np.sum(rows["bout"]))
        self.boundary_in_m3 += float(np.sum(rows["bin"]))
        hmax = float(np.max(rows["hmax"]))
        # inflows (exact volume of the piecewise-linear hydrograph over the step)
        for inflow, (r, c) in zip(self.inflows, self._inflow_cells, strict=True):
            vol = inflow.hydrograph.volume_m3(t, t_new)
            if vol > 0.0:
                self._h[r, c] += vol / (r.size * area)
                self.inflow_m3 += vol
                hmax = max(hmax, float(self._h[r, c].max()))
                if self.track_maxima:
                    hh = self._h[r, c]
                    self.max_depth_m[r, c] = np.maximum(self.max_depth_m[r, c], hh)
                    arr = self.arrival_time_s[r, c]
                    self.arrival_time_s[r, c] = np.where(
                        np.isnan(arr) & (hh >= self.arrival_depth_m), t_new, arr)
        # drains
        if self.drains is not None and len(self.drains):
            max_vol = self.drains.capacity_m3_s * dt
            fn = fk.drains_numba if self.backend == "numba" else fk.drains_numpy
            removed = fn(self._h, self._drain_rows, self._drain_cols, max_vol, area)
            self.drained_by_inlet_m3 += removed
            self.drained_m3 += float(np.sum(removed))
        self._hmax = hmax
        self.t_s = t_new
        self.steps += 1
        self.last_dt_s = dt

    def advance_to(self, t_s: float) -> None:
        """Advance to ``t_s`` with adaptive steps (module docstring); logs the volume
        budget and gauge values at every output time passed."""
        target = self.check_not_backwards(t_s)
        while self.t_s < target:
            dt, t_new = self._choose_dt(target)
            self._step(dt, t_new)
            if self.t_s >= self._next_output_s - 1e-9 * max(1.0, abs(self.t_s)):
                self.balance_log.append(self.mass_balance())
                self._record_gauges()
                while self._next_output_s <= self.t_s + 1e-9 * max(1.0, abs(self.t_s)):
                    self._next_output_s += self.output_interval_s

    # ------------------------------------------------------------------ budget
    def mass_balance(self) -> MassBalance:
        """Cumulative volume budget now (``MassBalance``)."""
        storage = float(np.sum(self._h)) * self.cell_area_m2
        into = self.initial_m3 + self.rain_m3 + self.inflow_m3 + self.boundary_in_m3
        out = self.infiltration_m3 + self.drained_m3 + self.boundary_out_m3
        err = into - out - storage
        rel = err / into if into > 0.0 else (0.0 if err == 0.0 else math.inf)
        return MassBalance(
            t_s=self.t_s, storage_m3=storage, rain_m3=self.rain_m3, inflow_m3=self.inflow_m3,
            infiltration_m3=self.infiltration_m3, drained_m3=self.drained_m3,
            boundary_net_out_m3=self.boundary_out_m3 - self.boundary_in_m3, error_m3=err,
            relative_error=rel, initial_m3=self.initial_m3, boundary_in_m3=self.boundary_in_m3,
            boundary_out_m3=self.boundary_out_m3,
        )

    # ------------------------------------------------------------------ state access
    @property
    def depth_m(self) -> np.ndarray:
        """Water depth per cell (m), the live array (do not modify)."""
        return self._h

    @property
    def qx_m2_s(self) -> np.ndarray:
        """Unit-width discharge on x-faces (m²/s, (rows, cols + 1), positive east)."""
        return self._qx

    @property
    def qy_m2_s(self) -> np.ndarray:
        """Unit-width discharge on y-faces (m²/s, (rows + 1, cols), positive south)."""
        return self._qy

    def velocity_components(self, rows=None, cols=None) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre velocity (u east, v north) in m/s: the mean of the two face velocities
        q / h_f on each axis (face flow depth h_f of the last step, 0 on dry faces), as
        LISFLOOD-FP reports velocities; 0 in cells with depth <= ``dry_depth_m``."""
        if rows is None:
            rows, cols = np.indices(self.shape)
        dry = self.dry_depth_m

        def vel(q, hf):
            return np.where(hf > dry, q / np.maximum(hf, dry), 0.0)

        u = 0.5 * (vel(self._qx[rows, cols], self._hfx[rows, cols])
                   + vel(self._qx[rows, cols + 1], self._hfx[rows, cols + 1]))
        v = -0.5 * (vel(self._qy[rows, cols], self._hfy[rows, cols])
                    + vel(self._qy[rows + 1, cols], self._hfy[rows + 1, cols]))
        wet = self._h[rows, cols] > dry
        return np.where(wet, u, 0.0), np.where(wet, v, 0.0)

    def _values_at(self, quantity: str, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        if quantity == "depth_m":
            return self._h[rows, cols].copy()
        if quantity == "wse_m":
            return self.ground_m[rows, cols] + self._h[rows, cols]
        if quantity == "max_depth_m":
            return self.max_depth_m[rows, cols].copy()
        if quantity == "max_velocity_m_s":
            return self.max_velocity_m_s[rows, cols].copy()
        if quantity == "rain_mm_h":
            if self.rain is None:
                return np.zeros(len(rows))
            i_mm_h = np.asarray(self.rain.intensity_at(self.t_s), dtype=np.float64)
            return i_mm_h[rows, cols].copy() if i_mm_h.ndim == 2 else np.full(len(rows),
                                                                              float(i_mm_h))
        u, v = self.velocity_components(rows, cols)
        speed = np.hypot(u, v)
        if quantity == "velocity_m_s":
            return speed
        d = self._h[rows, cols]
        d = np.where(d > self.dry_depth_m, d, 0.0)
        return hazard_rating(d, speed, self.hazard_land_use)

    def sample(self, quantity: str, xyz_m: np.ndarray) -> np.ndarray:
        """Value of the cell containing each point (z ignored); 0 outside the grid."""
        self.check_quantity(quantity)
        pts = as_points(xyz_m)
        out = np.zeros(pts.shape[0])
        if pts.shape[0] == 0:
            return out
        rows, cols, inside = self._cells_of(pts[:, 0], pts[:, 1])
        if inside.any():
            out[inside] = self._values_at(quantity, rows[inside], cols[inside])
        return out.astype(np.float64)

    def default_bounds(self) -> Bounds:
        """Bounds of the cells wet now or before (depth > ``dry_depth_m``), padded by
        max(2 cells, 10 m, 1 % of the extent) so footprints fit inside; the grid if none."""
        wet = (self._h > self.dry_depth_m) | (self.max_depth_m > self.dry_depth_m)
        if not wet.any():
            return self.bounds
        rows = np.flatnonzero(wet.any(axis=1))
        cols = np.flatnonzero(wet.any(axis=0))
        x0 = self.transform.c + cols[0] * self.dx_m
        x1 = self.transform.c + (cols[-1] + 1) * self.dx_m
        y1 = self.transform.f - rows[0] * self.dx_m
        y0 = self.transform.f - (rows[-1] + 1) * self.dx_m
        pad = max(2.0 * self.dx_m, 10.0, 0.01 * max(x1 - x0, y1 - y0))
        return (x0 - pad, y0 - pad, x1 + pad, y1 + pad)

    def arrival_time_at(self, xy_m: ArrayLike) -> np.ndarray:
        """First time (s) the depth reached ``arrival_depth_m`` in the cell of each (x, y)
        point; NaN where never or outside the grid."""
        xy = np.atleast_2d(np.asarray(xy_m, dtype=np.float64))
        if xy.ndim != 2 or xy.shape[1] < 2:
            raise ValueError(f"xy_m must have shape (n, 2), got {xy.shape}")
        rows, cols, inside = self._cells_of(xy[:, 0], xy[:, 1])
        return np.where(inside, self.arrival_time_s[rows, cols], np.nan)

    # ------------------------------------------------------------------ gauges
    def add_gauges(self, points_xy: ArrayLike) -> None:
        """Record every quantity at these (x, y) points at each output time (and now)."""
        xy = np.atleast_2d(np.asarray(points_xy, dtype=np.float64))
        rows, cols, inside = self._cells_of(xy[:, 0], xy[:, 1])
        if not inside.all():
            k = int(np.argmin(inside))
            raise InputError(self.source, f"gauge ({xy[k, 0]}, {xy[k, 1]}) lies outside the "
                             f"domain {self.bounds}", field="points_xy")
        new = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]
        if self._gauge_times:  # restart the records with the enlarged gauge set
            self._gauge_times.clear()
            for q in self._gauge_values:
                self._gauge_values[q].clear()
        for cell in new:
            if cell not in self._gauge_cells:
                self._gauge_cells.append(cell)
        self._record_gauges()

    def _record_gauges(self) -> None:
        if not self._gauge_cells:
            return
        rows = np.array([c[0] for c in self._gauge_cells], dtype=np.intp)
        cols = np.array([c[1] for c in self._gauge_cells], dtype=np.intp)
        self._gauge_times.append(self.t_s)
        for q in self._gauge_values:
            self._gauge_values[q].append(self._values_at(q, rows, cols))

    def time_series(
        self, points_xy: ArrayLike, quantity: str = "depth_m"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(times_s, values[time, point]) recorded at gauges added with ``add_gauges``."""
        self.check_quantity(quantity)
        xy = np.atleast_2d(np.asarray(points_xy, dtype=np.float64))
        rows, cols, inside = self._cells_of(xy[:, 0], xy[:, 1])
        idx = []
        for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
            cell = (int(r), int(c))
            if not inside[k] or cell not in self._gauge_cells:
                raise KeyError(f"no gauge at ({xy[k, 0]}, {xy[k, 1]}); call add_gauges first")
            idx.append(self._gauge_cells.index(cell))
        times = np.array(self._gauge_times)
        if not self._gauge_times:
            return times, np.zeros((0, len(idx)))
        values = np.array(self._gauge_values[quantity])[:, idx]
        return times, values


__all__ = [
    "DEBRIS_FACTORS",
    "DEFAULT_INLET_CAPACITY_M3_S",
    "Boundary",
    "DrainInlets",
    "Hydrograph",
    "LineInflow",
    "LocalInertialFlood",
    "MassBalance",
    "PointInflow",
    "StageBoundary",
    "debris_factor",
    "hazard_class",
    "hazard_rating",
]
