"""Sensor inventories of an incident: read (GeoJSON, GeoPackage) and reprojected; written.

Sensor inventory: GeoJSON (a ``crs`` member, or RFC 7946 longitude/latitude — projected
coordinates without a ``crs`` member are refused) or
GeoPackage; point features with properties ``sensor_id``, ``type_id``, ``quantity``,
``unit`` and optionally ``z_m``/``height_m`` (height above ground; or the point's third
coordinate), ``group_id``, ``interval_s``, ``asset_network``, ``asset_id``. Reprojected to
the twin's CRS.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer

from citytwin.twin.errors import InputError

INVENTORY_REQUIRED = ("sensor_id", "type_id", "quantity", "unit")


def read_inventory(path: str | Path, target_crs: str | CRS) -> pd.DataFrame:
    """A sensor inventory (GeoJSON with ``crs`` or GeoPackage) in ``target_crs``.

    Returns a frame with ``sensors_sim.network.COLUMNS`` (``interval_s`` NaN when absent).
    """
    path = Path(path)
    src = str(path)
    if not path.is_file():
        raise InputError(src, "no such file")
    ext = path.suffix.lower()
    if ext in (".geojson", ".json"):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(src, f"not valid JSON ({exc.msg})") from None
        crs_member = doc.get("crs") if isinstance(doc, dict) else None
        if crs_member:
            try:
                crs = CRS.from_user_input(crs_member.get("properties", {}).get("name"))
            except Exception as exc:  # noqa: BLE001 - pyproj raises several types
                raise InputError(src, f"unknown CRS {crs_member!r}", field="crs") from exc
        else:
            crs = None  # RFC 7946: longitude/latitude on WGS84, if the coordinates are
        feats = doc.get("features") or []
        records, coords = [], []
        for k, f in enumerate(feats):
            geom = (f or {}).get("geometry") or {}
            if geom.get("type") != "Point":
                raise InputError(src, f"geometry must be a Point, got {geom.get('type')!r}",
                                 field="geometry", feature_id=f"#{k}")
            records.append(dict(f.get("properties") or {}))
            coords.append(list(geom.get("coordinates") or []) + [math.nan] * 3)
        props = pd.DataFrame(records)
        xyz = np.array([c[:3] for c in coords], dtype=float).reshape(-1, 3)
        if crs is None:
            lonlat = (np.abs(xyz[:, 0]) <= 180) & (np.abs(xyz[:, 1]) <= 90)
            if not lonlat.all():
                raise InputError(src, "no CRS: the file has no 'crs' member and its "
                                 "coordinates are not longitude/latitude (RFC 7946); add "
                                 "e.g. {\"type\": \"name\", \"properties\": {\"name\": "
                                 "\"EPSG:32650\"}}", field="crs")
            crs = CRS.from_epsg(4326)
    elif ext == ".gpkg":
        import geopandas as gpd

        try:
            gdf = gpd.read_file(path)
        except Exception as exc:  # noqa: BLE001 - pyogrio raises several types
            raise InputError(src, f"not a readable GeoPackage ({exc})") from exc
        if gdf.crs is None:
            raise InputError(src, "no CRS on the layer", field="crs")
        crs = gdf.crs
        if not (gdf.geom_type == "Point").all():
            k = int(np.flatnonzero((gdf.geom_type != "Point").to_numpy())[0])
            raise InputError(src, "geometry must be a Point", field="geometry",
                             feature_id=f"#{k}")
        has_z = bool(gdf.has_z.any())
        xyz = np.column_stack([gdf.geometry.x, gdf.geometry.y,
                               gdf.geometry.z if has_z else np.full(len(gdf), np.nan)])
        props = pd.DataFrame(gdf.drop(columns="geometry"))
    else:
        raise InputError(src, f"unsupported inventory format {path.suffix!r} (use .geojson "
                         "or .gpkg)")
    if props.empty:
        raise InputError(src, "empty inventory: no features")
    for c in INVENTORY_REQUIRED:
        if c not in props.columns or props[c].isna().any():
            k = 0 if c not in props.columns else int(np.flatnonzero(props[c].isna())[0])
            raise InputError(src, f"missing property {c!r}", field=c, feature_id=f"#{k}")
    x, y = xyz[:, 0], xyz[:, 1]
    target = CRS.from_user_input(target_crs)
    if not CRS.from_user_input(crs).equals(target):
        x, y = Transformer.from_crs(crs, target, always_xy=True).transform(x, y)
    z = (props["z_m"] if "z_m" in props else props["height_m"] if "height_m" in props
         else pd.Series(xyz[:, 2])).astype(float).fillna(0.0).to_numpy()
    table = pd.DataFrame({
        "sensor_id": props["sensor_id"].astype(str), "type_id": props["type_id"].astype(str),
        "quantity": props["quantity"].astype(str), "unit": props["unit"].astype(str),
        "x_m": np.asarray(x, float), "y_m": np.asarray(y, float), "z_m": z,
        "asset_network": props.get("asset_network", pd.Series([None] * len(props))),
        "asset_id": props.get("asset_id", pd.Series([None] * len(props))),
        "group_id": (props["group_id"].astype(str) if "group_id" in props
                     else pd.Series(["sensors"] * len(props))),
        "interval_s": (props["interval_s"].astype(float) if "interval_s" in props
                       else pd.Series(np.full(len(props), np.nan))),
    })
    bad = ~np.isfinite(table[["x_m", "y_m"]].to_numpy()).all(axis=1)
    if bad.any():
        raise InputError(src, "point coordinates are not finite (after reprojection)",
                         field="geometry", feature_id=table["sensor_id"].iloc[
                             int(np.flatnonzero(bad)[0])])
    dup = table["sensor_id"].duplicated()
    if dup.any():
        raise InputError(src, "duplicate sensor id", field="sensor_id",
                         feature_id=table["sensor_id"][dup].iloc[0])
    return table


def fill_intervals(sensors: pd.DataFrame, obs: pd.DataFrame) -> pd.DataFrame:
    """Fill missing ``interval_s`` per group from the median spacing of its readings."""
    out = sensors.copy()
    if out["interval_s"].notna().all():
        return out
    gid = out.set_index("sensor_id")["group_id"]
    o = obs[["sensor_id", "time_s"]].copy()
    o["group_id"] = gid.reindex(o["sensor_id"]).to_numpy()
    o = o.sort_values(["sensor_id", "time_s"], kind="stable")
    o["dt"] = o.groupby("sensor_id")["time_s"].diff()
    med = o.groupby("group_id")["dt"].median()
    for g in out.loc[out["interval_s"].isna(), "group_id"].unique():
        v = med.get(g, np.nan)
        out.loc[(out["group_id"] == g) & out["interval_s"].isna(), "interval_s"] = (
            float(v) if np.isfinite(v) and v > 0 else 60.0)
    return out


def write_inventory_geojson(sensors: pd.DataFrame, crs: str, path: Path) -> Path:
    """Sensors as GeoJSON points with a ``crs`` member (the twin's projected CRS)."""
    feats = []
    for rec in sensors.to_dict(orient="records"):
        props = {k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in rec.items() if k not in ("x_m", "y_m")}
        feats.append({"type": "Feature", "properties": props, "geometry": {
            "type": "Point", "coordinates": [float(rec["x_m"]), float(rec["y_m"])]}})
    doc = {"type": "FeatureCollection",
           "crs": {"type": "name", "properties": {"name": crs}}, "features": feats}
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
