"""Loaders for standard formats: DEM/DSM GeoTIFFs (rasterio) and vector layers (pyogrio).

Every loader rejects bad input with a `TwinValidationError` naming the file, the field and
the reason; nothing is filled in or guessed silently. Rasters are reprojected with
`rasterio.warp.reproject` (bilinear) and vector layers with pyproj (via geopandas).
"""

from __future__ import annotations

import warnings as _warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from rasterio import features
from rasterio.crs import CRS as RioCRS
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import Resampling, reproject

from citytwin.twin.errors import TwinValidationError
from citytwin.twin.model import BUILDING_COLUMNS
from citytwin.twin.terrain import Terrain
from citytwin.twin.validation import _listing, check_crs

try:  # GDAL errors raised while reading (truncated strips, bad tags)
    from rasterio._err import CPLE_BaseError as _GDALError
except ImportError:  # pragma: no cover - private module moved
    _GDALError = RasterioError

#: Attribute (``GeoDataFrame.attrs``) where `load_layer` records the file it read.
SOURCE_ATTR = "source"
#: Encoding tried when a DBF cannot be decoded with the encoding GDAL picked (.cpg/LDID).
FALLBACK_DBF_ENCODING = "ISO-8859-1"
#: Largest error (pixels) GDAL's approximate coordinate transformer may make when warping.
#: GDAL's default, 0.125 px, shifts elevations by up to an eighth of a cell; 0.01 px keeps
#: the error well below a centimetre of elevation on ordinary slopes.
WARP_TOLERANCE_PX = 0.01


# --------------------------------------------------------------------------- CRS helpers


def parse_crs(value, source: str, field: str = "crs") -> CRS:
    """A pyproj CRS from an EPSG code, ``"EPSG:nnnn"``, WKT, PROJ string or CRS object."""
    try:
        crs = CRS.from_user_input(value)
    except CRSError as exc:
        raise TwinValidationError(source, f"cannot understand CRS {value!r}: {exc}",
                                  field=field) from exc
    return normalise_crs(crs)


def normalise_crs(crs: CRS) -> CRS:
    """The EPSG definition of ``crs`` when it is equivalent to one, else ``crs`` itself.

    A GeoTIFF's WKT1 for EPSG:3007 and ``CRS.from_epsg(3007)`` compare equal but print
    differently; using the EPSG object gives one canonical CRS per twin. When no EPSG
    definition is equivalent the very same object is returned (`rio_crs` relies on it).
    """
    code = crs.to_epsg()
    if code is not None:
        try:
            candidate = CRS.from_epsg(code)
        except CRSError:  # pragma: no cover - code unknown to this PROJ database
            return crs
        if candidate == crs:
            return candidate
    return crs


def _projected(crs: CRS, source: str, field: str) -> CRS:
    check_crs(crs, source, field=field)
    return crs


# --------------------------------------------------------------------------- rasters


