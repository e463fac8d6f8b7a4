"""Pipe networks (gas, water, drainage, heat): nodes and links with a graph view."""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

#: Node kinds the twin knows; loaders may add others.
NODE_KINDS = ("junction", "valve_well", "manhole", "station", "outfall", "inlet", "hydrant")
#: Columns every node / link layer carries (besides geometry).
NODE_COLUMNS = ("id", "kind", "depth_m")
LINK_COLUMNS = (
    "id", "from_node", "to_node", "diameter_mm", "material", "install_year", "pressure_class",
)


@dataclass
class PipeNetwork:
    """One utility network: ``nodes`` (Points) and ``links`` (LineStrings) GeoDataFrames.

    Links refer to nodes by ``from_node``/``to_node`` ids. The graph view is an undirected
    adjacency over node positions (row order of ``nodes``).
    """

    name: str
    nodes: gpd.GeoDataFrame
    links: gpd.GeoDataFrame

    def node_index(self) -> dict[str, int]:
        """Map node id → row position."""
        return {str(n): i for i, n in enumerate(self.nodes["id"])}

    def dangling_links(self) -> list[str]:
        """Ids of links whose from/to node does not exist."""
        known = set(map(str, self.nodes["id"]))
        bad = ~(self.links["from_node"].astype(str).isin(known)
                & self.links["to_node"].astype(str).isin(known))
        return [str(i) for i in self.links.loc[bad, "id"]]

    def components(self) -> np.ndarray:
        """Connected-component label per node (row order of ``nodes``)."""
        index = self.node_index()
        n = len(index)
        ok = [
            (index[str(a)], index[str(b)])
            for a, b in zip(self.links["from_node"], self.links["to_node"], strict=True)
            if str(a) in index and str(b) in index
        ]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        rows = np.array([a for a, _ in ok], dtype=np.int64)
        cols = np.array([b for _, b in ok], dtype=np.int64)
        adj = coo_matrix((np.ones(len(ok)), (rows, cols)), shape=(n, n))
        _, labels = connected_components(adj, directed=False)
        return labels

    def link_age_years(self, year: int) -> np.ndarray:
        """Age of each link in ``year`` (years)."""
        return year - self.links["install_year"].to_numpy(dtype=float)
