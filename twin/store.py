"""A twin saved as a folder — ``manifest.json`` + ``layers.gpkg`` + ``terrain.tif`` — and back.

Folder layout (format ``citytwin-twin``, version 1):

- ``manifest.json``: format name and version, twin name, CRS (WKT2 and EPSG code if any),
  terrain description, every layer with its column order and dtypes, the networks, the
  metadata, and the size and SHA-256 of every other file.
- ``layers.gpkg``: ``buildings``, ``places``, ``reservoirs`` and, per network ``<key>``,
  ``<key>_nodes`` and ``<key>_links`` (empty layers included).
- ``terrain.tif``: the elevation array in its in-memory dtype (float32/float64), deflate
  compressed, with the transform and CRS.

A round trip is identical: same column order and dtypes (restored from the manifest), values,
exact coordinates, terrain bytes, transform, CRS and metadata. Not stored: the row index of
a layer (layers come back with a RangeIndex; features are identified by ``id``).

Nothing lost: the twin is validated and its metadata checked before anything is written;
the files are written into a hidden temporary sibling folder and renamed into place at the
end, so an interrupted save leaves either the previous twin or none, never a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from importlib import metadata as importlib_metadata
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import rasterio
from affine import Affine
from pyproj import CRS
from pyproj.exceptions import CRSError
from rasterio.errors import RasterioError

from citytwin.twin.errors import TwinValidationError
from citytwin.twin.loaders import normalise_crs, rio_crs
from citytwin.twin.model import CityTwin
from citytwin.twin.network import PipeNetwork
from citytwin.twin.terrain import Terrain
from citytwin.twin.validation import validate_twin

try:
    from rasterio._err import CPLE_BaseError as _GDALError
except ImportError:  # pragma: no cover
    _GDALError = RasterioError

FORMAT_NAME = "citytwin-twin"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
LAYERS_FILE = "layers.gpkg"
TERRAIN_FILE = "terrain.tif"
_NETWORK_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

log = logging.getLogger(__name__)


def save_twin(twin: CityTwin, folder) -> Path:
    """Write ``twin`` to ``folder`` and return its path.

    An existing ``folder`` is replaced only when it is empty or a saved twin (it holds a
    ``manifest.json`` of this format); any other existing path is refused. The twin is
    validated first (`validate_twin`) and its metadata must survive JSON unchanged.
    """
    folder = Path(folder)
    source = f"twin {twin.name!r}"
    validate_twin(twin, source=source)
    _check_metadata(twin.metadata, source)
    for key in twin.networks:
        if not _NETWORK_KEY.match(key):
            raise TwinValidationError(source, f"network name {key!r} cannot name a GeoPackage "
                                      "layer (use letters, digits and _)", field="networks")
    replacing = _check_target(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    tmp.mkdir()  # honours the umask (tempfile.mkdtemp would make it private)
    try:
        layers = _write_layers(twin, tmp / LAYERS_FILE)
        terrain = _write_terrain(twin.terrain, tmp / TERRAIN_FILE)
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "name": twin.name,
            "crs": {"wkt": twin.crs.to_wkt(), "epsg": twin.crs.to_epsg()},
            "terrain": terrain,
            "layers_file": LAYERS_FILE,
            "layers": layers,
            "networks": {key: {"name": net.name, "nodes_layer": f"{key}_nodes",
                               "links_layer": f"{key}_links"}
                         for key, net in twin.networks.items()},
            "metadata": twin.metadata,
            "files": {name: {"sha256": _sha256(tmp / name),
                             "size_bytes": (tmp / name).stat().st_size}
                      for name in (LAYERS_FILE, TERRAIN_FILE)},
            "software": _versions(),
        }
        text = json.dumps(manifest, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
        with open(tmp / MANIFEST_FILE, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        for name in (LAYERS_FILE, TERRAIN_FILE):
            _fsync(tmp / name)
        if replacing:
            old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(folder)
        _fsync_dir(folder.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_twin(folder) -> CityTwin:
    """Load a twin saved by `save_twin`, check its files and validate it.

    Missing files, a checksum mismatch, an unknown format or a newer format version raise
    `TwinValidationError` naming the file. Validation warnings are logged (logger
    ``twin.store``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TwinValidationError(str(folder), "is not a folder (no saved twin here)")
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_manifest(manifest_path)
    for name, entry in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise TwinValidationError(str(path), "file is missing (listed in manifest.json)")
        digest = _sha256(path)
        if digest != entry.get("sha256"):
            raise TwinValidationError(
                str(path), f"checksum mismatch: manifest.json says sha256 {entry.get('sha256')}, "
                f"the file has {digest}; it was changed or truncated after saving",
                field="sha256")
    for name in (manifest["layers_file"], manifest["terrain"]["file"]):
        if name not in manifest["files"]:
            raise TwinValidationError(str(manifest_path), f"{name} has no checksum entry",
                                      field="files")
    crs = _crs_from_manifest(manifest["crs"], str(manifest_path))
    terrain = _read_terrain(folder / manifest["terrain"]["file"], manifest["terrain"], crs)
    layers_path = folder / manifest["layers_file"]
    layers = {name: _read_layer(layers_path, name, spec, crs)
              for name, spec in manifest["layers"].items()}
    networks = {}
    for key, spec in manifest["networks"].items():
        networks[key] = PipeNetwork(name=spec["name"], nodes=layers[spec["nodes_layer"]],
                                    links=layers[spec["links_layer"]])
    twin = CityTwin(
        name=manifest["name"], crs=crs, terrain=terrain, buildings=layers["buildings"],
        networks=networks, places=layers["places"], reservoirs=layers["reservoirs"],
        metadata=manifest["metadata"],
    )
    for warning in validate_twin(twin, source=str(folder)):
        log.warning("%s", warning)
    return twin


# --------------------------------------------------------------------------- writing


def _check_target(folder: Path) -> bool:
    """True when ``folder`` exists and may be replaced; raise when it must not be."""
    if not folder.exists():
        return False
    if folder.is_dir():
        if not any(folder.iterdir()):
            return True
        manifest = folder / MANIFEST_FILE
        if manifest.is_file():
            try:
                fmt = json.loads(manifest.read_text(encoding="utf-8")).get("format")
            except (OSError, ValueError, AttributeError):
                fmt = None
            if fmt == FORMAT_NAME:
                return True
    raise TwinValidationError(str(folder), "exists and is not a saved twin; refusing to "
                              "overwrite it (choose another folder)")


def _check_metadata(meta, source: str) -> None:
    if not isinstance(meta, dict):
        raise TwinValidationError(source, f"must be a dict, got {type(meta).__name__}",
                                  field="metadata")
    for key, value in meta.items():
        try:
            back = json.loads(json.dumps({key: value}, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise TwinValidationError(source, f"value is not JSON-serialisable: {exc}",
                                      field=f"metadata.{key}") from exc
        if back != {key: value} or type(key) is not str:
            raise TwinValidationError(
                source, "value does not survive JSON unchanged (use str keys, lists not "
                "tuples, plain int/float/str/bool/None)", field=f"metadata.{key}")


def _layer_table(twin: CityTwin) -> dict[str, gpd.GeoDataFrame]:
    table = {"buildings": twin.buildings, "places": twin.places,
             "reservoirs": twin.reservoirs}
    for key, net in twin.networks.items():
        table[f"{key}_nodes"] = net.nodes
        table[f"{key}_links"] = net.links
    return table


def _write_layers(twin: CityTwin, path: Path) -> dict:
    specs = {}
    for name, gdf in _layer_table(twin).items():
        geom = gdf.geometry.name
        specs[name] = {
            "columns": [str(c) for c in gdf.columns],
            "geometry_column": geom,
            "dtypes": {str(c): str(t) for c, t in gdf.dtypes.items() if c != geom},
            "rows": len(gdf),
        }
        pyogrio.write_dataframe(gdf, path, layer=name, driver="GPKG", promote_to_multi=False)
    return specs


def _write_terrain(terrain: Terrain, path: Path) -> dict:
    z = np.ascontiguousarray(terrain.elevation_m)
    rows, cols = z.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=cols, height=rows, count=1, dtype=str(z.dtype),
        crs=rio_crs(terrain.crs), transform=terrain.transform, compress="deflate",
    ) as ds:
        ds.write(z, 1)
    t = terrain.transform
    return {"file": TERRAIN_FILE, "shape": [rows, cols], "dtype": str(z.dtype),
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f], "cell_size_m": terrain.cell_size_m}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("citytwin", "geopandas", "pyogrio", "rasterio", "pyproj", "shapely", "numpy",
                 "pandas"):
        try:
            out[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:  # pragma: no cover
            out[dist] = "unknown"
    out["gdal"] = rasterio.__gdal_version__
    return out


# --------------------------------------------------------------------------- reading

_REQUIRED_KEYS = ("format", "format_version", "name", "crs", "terrain", "layers_file", "layers",
                  "networks", "metadata", "files")


def _read_manifest(path: Path) -> dict:
    src = str(path)
    if not path.is_file():
        raise TwinValidationError(src, "file is missing: not a saved twin folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TwinValidationError(src, f"is not valid JSON (line {exc.lineno}, column "
                                  f"{exc.colno}: {exc.msg})") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise TwinValidationError(src, f"cannot be read: {exc}") from exc
    if not isinstance(manifest, dict):
        raise TwinValidationError(src, "must hold a JSON object")
    if manifest.get("format") != FORMAT_NAME:
        raise TwinValidationError(src, f"format is {manifest.get('format')!r}, expected "
                                  f"{FORMAT_NAME!r}", field="format")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise TwinValidationError(src, f"bad format_version {version!r}",
                                  field="format_version")
    if version > FORMAT_VERSION:
        raise TwinValidationError(src, f"format version {version} is newer than this citytwin "
                                  f"reads (≤ {FORMAT_VERSION}); upgrade citytwin",
                                  field="format_version")
    for key in _REQUIRED_KEYS:
        if key not in manifest:
            raise TwinValidationError(src, "required entry is missing", field=key)
    for key in ("buildings", "places", "reservoirs"):
        if key not in manifest["layers"]:
            raise TwinValidationError(src, "required layer is not listed",
                                      field=f"layers.{key}")
    for key, spec in manifest["networks"].items():
        for role in ("nodes_layer", "links_layer"):
            if spec.get(role) not in manifest["layers"]:
                raise TwinValidationError(src, f"layer {spec.get(role)!r} is not listed",
                                          field=f"networks.{key}.{role}")
    return manifest


def _crs_from_manifest(entry: dict, src: str) -> CRS:
    """The CRS saved as WKT; its EPSG definition (`normalise_crs`) only when that prints the
    very same WKT, so a round trip gives back exactly the CRS that was saved."""
    try:
        crs = CRS.from_wkt(entry["wkt"])
    except (CRSError, KeyError, TypeError, ValueError) as exc:
        raise TwinValidationError(src, f"cannot read the CRS: {exc}", field="crs") from exc
    canonical = normalise_crs(crs)
    return canonical if canonical.to_wkt() == crs.to_wkt() else crs


def _read_terrain(path: Path, spec: dict, crs: CRS) -> Terrain:
    src = str(path)
    try:
        with rasterio.open(path) as ds:
            z = ds.read(1)
            transform = Affine(*tuple(ds.transform)[:6])
    except (RasterioError, _GDALError) as exc:
        raise TwinValidationError(src, f"cannot be read as a raster: {exc}") from exc
    if list(z.shape) != list(spec["shape"]) or str(z.dtype) != spec["dtype"]:
        raise TwinValidationError(src, f"holds a {z.dtype} array of shape {list(z.shape)}, "
                                  f"manifest.json says {spec['dtype']} {spec['shape']}")
    return Terrain(elevation_m=z, transform=transform, crs=crs)


def _read_layer(path: Path, name: str, spec: dict, crs: CRS) -> gpd.GeoDataFrame:
    src = str(path)
    try:
        gdf = pyogrio.read_dataframe(path, layer=name)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise TwinValidationError(src, f"cannot read layer: {exc}", field=name) from exc
    geom = spec["geometry_column"]
    if gdf.geometry.name != geom:
        gdf = gdf.rename_geometry(geom)
    columns = spec["columns"]
    if set(gdf.columns) != set(columns) or len(gdf) != spec["rows"]:
        raise TwinValidationError(
            src, f"layer has columns {list(gdf.columns)} and {len(gdf)} rows; manifest.json "
            f"says {columns} and {spec['rows']} rows", field=name)
    gdf = gdf[columns]
    for col, dtype in spec["dtypes"].items():
        try:
            gdf[col] = gdf[col].astype(dtype)
        except (TypeError, ValueError) as exc:
            raise TwinValidationError(src, f"cannot restore dtype {dtype}: {exc}",
                                      field=f"{name}.{col}") from exc
    return gdf.set_crs(crs, allow_override=True)
