"""Dam break: reservoir storage, breach parameters, breach outflow and the flood it drives.

Engine kind ``"dam_break"``: a ``LocalInertialFlood`` fed by the breach outflow hydrograph
through a ``LineInflow`` along the downstream toe of the dam (PHYSICS.md "Dam break").

Pieces, each usable on its own:

- ``LevelVolumeCurve``: reservoir storage V(level) from a DEM over the pool, the sum of the
  water depths max(level − z, 0) of the pool cells times the cell area. Between two distinct
  bed elevations the storage is linear in the level, so a curve with a node at every distinct
  bed elevation (the default) is exact at every level, not only at its nodes.
- ``froehlich_2008``: expected final breach width, side slope and formation time of an
  embankment breach (Froehlich 2008, J. Hydraul. Eng. 134(12), 1708–1721).
- ``peak_outflow_regressions``: the empirical peak-outflow relations (Froehlich 1995,
  MacDonald & Langridge-Monopolis 1984, Webby 1996, Costa 1985, Evans 1986, USBR 1982,
  optionally Froehlich 2016), to be presented as an ensemble: they differ by up to ~3×
  (Wahl 2004, J. Hydraul. Eng. 130(5), 389–397).
- ``breach_hydrograph``: the parametric breach hydrograph as HEC-RAS builds it ("User Entered
  Data" breach, HEC-RAS User's Manual, dam and levee breaching): the trapezoidal breach grows
  linearly or along a sine-shaped curve over the formation time; the outflow is broad-crested
  weir flow through the current trapezoid, Q = Cw b H^1.5 + Cs z H^2.5 (Fread 1988, NWS DAMBRK:
  3.1 and 2.45 in ft-s units), or, for piping, orifice flow Q = Cd A sqrt(2 g (h − h_c))
  until the roof of the pipe collapses; the reservoir is drawn down through its level–volume
  curve (level-pool routing), with an optional inflow.

Level-pool routing uses the trapezoidal rule (Crank–Nicolson, the "storage-indication" form
of level-pool routing): S₁ + ½Δt Q(S₁, t₁) = S₀ − ½Δt Q(S₀, t₀) + ∫I dt, solved for S₁ by a
bracketed root search (the left side increases strictly with S₁). It is second-order,
A-stable, and the released volume — the exact integral of the piecewise-linear outflow series
— equals S₀ − S_end + inflow volume to round-off, by construction. Steps are cut where the
reservoir would otherwise change too fast for second-order accuracy
(``_MAX_STEP_DRAW_FRAC``, ``_FORMATION_STEPS``).

Not modelled: flow over the undamaged part of the crest, tailwater submergence of the breach
(the downstream flood does not feed back), erosion-driven (physically based) breach growth.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import rasterio.features
from affine import Affine
from shapely.geometry import LineString, MultiPolygon, Polygon

from citytwin.physics.base import FieldGrid, QuantityInfo, as_points, grid_axes, register_engine
from citytwin.physics.flood import Hydrograph, LineInflow, LocalInertialFlood
from citytwin.physics.forcing import interp_scalar
from citytwin.twin.errors import InputError

G_M_S2 = 9.81
"""Gravitational acceleration (m/s²), as in the regressions' SI forms."""

BreachMode = Literal["overtopping", "piping"]
BreachGrowth = Literal["linear", "sine"]
_MODES = ("overtopping", "piping")
_GROWTHS = ("linear", "sine")

FREAD_SIDE_TO_BOTTOM_RATIO = 2.45 / 3.1
"""Ratio of the side-slope weir coefficient to the bottom-width one in Fread's breach weir
Q = 3.1 b H^1.5 + 2.45 z H^2.5 (ft-s units; NWS DAMBRK, Fread 1988); the SI side coefficient
defaults to this ratio times the SI weir coefficient."""

HEC_RAS_WEIR_COEFFICIENT_SI = 1.44
"""HEC-RAS default breach weir coefficient 2.6 ft^0.5/s (suggested range 2.0–3.2) in SI:
2.6 / sqrt(3.2808) ≈ 1.44 m^0.5/s."""


def _finite(value: float) -> bool:
    return isinstance(value, (int, float, np.floating, np.integer)) and math.isfinite(value)


