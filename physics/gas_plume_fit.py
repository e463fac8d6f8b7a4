"""The ``gas_plume`` hazard's source fit: a release fitted to the methane readings of an
incident, so a replay's counterfactual sensors (added or moved) can read the fitted plume.

``fit_gas_source``: candidate
sources are the gas-network nodes within ``radius_m`` of the alarming sensors (a 10 m grid
when the twin has no gas network) and a few candidate start times before the first
exceedance. Because the wind is uniform in space, one unit-rate plume per start time,
released at the origin, gives every candidate by translation; the concentration is linear in
the release rate, so each candidate's rate is the closed-form least-squares ``q = max(0, Σ
o·u / Σ u²)`` and the candidate with the smallest RMS misfit wins. Readings clipped at the
top of the range are censored (they only say "at least this much": a model above them is not
penalised; the rate is then refined on a log grid around the closed form); readings the
caller marks unusable (stuck, offline, dropped) are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from citytwin.physics.forcing import ReleaseSchedule
from citytwin.physics.gas import CH4_LEL_QUANTITY
from citytwin.physics.plume import GaussianPuffPlume
from citytwin.physics.weather import Weather
from citytwin.twin.model import CityTwin

#: The readings the fit explains, and what the fitted model is sampled for.
GAS_QUANTITY = CH4_LEL_QUANTITY

#: Start-time candidates: this far before the first exceedance (s).
START_OFFSETS_S = (0.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)


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

    quantity = GAS_QUANTITY

    def engine(self) -> GaussianPuffPlume:
        """The fitted plume engine (fresh, at t = 0)."""
        return _plume(self.weather, self.source_xy_m, self.height_m, self.start_s,
                      self.rate_kg_s)

    def summary(self) -> str:
        """One line for the terminal."""
        return (f"Fitted gas source: {self.source_label} ({self.source_xy_m[0]:.0f}, "
                f"{self.source_xy_m[1]:.0f}), start {self.start_s:g} s, rate "
                f"{self.rate_kg_s:.3g} kg/s, RMS misfit {self.misfit_rms:.2f} %LEL "
                f"(data RMS {self.observed_rms:.2f}) over {self.n_observations} readings")

    def method(self) -> str:
        """How it was fitted, for a report."""
        return (f"Gas source fitted by least squares over {self.n_candidates} candidate "
                f"sources × start times to {self.n_observations:,} methane readings (rate "
                "in closed form per candidate; readings clipped at the top of the range are "
                "censored). Wind and stability as archived.")

    def ranking_table(self) -> tuple[list[str], list[list[str]]]:
        """The best candidates: column headers and rows of text, best first."""
        rows = [["best" if i == 0 else str(i + 1), r["source"],
                 f"{r['xy_m'][0]:.1f}, {r['xy_m'][1]:.1f}", _clock(r["start_s"]),
                 f"{r['rate_kg_s']:.3g}", f"{r['misfit_rms']:.2f}"]
                for i, r in enumerate(self.ranking)]
        return ["", "source", "x, y (m)", "start", "rate (kg/s)", "RMS misfit (%LEL)"], rows

    def scale_note(self) -> str:
        """What the misfit is measured against."""
        return f"RMS of the readings used: {self.observed_rms:.2f} %LEL."

    def as_dict(self) -> dict[str, Any]:
        return {"source_xy_m": list(self.source_xy_m), "source": self.source_label,
                "start_s": self.start_s, "rate_kg_s": self.rate_kg_s,
                "misfit_rms_lel_pct": self.misfit_rms,
                "observed_rms_lel_pct": self.observed_rms,
                "n_observations": self.n_observations, "n_candidates": self.n_candidates,
                "ranking": self.ranking}


def _clock(t_s: float) -> str:
    t = int(round(t_s))
    return f"T+{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


def _plume(weather: Weather, xy: tuple[float, float], height_m: float, start_s: float,
           rate_kg_s: float) -> GaussianPuffPlume:
    """A constant release from ``start_s`` on (never stopping)."""
    return GaussianPuffPlume.in_weather(weather, xy, height_m,
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

    ``obs``: sensor_id, time_s, value, and booleans ``usable`` (a reading the model should
    explain) and ``clipped`` (at the top of the sensor's range: a lower bound);
    ``sensors``: the inventory (x_m, y_m, z_m, quantity). Raises ValueError when no reading
    reaches ``alarm_value``.
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
    use = o[o["sensor_id"].isin(gas.index[near]) & o["usable"].to_numpy(bool)]
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
    above = use["clipped"].to_numpy(bool) & (values > 0)
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
