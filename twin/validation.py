"""Validation of a whole `CityTwin`: fatal problems raise, the rest come back as warnings.

Every loader that produces a twin (`twin.realcity.build_twin_from_files`,
`twin.store.load_twin`) and `twin.store.save_twin` run `validate_twin` before handing the twin
on, so bad input is rejected before anything downstream (or on disk) sees it.

Fatal (raises `TwinValidationError` naming the source, the layer/field, the feature id and the
reason; the first problem found, checked in a fixed order):

- the CRS is missing, geographic, or not in metres;
- the terrain is not a 2-D numeric array, has NaN/nodata/infinite cells (the count and the
  first row/col are named), rotated, non-square or not north-up cells, or a CRS other than
  the twin's;
- a layer lacks a required column (``BUILDING_COLUMNS``, ``PLACE_COLUMNS``,
  ``RESERVOIR_COLUMNS``, ``NODE_COLUMNS``, ``LINK_COLUMNS``), has no or a different CRS,
  missing/duplicate ids, or a missing, empty, invalid or wrongly typed geometry;
- a building whose footprint is not entirely inside the terrain extent. The extent is an
  axis-aligned rectangle, so the footprint's bounding box is checked: this catches a footprint
  that is only partly outside even when its centroid is inside (loaders clip such footprints
  to the terrain, see `twin.loaders.buildings_from_footprints`);
- a building height that is not finite or ≤ 0, floors < 1, occupants negative or not finite;
- a link whose from/to node does not exist.

Warnings (returned): a network in more than one connected part, network nodes outside the
terrain, buildings with zero occupants, places (partly) outside the terrain, place kinds the
warning logic does not know.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citytwin.twin.errors import TwinValidationError
from citytwin.twin.model import (
    BUILDING_COLUMNS,
    PLACE_COLUMNS,
    PLACE_KINDS,
    RESERVOIR_COLUMNS,
    CityTwin,
)
from citytwin.twin.network import LINK_COLUMNS, NODE_COLUMNS, PipeNetwork
from citytwin.twin.terrain import Terrain

#: Allowed geometry types per kind of layer (None: any type).
_POLYGONAL = ("Polygon", "MultiPolygon")
#: How many ids a warning lists before "…".
_MAX_LISTED = 5


def validate_twin(twin: CityTwin, source: str = "<twin>") -> list[str]:
    """Check ``twin``; raise `TwinValidationError` on the first fatal problem.

    ``source`` names where the twin came from (a file or folder) and starts every message.
    Returns human-readable warnings for problems that do not stop the twin from being used.
    """
    warnings: list[str] = []
    if not isinstance(twin.name, str) or not twin.name.strip():
        raise TwinValidationError(source, "the twin needs a non-empty name", field="name")
    check_crs(twin.crs, source)
    check_terrain(twin.terrain, source, twin_crs=twin.crs)
    for layer_name, gdf, columns, geom_types in _layers(twin, source):
        check_layer(gdf, layer_name, columns, source, crs=twin.crs, geom_types=geom_types)
    warnings += _check_buildings(twin.buildings, twin.terrain, source)
    for key, net in twin.networks.items():
        warnings += _check_network(key, net, twin.terrain, source)
    warnings += _check_places(twin.places, twin.terrain, source)
    return warnings


def check_crs(crs, source: str, field: str = "crs") -> None:
    """Raise unless ``crs`` is a projected CRS with metre axes."""
    if crs is None:
        raise TwinValidationError(source, "CRS is missing; a twin needs a projected CRS in "
                                  "metres", field=field)
    if crs.is_geographic:
        raise TwinValidationError(
            source, f"CRS {_crs_label(crs)} is geographic (degrees), not projected in metres; "
            "reproject to a projected CRS (e.g. the local UTM zone)", field=field)
    if not crs.is_projected:
        raise TwinValidationError(
            source, f"CRS {_crs_label(crs)} is not a projected CRS (type: {crs.type_name}); "
            "a twin needs a projected CRS in metres", field=field)
    units = {a.unit_name for a in crs.axis_info[:2]}
    factors = {float(a.unit_conversion_factor) for a in crs.axis_info[:2]}
    if not units or units - {"metre", "meter"} or factors != {1.0}:
        raise TwinValidationError(
            source, f"CRS {_crs_label(crs)} has axis units {sorted(units)}, not metres",
            field=field)


def check_terrain(terrain: Terrain, source: str, *, twin_crs=None) -> None:
    """Raise unless the terrain is a complete 2-D grid of square, north-up cells."""
    z = terrain.elevation_m
    if not isinstance(z, np.ndarray) or z.ndim != 2 or z.size == 0:
        shape = getattr(z, "shape", None)
        raise TwinValidationError(source, f"elevation must be a non-empty 2-D array, got shape "
                                  f"{shape}", field="terrain.elevation_m")
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise TwinValidationError(source, f"elevation must be numeric, got dtype {z.dtype}",
                                  field="terrain.elevation_m")
    bad = ~np.isfinite(z)
    n_bad = int(bad.sum())
    if n_bad:
        r, c = (int(v) for v in np.argwhere(bad)[0])
        raise TwinValidationError(
            source, f"{n_bad} of {z.size} cells are NaN/nodata (not finite); first at row {r}, "
            f"col {c}; the twin needs a complete DEM (fill or crop the holes first)",
            field="terrain.elevation_m")
    t = terrain.transform
    if not all(np.isfinite([t.a, t.b, t.c, t.d, t.e, t.f])):
        raise TwinValidationError(source, f"transform has non-finite terms: {tuple(t)[:6]}",
                                  field="terrain.transform")
    if t.b != 0.0 or t.d != 0.0:
        raise TwinValidationError(
            source, f"cells are rotated or sheared (transform b={t.b}, d={t.d}); the twin needs "
            "north-up cells: reproject the DEM", field="terrain.transform")
    if not (t.a > 0.0 and t.e < 0.0):
        raise TwinValidationError(
            source, f"cells are not north-up (transform a={t.a}, e={t.e}; need a > 0, e < 0)",
            field="terrain.transform")
    if abs(t.a + t.e) > 1e-9 * t.a:
        raise TwinValidationError(
            source, f"cells are not square ({t.a} m × {-t.e} m); reproject the DEM to square "
            "cells", field="terrain.transform")
    if terrain.crs is None:
        raise TwinValidationError(source, "terrain has no CRS", field="terrain.crs")
    if twin_crs is not None and terrain.crs != twin_crs:
        raise TwinValidationError(
            source, f"terrain CRS {_crs_label(terrain.crs)} differs from the twin CRS "
            f"{_crs_label(twin_crs)}", field="terrain.crs")


def check_layer(
    gdf: gpd.GeoDataFrame,
    layer: str,
    columns: tuple[str, ...],
    source: str,
    *,
    crs=None,
    geom_types: tuple[str, ...] | None = None,
) -> None:
    """Raise on missing columns, a wrong CRS, missing/duplicate ids or bad geometries."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TwinValidationError(source, f"must be a GeoDataFrame, got {type(gdf).__name__}",
                                  field=layer)
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise TwinValidationError(
            source, f"missing required column(s) {', '.join(map(repr, missing))} "
            f"(has {', '.join(map(repr, map(str, gdf.columns)))})", field=layer)
    try:
        geoms = gdf.geometry
    except AttributeError as exc:
        raise TwinValidationError(source, "has no geometry column", field=layer) from exc
    if gdf.crs is None and len(gdf):
        raise TwinValidationError(source, "layer has no CRS", field=layer)
    if crs is not None and gdf.crs is not None and gdf.crs != crs:
        raise TwinValidationError(
            source, f"layer CRS {_crs_label(gdf.crs)} differs from the twin CRS "
            f"{_crs_label(crs)}", field=layer)
    ids = gdf["id"]
    null = ids.isna().to_numpy()
    if null.any():
        row = int(np.flatnonzero(null)[0])
        raise TwinValidationError(source, f"row {row} has no id ({int(null.sum())} rows "
                                  "without id)", field=f"{layer}.id")
    as_text = ids.astype(str)
    dup = as_text.duplicated(keep=False).to_numpy()
    if dup.any():
        first = as_text.iloc[int(np.flatnonzero(dup)[0])]
        n = int((as_text == first).sum())
        raise TwinValidationError(source, f"duplicate id (appears {n} times; "
                                  f"{int(dup.sum())} rows share an id with another)",
                                  field=f"{layer}.id", feature_id=first)
    values = geoms.to_numpy()
    none = shapely.is_missing(values)
    if none.any():
        i = int(np.flatnonzero(none)[0])
        raise TwinValidationError(source, "feature has no geometry", field=f"{layer}.geometry",
                                  feature_id=as_text.iloc[i])
    empty = shapely.is_empty(values)
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise TwinValidationError(source, "geometry is empty", field=f"{layer}.geometry",
                                  feature_id=as_text.iloc[i])
    coords, owner = shapely.get_coordinates(values, return_index=True)
    coords_ok = np.ones(len(values), dtype=bool)
    coords_ok[owner[~np.isfinite(coords).all(axis=1)]] = False
    valid = shapely.is_valid(values) & coords_ok
    if not valid.all():
        i = int(np.flatnonzero(~valid)[0])
        reason = (shapely.is_valid_reason(values[i]) if coords_ok[i]
                  else "non-finite coordinates")
        raise TwinValidationError(source, f"invalid geometry: {reason}",
                                  field=f"{layer}.geometry", feature_id=as_text.iloc[i])
    if geom_types is not None and len(values):
        kinds = shapely.get_type_id(values)
        allowed = {_TYPE_IDS[t] for t in geom_types}
        wrong = ~np.isin(kinds, list(allowed))
        if wrong.any():
            i = int(np.flatnonzero(wrong)[0])
            raise TwinValidationError(
                source, f"geometry is a {values[i].geom_type}; this layer takes "
                f"{' or '.join(geom_types)}", field=f"{layer}.geometry",
                feature_id=as_text.iloc[i])


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4,
             "MultiLineString": 5, "MultiPolygon": 6}


