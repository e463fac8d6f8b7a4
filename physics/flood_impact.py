"""Who a flood reaches: places and buildings with arrival time, peak depth, speed and hazard.

For each place of the twin and each building, the flood engine's per-cell envelopes are read
on a ring just outside the footprint (buildings are usually blocked cells that stay dry, so
the water that matters is at their walls and doors; a place given as a point inside a
building uses that building's footprint): the highest maximum depth and speed,
the earliest arrival, and the DEFRA FD2320 hazard rating of that depth and speed. This is
the per-place report PHYSICS.md asks of a dam break ("arrival time, peak depth, max
velocity, hazard"), and the people and protected targets inside the flood with time to
arrival.

Who counts, and how many people, is the warnings' own definition
(``alerting.impact.ImpactIndex.count``, README "Counting people in a warning area") applied
to the flood envelope (maximum depth ≥ the threshold, clipped to the twin): a building is
reached when it has a share in the envelope and counts occupants × share; an open place
counts its density × flooded area. So the end-of-run summary and the warnings count alike.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from citytwin.alerting.impact import AreaImpact, ImpactIndex
from citytwin.physics.flood import LocalInertialFlood, hazard_rating
from citytwin.twin.model import CityTwin

#: Points on each ring around a footprint.
RING_POINTS = 24

IMPACT_COLUMNS = ("id", "what", "kind", "protected", "people", "flooded", "arrival_time_s",
                  "max_depth_m", "max_velocity_m_s", "hazard_rating")


def ring_points(geoms: np.ndarray, ring_m: float) -> tuple[np.ndarray, np.ndarray]:
    """``RING_POINTS`` points on the boundary of each geometry buffered by ``ring_m``."""
    rings = shapely.boundary(shapely.buffer(geoms, ring_m))
    fractions = np.arange(RING_POINTS) / RING_POINTS
    pts = shapely.line_interpolate_point(np.repeat(rings, RING_POINTS),
                                         np.tile(fractions, len(geoms)), normalized=True)
    return shapely.get_x(pts), shapely.get_y(pts)


def footprints_of(geoms: np.ndarray, twin: CityTwin) -> np.ndarray:
    """Places given as points inside a building stand for that building (a school's point
    is in the school): use its footprint, whose walls the water reaches."""
    geoms = geoms.copy()
    if len(twin.buildings):
        points = np.flatnonzero(shapely.get_type_id(geoms) == 0)
        tree = shapely.STRtree(twin.buildings.geometry.to_numpy())
        inside, building = tree.query(geoms[points], predicate="within")
        geoms[points[inside]] = tree.geometries[building]
    return geoms


def flood_envelope(engine: LocalInertialFlood, twin: CityTwin,
                   depth_threshold_m: float = 0.15):
    """Where the maximum depth so far reached ``depth_threshold_m`` (m), inside the twin."""
    area = engine.footprint("max_depth_m", depth_threshold_m, z_m=0.0)
    return shapely.intersection(area, shapely.box(*twin.terrain.bounds))


def flood_impact(engine: LocalInertialFlood, twin: CityTwin, *,
                 depth_threshold_m: float = 0.15,
                 counted: AreaImpact | None = None) -> pd.DataFrame:
    """One row per place the flood reached at ``depth_threshold_m`` (ring maximum) and per
    building with a share in the flood envelope, sorted by arrival time; ``people`` =
    occupants × share (buildings) or the open place's people (module docstring; 0 for a
    place inside a building: its people are the building's). ``counted``: the envelope's
    ``ImpactIndex.count`` if already made."""
    if counted is None:
        counted = ImpactIndex(twin).count(flood_envelope(engine, twin, depth_threshold_m))
    people = {**dict(zip(counted.building_ids, counted.building_people, strict=True)),
              **dict(zip(counted.place_ids, counted.place_people, strict=True))}
    ring_m = 0.75 * engine.dx_m
    parts = []
    for what, layer, kind_col in (("place", twin.places, "kind"),
                                  ("building", twin.buildings, "use")):
        if len(layer) == 0:
            continue
        x, y = ring_points(footprints_of(layer.geometry.to_numpy(), twin), ring_m)
        xyz = np.column_stack([x, y, np.zeros(len(x))])
        depth = engine.sample("max_depth_m", xyz).reshape(len(layer), RING_POINTS)
        speed = engine.sample("max_velocity_m_s", xyz).reshape(len(layer), RING_POINTS)
        arrival = engine.arrival_time_at(np.column_stack([x, y])).reshape(len(layer),
                                                                          RING_POINTS)
        first = np.fmin.reduce(arrival, axis=1)  # earliest; NaN only if never reached
        d, v = depth.max(axis=1), speed.max(axis=1)
        protected = (layer["protected"].astype(bool).to_numpy() if "protected" in layer
                     else np.zeros(len(layer), dtype=bool))
        ids = layer["id"].astype(str).to_numpy()
        counts = np.array([people.get(i, 0.0) for i in ids])
        flooded = (np.isin(ids, counted.building_ids) if what == "building"
                   else d >= depth_threshold_m)
        parts.append(pd.DataFrame({
            "id": ids, "what": what,
            "kind": layer[kind_col].astype(str).to_numpy(), "protected": protected,
            "people": np.round(counts).astype(int),
            "flooded": flooded, "arrival_time_s": first,
            "max_depth_m": np.round(d, 3), "max_velocity_m_s": np.round(v, 3),
            "hazard_rating": np.round(hazard_rating(d, v, engine.hazard_land_use), 3)}))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=list(IMPACT_COLUMNS))
    reached = table[table["flooded"]]
    return reached.sort_values(["arrival_time_s", "what", "id"], na_position="last",
                               kind="stable").reset_index(drop=True)


def describe(impact: pd.DataFrame, hazard_id: str, people: int | None = None) -> str:
    """One timeline line: buildings, people (``people``, else the table's sum) and
    protected targets reached."""
    buildings = impact[impact["what"] == "building"]
    targets = impact[impact["protected"]]
    first = impact["arrival_time_s"].min() if len(impact) else np.nan
    people = int(impact["people"].sum()) if people is None else people
    text = (f"{hazard_id}: flood ≥ 15 cm reached {len(buildings)} building(s), "
            f"≈ {people} people, {len(impact) - len(buildings)} place(s)")
    if len(targets):
        text += f"; protected targets: {', '.join(targets['id'])}"
    if np.isfinite(first):
        text += f"; first at T+{first / 60:.0f} min"
    return text


def report_flood_impact(engine: LocalInertialFlood, twin: CityTwin, hazard_id: str,
                        run_dir: Path) -> tuple[dict, str]:
    """End of a flood run: ``flood_impact_<hazard>.csv`` in the run folder, a summary for
    the manifest (buildings, people, protected targets, final volume-balance error) and the
    timeline line."""
    counted = ImpactIndex(twin).count(flood_envelope(engine, twin))
    impact = flood_impact(engine, twin, counted=counted)
    impact.to_csv(Path(run_dir) / f"flood_impact_{hazard_id}.csv", index=False)
    summary = {"buildings": counted.buildings, "people": counted.people,
               "protected_targets": impact.loc[impact["protected"], "id"].tolist(),
               "volume_balance_relative_error": engine.mass_balance().relative_error}
    return summary, describe(impact, hazard_id, counted.people)