# ====================================================================== level-volume curve
@dataclass(frozen=True, eq=False)
class LevelVolumeCurve:
    """Reservoir storage (m³) against water level (m), piecewise linear between nodes.

    ``levels_m`` strictly increasing, ``volumes_m3`` strictly increasing and ≥ 0 (the first
    node is normally the pool's lowest bed elevation with volume 0). ``volume_at`` below the
    first node is 0; above the last node it raises (the curve does not know the basin there).
    """

    levels_m: np.ndarray
    volumes_m3: np.ndarray
    source: str = "<level-volume curve>"

    def __post_init__(self) -> None:
        levels = np.asarray(self.levels_m, dtype=np.float64)
        volumes = np.asarray(self.volumes_m3, dtype=np.float64)
        if levels.ndim != 1 or levels.shape != volumes.shape or levels.size < 2:
            raise InputError(
                self.source,
                f"levels_m and volumes_m3 must be 1-D of equal length ≥ 2, got shapes "
                f"{levels.shape} and {volumes.shape}",
                field="levels_m",
            )
        if not (np.isfinite(levels).all() and np.isfinite(volumes).all()):
            raise InputError(self.source, "levels_m and volumes_m3 must be finite",
                             field="levels_m")
        if np.any(np.diff(levels) <= 0.0):
            raise InputError(self.source, "levels_m must be strictly increasing",
                             field="levels_m")
        if np.any(np.diff(volumes) <= 0.0) or volumes[0] < 0.0:
            raise InputError(self.source, "volumes_m3 must be ≥ 0 and strictly increasing",
                             field="volumes_m3")
        object.__setattr__(self, "levels_m", levels)
        object.__setattr__(self, "volumes_m3", volumes)
        object.__setattr__(self, "_lev_list", levels.tolist())
        object.__setattr__(self, "_vol_list", volumes.tolist())

    @property
    def bottom_m(self) -> float:
        """Lowest level of the curve (the pool's bed for a DEM curve), m."""
        return float(self.levels_m[0])

    @property
    def top_m(self) -> float:
        """Highest level the curve knows, m."""
        return float(self.levels_m[-1])

    @property
    def max_volume_m3(self) -> float:
        return float(self.volumes_m3[-1])

    def _check_level(self, level: np.ndarray) -> None:
        if not np.isfinite(level).all():
            raise InputError(self.source, "level must be finite", field="level_m")
        above = level > self.top_m * (1.0 + 1e-12) + 1e-9
        if np.any(above):
            worst = float(np.max(level[above]))
            raise InputError(
                self.source,
                f"level {worst} m is above the curve's top {self.top_m} m; build the curve "
                "to a higher max_level_m",
                field="level_m",
            )

    def volume_at(self, level_m: float | np.ndarray) -> float | np.ndarray:
        """Storage (m³) at ``level_m``: linear between nodes, 0 below the first node (minus
        the first node's volume, which is 0 for a DEM curve), error above the top."""
        level = np.asarray(level_m, dtype=np.float64)
        self._check_level(level)
        vol = np.interp(np.minimum(level, self.top_m), self.levels_m, self.volumes_m3,
                        left=0.0)
        vol = np.where(level < self.bottom_m, 0.0, vol)
        return float(vol) if vol.ndim == 0 else vol

    def level_at(self, volume_m3: float | np.ndarray) -> float | np.ndarray:
        """Level (m) holding ``volume_m3``: the inverse of ``volume_at`` (exact on the
        piecewise-linear curve). Volumes ≤ the first node's give the bottom level."""
        vol = np.asarray(volume_m3, dtype=np.float64)
        if not np.isfinite(vol).all():
            raise InputError(self.source, "volume must be finite", field="volume_m3")
        over = vol > self.max_volume_m3 * (1.0 + 1e-12)
        if np.any(over):
            raise InputError(
                self.source,
                f"volume {float(np.max(vol[over]))} m³ exceeds the curve's largest volume "
                f"{self.max_volume_m3} m³ at level {self.top_m} m",
                field="volume_m3",
            )
        level = np.interp(vol, self.volumes_m3, self.levels_m)
        return float(level) if level.ndim == 0 else level

    def scalar_level_at(self, volume_m3: float) -> float:
        """``level_at`` for one volume within [0, max_volume_m3], without checks (fast path
        for the routing loop). Not ``interp_scalar``: l0 + (V − V0)(l1 − l0)/(V1 − V0)
        rounds differently from np.interp's slope form, and the routed hydrographs keep this
        arithmetic (the slope form moves them by round-off, outflow ~1e-14 relative)."""
        vols = self._vol_list
        k = bisect.bisect_right(vols, volume_m3) - 1
        if k < 0:
            return self._lev_list[0]
        if k >= len(vols) - 1:
            return self._lev_list[-1]
        v0, v1 = vols[k], vols[k + 1]
        l0, l1 = self._lev_list[k], self._lev_list[k + 1]
        return l0 + (volume_m3 - v0) * (l1 - l0) / (v1 - v0)

    def scalar_volume_at(self, level_m: float) -> float:
        """``volume_at`` for one finite level within the curve (≤ ``top_m``), without checks
        (fast path for the routing loop; same arithmetic as ``volume_at``)."""
        if level_m < self._lev_list[0]:
            return 0.0
        return interp_scalar(min(level_m, self._lev_list[-1]), self._lev_list, self._vol_list)

    def area_at(self, level_m: float) -> float:
        """Water-surface area dV/dlevel (m²) of the segment holding ``level_m`` (the
        upper segment at a node; the first segment's below the bottom)."""
        k = int(np.searchsorted(self.levels_m, level_m, side="right")) - 1
        k = min(max(k, 0), self.levels_m.size - 2)
        return float((self.volumes_m3[k + 1] - self.volumes_m3[k])
                     / (self.levels_m[k + 1] - self.levels_m[k]))

    @classmethod
    def from_dem(
        cls,
        elevation_m: np.ndarray,
        transform: Affine,
        pool: np.ndarray | Polygon | MultiPolygon,
        *,
        max_level_m: float,
        step_m: float | None = None,
        source: str = "<dem>",
    ) -> LevelVolumeCurve:
        """Storage of the pool cells: V(L) = A_cell Σ max(L − z_i, 0) over cells in ``pool``.

        ``pool``: a boolean raster mask like ``elevation_m`` or a (Multi)Polygon in the DEM's
        CRS (cells whose centre lies inside). ``step_m=None`` puts a node at every distinct
        bed elevation up to ``max_level_m`` (exact at every level); a step gives nodes every
        ``step_m`` from the bed (exact at the nodes, linear between). Storage is counted over
        the pool cells only: the outline must be the pool at the highest level of interest
        (above the outline's rim the walls are taken as vertical).
        """
        z = np.asarray(elevation_m, dtype=np.float64)
        if z.ndim != 2:
            raise InputError(source, f"elevation_m must be 2-D, got shape {z.shape}",
                             field="elevation_m")
        dx, dy = float(transform.a), float(-transform.e)
        if not (dx > 0 and dy > 0 and transform.b == 0 and transform.d == 0):
            raise InputError(source, "transform must be north-up with positive cell sizes",
                             field="transform")
        if isinstance(pool, (Polygon, MultiPolygon)):
            mask = _rasterize_pool(pool, z.shape, transform, source)
        else:
            mask = np.asarray(pool, dtype=bool)
            if mask.shape != z.shape:
                raise InputError(source, f"pool mask shape {mask.shape} differs from the "
                                 f"DEM's {z.shape}", field="pool")
            if not mask.any():
                raise InputError(source, "pool mask selects no cell", field="pool")
        bed = z[mask]
        if not np.isfinite(bed).all():
            raise InputError(source, f"{int((~np.isfinite(bed)).sum())} pool cells have no "
                             "elevation (NaN)", field="elevation_m")
        if not _finite(max_level_m) or max_level_m <= float(bed.min()):
            raise InputError(source, f"max_level_m {max_level_m} m must be above the pool's "
                             f"lowest bed {float(bed.min())} m", field="max_level_m")
        z0 = float(bed.min())
        rel = np.sort(bed - z0)  # heights above the lowest bed: better conditioned sums
        top = float(max_level_m) - z0
        area = dx * dy
        if step_m is None:
            nodes = np.unique(rel[rel < top])
        else:
            if not _finite(step_m) or step_m <= 0.0:
                raise InputError(source, f"step_m must be positive, got {step_m}",
                                 field="step_m")
            nodes = np.arange(0.0, top, float(step_m))
        nodes = nodes[np.concatenate([[True], np.diff(nodes) > _LEVEL_MERGE_M])]
        nodes = np.append(nodes[nodes < top - _LEVEL_MERGE_M], top)
        # V(L_{k+1}) − V(L_k) = A [n_k ΔL + Σ_{L_k < z < L_{k+1}} (L_{k+1} − z)], n_k the
        # cells with z ≤ L_k: every increment is positive, so the curve is monotone.
        csum = np.concatenate([[0.0], np.cumsum(rel)])
        n_le = np.searchsorted(rel, nodes, side="right")
        j_lt = np.searchsorted(rel, nodes, side="left")
        j0, j1 = n_le[:-1], j_lt[1:]
        between = np.maximum(j1 - j0, 0) * nodes[1:] - (csum[np.maximum(j1, j0)] - csum[j0])
        steps = area * (n_le[:-1] * np.diff(nodes) + between)
        volumes = np.concatenate([[0.0], np.cumsum(steps)])
        levels = nodes + z0
        return cls(levels_m=levels, volumes_m3=volumes, source=source)


