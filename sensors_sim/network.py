"""A sensor network: a columnar table of sensors placed on twin assets, and cadence groups.

One row per sensor (``COLUMNS``). Sensors that are sampled together share a ``group_id``;
``groups()`` turns the table into ``CadenceGroup`` objects, one SimPy process each
("SimPy decides when, NumPy computes what"). Every group has one sampling interval and one
quantity, checked when the network is built, so a bad network is rejected before a run.

A counterfactual sensor (added to see what it would have seen) belongs in its own group:
per-tick noise and dropouts come from one stream per group, so a new group leaves the base
groups' streams unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from citytwin.sensors_sim.catalogue import SensorType, load_catalogue
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin

#: Columns of the sensor table, in order.
COLUMNS = ("sensor_id", "type_id", "quantity", "unit", "x_m", "y_m", "z_m", "asset_network",
           "asset_id", "group_id", "interval_s")
#: Keys a record given to ``SensorNetwork.from_records`` may carry; the rest are optional.
REQUIRED_RECORD_KEYS = ("sensor_id", "type_id", "x_m", "y_m")
_TEXT_COLUMNS = ("sensor_id", "type_id", "quantity", "unit", "group_id")
_FLOAT_COLUMNS = ("x_m", "y_m", "z_m", "interval_s")
#: Default error source for networks built in code.
DEFAULT_SOURCE = "sensor network"


@dataclass(frozen=True)
class CadenceGroup:
    """Sensors sampled together: one id, one interval, positions into the network table."""

    group_id: str
    interval_s: float
    indices: np.ndarray  #: int64 positions into the network, ascending, read-only

    def __len__(self) -> int:
        return len(self.indices)


class SensorNetwork:
    """A validated, columnar table of sensors (``table``, a pandas DataFrame; treat read-only).

    Build it with ``from_records``, ``place_on_network_nodes`` or ``concat``. Construction
    checks: unique non-empty ids, finite coordinates, positive intervals, and one interval
    and one quantity/unit per cadence group; errors name the field and the sensor (or group).
    """

    def __init__(self, table: pd.DataFrame, *, source: str = DEFAULT_SOURCE) -> None:
        missing = [c for c in COLUMNS if c not in table.columns]
        if missing:
            raise InputError(source, f"sensor table lacks column(s) {missing}")
        t = table.loc[:, list(COLUMNS)].reset_index(drop=True).copy()
        for c in _TEXT_COLUMNS:
            t[c] = t[c].astype(str)
        for c in ("asset_network", "asset_id"):
            t[c] = t[c].astype(object).where(t[c].notna(), None)
        for c in _FLOAT_COLUMNS:
            t[c] = pd.to_numeric(t[c], errors="coerce").astype(np.float64)
        _check_table(t, source)
        self.table: pd.DataFrame = t
        self.source = source
        self._xyz = t[["x_m", "y_m", "z_m"]].to_numpy(dtype=np.float64)
        self._xyz.flags.writeable = False
        self._id_index = pd.Index(t["sensor_id"].to_numpy(dtype=object))
        self._groups: list[CadenceGroup] | None = None

    # -- constructors ------------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, object]],
        catalogue: Mapping[str, SensorType],
        *,
        source: str = DEFAULT_SOURCE,
    ) -> SensorNetwork:
        """A network from dicts with ``sensor_id``, ``type_id``, ``x_m``, ``y_m`` and
        optionally ``z_m`` (height above ground, default 0), ``asset_network``, ``asset_id``,
        ``group_id`` (default: the type id) and ``interval_s`` (default: the type's).

        ``quantity`` and ``unit`` come from the catalogue; a record may repeat them (so a
        table's rows round-trip) but they must then agree with the catalogue.
        """
        rows = []
        for k, rec in enumerate(records):
            sid = rec.get("sensor_id")
            sid = f"record #{k}" if sid is None else sid
            unknown = sorted(set(map(str, rec)) - set(COLUMNS))
            if unknown:
                raise InputError(source, f"unknown key(s) {unknown}", field="record",
                                 feature_id=sid)
            for key in REQUIRED_RECORD_KEYS:
                if rec.get(key) is None:
                    raise InputError(source, f"missing {key}", field=key, feature_id=sid)
            type_id = str(rec["type_id"])
            st = _sensor_type(catalogue, type_id, source, sid)
            for key in ("quantity", "unit"):
                given = rec.get(key)
                if given is not None and str(given) != getattr(st, key):
                    raise InputError(source, f"{key} {given!r} disagrees with sensor type "
                                     f"{type_id!r} ({getattr(st, key)!r})", field=key,
                                     feature_id=sid)
            interval = rec.get("interval_s")
            group = rec.get("group_id")
            rows.append({
                "sensor_id": sid, "type_id": type_id, "quantity": st.quantity,
                "unit": st.unit, "x_m": rec["x_m"], "y_m": rec["y_m"],
                "z_m": rec.get("z_m", 0.0), "asset_network": rec.get("asset_network"),
                "asset_id": rec.get("asset_id"),
                "group_id": type_id if group is None else group,
                "interval_s": st.interval_s if interval is None else interval,
            })
        return cls(pd.DataFrame(rows, columns=list(COLUMNS)), source=source)

    @classmethod
    def concat(cls, *networks: SensorNetwork, source: str = DEFAULT_SOURCE) -> SensorNetwork:
        """All sensors of ``networks``, in order; ids must stay unique and groups consistent."""
        if not networks:
            return cls(pd.DataFrame({c: [] for c in COLUMNS}), source=source)
        table = pd.concat([n.table for n in networks], ignore_index=True)
        return cls(table, source=source)

    # -- queries ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.table)

    @property
    def sensor_ids(self) -> np.ndarray:
        """Sensor ids in table order (object array of str)."""
        return self.table["sensor_id"].to_numpy(dtype=object)

    def groups(self) -> list[CadenceGroup]:
        """Cadence groups sorted by group id; each group's indices ascending.

        Together they partition the network. Computed once and cached.
        """
        if self._groups is None:
            gid = self.table["group_id"].to_numpy(dtype=object)
            interval = self.table["interval_s"].to_numpy()
            out = []
            for g in sorted(set(gid)):
                idx = np.flatnonzero(gid == g).astype(np.int64)
                idx.flags.writeable = False
                out.append(CadenceGroup(str(g), float(interval[idx[0]]), idx))
            self._groups = out
        return list(self._groups)

    def xyz_m(self, indices: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Sensor positions (n, 3): x, y (CRS metres) and z (height above ground, m)."""
        if indices is None:
            return self._xyz.copy()
        return self._xyz[np.asarray(indices, dtype=np.int64)]

    def index_of(self, ids: str | Iterable[str]) -> np.ndarray:
        """Positions (int64) of sensor ``ids`` in the table; unknown ids raise InputError."""
        ids_arr = np.array([ids] if isinstance(ids, str) else list(ids), dtype=object)
        pos = self._id_index.get_indexer(ids_arr)
        if (pos < 0).any():
            unknown = [str(i) for i in ids_arr[pos < 0]]
            raise InputError(self.source, f"unknown sensor id(s) {unknown}",
                             field="sensor_id")
        return pos.astype(np.int64)

    def to_geodataframe(self, crs: object) -> gpd.GeoDataFrame:
        """The table as point features in ``crs`` (2-D points; ``z_m`` stays a column since it
        is a height above ground, not an elevation)."""
        geom = gpd.points_from_xy(self.table["x_m"], self.table["y_m"], crs=crs)
        return gpd.GeoDataFrame(self.table.copy(), geometry=geom, crs=crs)

    def __repr__(self) -> str:
        return f"SensorNetwork({len(self)} sensors, {len(self.groups())} groups)"


def place_on_network_nodes(
    twin: CityTwin,
    network: str = "gas",
    node_kinds: Sequence[str] = ("valve_well",),
    type_id: str = "methane_detector",
    group_id: str | None = None,
    interval_s: float | None = None,
    height_m: float = 0.5,
    min_link_age_years: float | None = None,
    year: int = 2026,
    id_prefix: str = "CH4-",
    catalogue: Mapping[str, SensorType] | None = None,
    lowest: int | None = None,
) -> SensorNetwork:
    """One sensor at every node of ``node_kinds`` in ``twin.networks[network]``.

    With ``min_link_age_years``, only nodes touching at least one link whose age in ``year``
    is at least that many years (links without an install year never qualify): "every
    valve well on mains 20 years and older". Sensor id = ``id_prefix`` + node id (stable),
    ``asset_network``/``asset_id`` name the node, ``z_m`` = ``height_m`` above ground
    (default 0.5 m: just below a well cover, an assumption). ``group_id`` defaults to the
    type id, ``interval_s`` to the type's, ``catalogue`` to the shipped one. Nodes keep
    their row order. ``lowest=N`` keeps only the N nodes on the lowest ground (where water
    ponds first: underpasses and low roads).
    """
    source = f"sensor placement on twin {twin.name!r}"
    catalogue = load_catalogue() if catalogue is None else catalogue
    _sensor_type(catalogue, type_id, source, None)  # unknown type: fail before any work
    if network not in twin.networks:
        raise InputError(source, f"the twin has no {network!r} network (it has "
                         f"{sorted(twin.networks)})", field="network")
    net = twin.networks[network]
    nodes = net.nodes
    node_ids = nodes["id"].astype(str).to_numpy(dtype=object)
    keep = nodes["kind"].astype(str).isin(list(node_kinds)).to_numpy()
    if min_link_age_years is not None:
        links = net.links
        old = net.link_age_years(year) >= float(min_link_age_years)  # NaN year → False
        touching = set(links.loc[old, "from_node"].astype(str)) | set(
            links.loc[old, "to_node"].astype(str))
        keep = keep & np.isin(node_ids, np.array(sorted(touching), dtype=object))
    geoms = nodes.geometry.to_numpy()[keep]
    ids = node_ids[keep]
    xs = shapely.get_x(geoms) if len(ids) else np.zeros(0)
    ys = shapely.get_y(geoms) if len(ids) else np.zeros(0)
    if lowest is not None and len(ids) > lowest:
        # The lowest-lying nodes: where water ponds first (underpasses, low roads).
        ground = twin.terrain.elevation_at(xs, ys)
        pick = np.sort(np.argsort(ground, kind="stable")[:lowest])
        ids, xs, ys = ids[pick], xs[pick], ys[pick]
    return place_at_points(ids, xs, ys, type_id=type_id, group_id=group_id,
                           interval_s=interval_s, height_m=height_m, id_prefix=id_prefix,
                           catalogue=catalogue, asset_network=network, source=source)


def place_at_points(ids: Sequence[str], x_m: np.ndarray, y_m: np.ndarray, *,
                    type_id: str, group_id: str | None = None, interval_s: float | None = None,
                    height_m: float = 0.5, id_prefix: str = "",
                    catalogue: Mapping[str, SensorType] | None = None,
                    asset_network: str = "", source: str = "sensor placement") -> SensorNetwork:
    """One sensor of ``type_id`` at each (x, y): river gauges, a reservoir gauge, a place.

    Sensor id = ``id_prefix`` + id; the id is also the ``asset_id``.
    """
    catalogue = load_catalogue() if catalogue is None else catalogue
    st = _sensor_type(catalogue, type_id, source, None)
    ids = [str(i) for i in ids]
    n = len(ids)
    table = pd.DataFrame({
        "sensor_id": [f"{id_prefix}{i}" for i in ids],
        "type_id": [type_id] * n,
        "quantity": [st.quantity] * n,
        "unit": [st.unit] * n,
        "x_m": np.asarray(x_m, dtype=float),
        "y_m": np.asarray(y_m, dtype=float),
        "z_m": np.full(n, float(height_m)),
        "asset_network": [asset_network] * n,
        "asset_id": ids,
        "group_id": [type_id if group_id is None else group_id] * n,
        "interval_s": np.full(n, st.interval_s if interval_s is None else float(interval_s)),
    }, columns=list(COLUMNS))
    return SensorNetwork(table, source=source)


def _sensor_type(catalogue: Mapping[str, SensorType], type_id: str, source: str,
                 sensor_id: object) -> SensorType:
    try:
        return catalogue[type_id]
    except KeyError:
        raise InputError(source, f"unknown sensor type {type_id!r} (catalogue has "
                         f"{sorted(catalogue)})", field="type_id", feature_id=sensor_id) from None


def _check_table(t: pd.DataFrame, source: str) -> None:
    """Reject empty or duplicate ids, bad coordinates/intervals and inconsistent groups."""
    ids = t["sensor_id"]
    blank = ids.str.strip() == ""
    if blank.any():
        raise InputError(source, "sensor_id must be non-empty", field="sensor_id",
                         feature_id=f"row {int(np.flatnonzero(blank.to_numpy())[0])}")
    dup = ids.duplicated(keep=False)
    if dup.any():
        dupes = sorted(set(ids[dup]))
        raise InputError(source, f"duplicate sensor id(s) {dupes}", field="sensor_id",
                         feature_id=dupes[0])
    for c in ("x_m", "y_m", "z_m"):
        bad = ~np.isfinite(t[c].to_numpy())
        if bad.any():
            raise InputError(source, f"{c} must be a finite number", field=c,
                             feature_id=ids[bad].iloc[0])
    interval = t["interval_s"].to_numpy()
    bad = ~(np.isfinite(interval) & (interval > 0))
    if bad.any():
        raise InputError(source, f"interval_s must be > 0, got {interval[bad][0]!r}",
                         field="interval_s", feature_id=ids[bad].iloc[0])
    if not t.empty:
        per_group = t.groupby("group_id", sort=True).agg(
            n_interval=("interval_s", "nunique"), n_quantity=("quantity", "nunique"),
            n_unit=("unit", "nunique"))
        for col, what in (("n_interval", "interval_s"), ("n_quantity", "quantity"),
                          ("n_unit", "unit")):
            mixed = per_group.index[per_group[col] > 1]
            if len(mixed):
                g = mixed[0]
                values = sorted(set(t.loc[t["group_id"] == g, what]))
                raise InputError(source, f"cadence group {g!r} mixes {what} values {values}; "
                                 f"a group is sampled together with one {what}",
                                 field="group_id", feature_id=g)
