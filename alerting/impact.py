"""Who and what lies inside an affected area: protected targets and population."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from citytwin.twin.model import CityTwin


class ImpactIndex:
    """Spatial index over a twin's protected targets and occupied buildings."""

    def __init__(self, twin: CityTwin) -> None:
        self.targets = twin.protected_targets.reset_index(drop=True)
        self.buildings = twin.buildings.reset_index(drop=True)
        self._target_geoms = self.targets.geometry.to_numpy()
        self._building_geoms = self.buildings.geometry.to_numpy()
        self._occupants = self.buildings["occupants"].to_numpy(dtype=float)
        self._building_area = shapely.area(self._building_geoms)
        self._target_tree = shapely.STRtree(self._target_geoms)
        self._building_tree = shapely.STRtree(self._building_geoms)

    def targets_inside(self, area: BaseGeometry) -> list[str]:
        """Ids of protected targets intersecting ``area``, sorted."""
        if area is None or area.is_empty or len(self._target_geoms) == 0:
            return []
        hits = self._target_tree.query(area, predicate="intersects")
        return sorted(str(i) for i in self.targets["id"].to_numpy()[hits])

    def buildings_inside(self, area: BaseGeometry) -> int:
        """How many buildings intersect ``area``."""
        if area is None or area.is_empty or len(self._building_geoms) == 0:
            return 0
        return len(self._building_tree.query(area, predicate="intersects"))

    def population_inside(self, area: BaseGeometry) -> int:
        """Occupants of buildings inside ``area``, pro rata to the footprint share inside."""
        if area is None or area.is_empty or len(self._building_geoms) == 0:
            return 0
        hits = self._building_tree.query(area, predicate="intersects")
        if len(hits) == 0:
            return 0
        inside = shapely.area(shapely.intersection(self._building_geoms[hits], area))
        share = np.divide(inside, self._building_area[hits],
                          out=np.zeros(len(hits)), where=self._building_area[hits] > 0)
        return int(round(float(np.sum(self._occupants[hits] * share))))