_LEVEL_MERGE_M = 1e-9
"""Bed elevations closer than this (m) share one curve node."""


def _rasterize_pool(
    pool: Polygon | MultiPolygon, shape: tuple[int, int], transform: Affine, source: str
) -> np.ndarray:
    rows, cols = shape
    x0, y1 = transform.c, transform.f
    x1, y0 = x0 + cols * transform.a, y1 + rows * transform.e
    if pool.is_empty:
        raise InputError(source, "pool polygon is empty", field="pool")
    px0, py0, px1, py1 = pool.bounds
    tol = 1e-6 * max(abs(transform.a), 1.0)
    if px0 < x0 - tol or px1 > x1 + tol or py0 < y0 - tol or py1 > y1 + tol:
        raise InputError(
            source,
            f"pool polygon bounds ({px0:.1f}, {py0:.1f}, {px1:.1f}, {py1:.1f}) extend outside "
            f"the DEM bounds ({x0:.1f}, {y0:.1f}, {x1:.1f}, {y1:.1f})",
            field="pool",
        )
    mask = rasterio.features.rasterize(
        [(pool, 1)], out_shape=shape, transform=transform, fill=0, dtype="uint8"
    ).astype(bool)
    if not mask.any():
        raise InputError(source, "pool polygon contains no DEM cell centre", field="pool")
    return mask


# ====================================================================== breach parameters
@dataclass(frozen=True)
class BreachGeometry:
    """Final trapezoidal breach: average and bottom width, side slope (H:V), height,
    formation time; from ``froehlich_2008``."""

    mode: BreachMode
    average_width_m: float
    bottom_width_m: float
    side_slope: float
    breach_height_m: float
    formation_time_s: float


FROEHLICH_2008_K0 = {"overtopping": 1.3, "piping": 1.0}
FROEHLICH_2008_SIDE_SLOPE = {"overtopping": 1.0, "piping": 0.7}


def _check_mode(mode: str, source: str = "breach") -> str:
    if mode not in _MODES:
        raise InputError(source, f"unknown failure mode {mode!r}; use one of {_MODES}",
                         field="mode")
    return mode


def froehlich_2008(
    volume_m3: float, breach_height_m: float, mode: BreachMode = "overtopping"
) -> BreachGeometry:
    """Expected final breach of an embankment dam (Froehlich 2008, eqs. 2, 4 and side slopes).

    B_avg = 0.27 k_o V_w^0.32 h_b^0.04 (m), k_o = 1.3 overtopping, 1.0 piping;
    t_f = 63.2 sqrt(V_w / (g h_b²)) (s); side slope z = 1.0 (overtopping) or 0.7 (piping).
    ``volume_m3`` V_w: water above the breach invert at failure; ``breach_height_m`` h_b:
    crest to final invert. Bottom width b = B_avg − z h_b (the trapezoid's mean width is
    b + z h_b), floored at 0.
    """
    _check_mode(mode)
    if not (_finite(volume_m3) and volume_m3 > 0.0):
        raise InputError("froehlich_2008", f"volume_m3 must be positive, got {volume_m3}",
                         field="volume_m3")
    if not (_finite(breach_height_m) and breach_height_m > 0.0):
        raise InputError("froehlich_2008",
                         f"breach_height_m must be positive, got {breach_height_m}",
                         field="breach_height_m")
    v, hb = float(volume_m3), float(breach_height_m)
    b_avg = 0.27 * FROEHLICH_2008_K0[mode] * v**0.32 * hb**0.04
    z = FROEHLICH_2008_SIDE_SLOPE[mode]
    t_f = 63.2 * math.sqrt(v / (G_M_S2 * hb**2))
    return BreachGeometry(
        mode=mode,
        average_width_m=b_avg,
        bottom_width_m=max(b_avg - z * hb, 0.0),
        side_slope=z,
        breach_height_m=hb,
        formation_time_s=t_f,
    )


def peak_outflow_regressions(
    volume_m3: float,
    head_m: float,
    *,
    breach_height_m: float | None = None,
    embankment_width_m: float | None = None,
    mode: BreachMode = "overtopping",
) -> dict[str, float]:
    """Peak breach outflow (m³/s) by the empirical regressions, as an ensemble.

    ``volume_m3`` V_w: water above the breach invert at failure (m³); ``head_m`` h_w: water
    depth above the breach invert (m). SI forms as compiled by Wahl (2004, Table 4) and Wang
    et al. (2018, J. Hydrol. 562, 692–702), checked against the EEDBC tool of Yassin et al.
    (2025):

    - Froehlich (1995): 0.607 V^0.295 h^1.24
    - MacDonald & Langridge-Monopolis (1984), earthfill: 1.154 (V h)^0.412
    - Webby (1996): 0.0443 g^0.5 V^0.365 h^1.40 (some compilations print V^0.367; the two
      differ by < 5 % for V < 10¹⁰ m³)
    - Costa (1985): 0.981 (V h)^0.42
    - Evans (1986): 0.72 V^0.53
    - USBR (1982): 19.1 h^1.85
    - Froehlich (2016), only with ``breach_height_m`` h_b and ``embankment_width_m`` W (the
      embankment's average width): 0.0175 k_M k_H sqrt(g V h h_b² / W), k_M = 1.85
      overtopping / 1.0 piping, k_H = (h_b/6.1)^(1/8) for h_b > 6.1 m else 1.
    """
    for name, value in (("volume_m3", volume_m3), ("head_m", head_m)):
        if not (_finite(value) and value > 0.0):
            raise InputError("peak_outflow_regressions", f"{name} must be positive, got {value}",
                             field=name)
    v, h = float(volume_m3), float(head_m)
    out = {
        "Froehlich (1995)": 0.607 * v**0.295 * h**1.24,
        "MacDonald & Langridge-Monopolis (1984)": 1.154 * (v * h) ** 0.412,
        "Webby (1996)": 0.0443 * math.sqrt(G_M_S2) * v**0.365 * h**1.40,
        "Costa (1985)": 0.981 * (v * h) ** 0.42,
        "Evans (1986)": 0.72 * v**0.53,
        "USBR (1982)": 19.1 * h**1.85,
    }
    if breach_height_m is not None and embankment_width_m is not None:
        _check_mode(mode, "peak_outflow_regressions")
        hb, w = float(breach_height_m), float(embankment_width_m)
        if not (_finite(hb) and hb > 0 and _finite(w) and w > 0):
            raise InputError("peak_outflow_regressions",
                             f"breach_height_m {hb} and embankment_width_m {w} must be positive",
                             field="breach_height_m")
        k_m = 1.85 if mode == "overtopping" else 1.0
        k_h = (hb / 6.1) ** 0.125 if hb > 6.1 else 1.0
        out["Froehlich (2016)"] = 0.0175 * k_m * k_h * math.sqrt(G_M_S2 * v * h * hb**2 / w)
    return out