def _layers(twin: CityTwin, source: str):
    yield "buildings", twin.buildings, BUILDING_COLUMNS, _POLYGONAL
    yield "places", twin.places, PLACE_COLUMNS, None
    yield "reservoirs", twin.reservoirs, RESERVOIR_COLUMNS, None
    for key, net in twin.networks.items():
        if not isinstance(key, str) or not key:
            raise TwinValidationError(source, f"network names must be non-empty strings, got "
                                      f"{key!r}", field="networks")
        yield f"{key}_nodes", net.nodes, NODE_COLUMNS, ("Point",)
        yield f"{key}_links", net.links, LINK_COLUMNS, ("LineString",)


def _check_buildings(b: gpd.GeoDataFrame, terrain: Terrain, source: str) -> list[str]:
    if len(b) == 0:
        return []
    ids = b["id"].astype(str).to_numpy()
    height = pd.to_numeric(b["height_m"], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(height) & (height > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TwinValidationError(
            source, f"height must be finite and > 0 m, got {_show(b['height_m'].iloc[i])}"
            + _more(int(bad.sum()) - 1, "building"), field="buildings.height_m",
            feature_id=ids[i])
    floors = pd.to_numeric(b["floors"], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(floors) & (floors >= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TwinValidationError(source, f"floors must be ≥ 1, got {_show(b['floors'].iloc[i])}"
                                  + _more(int(bad.sum()) - 1, "building"),
                                  field="buildings.floors", feature_id=ids[i])
    occ = pd.to_numeric(b["occupants"], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(occ) & (occ >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise TwinValidationError(source, f"occupants must be finite and ≥ 0, got "
                                  f"{_show(b['occupants'].iloc[i])}"
                                  + _more(int(bad.sum()) - 1, "building"),
                                  field="buildings.occupants", feature_id=ids[i])
    outside = ~_inside_extent(b, terrain)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        bx = tuple(round(float(v), 2) for v in b.geometry.iloc[i].bounds)
        tx = tuple(round(float(v), 2) for v in terrain.bounds)
        raise TwinValidationError(
            source, f"footprint lies (partly) outside the terrain extent (footprint bounds {bx}, "
            f"terrain bounds {tx})" + _more(int(outside.sum()) - 1, "building"),
            field="buildings.geometry", feature_id=ids[i])
    warnings = []
    zero = occ == 0
    if zero.any():
        warnings.append(f"{source}: buildings: {int(zero.sum())} building(s) have zero "
                        f"occupants: {_listing(ids[zero])}")
    return warnings


def _check_network(key: str, net: PipeNetwork, terrain: Terrain, source: str) -> list[str]:
    links = net.links
    if len(links):
        known = set(net.nodes["id"].astype(str))
        frm = links["from_node"].astype(str)
        to = links["to_node"].astype(str)
        miss_from = ~frm.isin(known).to_numpy()
        miss_to = ~to.isin(known).to_numpy()
        bad = miss_from | miss_to
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            parts = []
            if miss_from[i]:
                parts.append(f"from_node {frm.iloc[i]!r}")
            if miss_to[i]:
                parts.append(f"to_node {to.iloc[i]!r}")
            raise TwinValidationError(
                source, f"link refers to a node that does not exist: {' and '.join(parts)} "
                f"is not in {key}_nodes" + _more(int(bad.sum()) - 1, "dangling link"),
                field=f"{key}_links.{'from_node' if miss_from[i] else 'to_node'}",
                feature_id=str(links["id"].iloc[i]))
    warnings = []
    if len(net.nodes):
        labels = net.components()
        uniq, first, counts = np.unique(labels, return_index=True, return_counts=True)
        if len(uniq) > 1:
            order = sorted(range(len(uniq)), key=lambda k: (-counts[k], first[k]))
            node_ids = net.nodes["id"].astype(str).to_numpy()
            minor = [f"{counts[k]} node(s) (e.g. {node_ids[first[k]]})" for k in order[1:]]
            more = len(minor) - _MAX_LISTED
            listed = "; ".join(minor[:_MAX_LISTED]) + (f"; … and {more} more" if more > 0
                                                       else "")
            warnings.append(
                f"{source}: {key} network has {len(uniq)} connected parts: the main part has "
                f"{counts[order[0]]} nodes; minor parts: {listed}")
        outside = ~_inside_extent(net.nodes, terrain)
        if outside.any():
            warnings.append(f"{source}: {key}_nodes: {int(outside.sum())} node(s) lie outside "
                            f"the terrain: {_listing(net.nodes['id'].astype(str)[outside])}")
    return warnings


def _check_places(places: gpd.GeoDataFrame, terrain: Terrain, source: str) -> list[str]:
    if len(places) == 0:
        return []
    warnings = []
    ids = places["id"].astype(str).to_numpy()
    outside = ~_inside_extent(places, terrain)
    if outside.any():
        warnings.append(f"{source}: places: {int(outside.sum())} place(s) lie (partly) "
                        f"outside the terrain: {_listing(ids[outside])}")
    unknown = ~places["kind"].astype(str).isin(PLACE_KINDS).to_numpy()
    if unknown.any():
        kinds = sorted(set(places["kind"].astype(str)[unknown]))
        warnings.append(f"{source}: places: {int(unknown.sum())} place(s) have a kind the "
                        f"warning logic does not know ({', '.join(kinds)}): "
                        f"{_listing(ids[unknown])}")
    return warnings


def _inside_extent(gdf: gpd.GeoDataFrame, terrain: Terrain) -> np.ndarray:
    """True where a feature's bounding box lies entirely inside the terrain extent."""
    xmin, ymin, xmax, ymax = terrain.bounds
    bounds = shapely.bounds(gdf.geometry.to_numpy())
    return ((bounds[:, 0] >= xmin) & (bounds[:, 1] >= ymin)
            & (bounds[:, 2] <= xmax) & (bounds[:, 3] <= ymax))


def _listing(ids) -> str:
    """The first `_MAX_LISTED` ids, comma-separated, then how many more (`twin.loaders` uses
    it too)."""
    ids = [str(i) for i in ids]
    head = ", ".join(ids[:_MAX_LISTED])
    return head + (f", … ({len(ids) - _MAX_LISTED} more)" if len(ids) > _MAX_LISTED else "")


def _more(n: int, what: str) -> str:
    return f" (and {n} more {what}{'s' if n != 1 else ''})" if n > 0 else ""


def _show(value) -> str:
    """repr of a value, numpy scalars shown as plain Python numbers."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _crs_label(crs) -> str:
    try:
        auth = crs.to_authority()
    except Exception:  # pragma: no cover - pyproj quirks on exotic CRSs
        auth = None
    return f"{auth[0]}:{auth[1]}" if auth else repr(crs.name)
