"""Counterfactual replays: other rulebooks, sensors removed, added or moved.

- **rulebook** (other thresholds): the same observations through another rulebook.
- **remove**: the sensors' observations (and the sensors) are dropped.
- **add / move**: the hazard model is *fitted* to the archived observations and sampled at
  the new positions. For gas (``fit_gas_source``): candidate sources are the gas-network
  nodes within ``radius_m`` of the alarming sensors (a 10 m grid when the twin has no gas
  network) and a few candidate start times before the first exceedance. Because the wind is
  uniform in space, one unit-rate plume per start time, released at the origin, gives every
  candidate by translation; the concentration is linear in the release rate, so each
  candidate's rate is the closed-form least-squares ``q = max(0, Σ o·u / Σ u²)`` and the
  candidate with the smallest RMS misfit wins. Readings clipped at the top of the range
  are censored (they only say "at least this much": a model above them is not penalised;
  the rate is then refined on a log grid around the closed form); stuck readings are left
  out.

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
from citytwin.physics.forcing import ReleaseSchedule
from citytwin.physics.plume import GaussianPuffPlume
from citytwin.scenarios.replay.readers import Incident, cadence_ticks
from citytwin.scenarios.replay.session import (
    COUNTERFACTUAL_STREAM,
    ReplayResult,
    ReplaySetup,
    diff_warnings,
    known_when,
    prepare_replay,
    run_replay,
    warning_summary,
    with_network,
)
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.scenarios.run.cascade import GAS_QUANTITY
from citytwin.physics.gas_plume import plume_engine
from citytwin.scenarios.spec.scenario import Weather, clock_text
from citytwin.sensors_sim.network import SensorNetwork
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin

#: Start-time candidates: this far before the first exceedance (s).
START_OFFSETS_S = (0.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)


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


# --- fitting a gas source ----------------------------------------------------------------

@dataclass
class PlumeFit:
    """A fitted gas release: where, when, how much, and how well it explains the data."""

    source_xy_m: tuple[float, float]
    source_label: str
    start_s: float
    rate_kg_s: float
    misfit_rms: float  #: RMS of (observed − fitted), %LEL
    observed_rms: float  #: RMS of the observations used, %LEL (misfit scale)
    n_observations: int
    n_candidates: int
    height_m: float
    weather: Weather
    ranking: list[dict[str, Any]]  #: best candidates (label, xy, start, rate, misfit)

    def plume(self) -> GaussianPuffPlume:
        """The fitted plume engine (fresh, at t = 0)."""
        return _plume(self.weather, self.source_xy_m, self.height_m, self.start_s,
                      self.rate_kg_s)

    def as_dict(self) -> dict[str, Any]:
        return {"source_xy_m": list(self.source_xy_m), "source": self.source_label,
                "start_s": self.start_s, "rate_kg_s": self.rate_kg_s,
                "misfit_rms_lel_pct": self.misfit_rms,
                "observed_rms_lel_pct": self.observed_rms,
                "n_observations": self.n_observations, "n_candidates": self.n_candidates,
                "ranking": self.ranking}


def _plume(weather: Weather, xy: tuple[float, float], height_m: float, start_s: float,
           rate_kg_s: float) -> GaussianPuffPlume:
    """A constant release from ``start_s`` on (never stopping)."""
    return plume_engine(weather, xy, height_m,
                        ReleaseSchedule.constant(start_s, math.inf, rate_kg_s))


def candidate_sources(twin: CityTwin | None, alarm_xy: np.ndarray,
                      radius_m: float) -> tuple[np.ndarray, list[str]]:
    """Gas-network nodes within ``radius_m`` of an alarming sensor (else a 10 m grid)."""
    if twin is not None and "gas" in twin.networks and len(twin.networks["gas"].nodes):
        nodes = twin.networks["gas"].nodes
        xy = np.column_stack([nodes.geometry.x, nodes.geometry.y])
        d = np.min(np.hypot(xy[:, None, 0] - alarm_xy[None, :, 0],
                            xy[:, None, 1] - alarm_xy[None, :, 1]), axis=1)
        keep = d <= radius_m
        labels = [f"{k} {i}" for k, i in zip(nodes["kind"].astype(str)[keep],
                                              nodes["id"].astype(str)[keep], strict=True)]
        if keep.any():
            return xy[keep], labels
    lo, hi = alarm_xy.min(axis=0) - radius_m, alarm_xy.max(axis=0) + radius_m
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0] + 1e-9, 10.0), np.arange(lo[1], hi[1] + 1e-9,
                                                                          10.0))
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    d = np.min(np.hypot(xy[:, None, 0] - alarm_xy[None, :, 0],
                        xy[:, None, 1] - alarm_xy[None, :, 1]), axis=1)
    xy = xy[d <= radius_m]
    return xy, [f"point ({x:.0f}, {y:.0f})" for x, y in xy]


def fit_gas_source(obs: pd.DataFrame, sensors: pd.DataFrame, weather: Weather, *,
                   twin: CityTwin | None = None, candidates_xy: np.ndarray | None = None,
                   candidate_labels: list[str] | None = None, radius_m: float = 300.0,
                   alarm_value: float = 10.0, height_m: float = 0.5,
                   start_candidates_s: list[float] | None = None,
                   max_times: int = 240) -> PlumeFit:
    """Least-squares fit of a constant gas release to methane readings (module docstring).

    ``obs``: sensor_id, time_s, value, quality; ``sensors``: the inventory (x_m, y_m, z_m,
    quantity). Raises ValueError when no reading reaches ``alarm_value``.
    """
    gas = sensors[sensors["quantity"] == GAS_QUANTITY].set_index("sensor_id")
    o = obs[obs["sensor_id"].isin(gas.index)]
    hot = o[o["value"] >= alarm_value]
    if hot.empty:
        raise ValueError(f"no methane reading reaches {alarm_value:g} %LEL: nothing to fit")
    alarm_ids = sorted(set(hot["sensor_id"]))
    alarm_xy = gas.loc[alarm_ids, ["x_m", "y_m"]].to_numpy(float)
    if candidates_xy is None:
        candidates_xy, candidate_labels = candidate_sources(twin, alarm_xy, radius_m)
    cand = np.asarray(candidates_xy, float).reshape(-1, 2)
    labels = candidate_labels or [f"point ({x:.0f}, {y:.0f})" for x, y in cand]
    # readings of sensors near the candidates, unflagged (the model explains these)
    sxy = gas[["x_m", "y_m"]].to_numpy(float)
    near = np.min(np.hypot(sxy[:, None, 0] - cand[None, :, 0],
                           sxy[:, None, 1] - cand[None, :, 1]), axis=1) <= 2 * radius_m
    q = o["quality"].to_numpy()
    usable = (q == QUALITY_OK) | (q == QUALITY_CLIPPED)
    use = o[o["sensor_id"].isin(gas.index[near]) & usable]
    times = np.unique(use["time_s"].to_numpy(float))
    if len(times) > max_times:
        times = times[np.linspace(0, len(times) - 1, max_times).round().astype(int)]
        use = use[use["time_s"].isin(times)]
    use = use.sort_values(["time_s"], kind="stable")
    t_first = float(hot["time_s"].min())
    starts = (start_candidates_s if start_candidates_s is not None else
              sorted({max(0.0, t_first - d) for d in START_OFFSETS_S}))
    pos = gas.loc[use["sensor_id"], ["x_m", "y_m", "z_m"]].to_numpy(float)
    values = use["value"].to_numpy(float)
    # clipped at the top: the true value is at least the reading (one-sided residual)
    above = (use["quality"].to_numpy() == QUALITY_CLIPPED) & (values > 0)
    t_of_row = use["time_s"].to_numpy(float)
    bounds = np.searchsorted(t_of_row, times, side="left").tolist() + [len(t_of_row)]
    results = []
    for t0 in starts:
        unit = _plume(weather, (0.0, 0.0), height_m, t0, 1.0)
        u = np.zeros((len(values), len(cand)))
        for k, t in enumerate(times):
            a, b = bounds[k], bounds[k + 1]
            if a == b or t <= t0:
                continue
            unit.advance_to(t)
            p = pos[a:b]
            rel = np.empty((b - a, len(cand), 3))
            rel[..., 0] = p[:, None, 0] - cand[None, :, 0]
            rel[..., 1] = p[:, None, 1] - cand[None, :, 1]
            rel[..., 2] = p[:, None, 2]
            u[a:b] = unit.sample(GAS_QUANTITY, rel.reshape(-1, 3)).reshape(b - a, len(cand))
        rate, misfit = _rates(values, u, above)
        for j in range(len(cand)):
            results.append((float(misfit[j]), float(t0), j, float(rate[j])))
    results.sort(key=lambda r: (r[0], -r[1], r[2]))
    best = results[0]
    ranking = [{"source": labels[j], "xy_m": [float(cand[j, 0]), float(cand[j, 1])],
                "start_s": t0, "rate_kg_s": q, "misfit_rms": m}
               for m, t0, j, q in results[:5]]
    return PlumeFit((float(cand[best[2], 0]), float(cand[best[2], 1])), labels[best[2]],
                    best[1], best[3], best[0], float(np.sqrt(np.mean(values ** 2))),
                    len(values), len(cand), height_m, weather, ranking)


def _rates(values: np.ndarray, u: np.ndarray,
           above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate column of ``u`` (unit-rate model): the rate and RMS misfit.

    Closed form over the in-range readings first (q = Σ o·u / Σ u², q ≥ 0); then, when
    some readings are clipped at the top (censored: only a model below them is wrong), the
    best of a log grid around it, ×0.1 … ×10.
    """
    inr = ~above
    uu = np.einsum("ij,ij->j", u[inr], u[inr])
    ou = values[inr] @ u[inr]
    q0 = np.where(uu > 0, np.maximum(ou / np.where(uu > 0, uu, 1.0), 0.0), 0.0)

    def misfit(q: np.ndarray) -> np.ndarray:
        r = values[:, None] - u * q[None, :]
        r[above] = np.maximum(r[above], 0.0)
        return np.sqrt(np.mean(r ** 2, axis=0))

    best_q, best_m = q0, misfit(q0)
    if above.any():
        for f in np.logspace(-1.0, 1.0, 41):
            m = misfit(q0 * f)
            better = m < best_m
            best_q = np.where(better, q0 * f, best_q)
            best_m = np.where(better, m, best_m)
    return best_q, best_m