# ====================================================================== breach spec
@dataclass(frozen=True)
class BreachSpec:
    """A parametric breach as HEC-RAS's "User Entered Data" breach.

    ``final_bottom_width_m``, ``formation_time_s``, ``side_slope`` (H:V) left ``None`` are
    taken from ``froehlich_2008`` for the reservoir's volume above ``final_invert_m`` at the
    initial level. ``growth``: "linear" or "sine" (the fraction developed after a fraction τ
    of the formation time is ½(1 − cos πτ): slow start, fast middle, slow end). Overtopping:
    the breach starts as a point at the crest and deepens/widens to the final trapezoid.
    Piping: an opening of the breach's trapezoidal section centred at ``piping_centre_m``
    (default: midway between the final invert and the crest) grows down to the final invert
    and up toward the crest; orifice flow Q = Cd A sqrt(2 g (h − h_c)), h_c the opening's
    mid-height, until the roof collapses — when the opening's top reaches the crest or the
    reservoir falls below it (then free-surface flow) — and weir flow after.
    ``weir_coefficient`` Cw (SI, m^0.5/s; HEC-RAS default 2.6 US ≈ 1.44 SI),
    ``side_weir_coefficient`` Cs (None: Cw × 2.45/3.1, Fread 1988), ``orifice_cd`` Cd
    (HEC-RAS: below ~0.8 of an engineered orifice, to represent the extra losses).
    """

    mode: BreachMode
    crest_level_m: float
    final_invert_m: float
    final_bottom_width_m: float | None = None
    formation_time_s: float | None = None
    side_slope: float | None = None
    growth: BreachGrowth = "linear"
    start_s: float = 0.0
    piping_centre_m: float | None = None
    weir_coefficient: float = HEC_RAS_WEIR_COEFFICIENT_SI
    orifice_cd: float = 0.6
    side_weir_coefficient: float | None = None

    def validate(self, curve: LevelVolumeCurve | None = None) -> None:
        """Raise InputError naming the field and the values for an impossible breach."""
        src = "breach"
        _check_mode(self.mode, src)
        if self.growth not in _GROWTHS:
            raise InputError(src, f"unknown growth {self.growth!r}; use one of {_GROWTHS}",
                             field="growth")
        for name in ("crest_level_m", "final_invert_m", "start_s", "weir_coefficient",
                     "orifice_cd"):
            if not _finite(getattr(self, name)):
                raise InputError(src, f"{name} must be finite, got {getattr(self, name)}",
                                 field=name)
        if self.final_invert_m >= self.crest_level_m:
            raise InputError(
                src,
                f"final_invert_m {self.final_invert_m} m is not below the crest "
                f"crest_level_m {self.crest_level_m} m",
                field="final_invert_m",
            )
        if curve is not None and self.final_invert_m < curve.bottom_m - 1e-9:
            raise InputError(
                src,
                f"final_invert_m {self.final_invert_m} m is below the reservoir bottom "
                f"{curve.bottom_m} m",
                field="final_invert_m",
            )
        if curve is not None and self.crest_level_m > curve.top_m + 1e-9:
            raise InputError(
                src,
                f"crest_level_m {self.crest_level_m} m is above the level-volume curve's top "
                f"{curve.top_m} m",
                field="crest_level_m",
            )
        optional_positive = {
            "final_bottom_width_m": (self.final_bottom_width_m, 0.0),
            "formation_time_s": (self.formation_time_s, 0.0),
            "side_slope": (self.side_slope, 0.0),
            "side_weir_coefficient": (self.side_weir_coefficient, 0.0),
        }
        for name, (value, low) in optional_positive.items():
            if value is not None and not (_finite(value) and value >= low):
                raise InputError(src, f"{name} must be ≥ {low}, got {value}", field=name)
        if self.weir_coefficient <= 0 or self.orifice_cd <= 0:
            raise InputError(src, "weir_coefficient and orifice_cd must be positive, got "
                             f"{self.weir_coefficient} and {self.orifice_cd}",
                             field="weir_coefficient")
        if self.piping_centre_m is not None:
            if self.mode != "piping":
                raise InputError(src, "piping_centre_m is only used with mode 'piping'",
                                 field="piping_centre_m")
            if not (_finite(self.piping_centre_m)
                    and self.final_invert_m < self.piping_centre_m < self.crest_level_m):
                raise InputError(
                    src,
                    f"piping_centre_m {self.piping_centre_m} m must lie between final_invert_m "
                    f"{self.final_invert_m} m and crest_level_m {self.crest_level_m} m",
                    field="piping_centre_m",
                )


@dataclass(frozen=True)
class ResolvedBreach:
    """A ``BreachSpec`` with every parameter concrete (defaults filled in)."""

    spec: BreachSpec
    bottom_width_m: float
    side_slope: float
    formation_time_s: float
    piping_centre_m: float
    side_weir_coefficient: float
    froehlich: BreachGeometry | None

    def fraction(self, t_s: float) -> float:
        """Developed fraction 0..1 of the breach at ``t_s``."""
        tf = self.formation_time_s
        t0 = self.spec.start_s
        if t_s <= t0:
            return 0.0 if tf > 0.0 else (1.0 if t_s >= t0 else 0.0)
        tau = 1.0 if tf <= 0.0 else min((t_s - t0) / tf, 1.0)
        if self.spec.growth == "sine":
            return 0.5 * (1.0 - math.cos(math.pi * tau))
        return tau

    def geometry(self, t_s: float) -> tuple[float, float, float]:
        """(invert_m, bottom_width_m, top_of_opening_m) at ``t_s``; the top is the crest for
        overtopping (open to the sky) and the pipe roof for piping."""
        f = self.fraction(t_s)
        s = self.spec
        width = f * self.bottom_width_m
        if s.mode == "overtopping":
            invert = s.crest_level_m - f * (s.crest_level_m - s.final_invert_m)
            return invert, width, math.inf
        centre = self.piping_centre_m
        invert = centre - f * (centre - s.final_invert_m)
        top = min(centre + f * (centre - s.final_invert_m), s.crest_level_m)
        return invert, width, top


