"""Loader for the Merewether urban flash-flood case (Pasha Bulker storm, Newcastle NSW, June
2007; Australian Rainfall and Runoff Revision Project 15, Smith & Wasko 2012, "Two dimensional
simulations in urban areas: representation of buildings in 2D numerical flood models", WRL,
https://arr.ga.gov.au/__data/assets/pdf_file/0014/40523/ARR_Project_15_Subproject_report_buildings_final.pdf).

Data: ``../shared/realdata/merewether`` (from ``anuga-community/anuga_core``
``validation_tests/case_studies/merewether``; DEM courtesy of WRL, see its PROVENANCE.md).
Set-up values that live in that case's run script rather than in a data file are constants
here (PROVENANCE.md, "Model setup"): constant 19.7 m³/s into a 10 m-radius circle centred at
(382265, 6354280); Manning n 0.02 inside the road polygon, 0.04 elsewhere; south and west
edges reflective, north and east transmissive; run 1000 s to a steady state.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
from affine import Affine
from pyproj import CRS
from shapely.geometry import Polygon

#: UTM zone 56 South, WGS84 (``topography1.prj``; the case's GeoTIFF export uses EPSG:32756).
CRS_EPSG = 32756
INLET_XY_M = (382265.0, 6354280.0)
INLET_RADIUS_M = 10.0
INFLOW_M3_S = 19.7
N_ROAD = 0.02
N_ELSEWHERE = 0.04
DURATION_S = 1000.0
#: Footprints the case's run script leaves out: 030 unused, 032 and 033 replaced by 032_033.
UNUSED_HOUSES = ("house030", "house032", "house033")
#: Transect 1 (ARR P15 Figs 27–28) as placed by the ANUGA plotting script, local (103, 100) →
#: (130, 80) from origin (382250, 6354265); that script calls the endpoints a guess.
TRANSECT_START_M = (382353.0, 6354365.0)
TRANSECT_END_M = (382380.0, 6354345.0)


@dataclass(frozen=True)
class Observation:
    """A surveyed peak flood level (m, DEM datum) with the TUFLOW result of ARR P15."""

    point_id: str
    x_m: float
    y_m: float
    observed_m: float
    observed_draft_m: float
    tuflow_m: float


@dataclass(frozen=True, eq=False)
class MerewetherCase:
    """DEM (NaN where NODATA), footprints, road polygon, observations and transect data.

    The 73 NODATA cells (41 at the top of the west column, 32 at the east end of the south
    row; all on high ground away from the flow) are treated as blocked.
    """

    elevation_m: np.ndarray
    transform: Affine
    crs: CRS
    houses: dict[str, Polygon]
    road: Polygon
    extent: Polygon
    observations: list[Observation]
    transect_distance_m: np.ndarray
    transect_speed_m_s: np.ndarray
    transect_depth_m: np.ndarray

    @property
    def cell_size_m(self) -> float:
        return float(self.transform.a)

    def transect_xy_m(self) -> np.ndarray:
        """(n, 2) points at the transect distances along start → end."""
        start = np.asarray(TRANSECT_START_M)
        end = np.asarray(TRANSECT_END_M)
        unit = (end - start) / np.hypot(*(end - start))
        return start + self.transect_distance_m[:, None] * unit

    def blocked(self) -> np.ndarray:
        """True in cells whose centre lies in a house footprint, and in NODATA cells."""
        return rasterize_polygons(list(self.houses.values()), self.elevation_m.shape,
                                  self.transform) | ~np.isfinite(self.elevation_m)

    def manning_n(self) -> np.ndarray:
        """0.02 in cells whose centre is in the road polygon, 0.04 elsewhere."""
        road = rasterize_polygons([self.road], self.elevation_m.shape, self.transform)
        return np.where(road, N_ROAD, N_ELSEWHERE)

    def coarsened(self, factor: int) -> MerewetherCase:
        """The same case on cells ``factor`` times larger (DEM block mean, NaN if any NODATA)."""
        rows, cols = (s // factor * factor for s in self.elevation_m.shape)
        z = self.elevation_m[:rows, :cols]
        z = z.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))
        t = self.transform @ Affine.scale(factor)
        return MerewetherCase(z, t, self.crs, self.houses, self.road, self.extent,
                              self.observations, self.transect_distance_m,
                              self.transect_speed_m_s, self.transect_depth_m)


def rasterize_polygons(polys: list[Polygon], shape: tuple[int, int], transform: Affine
                       ) -> np.ndarray:
    """Boolean raster: True where a cell centre lies inside any polygon."""
    if not polys:
        return np.zeros(shape, dtype=bool)
    burnt = rasterio.features.rasterize(((p, 1) for p in polys), out_shape=shape,
                                        transform=transform, fill=0, dtype="uint8")
    return burnt.astype(bool)


def _xy_rows(path: Path) -> np.ndarray:
    with Path(path).open(encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0].strip()]
    return np.array([[float(r[0]), float(r[1])] for r in rows], dtype=float)


def read_dem(case_dir: Path) -> tuple[np.ndarray, Affine]:
    """The bare-earth DEM from ``topography1.zip`` (ESRI ASCII) as float64, NaN for NODATA."""
    with rasterio.open(f"/vsizip/{Path(case_dir).resolve()}/topography1.zip/topography1.asc") as ds:
        z = ds.read(1, masked=True).astype(np.float64)
        return z.filled(np.nan), ds.transform


def read_observations(path: Path) -> list[Observation]:
    """``ObservationPoints.csv``: x, y, ID, draft and final observed stage, TUFLOW stage."""
    with Path(path).open(encoding="utf-8", newline="") as fh:
        rows = [[v.strip() for v in r] for r in csv.reader(fh) if r]
    return [Observation(r[2], float(r[0]), float(r[1]), float(r[4]), float(r[3]), float(r[5]))
            for r in rows[1:]]


def load_merewether(case_dir: Path) -> MerewetherCase:
    """Read the whole case from ``case_dir`` (``../shared/realdata/merewether``)."""
    case_dir = Path(case_dir)
    z, transform = read_dem(case_dir)
    houses = {p.stem: Polygon(_xy_rows(p)) for p in sorted((case_dir / "houses").glob("*.csv"))
              if p.stem not in UNUSED_HOUSES}
    transect = np.loadtxt(case_dir / "Observations" / "Transect1_velocity_depth.csv",
                          delimiter=",", skiprows=1)
    return MerewetherCase(
        elevation_m=z,
        transform=transform,
        crs=CRS.from_epsg(CRS_EPSG),
        houses=houses,
        road=Polygon(_xy_rows(case_dir / "Road" / "RoadPolygon.csv")),
        extent=Polygon(_xy_rows(case_dir / "extent.csv")),
        observations=read_observations(case_dir / "Observations" / "ObservationPoints.csv"),
        transect_distance_m=transect[:, 0],
        transect_speed_m_s=transect[:, 1],
        transect_depth_m=transect[:, 2],
    )
