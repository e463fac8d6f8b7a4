"""One contract test over every registered hazard engine (Landlab-style).

A new engine is covered as soon as it is registered with ``@register_engine`` and imported
by ``physics/__init__.py``.
"""

import numpy as np
import pytest
from shapely.geometry import MultiPolygon, Point, Polygon

from citytwin.physics import ENGINES, HazardEngine, QuantityInfo

ENGINE_CLASSES = [ENGINES[kind] for kind in sorted(ENGINES)]


@pytest.fixture(params=ENGINE_CLASSES, ids=lambda cls: cls.kind)
def engine_cls(request) -> type[HazardEngine]:
    return request.param


@pytest.fixture
def engine(engine_cls) -> HazardEngine:
    eng = engine_cls.example()
    assert isinstance(eng, engine_cls)
    return eng


def probe_points(eng: HazardEngine, n: int = 50) -> np.ndarray:
    """Points spread over the engine's default field area, at 0-3 m above ground."""
    first = next(iter(eng.info))
    grid = eng.field(first, resolution_m=10.0)
    xmin, ymin, xmax, ymax = grid.bounds
    rng = np.random.default_rng(7)
    return np.column_stack(
        [rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n), rng.uniform(0.0, 3.0, n)]
    )


def test_declaration(engine_cls):
    assert isinstance(engine_cls.kind, str) and engine_cls.kind
    assert ENGINES[engine_cls.kind] is engine_cls
    assert engine_cls.info
    for name, q in engine_cls.info.items():
        assert isinstance(name, str) and name
        assert isinstance(q, QuantityInfo)
        assert q.units.strip(), f"{name} has no units"
        assert q.description.strip(), f"{name} has no description"


def test_example_is_active(engine):
    assert np.isfinite(engine.t_s)
    first = next(iter(engine.info))
    assert np.nanmax(engine.field(first).values) > 0.0


def test_advance_backwards_raises(engine):
    t = engine.t_s
    with pytest.raises(ValueError) as err:
        engine.advance_to(t - 1.0)
    assert str(t) in str(err.value) and str(t - 1.0) in str(err.value)
    engine.advance_to(t)  # staying put is allowed
    assert engine.t_s == t
    engine.advance_to(t + 1.0)
    assert engine.t_s == t + 1.0


def test_sample_shape_dtype_finite(engine):
    pts = probe_points(engine)
    for quantity in engine.info:
        values = engine.sample(quantity, pts)
        assert values.dtype == np.float64
        assert values.shape == (pts.shape[0],)
        assert np.all(np.isfinite(values))
        empty = engine.sample(quantity, np.empty((0, 3)))
        assert empty.shape == (0,) and empty.dtype == np.float64


def test_sample_rejects_bad_points(engine):
    first = next(iter(engine.info))
    with pytest.raises(ValueError, match="shape"):
        engine.sample(first, np.zeros((4, 2)))


def test_unknown_quantity_raises_keyerror_naming_it(engine):
    for call in (
        lambda: engine.sample("no_such_quantity", np.zeros((1, 3))),
        lambda: engine.field("no_such_quantity"),
        lambda: engine.footprint("no_such_quantity", 1.0),
    ):
        with pytest.raises(KeyError, match="no_such_quantity") as err:
            call()
        for known in engine.info:
            assert known in str(err.value)


def test_field_shapes(engine):
    for quantity in engine.info:
        grid = engine.field(quantity)
        assert grid.xs_m.ndim == grid.ys_m.ndim == 1
        assert grid.values.shape == (grid.ys_m.size, grid.xs_m.size)
        assert np.all(np.diff(grid.xs_m) > 0)
        assert np.all(np.diff(grid.ys_m) < 0)  # north first
        assert grid.quantity == quantity
        assert grid.units == engine.info[quantity].units
        assert grid.t_s == engine.t_s
    bounds = (-100.0, -50.0, 100.0, 50.0)
    grid = engine.field(next(iter(engine.info)), bounds=bounds, resolution_m=10.0)
    assert grid.values.shape == (10, 20)
    assert grid.bounds == pytest.approx(bounds)


def test_footprints(engine):
    for quantity in engine.info:
        grid = engine.field(quantity)
        peak = float(np.nanmax(grid.values))
        above = engine.footprint(quantity, peak * 1.01 + 1e-300)
        assert isinstance(above, Polygon) and above.is_empty
        half = engine.footprint(quantity, 0.5 * peak)
        assert isinstance(half, Polygon | MultiPolygon)
        assert not half.is_empty and half.area > 0.0
        row, col = np.unravel_index(np.nanargmax(grid.values), grid.values.shape)
        assert half.contains(Point(grid.xs_m[col], grid.ys_m[row]))


def test_default_bounds_hold_the_hazard(engine):
    xmin, ymin, xmax, ymax = engine.default_bounds()
    assert xmin < xmax and ymin < ymax
    for quantity in engine.info:
        grid = engine.field(quantity)
        assert grid.bounds[0] >= xmin - grid.resolution_m
        assert grid.bounds[2] <= xmax + grid.resolution_m
        half = engine.footprint(quantity, 0.5 * float(np.nanmax(grid.values)))
        bx0, by0, bx1, by1 = half.bounds
        assert xmin <= bx0 and bx1 <= xmax and ymin <= by0 and by1 <= ymax


def test_adaptive_footprint_resolution():
    from citytwin.physics.base import adaptive_resolution_m

    assert adaptive_resolution_m((0.0, 0.0, 100.0, 50.0)) == 5.0
    assert adaptive_resolution_m((0.0, 0.0, 8000.0, 100.0)) == 20.0


def test_forecast_copy_is_independent(engine):
    t = engine.t_s
    ahead = engine.forecast_copy()
    assert type(ahead) is type(engine) and ahead is not engine
    ahead.advance_to(t + 30.0)
    assert engine.t_s == t and ahead.t_s == t + 30.0
