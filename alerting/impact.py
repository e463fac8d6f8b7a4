"""Who and what lies inside an affected area: protected targets and people.

The one definition of "people in an area" (README, "Counting people in a warning area"),
used by warnings, evacuations, cascades and the end-of-run impact tables:

- a **building** counts its ``occupants`` × its *share* in the area, the larger of
  (a) the share of its footprint area inside the area and (b) the share of the line
  ``WALL_RING_M`` outside its walls that lies inside the area (water or gas at the walls and
  doors: a flood model blocks building cells, so its water goes around them; a building
  standing in water all round counts whole);
- an **open place** (a place polygon not inside a building: plazas, squares) counts
  ``OPEN_PLACE_DENSITY_P_M2`` × its area inside, capped at its ``capacity``;
- a place given as a point inside a building (a school, a station) is that building: its
  people are the building's occupants and are not counted twice, and as a protected target
  it is inside the area when its building counts; a point place outside any building (a
  shelter, a fuel station) has no extent and counts no one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from citytwin.twin.model import CityTwin

#: Distance (m) outside a building's walls at which a hazard reaches it (as the flood
#: impact's ring: just under one 5 m twin cell, so the first wet cell beyond a blocked
#: building cell always covers it).
WALL_RING_M = 4.0
#: People per m² in an open place (plaza, square) in daytime use. Assumption: a busy
#: pedestrian area (Fruin level of service B–C is 0.3–0.7 p/m² walking); an event crowd
#: reaches the place's capacity (the synthetic plazas' capacity is 2 p/m²).
OPEN_PLACE_DENSITY_P_M2 = 0.5


@dataclass(frozen=True)
class AreaImpact:
    """What one area holds: people (rounded total), the buildings and open places that
    count (share > 0) with their people, and the protected targets intersecting it."""

    people: int
    building_ids: tuple[str, ...]
    building_people: tuple[float, ...]
    place_ids: tuple[str, ...]
    place_people: tuple[float, ...]
    targets: tuple[str, ...]

    @property
    def buildings(self) -> int:
        """How many buildings have a share in the area."""
        return len(self.building_ids)


_NONE = AreaImpact(0, (), (), (), (), ())


class ImpactIndex:
    """Spatial index over a twin's protected targets, occupied buildings and open places."""

    def __init__(self, twin: CityTwin) -> None:
        self.targets = twin.protected_targets.reset_index(drop=True)
        self.buildings = twin.buildings.reset_index(drop=True)
        self._target_geoms = self.targets.geometry.to_numpy()
        self._building_geoms = self.buildings.geometry.to_numpy()
        self._building_ids = self.buildings["id"].astype(str).to_numpy() \
            if "id" in self.buildings else np.arange(len(self.buildings)).astype(str)
        self._occupants = self.buildings["occupants"].fillna(0).to_numpy(dtype=float)
        self._building_area = shapely.area(self._building_geoms)
        ringed = shapely.buffer(self._building_geoms, WALL_RING_M)
        self._walls = shapely.boundary(ringed)
        self._wall_length = shapely.length(self._walls)
        self._target_tree = shapely.STRtree(self._target_geoms)
        self._building_tree = shapely.STRtree(ringed)
        places = twin.places.reset_index(drop=True)
        geoms = places.geometry.to_numpy()
        is_open = shapely.area(geoms) > 0
        if len(self._building_geoms) and is_open.any():
            inside = shapely.STRtree(self._building_geoms).query(geoms[is_open],
                                                                 predicate="within")[0]
            is_open[np.flatnonzero(is_open)[inside]] = False
        self._place_ids = places["id"].astype(str).to_numpy()[is_open]
        self._place_geoms = geoms[is_open]
        self._place_area = shapely.area(self._place_geoms)
        cap = (places["capacity"].fillna(np.inf).to_numpy(dtype=float)[is_open]
               if "capacity" in places else np.full(int(is_open.sum()), np.inf))
        self._place_cap = cap
        # a protected target inside a building (a school given as a point) is reached when
        # its building is: the building's position, or -1
        self._target_building = np.full(len(self._target_geoms), -1)
        if len(self._target_geoms) and len(self._building_geoms):
            t, b = shapely.STRtree(self._building_geoms).query(self._target_geoms,
                                                               predicate="within")
            self._target_building[t] = b

    def targets_inside(self, area: BaseGeometry,
                       buildings: np.ndarray | None = None) -> list[str]:
        """Ids of protected targets in ``area``, sorted: those intersecting it, and those
        inside a building that has a share in it (``buildings``: those positions, if
        already known)."""
        if area is None or area.is_empty or len(self._target_geoms) == 0:
            return []
        if buildings is None:
            buildings = self.building_shares(area)[0]
        hits = set(self._target_tree.query(area, predicate="intersects").tolist())
        hits.update(np.flatnonzero(np.isin(self._target_building, buildings)).tolist())
        return sorted(str(i) for i in self.targets["id"].to_numpy()[sorted(hits)])

    def building_shares(self, area: BaseGeometry) -> tuple[np.ndarray, np.ndarray]:
        """(building positions, share in ``area`` in (0, 1]) of the buildings that count:
        max(footprint area inside / footprint area, wall line inside / wall line length)."""
        empty = (np.zeros(0, dtype=int), np.zeros(0))
        if area is None or area.is_empty or len(self._building_geoms) == 0:
            return empty
        hits = self._building_tree.query(area, predicate="intersects")
        if len(hits) == 0:
            return empty
        foot = np.divide(shapely.area(shapely.intersection(self._building_geoms[hits], area)),
                         self._building_area[hits], out=np.zeros(len(hits)),
                         where=self._building_area[hits] > 0)
        wall = np.divide(shapely.length(shapely.intersection(self._walls[hits], area)),
                         self._wall_length[hits], out=np.zeros(len(hits)),
                         where=self._wall_length[hits] > 0)
        share = np.clip(np.maximum(foot, wall), 0.0, 1.0)
        keep = share > 1e-9
        order = np.argsort(hits[keep], kind="stable")
        return hits[keep][order], share[keep][order]

    def count(self, area: BaseGeometry) -> AreaImpact:
        """People, buildings, open places and protected targets in ``area`` (module
        docstring: the one definition)."""
        if area is None or area.is_empty:
            return _NONE
        b, share = self.building_shares(area)
        b_people = self._occupants[b] * share
        p_people = np.zeros(0)
        p_ids: np.ndarray = np.zeros(0, dtype=object)
        if len(self._place_geoms):
            inside = shapely.area(shapely.intersection(self._place_geoms, area))
            p_people = np.minimum(inside * OPEN_PLACE_DENSITY_P_M2, self._place_cap)
            keep = inside > 0
            p_ids, p_people = self._place_ids[keep], p_people[keep]
        total = int(round(float(b_people.sum() + p_people.sum())))
        return AreaImpact(total, tuple(self._building_ids[b].tolist()),
                          tuple(float(x) for x in b_people), tuple(p_ids.tolist()),
                          tuple(float(x) for x in p_people),
                          tuple(self.targets_inside(area, b)))

    def buildings_inside(self, area: BaseGeometry) -> int:
        """How many buildings have a share in ``area`` (``count``)."""
        return len(self.building_shares(area)[0])

    def population_inside(self, area: BaseGeometry) -> int:
        """People in ``area`` by the one definition (``count``)."""
        return self.count(area).people