def resolve_breach(
    spec: BreachSpec, curve: LevelVolumeCurve, initial_level_m: float
) -> ResolvedBreach:
    """Fill the ``None`` parameters of ``spec`` from Froehlich (2008) (V_w above the final
    invert at ``initial_level_m``, h_b = crest − final invert)."""
    spec.validate(curve)
    geo = None
    if spec.final_bottom_width_m is None or spec.formation_time_s is None \
            or spec.side_slope is None:
        v_w = float(curve.volume_at(initial_level_m)) - float(curve.volume_at(spec.final_invert_m))
        if v_w <= 0.0:
            raise InputError(
                "breach",
                f"no water above the breach invert: initial level {initial_level_m} m, "
                f"final_invert_m {spec.final_invert_m} m; give final_bottom_width_m, "
                "formation_time_s and side_slope explicitly",
                field="final_invert_m",
            )
        geo = froehlich_2008(v_w, spec.crest_level_m - spec.final_invert_m, spec.mode)
    z = spec.side_slope if spec.side_slope is not None else geo.side_slope
    if spec.final_bottom_width_m is not None:
        width = spec.final_bottom_width_m
    else:
        width = geo.bottom_width_m
    t_f = spec.formation_time_s if spec.formation_time_s is not None else geo.formation_time_s
    centre = spec.piping_centre_m
    if centre is None:
        centre = 0.5 * (spec.final_invert_m + spec.crest_level_m)
    cs = spec.side_weir_coefficient
    if cs is None:
        cs = FREAD_SIDE_TO_BOTTOM_RATIO * spec.weir_coefficient
    return ResolvedBreach(spec=spec, bottom_width_m=float(width), side_slope=float(z),
                          formation_time_s=float(t_f), piping_centre_m=float(centre),
                          side_weir_coefficient=float(cs), froehlich=geo)


# ====================================================================== breach hydrograph
def weir_outflow_m3_s(
    level_m: float, invert_m: float, bottom_width_m: float, side_slope: float,
    cw: float, cs: float,
) -> float:
    """Broad-crested weir flow through a trapezoid: Q = Cw b H^1.5 + Cs z H^2.5,
    H = level − invert ≥ 0 (Fread 1988; HEC-RAS breach weir)."""
    head = level_m - invert_m
    if head <= 0.0:
        return 0.0
    return cw * bottom_width_m * head**1.5 + cs * side_slope * head**2.5


def orifice_outflow_m3_s(
    level_m: float, invert_m: float, top_m: float, bottom_width_m: float, side_slope: float,
    cd: float,
) -> float:
    """Orifice flow through the pipe opening: Q = Cd A sqrt(2 g (h − h_c)); A the trapezoidal
    section between invert and top (b H_o + z H_o²), h_c its mid-height."""
    h_open = top_m - invert_m
    if h_open <= 0.0:
        return 0.0
    centre = 0.5 * (top_m + invert_m)
    head = level_m - centre
    if head <= 0.0:
        return 0.0
    area = bottom_width_m * h_open + side_slope * h_open**2
    return cd * area * math.sqrt(2.0 * G_M_S2 * head)


@dataclass(frozen=True, eq=False)
class BreachResult:
    """Breach outflow series (one row per integration step) and its bookkeeping.

    ``regime`` per row: 0 before the breach starts, 1 orifice (pipe), 2 weir; the row at
    ``collapse_s`` is the last orifice row. ``hydrograph`` is the
    outflow as a ``Hydrograph``; its exact integral is ``released_m3``, equal to
    ``initial_volume_m3 − final_volume_m3 + inflow_m3`` to round-off (``mass_error_m3``).
    """

    times_s: np.ndarray
    q_m3_s: np.ndarray
    level_m: np.ndarray
    volume_m3: np.ndarray
    width_m: np.ndarray
    invert_m: np.ndarray
    regime: np.ndarray
    inflow_m3_s: np.ndarray
    breach: ResolvedBreach
    curve: LevelVolumeCurve = field(repr=False)
    collapse_s: float | None
    inflow_m3: float

    @property
    def hydrograph(self) -> Hydrograph:
        return Hydrograph(times_s=self.times_s.copy(), q_m3_s=self.q_m3_s.copy())

    @property
    def peak_q_m3_s(self) -> float:
        return float(np.max(self.q_m3_s))

    @property
    def peak_t_s(self) -> float:
        return float(self.times_s[int(np.argmax(self.q_m3_s))])

    @property
    def released_m3(self) -> float:
        """Exact integral of the piecewise-linear outflow series (m³)."""
        return float(np.sum(0.5 * (self.q_m3_s[1:] + self.q_m3_s[:-1]) * np.diff(self.times_s)))

    @property
    def initial_volume_m3(self) -> float:
        return float(self.volume_m3[0])

    @property
    def final_volume_m3(self) -> float:
        return float(self.volume_m3[-1])

    @property
    def mass_error_m3(self) -> float:
        """released − (initial − final storage + inflow); ~0 (round-off)."""
        return self.released_m3 - (self.initial_volume_m3 - self.final_volume_m3 + self.inflow_m3)


_MAX_STEP_DRAW_FRAC = 0.05
"""A step is halved when it releases more than this fraction of the storage above the
breach invert (≈ Δt·dQ/dS ≤ 0.1: the trapezoidal rule stays accurate and never rings)."""
_FORMATION_STEPS = 50
"""At least this many steps over the breach formation time."""
_MIN_DT_S = 1e-3


def breach_hydrograph(
    curve: LevelVolumeCurve,
    spec: BreachSpec,
    initial_level_m: float,
    *,
    dt_s: float = 10.0,
    duration_s: float | None = None,
    inflow_m3_s: float | Hydrograph = 0.0,
) -> BreachResult:
    """Outflow hydrograph of a growing breach with level-pool routing (module docstring).

    Runs from ``spec.start_s`` for ``duration_s`` (None: until the breach is complete and the
    outflow is back within 0.1 % of its peak of the inflow, at most 30 days). ``dt_s`` is the
    largest step; there are at least 50 steps over the formation time, and a step is cut
    when it would release more than 5 % of the water above the breach invert.
    ``inflow_m3_s``: constant or a ``Hydrograph`` of reservoir inflow (m³/s).
    Flow over the undamaged part of the crest and tailwater submergence are not modelled.
    """
    if not _finite(initial_level_m):
        raise InputError("breach", f"initial_level_m must be finite, got {initial_level_m}",
                         field="initial_level_m")
    if initial_level_m > curve.top_m:
        raise InputError(
            curve.source,
            f"initial level {initial_level_m} m is above the curve's top {curve.top_m} m",
            field="level_m",
        )
    if not (_finite(dt_s) and dt_s > 0.0):
        raise InputError("breach", f"dt_s must be positive, got {dt_s}", field="dt_s")
    if duration_s is not None and not (_finite(duration_s) and duration_s > 0.0):
        raise InputError("breach", f"duration_s must be positive, got {duration_s}",
                         field="duration_s")
    rb = resolve_breach(spec, curve, initial_level_m)
    inflow_at, inflow_volume = _inflow_functions(inflow_m3_s)
    return _route(curve, rb, float(initial_level_m), float(dt_s), duration_s, inflow_at,
                  inflow_volume)