def load_dem(path, *, target_crs=None, band: int = 1) -> Terrain:
    """Read an elevation raster (DEM or DSM) as a `Terrain` in a projected CRS (metres).

    - The file's CRS is used; a file without one needs ``target_crs`` (then taken to be the
      file's CRS). A geographic file needs a projected ``target_crs``.
    - When ``target_crs`` differs from the file's CRS (or the cells are rotated / not square)
      the raster is reprojected with bilinear resampling onto square north-up cells whose
      size keeps the number of cells along the diagonal (GDAL's suggestion, rounded to the
      mm); the grid is the axis-aligned rectangle inside the reprojected outline (less one
      cell of margin, for nearly north-up sources), so no cell is extrapolated.
    - NaN and nodata cells are a fatal error naming their count and the first row/col: the
      twin needs a complete DEM and nothing is filled silently.
    - Float32 data stay float32; integer data become float64.
    """
    path = Path(path)
    src = str(path)
    target = None
    if target_crs is not None:
        target = _projected(parse_crs(target_crs, src, "target_crs"), src, "target_crs")
    if not path.is_file():
        raise TwinValidationError(src, "file does not exist")
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                if not 1 <= band <= ds.count:
                    raise TwinValidationError(src, f"band {band} does not exist (the file has "
                                              f"{ds.count} band(s))", field="band")
                data = ds.read(band)
                valid = ds.read_masks(band) > 0
                nodata = ds.nodatavals[band - 1]
                file_crs = ds.crs
                transform = ds.transform
    except (RasterioError, _GDALError) as exc:
        raise TwinValidationError(src, f"cannot be read as a raster (corrupt or not a "
                                  f"GeoTIFF?): {exc}") from exc
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise TwinValidationError(src, f"elevation must be numeric, got {data.dtype}",
                                  field=f"band {band}")
    if np.issubdtype(data.dtype, np.floating):
        valid &= np.isfinite(data)
    bad = ~valid
    if bad.any():
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise TwinValidationError(
            src, f"{int(bad.sum())} of {data.size} cells are nodata/NaN (nodata value "
            f"{nodata}); first at row {r}, col {c}; the twin needs a complete DEM: fill or crop "
            "the holes first (nothing is filled silently)", field=f"band {band}")
    if transform == Affine.identity():
        raise TwinValidationError(src, "has no georeferencing (no geotransform: cell size and "
                                  "position unknown)", field="transform")
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64)
    if file_crs is None:
        if target is None:
            raise TwinValidationError(src, "has no CRS; pass target_crs / --crs", field="crs")
        source_crs = target
    else:
        source_crs = normalise_crs(CRS.from_wkt(file_crs.to_wkt()))
        if target is None:
            if source_crs.is_geographic:
                raise TwinValidationError(
                    src, f"CRS {source_crs.to_string()} is geographic (degrees); pass a "
                    "projected target_crs / --crs in metres", field="crs")
            target = _projected(source_crs, src, "crs")
    square = (transform.b == 0 and transform.d == 0 and transform.a > 0
              and abs(transform.a + transform.e) <= 1e-9 * transform.a)
    if target == source_crs and square:
        return Terrain(elevation_m=data, transform=transform, crs=target)
    out, out_transform = _warp_to_square_grid(data, transform, source_crs, target, src)
    return Terrain(elevation_m=out, transform=out_transform, crs=target)


def rio_crs(crs: CRS) -> RioCRS:
    """``crs`` for rasterio: by EPSG code when `normalise_crs` finds an equivalent EPSG
    definition (GDAL then writes the canonical EPSG georeferencing), else from its WKT."""
    canonical = normalise_crs(crs)
    if canonical is not crs:
        return RioCRS.from_epsg(canonical.to_epsg())
    return RioCRS.from_wkt(crs.to_wkt())


def _warp_to_square_grid(
    data: np.ndarray, transform: Affine, src_crs: CRS, dst_crs: CRS, src: str
) -> tuple[np.ndarray, Affine]:
    """Bilinear reprojection onto square north-up cells inside the data's footprint."""
    rows, cols = data.shape
    rio_src, rio_dst = rio_crs(src_crs), rio_crs(dst_crs)
    # The outline of the source grid (densified edges) in the target CRS.
    t = np.linspace(0.0, 1.0, 33)
    edges = {
        "top": (t * cols, np.zeros_like(t)), "bottom": (t * cols, np.full_like(t, rows)),
        "left": (np.zeros_like(t), t * rows), "right": (np.full_like(t, cols), t * rows),
    }
    to_dst = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    # Cell size as GDAL suggests it (the number of cells along the grid's diagonal is kept),
    # rounded to the millimetre.
    (dx0, dx1), (dy0, dy1) = to_dst.transform(*(transform @ (np.array([0.0, cols]),
                                                             np.array([0.0, rows]))))
    cell = round(float(np.hypot(dx1 - dx0, dy1 - dy0) / np.hypot(rows, cols)), 3)
    out = {}
    for name, (c, r) in edges.items():
        x, y = transform @ (c, r)
        out[name] = to_dst.transform(np.asarray(x), np.asarray(y))
    xmin = float(np.max(out["left"][0])) if transform.a > 0 else float(np.max(out["right"][0]))
    xmax = float(np.min(out["right"][0])) if transform.a > 0 else float(np.min(out["left"][0]))
    top, bottom = ("top", "bottom") if transform.e < 0 else ("bottom", "top")
    ymax = float(np.min(out[top][1]))
    ymin = float(np.max(out[bottom][1]))
    if not all(np.isfinite([xmin, xmax, ymin, ymax, cell])) or cell <= 0:
        raise TwinValidationError(src, f"cannot be reprojected to {dst_crs.to_string()}: the "
                                  "extent falls outside the target CRS's area", field="crs")
    # One cell of margin, snapped inward to multiples of the cell size.
    x0 = np.ceil((xmin + cell) / cell) * cell
    y1 = np.floor((ymax - cell) / cell) * cell
    n_cols = int(np.floor((xmax - cell - x0) / cell))
    n_rows = int(np.floor((y1 - (ymin + cell)) / cell))
    if n_cols < 2 or n_rows < 2:
        raise TwinValidationError(src, f"too small after reprojection to "
                                  f"{dst_crs.to_string()} ({n_rows} × {n_cols} cells)",
                                  field="crs")
    dst_transform = Affine(cell, 0.0, float(x0), 0.0, -cell, float(y1))
    dest = np.full((n_rows, n_cols), np.nan, dtype=np.float64)
    reproject(
        source=data.astype(np.float64), destination=dest, src_transform=transform,
        src_crs=rio_src, dst_transform=dst_transform, dst_crs=rio_dst,
        resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan,
        tolerance=WARP_TOLERANCE_PX,
    )
    holes = ~np.isfinite(dest)
    if holes.any():  # pragma: no cover - the inner grid keeps a one-cell margin
        r, c = (int(v) for v in np.argwhere(holes)[0])
        raise TwinValidationError(src, f"{int(holes.sum())} cells are empty after reprojection; "
                                  f"first at row {r}, col {c}", field="crs")
    if data.dtype == np.float32:
        dest = dest.astype(np.float32)
    return dest, dst_transform


