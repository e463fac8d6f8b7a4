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

from physics import puffsum
from physics.base import (
    Bounds,
    HazardEngine,
    QuantityInfo,
    as_points,
    register_engine,
)
from physics.dispersion import (
    briggs_coefficients,
    briggs_sigmas_from,
    check_stability,
    check_terrain,
)
from physics.forcing import ReleaseSchedule, WindSeries
from physics.gas import (
    CH4_LEL_VOL_FRAC,
    STANDARD_PRESSURE_PA,
    STANDARD_TEMPERATURE_K,
    kg_m3_to_ppm,
    ppm_to_lel_pct,
)

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

    @classmethod
    def empty(cls) -> _Puffs:
        e = np.empty(0)
        return cls(e, e, e, e, e, e, e)

    def __len__(self) -> int:
        return int(self.x_m.size)


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
        if backend is not None and backend not in puffsum.BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; allowed: {', '.join(puffsum.BACKENDS)}")

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

    # ------------------------------------------------------------------ queries
    def forecast_copy(self) -> GaussianPuffPlume:
        """A copy whose future wind is the wind now, held (persistence forecast): the
        platform knows the wind observed at ``t_s``, not the scenario's later shifts. The
        release keeps its schedule (the source term is taken as known)."""
        twin = copy.deepcopy(self)
        u, v = self.wind.velocity_at(self.t_s)
        speed = self.wind.speed_at(self.t_s)
        if math.hypot(u, v) > 0.0:
            from_deg = math.degrees(math.atan2(-u, -v)) % 360.0
        else:  # calm: keep the last given direction
            from_deg = float(np.interp(self.t_s, self.wind.times_s, self.wind.from_deg))
        twin.wind = WindSeries.constant(speed, from_deg)
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
        if quantity == "ch4_kg_m3":
            return conc_kg_m3
        ppm = np.asarray(kg_m3_to_ppm(conc_kg_m3, self.temperature_k, self.pressure_pa))
        if quantity == "ch4_ppm":
            return ppm
        return np.asarray(ppm_to_lel_pct(ppm, self.lel_vol_frac))

    def sample(self, quantity: str, xyz_m: np.ndarray) -> np.ndarray:
        """``quantity`` at points ``xyz_m`` (shape (n, 3), z above ground) as float64 (n,)."""
        self.check_quantity(quantity)
        return self._convert(quantity, self.concentration_kg_m3(xyz_m))

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