def _inflow_functions(inflow_m3_s: float | Hydrograph):
    """(rate at t, exact volume over [t0, t1]) of a constant or Hydrograph inflow."""
    if isinstance(inflow_m3_s, Hydrograph):
        hyd = inflow_m3_s
        return (lambda t: float(hyd.at(t))), (lambda t0, t1: float(hyd.volume_m3(t0, t1)))
    q_in = float(inflow_m3_s)
    if not (math.isfinite(q_in) and q_in >= 0.0):
        raise InputError("breach", f"inflow_m3_s must be ≥ 0, got {inflow_m3_s}",
                         field="inflow_m3_s")
    return (lambda t: q_in), (lambda t0, t1: q_in * (t1 - t0))


def _outflow(rb: ResolvedBreach, level: float, t: float, collapsed: bool) -> tuple[float, int]:
    """(Q, regime) through the breach at ``t`` for reservoir ``level`` (regime 0/1/2)."""
    if t < rb.spec.start_s:
        return 0.0, 0
    return _outflow_through(rb, level, rb.geometry(t), collapsed)


def _outflow_through(
    rb: ResolvedBreach, level: float, geometry: tuple[float, float, float], collapsed: bool,
) -> tuple[float, int]:
    """``_outflow`` once the breach has started, its ``geometry`` (``rb.geometry(t)``) given."""
    s = rb.spec
    invert, width, top = geometry
    if collapsed:
        q = weir_outflow_m3_s(level, invert, width, rb.side_slope, s.weir_coefficient,
                              rb.side_weir_coefficient)
        return q, 2
    return orifice_outflow_m3_s(level, invert, top, width, rb.side_slope, s.orifice_cd), 1


def _solve_storage(
    curve: LevelVolumeCurve, rb: ResolvedBreach, rhs: float, half_dt: float, t1: float,
    collapsed: bool,
) -> float:
    """S with S + half_dt·Q(level(S), t1) = rhs; the left side increases strictly with S, so
    the root is bracketed by [0, rhs] (Illinois regula falsi with a bisection safeguard)."""

    level_of = curve.scalar_level_at
    geometry = rb.geometry(t1)  # t1 is fixed (after the breach start): so is the breach

    def g(storage: float) -> float:
        q = _outflow_through(rb, level_of(storage), geometry, collapsed)[0]
        return storage + half_dt * q - rhs

    lo, hi = 0.0, rhs
    g_lo, g_hi = g(lo), g(hi)
    if g_hi <= 0.0:
        return hi
    if g_lo >= 0.0:
        return lo
    tol = 1e-14 * max(rhs, 1.0)
    for _ in range(300):
        mid = lo - g_lo * (hi - lo) / (g_hi - g_lo)
        if not (lo < mid < hi):
            mid = 0.5 * (lo + hi)
        g_mid = g(mid)
        if g_mid == 0.0:
            return mid
        if g_mid > 0.0:
            hi, g_hi = mid, g_mid
            g_lo *= 0.5
        else:
            lo, g_lo = mid, g_mid
            g_hi *= 0.5
        if hi - lo <= tol:
            break
    return 0.5 * (lo + hi)


def _route(curve, rb, level0, dt_max, duration_s, inflow_at, inflow_volume) -> BreachResult:
    """Level-pool routing by the trapezoidal rule (module docstring)."""
    s = rb.spec
    t_form_end = s.start_s + rb.formation_time_s
    t_cap = s.start_s + (duration_s if duration_s is not None
                         else rb.formation_time_s + 30 * 86400.0)
    dt_form = max(rb.formation_time_s / _FORMATION_STEPS, _MIN_DT_S)
    collapsed = s.mode == "overtopping"
    collapse_s: float | None = None
    rows: list[tuple[float, float, float, float, int, float]] = []

    t = float(s.start_s)
    storage = float(curve.volume_at(level0))  # (checks level0)
    level = level0
    q, regime = _outflow(rb, level, t, collapsed)
    rows.append((t, q, level, storage, regime, inflow_at(t)))
    peak = q
    inflow_total = 0.0
    dt_try = dt_max
    while t < t_cap - 1e-9 * max(1.0, abs(t_cap)):
        dt = min(dt_try, dt_max, t_cap - t)
        if t < t_form_end:
            dt = min(dt, dt_form, t_form_end - t)
        t1 = t + dt
        i_vol = inflow_volume(t, t1)
        rhs = storage - 0.5 * dt * q + i_vol
        if rhs < 0.0 and dt > _MIN_DT_S:  # would over-drain: shorter step
            dt_try = 0.5 * dt
            continue
        rhs = max(rhs, 0.0)
        if rhs > curve.max_volume_m3:
            raise InputError(
                curve.source,
                f"the reservoir overfills its level-volume curve (top {curve.top_m} m) at "
                f"t = {t1} s; reduce inflow_m3_s or build the curve to a higher max_level_m",
                field="inflow_m3_s",
            )
        s1 = _solve_storage(curve, rb, rhs, 0.5 * dt, t1, collapsed)
        level1 = curve.scalar_level_at(s1)
        q1, regime1 = _outflow(rb, level1, t1, collapsed)
        invert1 = min(max(rb.geometry(t1)[0], curve.bottom_m), curve.top_m)
        above = storage - curve.scalar_volume_at(invert1)
        released = 0.5 * dt * (q + q1)
        if released > _MAX_STEP_DRAW_FRAC * max(above, 0.0) and dt > _MIN_DT_S \
                and released > 1e-12 * max(storage, 1.0):
            dt_try = max(0.5 * dt, _MIN_DT_S)
            continue
        t, storage, level, q = t1, s1, level1, q1
        inflow_total += i_vol
        if not collapsed:
            _, _, top = rb.geometry(t)
            if top >= s.crest_level_m or level < top:
                # The roof collapses: weir flow from this time on. The step that ends here
                # used the orifice flow, so the series stays piecewise linear and exact in
                # mass; the switch shows over the next step.
                collapsed = True
                collapse_s = t
        rows.append((t, q, level, storage, regime1, inflow_at(t)))
        peak = max(peak, q)
        dt_try = min(2.0 * dt, dt_max)
        if duration_s is None and t >= t_form_end \
                and abs(q - inflow_at(t)) <= 1e-3 * peak:
            break
    arr = np.asarray(rows, dtype=np.float64)
    times = arr[:, 0]
    geo = np.array([rb.geometry(tt)[:2] for tt in times])
    return BreachResult(
        times_s=times, q_m3_s=arr[:, 1], level_m=arr[:, 2], volume_m3=arr[:, 3],
        width_m=geo[:, 1], invert_m=geo[:, 0], regime=arr[:, 4].astype(np.int8),
        inflow_m3_s=arr[:, 5], breach=rb, curve=curve, collapse_s=collapse_s,
        inflow_m3=inflow_total,
    )


