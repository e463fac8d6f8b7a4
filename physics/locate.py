"""Where a hazard is on the twin: a network node, the node of a kind nearest a place, or a
point; resolved to projected x, y (m) with a description for notes and reports."""

from __future__ import annotations

import numpy as np
import shapely
from pydantic import BaseModel, ConfigDict, model_validator

from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin


class SourceLocation(BaseModel):
    """Where a release happens: a network node, or the node of a kind nearest a place, or xy."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    node: str | None = None
    network: str = "gas"
    node_kind: str | None = None
    near_place: str | None = None
    xy_m: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one(self) -> SourceLocation:
        given = [self.node is not None, self.near_place is not None, self.xy_m is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of 'node', 'near_place' or 'xy_m'")
        return self



def resolve_source_xy(twin: CityTwin, loc: SourceLocation, source: str,
                      field: str) -> tuple[tuple[float, float], str]:
    """Position of a release and a description of where it is."""
    if loc.xy_m is not None:
        x, y = loc.xy_m
        if not bool(twin.terrain.contains(np.array([x]), np.array([y]))[0]):
            raise InputError(source, f"point {loc.xy_m} lies outside the terrain "
                             f"{twin.terrain.bounds}", field=f"{field}.xy_m")
        return (float(x), float(y)), f"point ({x:.1f}, {y:.1f})"
    if loc.network not in twin.networks:
        raise InputError(source, f"the twin has no {loc.network!r} network "
                         f"(it has {sorted(twin.networks)})", field=f"{field}.network")
    nodes = twin.networks[loc.network].nodes
    if loc.node is not None:
        hit = nodes[nodes["id"].astype(str) == loc.node]
        if hit.empty:
            raise InputError(source, f"no node {loc.node!r} in the {loc.network} network",
                             field=f"{field}.node")
        p = hit.geometry.iloc[0]
        return (p.x, p.y), f"{hit['kind'].iloc[0]} {loc.node}"
    places = twin.places[twin.places["id"].astype(str) == loc.near_place]
    if places.empty:
        raise InputError(source, f"no place {loc.near_place!r} in the twin",
                         field=f"{field}.near_place")
    cand = nodes if loc.node_kind is None else nodes[nodes["kind"] == loc.node_kind]
    if cand.empty:
        raise InputError(source, f"no {loc.node_kind!r} nodes in the {loc.network} network",
                         field=f"{field}.node_kind")
    target = places.geometry.iloc[0]
    d = shapely.distance(cand.geometry.to_numpy(), target)
    k = int(np.argmin(d))  # ties resolved by row order: deterministic
    p = cand.geometry.iloc[k]
    return (p.x, p.y), f"{cand['kind'].iloc[k]} {cand['id'].iloc[k]} near {loc.near_place}"