# --- model-derived sensors ---------------------------------------------------------------

def model_sensors(setup: ReplaySetup, fit: PlumeFit, points: list[tuple[str, tuple[float, ...],
                                                                        str]]
                  ) -> tuple[pd.DataFrame, pd.DataFrame, tuple[str, np.ndarray]]:
    """Sensors at ``points`` ((id, (x, y[, z]), type_id)) reading the fitted plume.

    Returns (inventory rows, observations with stream/tick_s, the stream). The stream
    ticks at the cadence of the incident's methane group; readings are clipped and rounded
    like the sensor type's.
    """
    net = setup.run.network.table
    gas = net[net["quantity"] == GAS_QUANTITY]
    interval = float(gas["interval_s"].min()) if len(gas) else 10.0
    z_default = float(gas["z_m"].median()) if len(gas) else 0.3
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
    plume = fit.plume()
    xyz = inv[["x_m", "y_m", "z_m"]].to_numpy(float)
    parts = []
    for t in ticks:
        plume.advance_to(float(t))
        v = plume.sample(GAS_QUANTITY, xyz)
        parts.append(v)
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


# --- running counterfactuals --------------------------------------------------------------

@dataclass
class CounterfactualResult:
    """A counterfactual replay and what it changed."""

    cf: Counterfactual
    result: ReplayResult
    diff: list[dict[str, Any]]  #: against the replay (what this change changed)
    added: list[dict[str, Any]]  #: per model-derived sensor: position, first alarm, warning