# ====================================================================== the flood engine
def _flood_hydrograph(result: BreachResult) -> Hydrograph:
    """The breach outflow as a flood inflow: zero before the first time (a point one second
    earlier is added when the series starts above zero) and closed to zero one step after
    the last time (``Hydrograph`` would otherwise hold the last value for ever)."""
    t = result.times_s
    q = result.q_m3_s
    if q[0] > 0.0:
        t = np.concatenate([[t[0] - 1.0], t])
        q = np.concatenate([[0.0], q])
    if q[-1] > 0.0:
        step = float(t[-1] - t[-2]) if t.size > 1 else 1.0
        t = np.append(t, t[-1] + max(step, 1.0))
        q = np.append(q, 0.0)
    return Hydrograph(times_s=t, q_m3_s=q)


def _first_outflow_s(result: BreachResult) -> float:
    """The time after which the outflow volume since ``times_s[0]`` is > 0 (``inf``: never):
    q is piecewise linear and ≥ 0, so the volume turns positive just after the node before
    the first q > 0 (just after ``times_s[0]`` when q starts above zero)."""
    wet = np.flatnonzero(result.q_m3_s > 0.0)
    if wet.size == 0:
        return math.inf
    return float(result.times_s[max(int(wet[0]) - 1, 0)])


@register_engine
class DamBreakFlood(LocalInertialFlood):
    """A ``LocalInertialFlood`` fed by a breach outflow hydrograph through a ``LineInflow``
    along the downstream toe of the dam (module docstring).

    ``breach``: the ``BreachResult`` (``breach_hydrograph``); ``toe_line``: ((x0, y0), (x1,
    y1)) in the DEM's CRS where the outflow enters the grid, spread evenly over the cells the
    segment crosses; ``regressions``: the empirical peak-outflow ensemble for the same
    reservoir (``peak_outflow_regressions``), kept for reports. Other arguments as
    ``LocalInertialFlood``. Build it from a twin with ``from_twin``.
    """

    kind = "dam_break"
    info = {**LocalInertialFlood.info,
            "reservoir_level_m": QuantityInfo("m", "reservoir water level behind the dam "
                                                   "(the same everywhere; for level gauges)",
                                              "max")}

    def __init__(
        self,
        elevation_m: np.ndarray,
        transform: Affine,
        *,
        breach: BreachResult | None = None,
        toe_line: tuple[tuple[float, float], tuple[float, float]] | None = None,
        regressions: dict[str, float] | None = None,
        inflows: Sequence = (),
        **kwargs,
    ) -> None:
        source = str(kwargs.get("source", "<dam break>"))
        extra: tuple = ()
        if breach is not None:
            if toe_line is None:
                raise InputError(source, "a toe line is needed to put the breach outflow on "
                                 "the grid", field="toe_line")
            (x0, y0), (x1, y1) = ((float(a), float(b)) for a, b in toe_line)
            extra = (LineInflow(x0, y0, x1, y1, _flood_hydrograph(breach), name="dam breach"),)
        super().__init__(elevation_m, transform, inflows=(*tuple(inflows), *extra), **kwargs)
        self.breach = breach
        self.toe_line = toe_line
        self.regressions = dict(regressions or {})
        self._outflow_from_s = math.inf if breach is None else _first_outflow_s(breach)

    def reservoir_level_m(self) -> float:
        """The reservoir level (m) at ``t_s`` from the breach hydrograph (initial level before
        the breach starts; last level after the series ends)."""
        if self.breach is None:
            return math.nan
        return float(np.interp(self.t_s, self.breach.times_s, self.breach.level_m))

    def is_active(self) -> bool:
        """Water has left the reservoir (the breach has started): the outflow volume since
        the hydrograph's start is > 0 (``_first_outflow_s``, found at construction)."""
        return self.t_s > self._outflow_from_s

    def sample(self, quantity: str, xyz_m: np.ndarray) -> np.ndarray:
        if quantity == "reservoir_level_m":
            pts = as_points(xyz_m)
            level = self.reservoir_level_m()
            return np.full(len(pts), level if math.isfinite(level) else 0.0)
        return super().sample(quantity, xyz_m)

    def field(self, quantity: str, *, z_m: float = 1.5, bounds=None,
              resolution_m: float = 5.0) -> FieldGrid:
        if quantity == "reservoir_level_m":  # the same everywhere: no need to sample
            xs, ys = grid_axes(self.default_bounds() if bounds is None else bounds,
                               resolution_m)
            level = self.reservoir_level_m()
            return FieldGrid(xs, ys,
                             np.full((ys.size, xs.size), level if math.isfinite(level) else 0.0),
                             quantity, "m", self.t_s, float(resolution_m), float(z_m))
        return super().field(quantity, z_m=z_m, bounds=bounds, resolution_m=resolution_m)

    @classmethod
    def from_twin(
        cls,
        twin,
        *,
        dam_id: str = "R-dam",
        pool_id: str = "R-pool",
        breach: BreachSpec | None = None,
        mode: BreachMode = "overtopping",
        growth: BreachGrowth = "linear",
        start_s: float = 0.0,
        initial_level_m: float | None = None,
        inflow_m3_s: float | Hydrograph = 0.0,
        duration_s: float | None = None,
        dt_s: float = 10.0,
        toe_offset_m: float | None = None,
        final_bottom_width_m: float | None = None,
        formation_time_s: float | None = None,
        **kwargs,
    ) -> DamBreakFlood:
        """Dam-break flood of a twin's reservoir.

        ``dam_id``/``pool_id``: rows of ``twin.reservoirs`` (the dam line with
        ``crest_level_m``, the pool polygon with ``normal_level_m``). ``breach=None``: a
        ``mode`` breach from the crest down to the higher of the pool's bed and the ground
        at the downstream toe, with Froehlich (2008) width, side slope and formation time
        (``final_bottom_width_m`` / ``formation_time_s`` given: those instead), growing
        ``growth`` from ``start_s``. ``initial_level_m`` defaults to the pool's
        normal level and may not exceed the crest (flow over the undamaged crest is not
        modelled). The level–volume curve is built from the DEM over the pool polygon up to
        the crest. The breach is placed where the ground at the downstream toe is lowest;
        the toe (``toe_offset_m`` from the dam line; default: where the downstream face,
        having dropped 1 m below the crest, flattens below 0.1 m/m, plus one cell) carries
        the outflow over the breach's final top width. Other keyword arguments go to
        ``LocalInertialFlood.from_twin`` (buildings, drains, boundaries, ...).
        """
        src = f"twin {getattr(twin, 'name', '?')}"
        layer = getattr(twin, "reservoirs", None)
        if layer is None or len(layer) == 0:
            raise InputError(src, "the twin has no reservoirs layer", field="reservoirs")
        rows = layer.set_index("id")
        for name, rid in (("dam_id", dam_id), ("pool_id", pool_id)):
            if rid not in rows.index:
                raise InputError(src, f"{name} {rid!r} is not in reservoirs (ids: "
                                 f"{', '.join(map(str, rows.index))})", field=name)
        dam = rows.geometry[dam_id]
        pool = rows.geometry[pool_id]
        if not isinstance(dam, LineString) or dam.length <= 0.0:
            raise InputError(src, f"reservoir {dam_id!r} must be a dam line", field="dam_id")
        crest = float(rows["crest_level_m"][dam_id])
        if initial_level_m is None:
            initial_level_m = float(rows["normal_level_m"][pool_id])
        terrain = twin.terrain
        curve = LevelVolumeCurve.from_dem(terrain.elevation_m, terrain.transform, pool,
                                          max_level_m=crest, source=f"{src} reservoir {pool_id}")
        site = _breach_site(terrain, dam, pool, crest, toe_offset_m, src)
        if breach is None:
            breach = BreachSpec(mode, crest_level_m=crest,
                                final_invert_m=max(curve.bottom_m, site["foundation_m"]),
                                final_bottom_width_m=final_bottom_width_m,
                                formation_time_s=formation_time_s,
                                growth=growth, start_s=float(start_s))
        result = breach_hydrograph(curve, breach, float(initial_level_m), dt_s=dt_s,
                                   duration_s=duration_s, inflow_m3_s=inflow_m3_s)
        invert = breach.final_invert_m
        head = float(initial_level_m) - invert
        volume = float(curve.volume_at(initial_level_m)) - float(curve.volume_at(invert))
        regressions = peak_outflow_regressions(volume, head) if head > 0 and volume > 0 else {}
        rb = result.breach
        top_width = rb.bottom_width_m + 2.0 * rb.side_slope * (breach.crest_level_m - invert)
        toe_line = _toe_segment(site, max(top_width, 2.0 * terrain.cell_size_m), dam)
        kwargs.setdefault("source", f"{src} dam break {dam_id}")
        flood = super().from_twin(twin, breach=result, toe_line=toe_line,
                                  regressions=regressions, **kwargs)
        flood.curve = curve
        flood.breach_site = site
        return flood

    @classmethod
    def example(cls) -> DamBreakFlood:
        """A small, active instance: a 2 ha box reservoir 5 m deep breached in 60 s onto a
        gently sloping 150 × 100 m plain (5 m cells), 90 s after the breach starts."""
        nr, nc, dx = 20, 30, 5.0
        transform = Affine(dx, 0.0, 0.0, 0.0, -dx, nr * dx)
        z = np.tile(10.0 - 0.01 * dx * np.arange(nr)[:, None], (1, nc))
        curve = LevelVolumeCurve(np.array([10.0, 17.0]), np.array([0.0, 2.0e4 * 7.0]))
        spec = BreachSpec("overtopping", crest_level_m=16.0, final_invert_m=10.0,
                          final_bottom_width_m=8.0, formation_time_s=60.0, side_slope=1.0)
        result = breach_hydrograph(curve, spec, 15.0, dt_s=5.0, duration_s=900.0)
        flood = cls(z, transform, breach=result, toe_line=((55.0, 97.5), (95.0, 97.5)),
                    regressions=peak_outflow_regressions(1.0e5, 5.0), boundaries="free",
                    source="example")
        flood.advance_to(90.0)
        return flood


