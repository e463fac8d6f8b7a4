"""Counterfactual replays: other rulebooks, sensors removed, added or moved.

- **rulebook** (other thresholds): the same observations through another rulebook.
- **remove**: the sensors' observations (and the sensors) are dropped.
- **add / move**: the hazard model is *fitted* to the archived observations (the source
  fit its hazard module declares: ``HazardDescriptor.source_fit``) and sampled at the new
  positions.

  Model-derived readings are delivered like the others (source ``archive``, quality ok or
  clipped); they are told apart by their sensor ids (``CF-<n>`` added, ``<id>~moved``
  moved) and flagged ``model_derived`` in ``CounterfactualResult.added``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.alerting.observation import QUALITY_CLIPPED, QUALITY_OK
from citytwin.physics.hazard import FittedSource
from citytwin.scenarios.replay.cadence import cadence_ticks
from citytwin.scenarios.replay.diff import diff_warnings
from citytwin.scenarios.replay.session import (
    COUNTERFACTUAL_STREAM,
    ReplayResult,
    ReplaySetup,
    run_replay,
    with_network,
)
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.sensors_sim.network import SensorNetwork
from citytwin.twin.errors import InputError


@dataclass(frozen=True)
class Counterfactual:
    """One what-if: any of another rulebook, sensors removed, added (x, y[, z]) or moved."""

    label: str
    rulebook: str | None = None
    remove: tuple[str, ...] | list[str] = ()
    add: tuple[tuple[float, ...], ...] | list[tuple[float, ...]] = ()
    move: dict[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def needs_fit(self) -> bool:
        return bool(self.add or self.move)


# --- model-derived sensors ---------------------------------------------------------------

def model_sensors(setup: ReplaySetup, fit: FittedSource,
                  points: list[tuple[str, tuple[float, ...], str]]
                  ) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, np.ndarray]]:
    """Sensors at ``points`` ((id, (x, y[, z]), type_id)) reading the fitted model.

    Returns (inventory rows, observations with stream/tick_s, the stream). The stream
    ticks at the cadence of the incident's sensors of the fitted quantity; readings are
    clipped and rounded like the sensor type's.
    """
    net = setup.run.network.table
    same = net[net["quantity"] == fit.quantity]
    interval = float(same["interval_s"].min()) if len(same) else 10.0
    z_default = float(same["z_m"].median()) if len(same) else 0.3
    cat = setup.run.catalogue
    rows = []
    for sid, xyz, type_id in points:
        st = cat[type_id]
        rows.append({"sensor_id": sid, "type_id": type_id, "quantity": st.quantity,
                     "unit": st.unit, "x_m": float(xyz[0]), "y_m": float(xyz[1]),
                     "z_m": float(xyz[2]) if len(xyz) > 2 else z_default,
                     "asset_network": None, "asset_id": None,
                     "group_id": COUNTERFACTUAL_STREAM, "interval_s": interval})
    inv = pd.DataFrame(rows)
    ticks = cadence_ticks(interval, setup.run.scenario.duration_s)
    model = fit.engine()
    xyz = inv[["x_m", "y_m", "z_m"]].to_numpy(float)
    parts = []
    for t in ticks:
        model.advance_to(float(t))
        parts.append(model.sample(fit.quantity, xyz))
    values = np.array(parts)  # (ticks, sensors)
    out = []
    for j, r in enumerate(rows):
        st = cat[r["type_id"]]
        v = np.round(values[:, j] / st.resolution) * st.resolution
        clipped = (v < st.range_min) | (v > st.range_max)
        out.append(pd.DataFrame({
            "sensor_id": r["sensor_id"], "time_s": ticks, "received_s": ticks + st.latency_s,
            "value": np.clip(v, st.range_min, st.range_max), "unit": r["unit"],
            "quality": np.where(clipped, QUALITY_CLIPPED, QUALITY_OK).astype(np.int8),
            "stream": COUNTERFACTUAL_STREAM, "tick_s": ticks}))
    obs = pd.concat(out, ignore_index=True).sort_values("tick_s", kind="stable")
    return inv, obs.reset_index(drop=True), (COUNTERFACTUAL_STREAM, ticks)


def sensor_type_for(setup: ReplaySetup, quantity: str) -> str:
    """The type of an added sensor: the incident's most common type measuring ``quantity``,
    else the first catalogue type that does."""
    net = setup.run.network.table
    types = net.loc[net["quantity"] == quantity, "type_id"].astype(str)
    if len(types):
        return str(types.value_counts().sort_index(kind="stable").idxmax())
    known = [t for t, st in sorted(setup.run.catalogue.items()) if st.quantity == quantity]
    if not known:
        raise InputError("--add", f"no sensor type of the catalogue measures {quantity}")
    return known[0]


# --- running counterfactuals --------------------------------------------------------------

@dataclass
class CounterfactualResult:
    """A counterfactual replay and what it changed."""

    cf: Counterfactual
    result: ReplayResult
    diff: list[dict[str, Any]]  #: against the replay (what this change changed)
    added: list[dict[str, Any]]  #: per model-derived sensor: position, first alarm, warning


def apply_counterfactual(setup: ReplaySetup, cf: Counterfactual,
                         fit: FittedSource | None) -> ReplaySetup:
    """The replay setup with the counterfactual's changes (``cf`` checked by
    ``check_counterfactuals`` and ``fit`` given when it adds or moves sensors, as
    ``plan_investigation`` ensures)."""
    from citytwin.alerting.rulebook import load_rulebook

    table = setup.run.network.table
    obs, streams = setup.obs, list(setup.streams)
    drop = list(cf.remove) + list(cf.move)
    table = table[~table["sensor_id"].isin(drop)]
    obs = obs[~obs["sensor_id"].isin(drop)]
    left = set(table["group_id"])
    streams = [s for s in streams if s[0] in left]
    if cf.needs_fit:  # plan_investigation refused it without a fit
        orig = setup.run.network.table.set_index("sensor_id")
        type_id = sensor_type_for(setup, fit.quantity)
        points = [(f"CF-{k}", xyz, type_id) for k, xyz in enumerate(cf.add, 1)]
        points += [(f"{sid}~moved", xyz if len(xyz) > 2 else (*xyz, orig.loc[sid, "z_m"]),
                    str(orig.loc[sid, "type_id"])) for sid, xyz in cf.move.items()]
        inv, cf_obs, stream = model_sensors(setup, fit, points)
        table = pd.concat([table, inv], ignore_index=True)
        obs = pd.concat([obs, cf_obs], ignore_index=True)
        streams.append(stream)
    network = SensorNetwork(table.reset_index(drop=True), source=cf.label)
    changes = {}
    if cf.rulebook:
        changes = {"rulebook": load_rulebook(cf.rulebook), "rulebook_source": cf.rulebook}
    return with_network(setup, network, obs.reset_index(drop=True), streams, **changes)


def check_counterfactuals(setup: ReplaySetup, cfs: Sequence[Counterfactual]) -> None:
    """Refuse a bad counterfactual before anything runs (InputError naming the option):
    a sensor id to remove or move that is not in the inventory, a rulebook that does not
    load, a position to add or move to outside the twin's terrain."""
    from citytwin.alerting.rulebook import load_rulebook

    ids = set(setup.run.network.table["sensor_id"])
    xmin, ymin, xmax, ymax = (float(v) for v in setup.run.twin.terrain.bounds)
    loaded: set[str] = set()
    for cf in cfs:
        for option, given in (("--remove", list(cf.remove)), ("--move", list(cf.move))):
            unknown = [s for s in given if s not in ids]
            if unknown:
                raise InputError(option, f"unknown sensor id(s) {unknown} (not in the sensor "
                                 f"inventory of {setup.run.source})", field="sensor_id")
        if cf.rulebook and cf.rulebook not in loaded:
            load_rulebook(cf.rulebook)  # InputError naming the file and the field
            loaded.add(cf.rulebook)
        points = [("--add", xyz) for xyz in cf.add]
        points += [("--move", xyz) for xyz in cf.move.values()]
        for option, xyz in points:
            x, y = float(xyz[0]), float(xyz[1])
            if not (all(math.isfinite(float(v)) for v in xyz)
                    and xmin <= x <= xmax and ymin <= y <= ymax):
                where = ",".join(f"{float(v):.10g}" for v in xyz)
                raise InputError(option, f"{where} lies outside the twin's terrain (x "
                                 f"{xmin:.0f}…{xmax:.0f}, y {ymin:.0f}…{ymax:.0f} m in "
                                 f"{setup.run.twin.crs.to_string()})")


