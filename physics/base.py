"""The hazard-engine contract, shared helpers and the engine registry.

Modelled on Landlab's ``Component``: every engine declares the quantities it produces (with
units) in ``info``, steps with ``advance_to(t_s)`` and answers ``sample``, ``field`` and
``footprint``. One parametrised test (``tests/physics/test_contract.py``) checks every
registered engine against its declaration, so a new hazard is one module plus
``@register_engine``.

Coordinates: x, y in the twin's projected CRS (metres), z in metres above ground.
Times: seconds from scenario start.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import rasterio.features
import shapely.geometry
import shapely.ops
from affine import Affine
from shapely.geometry import MultiPolygon, Polygon

Bounds = tuple[float, float, float, float]
"""(xmin, ymin, xmax, ymax) in metres, projected CRS."""

MAX_FIELD_CELLS = 25_000_000
#: Adaptive footprints use at most this many cells along the longer side of the hazard extent.
FOOTPRINT_CELLS_PER_SIDE = 400
#: ... and never cells finer than this (m).
FOOTPRINT_MIN_RESOLUTION_M = 5.0
"""Refuse field grids larger than this (≈200 MB of float64); ask for a coarser resolution."""


@dataclass(frozen=True)
class QuantityInfo:
    """Declaration of one quantity an engine produces, and how the values of several hazards
    at one point combine: ``sum`` (concentrations, depths), ``max`` (temperatures, densities,
    levels, maxima), ``min`` (visibility)."""

    units: str
    description: str
    combine: str = "sum"


@dataclass(frozen=True, eq=False)
class FieldGrid:
    """A quantity on a regular grid at one height and time.

    ``xs_m`` are cell-centre x (west to east), ``ys_m`` cell-centre y descending (north
    first, raster order), ``values[row, col]`` belongs to ``(xs_m[col], ys_m[row])``.
    """

    xs_m: np.ndarray
    ys_m: np.ndarray
    values: np.ndarray
    quantity: str
    units: str
    t_s: float
    resolution_m: float
    z_m: float = 1.5

    @property
    def transform(self) -> Affine:
        """Affine transform from (col, row) to (x, y) of the cell's upper-left corner."""
        half = 0.5 * self.resolution_m
        x_left = float(self.xs_m[0]) - half
        y_top = float(self.ys_m[0]) + half
        return Affine(self.resolution_m, 0.0, x_left, 0.0, -self.resolution_m, y_top)

    @property
    def bounds(self) -> Bounds:
        """Outer (xmin, ymin, xmax, ymax) of the grid cells."""
        half = 0.5 * self.resolution_m
        return (
            float(self.xs_m[0]) - half,
            float(self.ys_m[-1]) - half,
            float(self.xs_m[-1]) + half,
            float(self.ys_m[0]) + half,
        )

    def points_xyz(self) -> np.ndarray:
        """Cell centres as an (n, 3) array in raster order, z = ``z_m``."""
        return grid_points(self.xs_m, self.ys_m, self.z_m)