_TOE_SLOPE = 0.1
"""The downstream face ends (the toe) where the ground along the normal, having dropped at
least 1 m below the crest, flattens to a slope below this (m/m)."""


def _breach_site(terrain, dam: LineString, pool, crest: float, toe_offset_m, src: str) -> dict:
    """Where to breach: the station on the dam line whose downstream toe is lowest, the
    downstream unit normal, the toe offset and the foundation (ground at the toe)."""
    dx = terrain.cell_size_m
    (xa, ya), (xb, yb) = dam.coords[0], dam.coords[-1]
    tx, ty = (xb - xa) / dam.length, (yb - ya) / dam.length
    nx, ny = -ty, tx
    mid = dam.interpolate(0.5, normalized=True)
    cx, cy = pool.centroid.x - mid.x, pool.centroid.y - mid.y
    if nx * cx + ny * cy > 0.0:  # the normal must point away from the pool
        nx, ny = -nx, -ny
    if toe_offset_m is not None and not (_finite(toe_offset_m) and toe_offset_m >= 0.0):
        raise InputError(src, f"toe_offset_m must be ≥ 0, got {toe_offset_m}",
                         field="toe_offset_m")
    step = 0.5 * dx
    search = np.arange(0.0, 40.0 * dx + step, step)
    stations = np.linspace(0.0, dam.length, max(int(dam.length / dx) + 1, 2))
    best = None
    for s in stations:
        p = dam.interpolate(float(s))
        xs, ys = p.x + search * nx, p.y + search * ny
        inside = terrain.contains(xs, ys)
        n_in = int(np.argmin(inside)) if not inside.all() else inside.size
        if n_in < 3:
            continue
        zs = terrain.elevation_at(xs[:n_in], ys[:n_in])
        if toe_offset_m is None:
            slope = -np.gradient(zs, step)
            flat = (zs < crest - 1.0) & (slope < _TOE_SLOPE)
            k = int(np.argmax(flat)) if flat.any() else n_in - 1
            toe = float(search[k]) + dx
        else:
            toe = float(toe_offset_m)
        foundation = float(terrain.elevation_at(p.x + toe * nx, p.y + toe * ny))
        if best is None or foundation < best[0]:
            best = (foundation, float(s), toe)
    if best is None:
        raise InputError(src, "the ground downstream of the dam line lies outside the DEM",
                         field="dam_id")
    foundation, station, toe = best
    p = dam.interpolate(station)
    return {"station_m": station, "x_m": p.x, "y_m": p.y, "normal": (nx, ny),
            "tangent": (tx, ty), "toe_offset_m": toe, "foundation_m": foundation}


def _toe_segment(site: dict, width_m: float, dam: LineString):
    """The toe segment: ``width_m`` along the dam, centred on the breach station (kept on the
    dam's extent), ``toe_offset_m`` downstream."""
    half = 0.5 * min(width_m, dam.length)
    s0 = min(max(site["station_m"] - half, 0.0), dam.length - 2 * half)
    nx, ny = site["normal"]
    off = site["toe_offset_m"]
    a = dam.interpolate(s0)
    b = dam.interpolate(s0 + 2 * half)
    return ((a.x + off * nx, a.y + off * ny), (b.x + off * nx, b.y + off * ny))