def apply_counterfactual(setup: ReplaySetup, cf: Counterfactual,
                         fit: PlumeFit | None) -> ReplaySetup:
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
        points = [(f"CF-{k}", xyz, "methane_detector") for k, xyz in enumerate(cf.add, 1)]
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


def run_counterfactual(setup: ReplaySetup, cf: Counterfactual, fit: PlumeFit | None,
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


@dataclass
class Investigation:
    """A replay with its diff, timeline, fit and counterfactuals."""

    incident: Incident
    setup: ReplaySetup
    replay: ReplayResult
    timeline: list[dict[str, Any]]
    diff: list[dict[str, Any]] | None  #: replay vs the warnings of the time (None: not given)
    archived_summary: dict[str, Any] | None
    fit: PlumeFit | None
    fit_note: str
    counterfactuals: list[CounterfactualResult]

    @property
    def levels(self) -> list[str]:
        return self.setup.run.rulebook.levels

    def text_summary(self) -> str:
        """Lines for the terminal."""
        lines = [f"Replay of {self.incident.source}: {self.replay.n_observations:,} "
                 f"observations, rulebook {self.setup.rulebook_label}, hazard model "
                 f"{'rebuilt' if self.setup.with_model else 'not used'} "
                 f"({self.replay.wall_s:.1f} s)"]
        if self.setup.anchor is None:
            lines.append("Wall clock unknown (numeric times, no anchor): times are T+ from the "
                         "incident's t = 0")
        rows = [("archived", self.archived_summary)] if self.archived_summary else []
        rows += [("replay", self.replay.summary)]
        rows += [(c.cf.label, c.result.summary) for c in self.counterfactuals]
        for label, s in rows:
            lv = ", ".join(f"{k} {clock_text(v)}" for k, v in s["level_first_s"].items())
            lines.append(f"  {label:<28} first warning {clock_text(s['first_warning_s'])}; {lv}; "
                         f"{s['warnings']} warning(s)")
        if self.diff is not None:
            counts = pd.Series([d["status"] for d in self.diff]).value_counts().to_dict()
            lines.append(f"Diff against the warnings of the time: {counts or 'no warnings'}")
        if self.fit is not None:
            f = self.fit
            lines.append(f"Fitted gas source: {f.source_label} ({f.source_xy_m[0]:.0f}, "
                         f"{f.source_xy_m[1]:.0f}), start {f.start_s:g} s, rate "
                         f"{f.rate_kg_s:.3g} kg/s, RMS misfit {f.misfit_rms:.2f} %LEL "
                         f"(data RMS {f.observed_rms:.2f}) over {f.n_observations} readings")
        elif self.fit_note:
            lines.append(f"No source fit: {self.fit_note}")
        for c in self.counterfactuals:
            for a in c.added:
                lines.append(f"  {c.cf.label}: model-derived {a['sensor_id']} would have "
                             f"alarmed at {clock_text(a['first_alarm_s'])} (in a warning at "
                             f"{clock_text(a['in_warning_s'])})")
        return "\n".join(lines)


@dataclass
class InvestigationPlan:
    """A checked investigation, nothing written yet: the prepared replay, the
    counterfactuals (checked by ``check_counterfactuals``) and the source fit."""

    incident: Incident
    setup: ReplaySetup
    counterfactuals: list[Counterfactual]
    fit: PlumeFit | None
    fit_note: str

    def run(self, out_dir: Path) -> Investigation:
        """Replay into ``out_dir/replay``, diff, and run each counterfactual into
        ``out_dir/cf-<n>``."""
        out_dir = Path(out_dir)
        inc, setup = self.incident, self.setup
        replay = run_replay(setup, out_dir / "replay", "replay")
        levels = setup.run.rulebook.levels
        diff = archived = None
        if inc.warnings is not None:
            diff = diff_warnings(inc.warnings, replay.warnings, levels)
            archived = warning_summary(inc.warnings, levels)
        cfs = [run_counterfactual(setup, cf, self.fit, out_dir / f"cf-{k}", replay)
               for k, cf in enumerate(self.counterfactuals, start=1)]
        return Investigation(inc, setup, replay, known_when(replay.archive_path), diff,
                             archived, self.fit, self.fit_note, cfs)


def plan_investigation(inc: Incident, *, counterfactuals: Sequence[Counterfactual] = (),
                       twin_dir: str | None = None, with_model: bool | None = None,
                       wind: tuple[float, float] | None = None, rulebook: str | None = None,
                       fit: bool | None = None, synthetic: tuple[int, str] | None = None,
                       twin: CityTwin | None = None) -> InvestigationPlan:
    """Prepare the replay, check every counterfactual and fit the gas source — everything
    that can refuse the inputs, before anything is written. ``fit`` None: fit when a
    counterfactual needs it or the incident has methane readings. Adding or moving a sensor
    without a fitted source is an InputError here."""
    setup = prepare_replay(inc, twin_dir=twin_dir, rulebook=rulebook, with_model=with_model,
                           wind=wind, synthetic=synthetic, twin=twin)
    counterfactuals = list(counterfactuals)
    check_counterfactuals(setup, counterfactuals)
    plume_fit, note = None, ""
    want_fit = fit if fit is not None else (
        any(c.needs_fit for c in counterfactuals)
        or bool((setup.run.network.table["quantity"] == GAS_QUANTITY).any()))
    if want_fit:
        if not inc.from_citytwin and wind is None:
            note = "no weather for an external incident (give --wind SPEED,FROM_DEG)"
        else:
            try:
                plume_fit = fit_gas_source(setup.obs, setup.run.network.table,
                                           setup.run.scenario.weather, twin=setup.run.twin)
            except ValueError as exc:
                note = str(exc)
    needing = [c for c in counterfactuals if c.needs_fit]
    if needing and plume_fit is None:
        option = "--add" if needing[0].add else "--move"
        raise InputError(option, f"counterfactual {needing[0].label!r} needs a fitted gas "
                         f"source, and none could be fitted: {note or 'fit not requested'}")
    return InvestigationPlan(inc, setup, counterfactuals, plume_fit, note)


def run_investigation(inc: Incident, out_dir: Path, *,
                      counterfactuals: Sequence[Counterfactual] = (),
                      twin_dir: str | None = None, with_model: bool | None = None,
                      wind: tuple[float, float] | None = None,
                      rulebook: str | None = None, fit: bool | None = None,
                      synthetic: tuple[int, str] | None = None) -> Investigation:
    """``plan_investigation`` then ``InvestigationPlan.run`` into ``out_dir``: the replay in
    ``out_dir/replay``, each counterfactual in ``out_dir/cf-<n>``."""
    return plan_investigation(inc, counterfactuals=counterfactuals, twin_dir=twin_dir,
                              with_model=with_model, wind=wind, rulebook=rulebook, fit=fit,
                              synthetic=synthetic).run(out_dir)