def run_counterfactual(setup: ReplaySetup, cf: Counterfactual, fit: FittedSource | None,
                       run_dir: Path, baseline: ReplayResult) -> CounterfactualResult:
    """Apply ``cf``, replay it into ``run_dir`` and compare with ``baseline``."""
    cf_setup = apply_counterfactual(setup, cf, fit)
    res = run_replay(cf_setup, run_dir, cf.label)
    levels = cf_setup.run.rulebook.levels
    diff = diff_warnings(baseline.warnings, res.warnings, levels)
    added = []
    ids = [f"CF-{k}" for k in range(1, len(cf.add) + 1)] + [f"{s}~moved" for s in cf.move]
    if ids:
        alarms = read_table(res.archive_path, "alarms")
        net = cf_setup.run.network.table.set_index("sensor_id")
        for sid in ids:
            a = alarms[(alarms["sensor_id"] == sid) & (alarms["to_level"] > 0)]
            first = a.sort_values("known_at_s").iloc[0] if len(a) else None
            w = res.warnings[[sid in s for s in res.warnings["sensors"]]]
            added.append({
                "sensor_id": sid, "model_derived": True,
                "xyz_m": [float(net.loc[sid, c]) for c in ("x_m", "y_m", "z_m")],
                "first_alarm_s": None if first is None else float(first["known_at_s"]),
                "first_alarm_rule": None if first is None else str(first["rule_id"]),
                "first_alarm_level": (None if first is None
                                      else levels[int(first["to_level"]) - 1]
                                      if first["rule_id"] != "" else None),
                "in_warning_s": float(w["known_at_s"].min()) if len(w) else None})
    return CounterfactualResult(cf, res, diff, added)
