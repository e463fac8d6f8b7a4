"""Validation of the Gaussian puff plume (engine ``gas_plume``) against analytic solutions.

Cases:
- steady puff train vs the steady Gaussian plume with ground reflection (PHYSICS.md), rural
  and urban class D, u = 5 m/s: max relative centreline error over 100–1000 m, and the
  Chang & Hanna (2004) statistics FB, NMSE, FAC2 over a receptor grid (x 100–1000 m,
  |y| ≤ 2σy, z = 1.5 m) with their "good model" criteria;
- crosswind mass flux u ∫∫ C dy dz at 200 m and 500 m vs the release rate (rural D);
- a single puff's concentration integrated over a 3-D grid (z ≥ 0) vs its mass;
- puff merging (on by default, so every case above runs with it): merged vs unmerged field
  after a 1-hour release (urban D with a wind shift, urban E veering, urban F with calms),
  max relative difference where C > 1 % of the field maximum and where C > 1 % of the
  local crosswind maximum (20 m rings about the source; C > 1e-5 of the field maximum), and
  the live puff count merged / unmerged.

    python benchmarks/validation/plume_validation.py
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from citytwin.physics.base import grid_axes, grid_points
from citytwin.physics.dispersion import briggs_sigmas
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.plume import GaussianPuffPlume
from citytwin.physics.stats import fac2, fractional_bias, nmse

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from run_all import row, to_markdown  # noqa: E402

ENGINE = "gas_plume"
Q_KG_S = 0.1
U_M_S = 5.0
H_M = 1.0
Z_M = 1.5


def _plume(terrain: str, release: ReleaseSchedule) -> GaussianPuffPlume:
    return GaussianPuffPlume(
        source_xy_m=(0.0, 0.0),
        source_height_m=H_M,
        release=release,
        wind=WindSeries.constant(U_M_S, 270.0),
        stability="D",
        terrain=terrain,
        merge=True,
    )


def _sigmas(x: np.ndarray, terrain: str, sigma0: float) -> tuple[np.ndarray, np.ndarray]:
    sy, sz = briggs_sigmas(x, "D", terrain)
    return np.sqrt(sigma0**2 + sy**2), np.sqrt(sigma0**2 + sz**2)


def steady_plume_kg_m3(x, y, z, terrain: str, sigma0: float) -> np.ndarray:
    """C = Q/(2π u σy σz) exp(−y²/2σy²) [exp(−(z−H)²/2σz²) + exp(−(z+H)²/2σz²)]."""
    sy, sz = _sigmas(np.asarray(x, dtype=float), terrain, sigma0)
    vert = np.exp(-((z - H_M) ** 2) / (2 * sz**2)) + np.exp(-((z + H_M) ** 2) / (2 * sz**2))
    return Q_KG_S / (2 * math.pi * U_M_S * sy * sz) * np.exp(-(y**2) / (2 * sy**2)) * vert


def steady_train_cases(terrain: str) -> list[dict]:
    plume = _plume(terrain, ReleaseSchedule.constant(0.0, math.inf, Q_KG_S))
    plume.advance_to(600.0)  # front at 3 km: steady out to 1 km
    case = f"steady train vs Gaussian plume, {terrain} D, merging on"
    xs = np.arange(100.0, 1001.0, 25.0)
    centre = np.column_stack([xs, np.zeros_like(xs), np.full_like(xs, Z_M)])
    puff = plume.sample("ch4_kg_m3", centre)
    ref = steady_plume_kg_m3(xs, 0.0, Z_M, terrain, plume.initial_sigma_m)
    max_err = float(np.max(np.abs(puff / ref - 1.0)))

    gx = np.arange(100.0, 1001.0, 100.0)
    sy, _ = _sigmas(gx, terrain, plume.initial_sigma_m)
    frac = np.linspace(-2.0, 2.0, 9)
    X = np.repeat(gx, frac.size)
    Y = (sy[:, None] * frac[None, :]).ravel()
    receptors = np.column_stack([X, Y, np.full(X.size, Z_M)])
    p = plume.sample("ch4_kg_m3", receptors)
    o = steady_plume_kg_m3(X, Y, Z_M, terrain, plume.initial_sigma_m)
    fb, nm, f2 = fractional_bias(o, p), nmse(o, p), fac2(o, p)
    return [
        row(ENGINE, case, "max rel. error, centreline 100–1000 m", max_err, "≤ 0.05",
            max_err <= 0.05),
        row(ENGINE, case, "FB (90 receptors)", fb, "abs(FB) ≤ 0.3", abs(fb) <= 0.3),
        row(ENGINE, case, "NMSE (90 receptors)", nm, "≤ 1.5", nm <= 1.5),
        row(ENGINE, case, "FAC2 (90 receptors)", f2, "≥ 0.5", f2 >= 0.5),
    ]


def crosswind_flux_cases() -> list[dict]:
    plume = _plume("rural", ReleaseSchedule.constant(0.0, math.inf, Q_KG_S))
    plume.advance_to(600.0)
    rows = []
    for x in (200.0, 500.0):
        sy, sz = _sigmas(np.array(x), "rural", plume.initial_sigma_m)
        ys = np.linspace(-6 * sy, 6 * sy, 241)
        zs = np.linspace(0.0, 8 * sz, 161)
        Y, Z = np.meshgrid(ys, zs, indexing="ij")
        pts = np.column_stack([np.full(Y.size, x), Y.ravel(), Z.ravel()])
        conc = plume.sample("ch4_kg_m3", pts).reshape(Y.shape)
        flux = U_M_S * np.trapezoid(np.trapezoid(conc, zs, axis=1), ys)
        err = abs(flux / Q_KG_S - 1.0)
        rows.append(
            row(
                ENGINE,
                f"crosswind mass flux at {x:.0f} m, rural D",
                "rel. error of u∫∫C dy dz vs Q",
                err,
                "≤ 0.02",
                err <= 0.02,
            )
        )
    return rows


def single_puff_case() -> list[dict]:
    plume = _plume("urban", ReleaseSchedule.constant(0.0, 1.0, 1.0))  # one 1 kg puff
    plume.advance_to(40.5)
    pf = plume.puffs()
    sh, sz, cx = pf["sigma_h_m"][0], pf["sigma_z_m"][0], pf["x_m"][0]
    n, nz = 81, 60
    dx = 10 * sh / n
    xs = cx - 5 * sh + (np.arange(n) + 0.5) * dx
    ys = -5 * sh + (np.arange(n) + 0.5) * dx
    dz = (H_M + 6 * sz) / nz
    zs = (np.arange(nz) + 0.5) * dz
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")
    conc = plume.sample("ch4_kg_m3", np.column_stack([X.ravel(), Y.ravel(), Z.ravel()]))
    err = abs(conc.sum() * dx * dx * dz / 1.0 - 1.0)
    return [
        row(
            ENGINE,
            "single puff, 3-D integral over z ≥ 0",
            "rel. error of ∫C dV vs M",
            err,
            "≤ 0.01",
            err <= 0.01,
        )
    ]


MERGE_CASES: dict[str, tuple[str, float, WindSeries]] = {
    "urban D, 2.5 m/s, shift 270° → 200° at 30 min": (
        "D",
        1.0,
        WindSeries(np.array([0.0, 1800.0, 1900.0]), np.full(3, 2.5), np.array([270, 270, 200.0])),
    ),
    "urban E, 1.5 → 1.2 m/s veering 270° → 180°": (
        "E",
        0.5,
        WindSeries(
            np.array([0.0, 1500.0, 2400.0, 3600.0]),
            np.array([1.5, 1.5, 1.2, 1.2]),
            np.array([270.0, 270.0, 190.0, 180.0]),
        ),
    ),
    "urban F, 2 m/s with two 20-min calms": (
        "F",
        1.0,
        WindSeries(
            np.array([0.0, 1200.0, 1260.0, 2400.0, 2460.0, 3600.0]),
            np.array([2.0, 2.0, 0.0, 0.0, 2.0, 2.0]),
            np.array([270.0, 270.0, 270.0, 250.0, 250.0, 200.0]),
        ),
    ),
}


def merge_cases() -> list[dict]:
    """Merged vs unmerged puffs after a 1-hour 0.1 kg/s release (drop rules off, so both carry
    the same mass); field at z = 1.5 m on a 10 m grid over the whole cloud."""
    rows = []
    for label, (stability, height, wind) in MERGE_CASES.items():
        plumes = {}
        for merge in (True, False):
            plume = GaussianPuffPlume(
                source_xy_m=(0.0, 0.0),
                source_height_m=height,
                release=ReleaseSchedule.constant(0.0, math.inf, 0.1),
                wind=wind,
                stability=stability,
                terrain="urban",
                min_conc_kg_m3=0.0,
                max_range_m=1e6,
                merge=merge,
            )
            plume.advance_to(3600.0)
            plumes[merge] = plume
        xs, ys = grid_axes(plumes[False].default_bounds(), 10.0)
        pts = grid_points(xs, ys, Z_M)
        ref = plumes[False].sample("ch4_kg_m3", pts)
        got = plumes[True].sample("ch4_kg_m3", pts)
        rel = np.abs(got - ref) / np.where(ref > 0.0, ref, 1.0)
        near_peak = float(rel[ref > 0.01 * ref.max()].max())
        ring = (np.hypot(pts[:, 0], pts[:, 1]) // 20.0).astype(int)
        ring_max = np.zeros(ring.max() + 1)
        np.maximum.at(ring_max, ring, ref)
        local = float(rel[(ref > 0.01 * ring_max[ring]) & (ref > 1e-5 * ref.max())].max())
        ratio = plumes[True].puff_count / plumes[False].puff_count
        case = f"merged vs unmerged puffs at 1 h, {label}"
        rows += [
            row(
                ENGINE,
                case, "max abs(ΔC)/C where C > 1 % of max", near_peak, "≤ 0.005", near_peak <= 0.005
            ),
            row(
                ENGINE,
                case,
                "max abs(ΔC)/C where C > 1 % of crosswind max",
                local,
                "≤ 0.025",
                local <= 0.025,
            ),
            row(
                ENGINE,
                case,
                f"live puffs merged/unmerged ({plumes[True].puff_count}/"
                f"{plumes[False].puff_count})",
                ratio,
                "≤ 0.1",
                ratio <= 0.1,
            ),
        ]
    return rows


def run() -> list[dict]:
    """All plume validation rows (keys: engine, case, metric, value, criterion, passed)."""
    rows: list[dict] = []
    for terrain in ("rural", "urban"):
        rows.extend(steady_train_cases(terrain))
    rows.extend(crosswind_flux_cases())
    rows.extend(single_puff_case())
    rows.extend(merge_cases())
    return rows


if __name__ == "__main__":
    table_rows = run()
    print(to_markdown(table_rows))
    sys.exit(0 if all(r["passed"] for r in table_rows) else 1)
