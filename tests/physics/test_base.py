"""Shared helpers of the engine contract: grids, polygoniser, registry."""

import numpy as np
import pytest
from shapely.geometry import Point

from citytwin.physics import ENGINES, GaussianPuffPlume, get_engine, register_engine
from citytwin.physics.base import FieldGrid, HazardEngine, grid_axes, polygonize


def make_grid(values, res=10.0, x0=0.0, y_top=100.0):
    values = np.asarray(values, dtype=float)
    xs = x0 + (np.arange(values.shape[1]) + 0.5) * res
    ys = y_top - (np.arange(values.shape[0]) + 0.5) * res
    return FieldGrid(xs, ys, values, "q", "u", 0.0, res)


def test_grid_axes_cover_bounds():
    xs, ys = grid_axes((0.0, 0.0, 100.0, 50.0), 10.0)
    np.testing.assert_allclose(xs, np.arange(5, 100, 10))
    np.testing.assert_allclose(ys, np.arange(45, 0, -10))
    xs, ys = grid_axes((0.0, 0.0, 0.0, 0.0), 5.0)
    assert xs.size == ys.size == 1
    with pytest.raises(ValueError, match="resolution_m"):
        grid_axes((0.0, 0.0, 1.0, 1.0), 0.0)
    with pytest.raises(ValueError, match="bounds"):
        grid_axes((1.0, 0.0, 0.0, 1.0), 1.0)
    with pytest.raises(ValueError, match="coarser"):
        grid_axes((0.0, 0.0, 1e6, 1e6), 0.1)


def test_polygonize_area_and_position():
    values = np.zeros((10, 10))
    values[2:4, 3:6] = 5.0  # rows 2-3 (y 80..60), cols 3-5 (x 30..60)
    values[8, 8] = 7.0  # separate cell
    geom = polygonize(make_grid(values), 5.0)
    assert geom.geom_type == "MultiPolygon"
    assert geom.area == pytest.approx(6 * 100 + 100)
    assert geom.contains(Point(45.0, 70.0))
    assert geom.contains(Point(85.0, 15.0))
    assert not geom.contains(Point(15.0, 15.0))
    big = max(geom.geoms, key=lambda g: g.area)
    assert big.bounds == pytest.approx((30.0, 60.0, 60.0, 80.0))


def test_polygonize_empty_and_nan():
    values = np.full((3, 3), np.nan)
    assert polygonize(make_grid(values), 1.0).is_empty
    values = np.zeros((3, 3))
    geom = polygonize(make_grid(values), 1.0)
    assert geom.is_empty and geom.geom_type == "Polygon"


def test_registry():
    assert ENGINES["gas_plume"] is GaussianPuffPlume
    assert get_engine("gas_plume") is GaussianPuffPlume
    with pytest.raises(KeyError, match=r"'nope'.*gas_plume"):
        get_engine("nope")


def test_register_rejects_duplicates_and_missing_declarations():
    class Impostor(GaussianPuffPlume):
        kind = "gas_plume"

    with pytest.raises(ValueError, match="already registered"):
        register_engine(Impostor)

    class NoKind(HazardEngine):
        info = {}

    with pytest.raises(TypeError, match="kind"):
        register_engine(NoKind)
    assert ENGINES["gas_plume"] is GaussianPuffPlume
