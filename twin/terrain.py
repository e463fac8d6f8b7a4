"""Terrain: a ground-elevation raster on a regular grid in a projected CRS (metres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from pyproj import CRS


@dataclass(frozen=True)
class Terrain:
    """Ground elevation ``elevation_m[row, col]`` with the affine ``transform`` of its cells.

    Row 0 is the northern edge (GeoTIFF convention); ``transform @ (col, row)`` gives the
    upper-left corner of a cell. Square, north-up cells are required.
    """

    elevation_m: np.ndarray
    transform: Affine
    crs: CRS

    @property
    def shape(self) -> tuple[int, int]:
        return self.elevation_m.shape  # type: ignore[return-value]

    @property
    def cell_size_m(self) -> float:
        return float(self.transform.a)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in metres."""
        rows, cols = self.shape
        x0, y0 = self.transform @ (0, 0)
        x1, y1 = self.transform @ (cols, rows)
        return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where points (x, y) lie inside the terrain extent."""
        xmin, ymin, xmax, ymax = self.bounds
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        return (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray]:
        """1-D arrays of cell-centre x (per column) and y (per row), metres."""
        rows, cols = self.shape
        xs = self.transform.c + (np.arange(cols) + 0.5) * self.transform.a
        ys = self.transform.f + (np.arange(rows) + 0.5) * self.transform.e
        return xs, ys

    def elevation_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Bilinear ground elevation (m) at points; clamped to the grid edge outside."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        rows, cols = self.shape
        fc = (x - self.transform.c) / self.transform.a - 0.5
        fr = (y - self.transform.f) / self.transform.e - 0.5
        fc = np.clip(fc, 0.0, cols - 1.0)
        fr = np.clip(fr, 0.0, rows - 1.0)
        c0 = np.minimum(np.floor(fc).astype(np.intp), max(cols - 2, 0))
        r0 = np.minimum(np.floor(fr).astype(np.intp), max(rows - 2, 0))
        c1 = np.minimum(c0 + 1, cols - 1)
        r1 = np.minimum(r0 + 1, rows - 1)
        tc = fc - c0
        tr = fr - r0
        z = self.elevation_m
        top = z[r0, c0] * (1 - tc) + z[r0, c1] * tc
        bottom = z[r1, c0] * (1 - tc) + z[r1, c1] * tc
        return top * (1 - tr) + bottom * tr