def resample_to_grid(raster: Terrain, grid: Terrain) -> np.ndarray:
    """``raster`` resampled (bilinear) onto ``grid``'s cells; NaN where it has no data."""
    same = (raster.shape == grid.shape and raster.transform == grid.transform
            and raster.crs == grid.crs)
    if same:
        return np.asarray(raster.elevation_m, dtype=np.float64)
    dest = np.full(grid.shape, np.nan, dtype=np.float64)
    reproject(
        source=np.asarray(raster.elevation_m, dtype=np.float64), destination=dest,
        src_transform=raster.transform, src_crs=rio_crs(raster.crs),
        dst_transform=grid.transform, dst_crs=rio_crs(grid.crs),
        resampling=Resampling.bilinear, src_nodata=np.nan, dst_nodata=np.nan,
        tolerance=WARP_TOLERANCE_PX,
    )
    return dest


# --------------------------------------------------------------------------- vector layers


def load_layer(
    path,
    *,
    layer: str | None = None,
    target_crs,
    source_crs=None,
    id_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a GeoPackage / GeoJSON / Shapefile layer reprojected to ``target_crs``.

    - ``layer`` is required when the file holds more than one layer.
    - ``source_crs`` is the CRS assumed when the file declares none; a file with its own CRS
      keeps it. Without either the layer is rejected.
    - Shapefile DBFs are decoded with the encoding GDAL picks (.cpg, DBF language id, else
      ISO-8859-1); if that fails (e.g. a .cpg claiming UTF-8 over Latin-1 bytes) the file is
      read again as ISO-8859-1, so field names such as ``OPERATÖR`` survive.
    - ``id_column``: its values (as text; integral floats without ``.0``) become the first
      column ``id``; they must be present and unique.

    The result has a fresh RangeIndex, ``crs`` equal to ``target_crs`` and
    ``attrs["source"]`` set to the file path (used in later error messages).
    """
    path = Path(path)
    src = str(path)
    target = _projected(parse_crs(target_crs, src, "target_crs"), src, "target_crs")
    if not path.exists():
        raise TwinValidationError(src, "file does not exist")
    try:
        layers = pyogrio.list_layers(path)
    except (pyogrio.errors.DataSourceError, OSError) as exc:
        raise TwinValidationError(src, f"cannot be read as a vector layer: {exc}") from exc
    names = [str(n) for n in layers[:, 0]]
    if layer is None and len(names) > 1:
        raise TwinValidationError(src, f"has {len(names)} layers ({', '.join(names)}); pass "
                                  "layer=", field="layer")
    if layer is not None and layer not in names:
        raise TwinValidationError(src, f"no layer {layer!r} (layers: {', '.join(names)})",
                                  field="layer")
    gdf = _read_vector(path, layer)
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise TwinValidationError(src, "has no geometry column", field=layer)
    where = layer or None
    if gdf.crs is None:
        if source_crs is None:
            raise TwinValidationError(src, "has no CRS; pass source_crs / --crs", field=where)
        gdf = gdf.set_crs(parse_crs(source_crs, src, "source_crs"))
    ids = None
    if id_column is not None:
        ids = _ids_from_column(gdf, id_column, src)
    gdf = gdf.to_crs(target)
    coords, owner = shapely.get_coordinates(gdf.geometry.to_numpy(), return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    if bad.any():
        i = int(owner[bad][0])
        raise TwinValidationError(
            src, f"feature could not be transformed to {target.to_string()} (coordinates "
            "outside the projection's area of use)", field=where,
            feature_id=ids[i] if ids is not None else f"row {i}")
    gdf = gdf.set_crs(target, allow_override=True).reset_index(drop=True)
    if ids is not None:
        gdf = gdf.drop(columns=["id"], errors="ignore")
        gdf.insert(0, "id", pd.Series(ids, dtype="str"))
    gdf.attrs[SOURCE_ATTR] = src
    return gdf


def _read_vector(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    src = str(path)
    try:
        try:
            return gpd.read_file(path, layer=layer, engine="pyogrio")
        except UnicodeDecodeError:
            return gpd.read_file(path, layer=layer, engine="pyogrio",
                                 encoding=FALLBACK_DBF_ENCODING)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError,
            pyogrio.errors.FieldError, pyogrio.errors.GeometryError, UnicodeDecodeError,
            OSError) as exc:
        raise TwinValidationError(src, f"cannot be read as a vector layer: {exc}",
                                  field=layer) from exc


def _ids_from_column(gdf: pd.DataFrame, column: str, src: str) -> np.ndarray:
    if column not in gdf.columns:
        raise TwinValidationError(src, f"no such id column (columns: "
                                  f"{', '.join(map(str, gdf.columns))})", field=column)
    values = gdf[column]
    null = values.isna().to_numpy()
    if null.any():
        raise TwinValidationError(src, f"row {int(np.flatnonzero(null)[0])} has no id "
                                  f"({int(null.sum())} rows without id)", field=column)
    ids = np.array([_id_text(v) for v in values], dtype=object)
    dup = pd.Series(ids).duplicated(keep=False).to_numpy()
    if dup.any():
        first = ids[int(np.flatnonzero(dup)[0])]
        raise TwinValidationError(src, f"duplicate id (appears {int((ids == first).sum())} "
                                  "times)", field=column, feature_id=first)
    return ids


def _id_text(value) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------- buildings


def buildings_from_footprints(
    footprints: gpd.GeoDataFrame,
    terrain: Terrain,
    *,
    dsm: Terrain | None = None,
    height_column: str | None = None,
    default_height_m: float | None = None,
    use_column: str | None = None,
    year_column: str | None = None,
    id_column: str | None = None,
    occupancy_m2_per_person: float = 30.0,
    floor_height_m: float = 3.0,
    min_dsm_height_m: float = 2.0,
    clip_to_terrain: bool = True,
    source: str | None = None,
) -> tuple[gpd.GeoDataFrame, list[str]]:
    """A buildings layer (``BUILDING_COLUMNS`` + footprint) from footprint polygons.

    Heights, per building, from the first of these that gives a finite value > 0:
    ``height_column``; the median of DSM − DEM over the cells whose centres lie inside the
    footprint (the cell under a representative point for footprints smaller than a cell;
    the DSM is resampled to the DEM grid when the grids differ); ``default_height_m``. A
    DSM estimate below ``min_dsm_height_m`` (default 2 m: lower than a storey — a courtyard,
    a demolished building, a misregistered polygon) does not count. Buildings left without
    a height are dropped with a warning.

    ``floors = max(1, round(height / floor_height_m))``; ``occupants = round(floors × footprint
    area / occupancy_m2_per_person)``; ``use`` from ``use_column`` else ``"unknown"``;
    ``year_built`` (pandas ``Int64``, ``<NA>`` when unknown) from ``year_column``.

    Ids: the ``id_column`` values as text, else ``B-<n>`` with ``n`` the 0-based source row
    (zero-padded to 5 digits), so ids do not change when other buildings are dropped.

    Footprints without geometry or without a polygonal part are dropped with a warning;
    invalid ones are repaired (``shapely.make_valid``, polygonal parts kept) with a warning.
    With ``clip_to_terrain`` footprints entirely outside the terrain are dropped and those
    crossing its edge are clipped to it (warnings say how many); otherwise a footprint not
    entirely inside is a fatal error naming it.

    Returns ``(buildings, warnings)``; errors name ``source`` (default: the file recorded by
    `load_layer`).
    """
    src = source or footprints.attrs.get(SOURCE_ATTR, "<footprints>")
    for name, value in (("occupancy_m2_per_person", occupancy_m2_per_person),
                        ("floor_height_m", floor_height_m)):
        if not (np.isfinite(value) and value > 0):
            raise TwinValidationError(src, f"must be finite and > 0, got {value!r}", field=name)
    if default_height_m is not None and not (np.isfinite(default_height_m)
                                             and default_height_m > 0):
        raise TwinValidationError(src, f"must be finite and > 0, got {default_height_m!r}",
                                  field="default_height_m")
    if height_column is None and dsm is None and default_height_m is None:
        raise TwinValidationError(src, "no source of building heights: give height_column, a "
                                  "DSM or default_height_m", field="height_m")
    for col in (height_column, use_column, year_column):
        if col is not None and col not in footprints.columns:
            raise TwinValidationError(src, f"no such column (columns: "
                                      f"{', '.join(map(str, footprints.columns))})", field=col)
    if footprints.crs is None:
        raise TwinValidationError(src, "footprints have no CRS", field="geometry")
    if footprints.crs != terrain.crs:
        footprints = footprints.to_crs(terrain.crs)
    footprints = footprints.reset_index(drop=True)
    warnings: list[str] = []
    if id_column is not None:
        ids = _ids_from_column(footprints, id_column, src)
    else:
        ids = np.array([f"B-{n:05d}" for n in range(len(footprints))], dtype=object)

    geoms = footprints.geometry.to_numpy().copy()
    keep = np.ones(len(geoms), dtype=bool)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        keep &= ~missing
        warnings.append(f"{src}: {int(missing.sum())} footprint(s) without geometry were "
                        f"dropped: {_listing(ids[missing])}")
    invalid = keep & ~shapely.is_valid(geoms)
    if invalid.any():
        reasons = [f"{ids[i]}: {shapely.is_valid_reason(geoms[i])}"
                   for i in np.flatnonzero(invalid)]
        geoms[invalid] = [_polygonal(g) for g in
                          shapely.make_valid(geoms[invalid], method="structure",
                                             keep_collapsed=False)]
        warnings.append(f"{src}: {int(invalid.sum())} invalid footprint(s) were repaired "
                        f"({_listing(reasons)})")
    not_poly = keep & np.array([g is None or g.geom_type not in ("Polygon", "MultiPolygon")
                                or g.is_empty for g in geoms])
    if not_poly.any():
        keep &= ~not_poly
        warnings.append(f"{src}: {int(not_poly.sum())} footprint(s) are not polygons and were "
                        f"dropped: {_listing(ids[not_poly])}")

    extent = shapely.box(*terrain.bounds)
    inside = np.zeros(len(geoms), dtype=bool)
    inside[keep] = shapely.covered_by(geoms[keep], extent)
    crossing = keep & ~inside
    if crossing.any():
        if not clip_to_terrain:
            i = int(np.flatnonzero(crossing)[0])
            raise TwinValidationError(
                src, f"footprint lies (partly) outside the terrain extent "
                f"{tuple(round(v, 2) for v in terrain.bounds)}"
                + (f" (and {int(crossing.sum()) - 1} more)" if crossing.sum() > 1 else "")
                + "; pass clip_to_terrain=True to drop/clip them", field="geometry",
                feature_id=ids[i])
        clipped = np.array([_polygonal(g) for g in
                            shapely.intersection(geoms[crossing], extent)], dtype=object)
        gone = np.array([g is None or g.is_empty or g.area == 0 for g in clipped])
        idx = np.flatnonzero(crossing)
        geoms[idx[~gone]] = clipped[~gone]
        keep[idx[gone]] = False
        if gone.any():
            warnings.append(f"{src}: {int(gone.sum())} footprint(s) outside the terrain extent "
                            "were dropped")
        if (~gone).any():
            warnings.append(f"{src}: {int((~gone).sum())} footprint(s) crossing the terrain "
                            f"edge were clipped to it: {_listing(ids[idx[~gone]])}")

    n = len(geoms)
    height = np.full(n, np.nan)
    why = np.array(["no height"] * n, dtype=object)
    if height_column is not None:
        col = pd.to_numeric(footprints[height_column], errors="coerce").to_numpy(dtype=float)
        ok = np.isfinite(col) & (col > 0)
        height[ok] = col[ok]
        for i in np.flatnonzero(~ok):
            why[i] = f"{height_column}={footprints[height_column].iloc[i]!r}"
    if dsm is not None:
        todo = keep & ~np.isfinite(height)
        est = np.full(n, np.nan)
        est[todo] = footprint_heights_from_dsm(geoms[todo], terrain, dsm)
        ok = todo & np.isfinite(est) & (est >= min_dsm_height_m)
        height[ok] = est[ok]
        for i in np.flatnonzero(todo & ~ok):
            why[i] = (f"DSM − DEM median {est[i]:.2f} m" if np.isfinite(est[i])
                      else "no DSM data in footprint")
    if default_height_m is not None:
        height[~np.isfinite(height)] = float(default_height_m)
    no_height = keep & ~np.isfinite(height)
    if no_height.any():
        keep &= ~no_height
        limit = (f"; DSM heights below {min_dsm_height_m} m do not count" if dsm is not None
                 else "")
        detail = [f"{i}: {w}" for i, w in zip(ids[no_height], why[no_height], strict=True)]
        warnings.append(
            f"{src}: height_m: {int(no_height.sum())} building(s) without a usable height were "
            f"dropped{limit} ({_listing(detail)})")

    rows = np.flatnonzero(keep)
    h = height[rows]
    floors = np.maximum(1, np.floor(h / floor_height_m + 0.5)).astype(np.int64)
    area = shapely.area(geoms[rows])
    occupants = np.floor(floors * area / occupancy_m2_per_person + 0.5).astype(np.int64)
    if use_column is not None:
        use = footprints[use_column].iloc[rows].astype(object)
        use = [str(u) if not pd.isna(u) and str(u).strip() else "unknown" for u in use]
    else:
        use = ["unknown"] * len(rows)
    if year_column is not None:
        years = pd.to_numeric(footprints[year_column].iloc[rows], errors="coerce")
        year = pd.array(pd.Series(np.floor(years.to_numpy(dtype=float) + 0.5)).astype("Int64"))
    else:
        year = pd.array([pd.NA] * len(rows), dtype="Int64")
    out = gpd.GeoDataFrame(
        {
            "id": pd.Series(list(ids[rows]), dtype="str"),
            "height_m": h.astype(np.float64),
            "floors": floors,
            "use": pd.Series(use, dtype="str"),
            "occupants": occupants,
            "year_built": year,
        },
        geometry=gpd.GeoSeries(list(geoms[rows]), crs=terrain.crs),
        crs=terrain.crs,
    )
    return out[list(BUILDING_COLUMNS) + ["geometry"]], warnings


def footprint_heights_from_dsm(geoms, terrain: Terrain, dsm: Terrain) -> np.ndarray:
    """Median DSM − DEM (m) over the cells whose centres lie inside each footprint.

    Where footprints overlap, the later one owns the shared cells. A footprint that covers
    no cell centre takes the cell under its representative point. NaN where no data.
    """
    geoms = list(geoms)
    out = np.full(len(geoms), np.nan)
    if not geoms:
        return out
    diff = resample_to_grid(dsm, terrain) - np.asarray(terrain.elevation_m, dtype=np.float64)
    labels = features.rasterize(
        [(g, k + 1) for k, g in enumerate(geoms)], out_shape=terrain.shape,
        transform=terrain.transform, fill=0, dtype="int32", all_touched=False,
    )
    cells = (labels > 0) & np.isfinite(diff)
    med = pd.Series(diff[cells]).groupby(labels[cells]).median()
    out[med.index.to_numpy() - 1] = med.to_numpy()
    rows, cols = terrain.shape
    for k in np.flatnonzero(~np.isfinite(out)):
        p = shapely.point_on_surface(geoms[k])
        col, row = ~terrain.transform @ (p.x, p.y)
        r, c = int(np.floor(row)), int(np.floor(col))
        if 0 <= r < rows and 0 <= c < cols:
            out[k] = diff[r, c]
    return out


def _polygonal(geom):
    """The polygonal part of ``geom`` (Polygon/MultiPolygon) or None."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    polys = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")
             and not g.is_empty]
    if not polys:
        return None
    merged = shapely.union_all(polys)
    return merged if merged.geom_type in ("Polygon", "MultiPolygon") else None