def grid_axes(bounds: Bounds, resolution_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre axes covering ``bounds`` at ``resolution_m``: (xs ascending, ys descending).

    The grid starts at the upper-left corner (xmin, ymax) and has at least one cell per axis;
    it may overhang xmax/ymin by less than one cell.
    """
    xmin, ymin, xmax, ymax = (float(b) for b in bounds)
    if not (math.isfinite(resolution_m) and resolution_m > 0.0):
        raise ValueError(f"resolution_m must be a positive finite number, got {resolution_m}")
    if not all(math.isfinite(b) for b in (xmin, ymin, xmax, ymax)):
        raise ValueError(f"bounds must be finite, got {bounds}")
    if xmax < xmin or ymax < ymin:
        raise ValueError(f"bounds must be (xmin, ymin, xmax, ymax) with min <= max, got {bounds}")
    ncols = max(1, math.ceil((xmax - xmin) / resolution_m - 1e-9))
    nrows = max(1, math.ceil((ymax - ymin) / resolution_m - 1e-9))
    if ncols * nrows > MAX_FIELD_CELLS:
        raise ValueError(
            f"field grid of {nrows} x {ncols} cells exceeds {MAX_FIELD_CELLS} cells; "
            f"use a coarser resolution_m than {resolution_m} or smaller bounds"
        )
    xs = xmin + (np.arange(ncols) + 0.5) * resolution_m
    ys = ymax - (np.arange(nrows) + 0.5) * resolution_m
    return xs, ys


def grid_points(xs_m: np.ndarray, ys_m: np.ndarray, z_m: float) -> np.ndarray:
    """All (x, y, z) cell centres of a grid as an (nrows * ncols, 3) array in raster order."""
    xx, yy = np.meshgrid(xs_m, ys_m)
    zz = np.full(xx.size, float(z_m))
    return np.column_stack([xx.ravel(), yy.ravel(), zz])


def adaptive_resolution_m(bounds: Bounds) -> float:
    """Cell size (m) for a footprint over ``bounds``: FOOTPRINT_MIN_RESOLUTION_M, or coarser
    so that the longer side has at most FOOTPRINT_CELLS_PER_SIDE cells."""
    xmin, ymin, xmax, ymax = bounds
    longest = max(xmax - xmin, ymax - ymin, 0.0)
    return max(FOOTPRINT_MIN_RESOLUTION_M, longest / FOOTPRINT_CELLS_PER_SIDE)


def polygonize(grid: FieldGrid, threshold: float) -> Polygon | MultiPolygon:
    """Area where ``grid.values >= threshold`` as shapely geometry (cells as squares).

    Uses ``rasterio.features.shapes`` on the boolean mask with the grid's affine transform
    and merges the pieces with ``shapely.ops.unary_union``. NaN cells are outside. Returns an
    empty ``Polygon`` when no cell reaches the threshold.
    """
    with np.errstate(invalid="ignore"):
        mask = np.asarray(grid.values) >= threshold
    if not mask.any():
        return Polygon()
    pieces = [
        shapely.geometry.shape(geom)
        for geom, value in rasterio.features.shapes(
            mask.astype(np.uint8), mask=mask, transform=grid.transform
        )
        if value == 1
    ]
    merged = shapely.ops.unary_union(pieces)
    if isinstance(merged, Polygon | MultiPolygon):
        return merged
    polys = [g for g in getattr(merged, "geoms", []) if isinstance(g, Polygon)]
    return MultiPolygon(polys) if polys else Polygon()


def as_points(xyz_m: np.ndarray) -> np.ndarray:
    """Validate sample points: a float64 (n, 3) array of finite x, y, z."""
    pts = np.asarray(xyz_m, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"xyz_m must have shape (n, 3), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("xyz_m contains non-finite coordinates")
    return pts


class HazardEngine(ABC):
    """Contract every hazard engine fulfils (see module docstring)."""

    kind: ClassVar[str]
    """Registry key, e.g. ``"gas_plume"``."""
    info: ClassVar[dict[str, QuantityInfo]]
    """Quantities produced, with units and description."""

    t_s: float
    """Current model time, seconds from scenario start."""

    render_quantity: ClassVar[str | None] = None
    """The quantity a 3D render of a run shows (default: the first declared)."""

    @abstractmethod
    def advance_to(self, t_s: float) -> None:
        """Advance the model to ``t_s``; raise ValueError naming both times if in the past."""

    @abstractmethod
    def sample(self, quantity: str, xyz_m: np.ndarray) -> np.ndarray:
        """Values of ``quantity`` at points ``xyz_m`` (shape (n, 3)), float64 shape (n,)."""

    def field(
        self,
        quantity: str,
        *,
        z_m: float = 1.5,
        bounds: Bounds | None = None,
        resolution_m: float = 5.0,
    ) -> FieldGrid:
        """``quantity`` on a regular grid at height ``z_m`` (default bounds: the engine's),
        by ``sample`` at the cell centres. Engines with a cheaper way may override."""
        self.check_quantity(quantity)
        xs, ys = grid_axes(self.default_bounds() if bounds is None else bounds, resolution_m)
        values = self.sample(quantity, grid_points(xs, ys, z_m)).reshape(ys.size, xs.size)
        return FieldGrid(xs_m=xs, ys_m=ys, values=values, quantity=quantity,
                         units=self.info[quantity].units, t_s=self.t_s,
                         resolution_m=float(resolution_m), z_m=float(z_m))

    @abstractmethod
    def default_bounds(self) -> Bounds:
        """Where the hazard currently is: (xmin, ymin, xmax, ymax) in metres."""

    def footprint(
        self,
        quantity: str,
        threshold: float,
        *,
        z_m: float = 1.5,
        resolution_m: float | None = None,
    ) -> Polygon | MultiPolygon:
        """Area where ``quantity >= threshold`` at ``z_m``; empty Polygon when nowhere.

        Default: polygonise ``self.field`` over its default bounds. ``resolution_m=None``
        adapts the cell size to the hazard's extent (see ``adaptive_resolution_m``), so a
        footprint costs about the same for a young and an hour-old cloud. Engines may override.
        """
        self.check_quantity(quantity)
        if resolution_m is None:
            resolution_m = adaptive_resolution_m(self.default_bounds())
        grid = self.field(quantity, z_m=z_m, resolution_m=resolution_m)
        return polygonize(grid, threshold)

    def forecast_copy(self) -> HazardEngine:
        """An independent copy to run ahead for model-based pre-warnings. Engines replace
        what a platform cannot know at ``t_s`` (e.g. the future wind) with what it can
        (persistence); default: an exact copy (the scripted forcing is the forecast)."""
        return copy.deepcopy(self)

    def is_active(self) -> bool:
        """Whether the hazard currently exists (e.g. gas released and still aloft); hazard
        forecasts are only run for active hazards. Engines override; default True."""
        return True

    @classmethod
    @abstractmethod
    def example(cls) -> HazardEngine:
        """A small, already-active instance for the contract test and docs."""

    def check_quantity(self, quantity: str) -> None:
        """Raise KeyError naming ``quantity`` and the known ones if it is not declared."""
        if quantity not in self.info:
            known = ", ".join(sorted(self.info))
            raise KeyError(
                f"unknown quantity {quantity!r} for engine {self.kind!r}; known: {known}"
            )

    def check_not_backwards(self, t_s: float) -> float:
        """Validate a target time: finite and not before ``self.t_s``. Returns it as float."""
        t = float(t_s)
        if not math.isfinite(t):
            raise ValueError(f"t_s must be finite, got {t_s}")
        if t < self.t_s:
            raise ValueError(
                f"{self.kind}: cannot advance backwards to t_s={t} s; "
                f"current time is t_s={self.t_s} s"
            )
        return t


ENGINES: dict[str, type[HazardEngine]] = {}
"""Registered engines by ``kind``."""


def register_engine(cls: type[HazardEngine]) -> type[HazardEngine]:
    """Class decorator adding an engine to ``ENGINES`` under ``cls.kind``."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} must define a non-empty class attribute 'kind'")
    info = getattr(cls, "info", None)
    if not isinstance(info, dict) or not info:
        raise TypeError(f"{cls.__name__} must declare its quantities in class attribute 'info'")
    existing = ENGINES.get(kind)
    if existing is not None and (existing.__module__, existing.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise ValueError(
            f"engine kind {kind!r} already registered by "
            f"{existing.__module__}.{existing.__qualname__}"
        )
    ENGINES[kind] = cls
    return cls


def get_engine(kind: str) -> type[HazardEngine]:
    """The engine class registered under ``kind``; KeyError listing known kinds otherwise."""
    try:
        return ENGINES[kind]
    except KeyError:
        known = ", ".join(sorted(ENGINES)) or "(none)"
        raise KeyError(f"unknown engine kind {kind!r}; known: {known}") from None
