"""Dam break: level–volume curves, breach parameters, regressions, breach hydrographs and the
``dam_break`` flood engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Polygon, box

from citytwin.physics.dambreak import (
    BreachSpec,
    LevelVolumeCurve,
    breach_hydrograph,
    froehlich_2008,
    peak_outflow_regressions,
    resolve_breach,
)
from citytwin.physics.flood import Hydrograph
from citytwin.twin.errors import InputError

DX = 5.0


def box_curve(area_m2: float = 1.0e6, bottom_m: float = 0.0, top_m: float = 20.0):
    return LevelVolumeCurve(np.array([bottom_m, top_m]),
                            np.array([0.0, area_m2 * (top_m - bottom_m)]))


def bowl_curve(bottom_m: float = 100.0, top_m: float = 140.0) -> LevelVolumeCurve:
    """A smooth, convex storage curve (V = 2e5 d² + 1e4 d, d = depth)."""
    levels = np.linspace(bottom_m, top_m, 81)
    depth = levels - bottom_m
    return LevelVolumeCurve(levels, 2.0e5 * depth**2 + 1.0e4 * depth)


# ------------------------------------------------------------------ level-volume curve
def test_box_basin_volume_is_exact():
    z = np.full((8, 12), 50.0)
    transform = Affine(DX, 0, 1000.0, 0, -DX, 2000.0)
    curve = LevelVolumeCurve.from_dem(z, transform, np.ones_like(z, bool), max_level_m=60.0)
    area = z.size * DX * DX
    levels = np.linspace(50.0, 60.0, 21)
    np.testing.assert_allclose(curve.volume_at(levels), area * (levels - 50.0), rtol=1e-14)
    assert curve.volume_at(49.0) == 0.0
    assert curve.bottom_m == 50.0 and curve.top_m == 60.0
    assert curve.level_at(area * 3.5) == pytest.approx(53.5, abs=1e-12)
    assert curve.area_at(55.0) == pytest.approx(area)


def test_stepped_basin_curve_is_exact_between_nodes_and_matches_cell_sum():
    rng = np.random.default_rng(3)
    z = rng.uniform(10.0, 20.0, size=(30, 40)).round(2)
    mask = np.zeros_like(z, dtype=bool)
    mask[5:25, 8:35] = True
    transform = Affine(DX, 0, 0.0, 0, -DX, 150.0)
    curve = LevelVolumeCurve.from_dem(z, transform, mask, max_level_m=22.0)
    probe = rng.uniform(9.0, 22.0, 200)
    brute = np.array([DX * DX * np.sum(np.maximum(lv - z[mask], 0.0)) for lv in probe])
    np.testing.assert_allclose(curve.volume_at(probe), brute, rtol=1e-12, atol=1e-9)
    assert np.all(np.diff(curve.volumes_m3) > 0.0) and np.all(np.diff(curve.levels_m) > 0.0)
    inside = probe[probe > curve.bottom_m]
    np.testing.assert_allclose(curve.level_at(curve.volume_at(inside)), inside, atol=1e-9)
    # A regular step is exact at its nodes.
    coarse = LevelVolumeCurve.from_dem(z, transform, mask, max_level_m=22.0, step_m=0.5)
    np.testing.assert_allclose(coarse.volume_at(coarse.levels_m),
                               curve.volume_at(coarse.levels_m), rtol=1e-12)


def test_cone_basin_converges_to_analytic_volume():
    radius, depth, dx = 200.0, 8.0, 2.0
    n = int(2 * radius / dx) + 4
    xs = (np.arange(n) + 0.5) * dx - n * dx / 2
    xx, yy = np.meshgrid(xs, -xs)
    r = np.hypot(xx, yy)
    z = depth * np.minimum(r / radius, 1.0)
    curve = LevelVolumeCurve.from_dem(z, Affine(dx, 0, -n * dx / 2, 0, -dx, n * dx / 2),
                                      r < radius, max_level_m=depth)
    for h in (2.0, 4.0, 8.0):  # V = π R² h³ / (3 H²) for water depth h
        assert curve.volume_at(h) == pytest.approx(math.pi * radius**2 * h**3 / (3 * depth**2),
                                                   rel=5e-3)


def test_pool_polygon_equals_mask():
    z = np.add.outer(np.arange(20.0), np.arange(30.0)) * 0.1
    transform = Affine(DX, 0, 500.0, 0, -DX, 800.0)
    poly = box(500.0 + 4 * DX, 800.0 - 15 * DX, 500.0 + 20 * DX, 800.0 - 3 * DX)
    mask = np.zeros_like(z, dtype=bool)
    mask[3:15, 4:20] = True
    a = LevelVolumeCurve.from_dem(z, transform, poly, max_level_m=5.0)
    b = LevelVolumeCurve.from_dem(z, transform, mask, max_level_m=5.0)
    np.testing.assert_allclose(a.volume_at(b.levels_m), b.volumes_m3, rtol=1e-12)


# ------------------------------------------------------------------ breach parameters
def test_froehlich_2008_known_values():
    # V = 1e7 m³, h_b = 20 m by hand: 1e7^0.32 = 10^2.24 = 173.78, 20^0.04 = 1.12737,
    # B = 0.27·1.3·173.78·1.12737 = 68.77 m; t_f = 63.2·sqrt(1e7/(9.81·400)) = 3190.5 s.
    g = froehlich_2008(1.0e7, 20.0, "overtopping")
    assert g.average_width_m == pytest.approx(68.77, rel=1e-3)
    assert g.side_slope == 1.0
    assert g.bottom_width_m == pytest.approx(68.77 - 20.0, rel=1e-3)
    assert g.formation_time_s == pytest.approx(3190.5, rel=1e-3)
    p = froehlich_2008(1.0e7, 20.0, "piping")
    assert p.average_width_m == pytest.approx(68.77 / 1.3, rel=1e-3)
    assert p.side_slope == 0.7 and p.formation_time_s == g.formation_time_s
    assert froehlich_2008(1e4, 30.0).bottom_width_m == 0.0  # narrow: floored at 0
    with pytest.raises(InputError, match="mode"):
        froehlich_2008(1e7, 20.0, "seepage")


def test_peak_outflow_regressions_known_values():
    # V = 1e7 m³, h = 20 m: Froehlich 1995 0.607·116.14·41.05 = 2894 m³/s;
    # MacDonald & Langridge-Monopolis 1.154·(2e8)^0.412 = 1.154·2630.4 = 3035 m³/s;
    # Evans 0.72·(1e7)^0.53 = 0.72·5128.6 = 3693 m³/s; USBR 19.1·20^1.85 = 19.1·255.21 = 4875.
    q = peak_outflow_regressions(1.0e7, 20.0)
    assert q["Froehlich (1995)"] == pytest.approx(2894.0, rel=1e-3)
    assert q["MacDonald & Langridge-Monopolis (1984)"] == pytest.approx(3035.0, rel=1e-3)
    assert q["Evans (1986)"] == pytest.approx(3693.0, rel=1e-3)
    assert q["USBR (1982)"] == pytest.approx(4875.0, rel=1e-3)
    assert q["Webby (1996)"] == pytest.approx(
        0.0443 * math.sqrt(9.81) * 1e7**0.365 * 20**1.40, rel=1e-12)
    assert "Froehlich (2016)" not in q
    q16 = peak_outflow_regressions(1.0e7, 20.0, breach_height_m=20.0, embankment_width_m=60.0,
                                   mode="piping")
    assert q16["Froehlich (2016)"] == pytest.approx(
        0.0175 * (20 / 6.1) ** 0.125 * math.sqrt(9.81 * 1e7 * 20 * 400 / 60), rel=1e-12)
    # Teton 1976 (V_w 310e6 m³, h_w 77.4 m): the observed 65 120 m³/s lies in the ensemble.
    teton = peak_outflow_regressions(310e6, 77.4)
    assert min(teton.values()) < 65_120 < max(teton.values())
    with pytest.raises(InputError, match="head_m"):
        peak_outflow_regressions(1e7, 0.0)


# ------------------------------------------------------------------ breach hydrograph
def test_instantaneous_breach_matches_closed_form_drawdown():
    """Prismatic reservoir emptying through a fixed rectangular weir:
    A dH/dt = −Cw b H^1.5  ⇒  H(t) = (H0^-1/2 + Cw b t / (2A))^-2."""
    area, h0, b, cw = 1.0e6, 10.0, 20.0, 1.44
    spec = BreachSpec("overtopping", crest_level_m=15.0, final_invert_m=0.0,
                      final_bottom_width_m=b, formation_time_s=0.0, side_slope=0.0,
                      weir_coefficient=cw)
    res = breach_hydrograph(box_curve(area), spec, h0, dt_s=600.0, duration_s=6 * 3600.0)
    head = (h0**-0.5 + cw * b * res.times_s / (2 * area)) ** -2
    np.testing.assert_allclose(res.level_m, head, rtol=1e-3)
    np.testing.assert_allclose(res.q_m3_s, cw * b * head**1.5, rtol=2e-3)
    assert np.all(np.diff(res.q_m3_s) < 0.0)  # no ringing with a long step
    assert res.times_s[-1] == pytest.approx(6 * 3600.0)


@pytest.mark.parametrize("mode,growth,inflow", [
    ("overtopping", "linear", 0.0),
    ("overtopping", "sine", 40.0),
    ("piping", "linear", 15.0),
    ("piping", "sine", 0.0),
])
def test_hydrograph_conserves_mass(mode, growth, inflow):
    curve = bowl_curve()
    spec = BreachSpec(mode, crest_level_m=130.0, final_invert_m=101.0, growth=growth)
    res = breach_hydrograph(curve, spec, 128.0, dt_s=30.0, inflow_m3_s=inflow)
    assert abs(res.mass_error_m3) < 1e-11 * res.initial_volume_m3
    assert res.hydrograph.volume_m3(res.times_s[0], res.times_s[-1]) == pytest.approx(
        res.released_m3, rel=1e-12)
    assert np.all(res.q_m3_s >= 0.0) and np.all(np.diff(res.times_s) > 0.0)
    assert res.level_m[-1] < 128.0
    np.testing.assert_allclose(curve.volume_at(res.level_m), res.volume_m3, rtol=1e-12,
                               atol=1e-6)


def test_time_varying_inflow_mass_balance():
    curve = bowl_curve()
    inflow = Hydrograph(np.array([0.0, 600.0, 1800.0, 7200.0]),
                        np.array([0.0, 300.0, 300.0, 0.0]))
    spec = BreachSpec("overtopping", crest_level_m=130.0, final_invert_m=101.0)
    res = breach_hydrograph(curve, spec, 125.0, dt_s=30.0, duration_s=4 * 3600.0,
                            inflow_m3_s=inflow)
    assert res.inflow_m3 == pytest.approx(inflow.volume_m3(0.0, 4 * 3600.0), rel=1e-12)
    assert abs(res.mass_error_m3) < 1e-11 * res.initial_volume_m3


def test_peak_within_regression_band_for_a_textbook_dam():
    """A 20 m earth dam holding 10 Mm³ (storage ∝ depth^2.5), overtopping, Froehlich (2008)
    defaults: the peak lies within ×/÷2 (the regressions' own one-sigma error, Wahl 2004) of
    the regression ensemble's geometric mean, hence inside the ×/÷2-widened band."""
    h_w, v_w = 20.0, 1.0e7
    levels = np.linspace(0.0, 22.0, 221)
    curve = LevelVolumeCurve(levels, v_w * (levels / h_w) ** 2.5)
    spec = BreachSpec("overtopping", crest_level_m=22.0, final_invert_m=0.0)
    res = breach_hydrograph(curve, spec, h_w, dt_s=20.0)
    ensemble = peak_outflow_regressions(v_w, h_w)
    values = np.array(list(ensemble.values()))
    centre = float(np.exp(np.mean(np.log(values))))
    assert centre / 2 <= res.peak_q_m3_s <= 2 * centre
    assert values.min() / 2 <= res.peak_q_m3_s <= 2 * values.max()
    assert res.peak_t_s == pytest.approx(res.breach.formation_time_s, rel=0.05)
    assert res.released_m3 > 0.99 * v_w  # drained to the invert


def test_sine_growth_is_slower_early_and_faster_late():
    curve = bowl_curve()
    common = dict(crest_level_m=130.0, final_invert_m=101.0, final_bottom_width_m=40.0,
                  formation_time_s=1800.0, side_slope=1.0, start_s=600.0)
    lin = breach_hydrograph(curve, BreachSpec("overtopping", growth="linear", **common), 128.0,
                            dt_s=20.0)
    sin = breach_hydrograph(curve, BreachSpec("overtopping", growth="sine", **common), 128.0,
                            dt_s=20.0)
    rb = sin.breach
    for tau, f_sine in ((0.25, 0.5 * (1 - math.cos(math.pi / 4))), (0.5, 0.5), (0.75, 0.853553)):
        assert rb.fraction(600.0 + tau * 1800.0) == pytest.approx(f_sine, rel=1e-5)
        assert lin.breach.fraction(600.0 + tau * 1800.0) == pytest.approx(tau)
    assert rb.fraction(0.0) == 0.0 and rb.fraction(5000.0) == 1.0
    t_early = 600.0 + 0.3 * 1800.0
    assert sin.hydrograph.at(t_early) < lin.hydrograph.at(t_early)
    assert lin.times_s[0] == 600.0 and lin.q_m3_s[0] == 0.0
    for res in (lin, sin):  # same final breach, same water: both drain to the invert
        assert res.level_m[-1] == pytest.approx(101.0, abs=0.5)
        assert abs(res.mass_error_m3) < 1e-11 * res.initial_volume_m3


def test_piping_switches_to_weir_when_the_roof_collapses():
    curve = bowl_curve()
    spec = BreachSpec("piping", crest_level_m=130.0, final_invert_m=101.0,
                      piping_centre_m=110.0, final_bottom_width_m=30.0, side_slope=0.7,
                      formation_time_s=3600.0)
    res = breach_hydrograph(curve, spec, 128.0, dt_s=30.0)
    assert res.regime[0] == 1 and res.regime[-1] == 2
    assert res.collapse_s is not None
    k = int(np.searchsorted(res.times_s, res.collapse_s))
    assert np.all(res.regime[:k + 1] == 1) and np.all(res.regime[k + 1:] == 2)
    invert, _, top = res.breach.geometry(res.collapse_s)
    level = res.level_m[k]
    assert top >= 130.0 or level < top  # the collapse rule
    # Before the collapse the opening is a closed pipe: the invert lies below 110 m, the top
    # above it, and the flow is orifice flow for the level of the time.
    assert invert < 110.0 < top
    overtop = breach_hydrograph(curve, BreachSpec("overtopping", crest_level_m=130.0,
                                                  final_invert_m=101.0), 128.0, dt_s=30.0)
    assert np.all(overtop.regime == 2) and overtop.collapse_s is None


def test_froehlich_defaults_are_resolved_from_the_curve():
    curve = bowl_curve()
    spec = BreachSpec("overtopping", crest_level_m=130.0, final_invert_m=101.0)
    rb = resolve_breach(spec, curve, 128.0)
    geo = froehlich_2008(curve.volume_at(128.0) - curve.volume_at(101.0), 29.0, "overtopping")
    assert rb.froehlich == geo
    assert rb.bottom_width_m == geo.bottom_width_m
    assert rb.formation_time_s == geo.formation_time_s and rb.side_slope == 1.0
    assert rb.side_weir_coefficient == pytest.approx(1.44 * 2.45 / 3.1)


# ------------------------------------------------------------------ bad input
def test_breach_invert_below_reservoir_bottom():
    spec = BreachSpec("overtopping", crest_level_m=130.0, final_invert_m=95.0)
    with pytest.raises(InputError, match="final_invert_m") as err:
        breach_hydrograph(bowl_curve(), spec, 128.0)
    assert "95.0" in str(err.value) and "100.0" in str(err.value)


def test_breach_invert_above_crest():
    spec = BreachSpec("overtopping", crest_level_m=130.0, final_invert_m=131.0)
    with pytest.raises(InputError, match="final_invert_m") as err:
        breach_hydrograph(bowl_curve(), spec, 128.0)
    assert "131.0" in str(err.value) and "130.0" in str(err.value)


def test_pool_polygon_outside_the_dem():
    z = np.zeros((10, 10))
    transform = Affine(DX, 0, 0.0, 0, -DX, 50.0)
    far = Polygon([(1000, 1000), (1100, 1000), (1100, 1100)])
    with pytest.raises(InputError, match="pool") as err:
        LevelVolumeCurve.from_dem(z, transform, far, max_level_m=1.0)
    assert "outside the DEM" in str(err.value) and "1000.0" in str(err.value)


def test_level_above_the_curve_top():
    curve = bowl_curve()
    with pytest.raises(InputError, match="level_m") as err:
        curve.volume_at(141.0)
    assert "141.0" in str(err.value) and "140.0" in str(err.value)
    spec = BreachSpec("overtopping", crest_level_m=130.0, final_invert_m=101.0)
    with pytest.raises(InputError, match="level_m"):
        breach_hydrograph(curve, spec, 150.0)
    with pytest.raises(InputError, match="volume_m3"):
        curve.level_at(curve.max_volume_m3 * 2)


def test_other_bad_breach_fields_are_named():
    curve = bowl_curve()
    cases = [
        (dict(mode="sliding"), "mode"),
        (dict(growth="cubic"), "growth"),
        (dict(side_slope=-1.0), "side_slope"),
        (dict(mode="piping", piping_centre_m=135.0), "piping_centre_m"),
        (dict(crest_level_m=145.0, final_invert_m=101.0), "crest_level_m"),
    ]
    for change, name in cases:
        kwargs = dict(mode="overtopping", crest_level_m=130.0, final_invert_m=101.0) | change
        with pytest.raises(InputError, match=name):
            breach_hydrograph(curve, BreachSpec(**kwargs), 128.0)
    with pytest.raises(InputError, match="levels_m"):
        LevelVolumeCurve(np.array([1.0, 1.0]), np.array([0.0, 1.0]))


def test_no_water_above_the_breach_invert():
    # Froehlich needs the volume above the final invert: none when the level is below it
    spec = BreachSpec("overtopping", crest_level_m=130.0, final_invert_m=110.0)
    with pytest.raises(InputError, match=r"final_invert_m: no water above the breach invert"):
        breach_hydrograph(bowl_curve(), spec, 105.0)


def test_inflow_that_overfills_the_curve_is_rejected():
    spec = BreachSpec("overtopping", crest_level_m=19.0, final_invert_m=10.0)
    with pytest.raises(InputError, match=r"inflow_m3_s: the reservoir overfills its "
                                         r"level-volume curve \(top 20.0 m\)"):
        breach_hydrograph(box_curve(), spec, 18.0, inflow_m3_s=1.0e6)


# ------------------------------------------------------------------ the dam_break engine
@pytest.fixture(scope="module")
def tiny_twin():
    from citytwin.twin.synthetic import synthetic_city

    return synthetic_city(seed=7, size="tiny")


def test_dam_break_flood_from_twin(tiny_twin):
    from citytwin.physics import ENGINES
    from citytwin.physics.dambreak import DamBreakFlood

    assert ENGINES["dam_break"] is DamBreakFlood
    flood = DamBreakFlood.from_twin(tiny_twin)
    res = tiny_twin.reservoirs.set_index("id")
    crest = float(res.crest_level_m["R-dam"])
    dam_y = res.geometry["R-dam"].coords[0][1]
    # Froehlich defaults, from the normal level, breach down to the pool's bed or the toe.
    rb = flood.breach.breach
    assert rb.spec.crest_level_m == crest and rb.froehlich is not None
    assert flood.breach.level_m[0] == pytest.approx(float(res.normal_level_m["R-pool"]))
    assert rb.spec.final_invert_m >= flood.curve.bottom_m
    assert abs(flood.breach.mass_error_m3) < 1e-9 * flood.breach.initial_volume_m3
    # The ensemble is kept and brackets the computed peak within ×/÷2.
    values = np.array(list(flood.regressions.values()))
    assert values.min() / 2 <= flood.breach.peak_q_m3_s <= values.max() * 2
    # The toe line lies downstream (south) of the dam, across the valley bottom.
    (x0, y0), (x1, y1) = flood.toe_line
    assert y0 == y1 < dam_y - 10.0
    site = flood.breach_site
    assert min(x0, x1) < site["x_m"] < max(x0, x1)
    flood.advance_to(600.0)
    mb = flood.mass_balance()
    assert mb.inflow_m3 == pytest.approx(flood.breach.hydrograph.volume_m3(0.0, 600.0),
                                         rel=1e-9)
    assert abs(mb.relative_error) < 1e-12
    # The flood runs down the valley: water 100 m below the toe arrives after water 20 m
    # below it, and the pool (upstream of the dam) stays dry.
    xs = site["x_m"]
    near, far = np.array([[xs, y0 - 20.0]]), np.array([[xs, y0 - 100.0]])
    t_near, t_far = flood.arrival_time_at(near)[0], flood.arrival_time_at(far)[0]
    assert 0.0 < t_near < t_far < 600.0
    upstream = np.array([[xs, dam_y + 40.0, 0.0]])
    assert flood.sample("max_depth_m", upstream)[0] == 0.0


def test_dam_break_flood_piping_and_bad_ids(tiny_twin):
    from citytwin.physics.dambreak import DamBreakFlood

    flood = DamBreakFlood.from_twin(tiny_twin, mode="piping", buildings="none", drains=False)
    assert flood.breach.regime[0] == 1 and flood.breach.collapse_s is not None
    with pytest.raises(InputError, match="dam_id") as err:
        DamBreakFlood.from_twin(tiny_twin, dam_id="R-nope")
    assert "R-nope" in str(err.value)
    with pytest.raises(InputError, match="level_m") as err:
        DamBreakFlood.from_twin(tiny_twin, initial_level_m=40.0)
    assert "40.0" in str(err.value)
    with pytest.raises(InputError, match=r"toe_offset_m must be ≥ 0, got -1.0"):
        DamBreakFlood.from_twin(tiny_twin, toe_offset_m=-1.0)


def test_dam_break_flood_activity_and_reservoir_level_field():
    from citytwin.physics.base import grid_axes
    from citytwin.physics.dambreak import DamBreakFlood

    flood = DamBreakFlood.example()
    res = flood.breach
    # active once the outflow volume since the start is > 0, not before
    first = int(np.flatnonzero(res.q_m3_s > 0.0)[0])
    t_on = float(res.times_s[first - 1])
    assert first > 0 and res.hydrograph.volume_m3(res.times_s[0], t_on) == 0.0
    for t, active in ((t_on, False), (np.nextafter(t_on, np.inf), True), (90.0, True)):
        flood.t_s = float(t)
        assert flood.is_active() is active
        assert (res.hydrograph.volume_m3(res.times_s[0], flood.t_s) > 0.0) is active
    # the level field: the reservoir level everywhere, on the grid of the requested bounds
    grid = flood.field("reservoir_level_m", bounds=(0.0, 0.0, 42.0, 33.0), resolution_m=4.0)
    xs, ys = grid_axes((0.0, 0.0, 42.0, 33.0), 4.0)
    np.testing.assert_array_equal(grid.xs_m, xs)
    np.testing.assert_array_equal(grid.ys_m, ys)
    assert grid.values.shape == (ys.size, xs.size) and grid.units == "m"
    assert np.all(grid.values == flood.reservoir_level_m()) and grid.t_s == flood.t_s
