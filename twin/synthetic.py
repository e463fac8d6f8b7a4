"""A deterministic synthetic city: the demo city and the test city.

The city sits in a river valley running north→south. Upstream (north) a reservoir is held
behind an embankment dam across the valley; downstream the city spreads on a street grid
over the gentle valley sides: buildings of varied heights and uses, a central plaza with a
transit station, schools, a hospital, shelters and hazard sources, and gas, water and
drainage networks under the streets (valve wells, hydrants and manholes mid-block, junctions
at intersections, a gas regulator station, a drainage outfall at the river).

Everything is drawn from ``twin.seeding.rng_for(seed, "synthetic", <part>)``, so the same
seed and size give the same city. Coordinates are UTM zone 50N (EPSG:32650), metres; the
site is arbitrary.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from affine import Affine
from pyproj import CRS
from shapely.geometry import LineString, Point, Polygon

from citytwin.twin.model import BUILDING_COLUMNS, CityTwin
from citytwin.twin.network import PipeNetwork
from citytwin.twin.seeding import rng_for
from citytwin.twin.terrain import Terrain

CRS_EPSG = 32650
ORIGIN_X_M = 400_000.0
ORIGIN_Y_M = 3_400_000.0
CELL_SIZE_M = 5.0
BLOCK_M = 100.0  # street spacing
STREET_HALF_WIDTH_M = 8.0
ARTERIAL_EVERY = 3  # every 3rd street is an arterial with a medium-pressure gas main

#: Named sizes → extent of the square domain (m).
SIZES_M = {"tiny": 600.0, "small": 1200.0, "medium": 2400.0, "large": 4800.0}

#: Floor area per occupant by building use (m²/person), daytime design values.
M2_PER_PERSON = {
    "residential": 30.0, "office": 12.0, "commercial": 8.0, "school": 8.0, "hospital": 15.0,
    "transit": 5.0, "industrial": 40.0,
}
FLOOR_HEIGHT_M = 3.0


@dataclass(frozen=True)
class Layout:
    """Derived geometry of the synthetic domain (all metres, absolute coordinates)."""

    extent_m: float
    x0: float
    y0: float

    @property
    def dam_y(self) -> float:
        return self.y0 + 0.82 * self.extent_m

    def river_x(self, y: np.ndarray) -> np.ndarray:
        """River centreline x at northing y: a gentle meander in the western third."""
        rel = (np.asarray(y) - self.y0) / self.extent_m
        return self.x0 + self.extent_m * (0.28 + 0.03 * np.sin(2 * np.pi * rel * 1.5))


def _resolve_extent(size: str | float) -> float:
    if isinstance(size, str):
        if size not in SIZES_M:
            raise ValueError(f"unknown synthetic city size {size!r}; use one of {sorted(SIZES_M)}"
                             " or an extent in metres")
        return SIZES_M[size]
    extent = float(size)
    if not np.isfinite(extent) or extent < 600:
        raise ValueError(f"synthetic city extent must be ≥ 600 m, got {size!r}")
    return extent


def _terrain(layout: Layout, crs: CRS) -> Terrain:
    """Valley floor sloping south, a reservoir basin in the north, a dam embankment across."""
    n = int(round(layout.extent_m / CELL_SIZE_M))
    xs = layout.x0 + (np.arange(n) + 0.5) * CELL_SIZE_M
    ys = layout.y0 + layout.extent_m - (np.arange(n) + 0.5) * CELL_SIZE_M  # north first
    X, Y = np.meshgrid(xs, ys)
    rel_y = (Y - layout.y0) / layout.extent_m
    d_river = np.abs(X - layout.river_x(Y))
    # Valley sides rise 0.02 m/m away from the river; the floor falls 0.002 m/m southward.
    z = 20.0 + 0.002 * (Y - layout.y0) + 0.02 * d_river
    # The river channel: 3 m deep, ~30 m wide.
    z -= 3.0 * np.exp(-((d_river / 15.0) ** 2))
    # North of the dam: hills rise; the valley there is the reservoir basin.
    north = np.clip((rel_y - 0.78) / 0.22, 0.0, None)
    z += 40.0 * north**1.5 * (1.0 - np.exp(-((d_river / 140.0) ** 2)))  # hillsides
    # Dam embankment 12 m above the valley floor: a 10 m flat crest, 1:0.8 faces either side.
    crest = _dam_crest_m(layout)
    ridge = np.clip((15.0 - np.abs(Y - layout.dam_y)) / 10.0, 0.0, 1.0)
    z = np.where(d_river < 260.0, np.maximum(z, crest * ridge + z * (1 - ridge)), z)
    transform = Affine(CELL_SIZE_M, 0.0, layout.x0, 0.0, -CELL_SIZE_M, layout.y0 + layout.extent_m)
    return Terrain(elevation_m=z.astype(np.float64), transform=transform, crs=crs)


def _dam_crest_m(layout: Layout) -> float:
    return 20.0 + 0.002 * (layout.dam_y - layout.y0) + 12.0


def _street_lines(layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """x of north–south streets and y of east–west streets in the city area."""
    x_start = float(layout.river_x(layout.y0).max()) + 120.0
    x_start = layout.x0 + np.ceil((x_start - layout.x0) / BLOCK_M) * BLOCK_M
    xs = np.arange(x_start, layout.x0 + layout.extent_m - 50.0, BLOCK_M)
    ys = np.arange(layout.y0 + 100.0, layout.dam_y - 150.0, BLOCK_M)
    return xs, ys


def synthetic_city(seed: int = 0, size: str | float = "small") -> CityTwin:
    """Build the synthetic city for ``seed``; ``size`` is a name in SIZES_M or an extent (m)."""
    extent = _resolve_extent(size)
    layout = Layout(extent_m=extent, x0=ORIGIN_X_M, y0=ORIGIN_Y_M)
    crs = CRS.from_epsg(CRS_EPSG)
    terrain = _terrain(layout, crs)
    street_xs, street_ys = _street_lines(layout)
    buildings = _buildings(seed, layout, street_xs, street_ys, crs)
    networks = _networks(seed, layout, street_xs, street_ys, terrain, crs)
    places = _places(seed, layout, buildings, street_xs, street_ys, networks, crs)
    reservoirs = _reservoirs(layout, terrain, crs)
    return CityTwin(
        name=f"synthetic-{seed}-{int(extent)}m",
        crs=crs,
        terrain=terrain,
        buildings=buildings,
        networks=networks,
        places=places,
        reservoirs=reservoirs,
        metadata={"generator": "twin.synthetic", "seed": int(seed), "extent_m": extent},
    )


def _block_centre(street_xs: np.ndarray, street_ys: np.ndarray) -> tuple[int, int]:
    """Index (i, j) of the block nearest the middle of the grid: the plaza block."""
    return (len(street_xs) - 1) // 2, (len(street_ys) - 1) // 2


def _buildings(
    seed: int, layout: Layout, street_xs: np.ndarray, street_ys: np.ndarray, crs: CRS
) -> gpd.GeoDataFrame:
    """Four lots per block; heights taller toward the centre; uses by a fixed mix."""
    rng = rng_for(seed, "synthetic", "buildings")
    ci, cj = _block_centre(street_xs, street_ys)
    cx = (street_xs[ci] + street_xs[ci + 1]) / 2 if len(street_xs) > 1 else street_xs[0]
    cy = (street_ys[cj] + street_ys[cj + 1]) / 2 if len(street_ys) > 1 else street_ys[0]
    rows: list[dict] = []
    geoms: list[Polygon] = []
    lot = (BLOCK_M - 2 * STREET_HALF_WIDTH_M) / 2  # 42 m lots
    special = {  # block (i, j) → use of all its lots
        (ci + 1, cj): "transit",
        (ci - 1, cj + 1): "school",
        (ci + 2, cj - 2): "hospital",
        (ci - 2, cj - 2): "school",
    }
    for i in range(len(street_xs) - 1):
        for j in range(len(street_ys) - 1):
            if (i, j) == (ci, cj):
                continue  # the plaza
            bx = street_xs[i] + STREET_HALF_WIDTH_M
            by = street_ys[j] + STREET_HALF_WIDTH_M
            for a in range(2):
                for b in range(2):
                    w = rng.uniform(22.0, 38.0)
                    h = rng.uniform(22.0, 38.0)
                    x0 = bx + a * lot + (lot - w) / 2
                    y0 = by + b * lot + (lot - h) / 2
                    px, py = x0 + w / 2, y0 + h / 2
                    dist = np.hypot(px - cx, py - cy)
                    tall = np.exp(-dist / 450.0)
                    use = special.get((i, j)) or str(rng.choice(
                        ["residential", "residential", "residential", "commercial", "office",
                         "industrial"] if dist > 900 else
                        ["residential", "residential", "commercial", "office"]))
                    height = float(np.clip(rng.lognormal(np.log(12.0 + 60.0 * tall), 0.35),
                                           4.0, 180.0))
                    if use in ("school", "hospital", "transit"):
                        height = float(rng.uniform(9.0, 24.0))
                    floors = max(1, int(round(height / FLOOR_HEIGHT_M)))
                    occupants = int(round(floors * w * h / M2_PER_PERSON[use]))
                    geoms.append(shapely.box(x0, y0, x0 + w, y0 + h))
                    rows.append({
                        "height_m": round(height, 2), "floors": floors, "use": use,
                        "occupants": occupants, "year_built": int(rng.integers(1960, 2025)),
                    })
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
    gdf.insert(0, "id", [f"B-{k:05d}" for k in range(len(gdf))])
    return gdf[list(BUILDING_COLUMNS) + ["geometry"]]


def _grid_network(
    seed: int,
    name: str,
    street_xs: np.ndarray,
    street_ys: np.ndarray,
    offset_m: float,
    mid_kind: str,
    prefix: str,
    link_attrs,
) -> tuple[list[dict], list[dict], dict[tuple, str]]:
    """Nodes at intersections and mid-block along every street; links between neighbours."""
    nodes: list[dict] = []
    links: list[dict] = []
    at: dict[tuple, str] = {}

    def node(key: tuple, x: float, y: float, kind: str) -> str:
        if key not in at:
            nid = f"{prefix}{len(nodes):05d}"
            at[key] = nid
            nodes.append({"id": nid, "kind": kind, "x": x + offset_m, "y": y + offset_m})
        return at[key]

    rng = rng_for(seed, "synthetic", name, "links")
    for j, y in enumerate(street_ys):  # east–west streets
        year = int(rng.integers(1975, 2023))
        arterial = j % ARTERIAL_EVERY == 0
        for i in range(len(street_xs) - 1):
            a = node(("x", i, j), street_xs[i], y, "junction")
            m = node(("h", i, j), (street_xs[i] + street_xs[i + 1]) / 2, y, mid_kind)
            b = node(("x", i + 1, j), street_xs[i + 1], y, "junction")
            links += [dict(from_node=a, to_node=m, **link_attrs(arterial, year)),
                      dict(from_node=m, to_node=b, **link_attrs(arterial, year))]
    for i, x in enumerate(street_xs):  # north–south streets
        year = int(rng.integers(1975, 2023))
        arterial = i % ARTERIAL_EVERY == 0
        for j in range(len(street_ys) - 1):
            a = node(("x", i, j), x, street_ys[j], "junction")
            m = node(("v", i, j), x, (street_ys[j] + street_ys[j + 1]) / 2, mid_kind)
            b = node(("x", i, j + 1), x, street_ys[j + 1], "junction")
            links += [dict(from_node=a, to_node=m, **link_attrs(arterial, year)),
                      dict(from_node=m, to_node=b, **link_attrs(arterial, year))]
    return nodes, links, at


def _to_network(
    name: str, nodes: list[dict], links: list[dict], depth_m: float, crs: CRS, prefix: str
) -> PipeNetwork:
    node_gdf = gpd.GeoDataFrame(
        {"id": [n["id"] for n in nodes], "kind": [n["kind"] for n in nodes],
         "depth_m": [n.get("depth_m", depth_m) for n in nodes]},
        geometry=[Point(n["x"], n["y"]) for n in nodes], crs=crs,
    )
    pos = {n["id"]: (n["x"], n["y"]) for n in nodes}
    link_gdf = gpd.GeoDataFrame(
        {
            "id": [f"{prefix}L{k:05d}" for k in range(len(links))],
            "from_node": [lk["from_node"] for lk in links],
            "to_node": [lk["to_node"] for lk in links],
            "diameter_mm": [float(lk["diameter_mm"]) for lk in links],
            "material": [lk["material"] for lk in links],
            "install_year": [int(lk["install_year"]) for lk in links],
            "pressure_class": [lk["pressure_class"] for lk in links],
        },
        geometry=[LineString([pos[lk["from_node"]], pos[lk["to_node"]]]) for lk in links],
        crs=crs,
    )
    return PipeNetwork(name=name, nodes=node_gdf, links=link_gdf)


def _networks(
    seed: int,
    layout: Layout,
    street_xs: np.ndarray,
    street_ys: np.ndarray,
    terrain: Terrain,
    crs: CRS,
) -> dict[str, PipeNetwork]:
    nets: dict[str, PipeNetwork] = {}

    def gas_attrs(arterial: bool, year: int) -> dict:
        if arterial:
            return dict(diameter_mm=300, material="steel", install_year=year,
                        pressure_class="medium_A")
        material = "cast_iron" if year < 1990 else "PE"
        return dict(diameter_mm=160 if material == "PE" else 150, material=material,
                    install_year=year, pressure_class="low")

    nodes, links, at = _grid_network(seed, "gas", street_xs, street_ys, 2.0, "valve_well", "GN",
                                     gas_attrs)
    # A regulator (gate) station west of the first arterial intersection, fed from the main.
    sx, sy = street_xs[0] - 40.0, street_ys[0]
    nodes.append({"id": f"GN{len(nodes):05d}", "kind": "station", "x": sx, "y": sy + 2.0})
    links.append(dict(from_node=nodes[-1]["id"], to_node=at[("x", 0, 0)],
                      **gas_attrs(True, 1995)))
    nets["gas"] = _to_network("gas", nodes, links, 1.2, crs, "G")

    def water_attrs(arterial: bool, year: int) -> dict:
        return dict(diameter_mm=400 if arterial else 200,
                    material="ductile_iron" if year >= 1985 else "cast_iron",
                    install_year=year, pressure_class="PN10")

    nodes, links, _ = _grid_network(seed, "water", street_xs, street_ys, -2.0, "hydrant", "WN",
                                    water_attrs)
    nets["water"] = _to_network("water", nodes, links, 1.5, crs, "W")

    def drain_attrs(arterial: bool, year: int) -> dict:
        return dict(diameter_mm=1200 if arterial else 600, material="concrete",
                    install_year=year, pressure_class="gravity")

    nodes, links, at = _grid_network(seed, "drainage", street_xs, street_ys, 4.0, "manhole",
                                     "DN", drain_attrs)
    for n in nodes:
        n["kind"] = "manhole"
    # Outfall at the river, west of the southernmost-westernmost intersection.
    oy = street_ys[0] + 4.0
    ox = float(layout.river_x(oy)) + 20.0
    nodes.append({"id": f"DN{len(nodes):05d}", "kind": "outfall", "x": ox, "y": oy,
                  "depth_m": 1.0})
    links.append(dict(from_node=at[("x", 0, 0)], to_node=nodes[-1]["id"],
                      **drain_attrs(True, 1980)))
    ground = terrain.elevation_at(np.array([n["x"] for n in nodes]),
                                  np.array([n["y"] for n in nodes]))
    for n, z in zip(nodes, ground, strict=True):  # deeper manholes on higher ground
        n.setdefault("depth_m", round(2.0 + 0.05 * (z - ground.min()), 2))
    nets["drainage"] = _to_network("drainage", nodes, links, 2.0, crs, "D")
    return nets


def _places(
    seed: int,
    layout: Layout,
    buildings: gpd.GeoDataFrame,
    street_xs: np.ndarray,
    street_ys: np.ndarray,
    networks: dict[str, PipeNetwork],
    crs: CRS,
) -> gpd.GeoDataFrame:
    """Protected targets from special buildings, the plaza, station, shelters, hazards."""
    rng = rng_for(seed, "synthetic", "places")
    rows: list[dict] = []
    geoms = []

    def add(pid: str, name: str, kind: str, protected: bool, capacity: int, geom) -> None:
        rows.append({"id": pid, "name": name, "kind": kind, "protected": protected,
                     "capacity": int(capacity)})
        geoms.append(geom)

    ci, cj = _block_centre(street_xs, street_ys)
    plaza = shapely.box(street_xs[ci] + STREET_HALF_WIDTH_M, street_ys[cj] + STREET_HALF_WIDTH_M,
                        street_xs[ci + 1] - STREET_HALF_WIDTH_M,
                        street_ys[cj + 1] - STREET_HALF_WIDTH_M)
    add("P-plaza", "Central Plaza", "plaza", True, int(plaza.area / 0.5), plaza)
    counters: dict[str, int] = {}
    for use, kind, label in (("school", "school", "School"), ("hospital", "hospital", "Hospital"),
                             ("transit", "transit_station", "Central Station")):
        sel = buildings[buildings["use"] == use]
        if len(sel) == 0:
            continue
        if kind == "school":  # one school per block: the first lot of each block
            sel = sel.iloc[::4]
        else:
            sel = sel.iloc[:1]
        for _, b in sel.iterrows():
            counters[kind] = counters.get(kind, 0) + 1
            k = counters[kind]
            add(f"P-{kind}-{k}", f"{label} {k}" if kind == "school" else label, kind, True,
                int(b["occupants"]), b.geometry.centroid)
    # A kindergarten and an elderly home in residential buildings near the centre.
    res = buildings[buildings["use"] == "residential"]
    if len(res):
        c = plaza.centroid
        order = np.argsort(res.geometry.centroid.distance(c).to_numpy(), kind="stable")
        for k, (kind, name) in enumerate((("kindergarten", "Sunflower Kindergarten"),
                                          ("elderly_home", "Riverside Elderly Home"))):
            b = res.iloc[int(order[min(3 + 5 * k, len(order) - 1)])]
            add(f"P-{kind}-1", name, kind, True, 60 + 40 * k, b.geometry.centroid)
    # Restaurants: ground floors of commercial buildings (gas detectors live there).
    com = buildings[buildings["use"] == "commercial"]
    n_rest = min(len(com), max(4, len(com) // 6))
    if n_rest:
        pick = np.sort(rng.choice(len(com), size=n_rest, replace=False))
        for k, p in enumerate(pick, start=1):
            add(f"P-restaurant-{k}", f"Restaurant {k}", "restaurant", False, 80,
                com.iloc[int(p)].geometry.centroid)
    # Shelters at the edges of the city; hazard sources: the gas station and a fuel depot.
    add("P-shelter-1", "North Park Shelter", "shelter", False, 2000,
        Point(street_xs[-1] - 50.0, street_ys[-1] - 50.0))
    add("P-shelter-2", "South Sports Ground Shelter", "shelter", False, 3000,
        Point(street_xs[len(street_xs) // 2] + 50.0, street_ys[0] + 50.0))
    station = networks["gas"].nodes[networks["gas"].nodes["kind"] == "station"].geometry.iloc[0]
    add("P-hazard-gas-station", "Gas regulator station", "hazard_source", False, 0, station)
    add("P-hazard-fuel", "Fuel filling station", "hazard_source", False, 0,
        Point(street_xs[-1] - 4.0 * STREET_HALF_WIDTH_M, street_ys[1] + 30.0))
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
    return gdf[["id", "name", "kind", "protected", "capacity", "geometry"]]


def _reservoirs(layout: Layout, terrain: Terrain, crs: CRS) -> gpd.GeoDataFrame:
    """The pool (cells upstream of the dam below the normal level) and the dam crest line."""
    crest = _dam_crest_m(layout)
    normal = crest - 3.0
    xs, ys = terrain.cell_centres()
    X, Y = np.meshgrid(xs, ys)
    wet = (Y > layout.dam_y + 12.0) & (terrain.elevation_m < normal)
    from rasterio import features  # local: only the reservoir outline needs it

    shapes = [shapely.geometry.shape(g) for g, v in
              features.shapes(wet.astype(np.uint8), mask=wet, transform=terrain.transform)
              if v == 1]
    pool = shapely.unary_union(shapes) if shapes else Polygon()
    if pool.geom_type == "MultiPolygon":  # keep the main basin
        pool = max(pool.geoms, key=lambda g: g.area)
    rx = float(layout.river_x(layout.dam_y))
    dam = LineString([(rx - 200.0, layout.dam_y), (rx + 200.0, layout.dam_y)])
    return gpd.GeoDataFrame(
        {"id": ["R-pool", "R-dam"], "name": ["Upper Reservoir", "Upper Reservoir Dam"],
         "kind": ["pool", "dam"], "normal_level_m": [normal, normal],
         "crest_level_m": [crest, crest]},
        geometry=[pool, dam], crs=crs,
    )
