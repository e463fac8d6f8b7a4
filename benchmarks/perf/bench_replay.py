"""Replay speed: observations/s from a Parquet file through the kernel and the engine.

10 000 methane detectors (a 100 × 100 grid over the tiny synthetic city) × 360 ticks of
10 s (1 h, 3.6 M observations, phenomenon and result times as time-zoned timestamps) with
a leak cluster rising through the levels: written as an incident (observations.parquet +
sensors.geojson), then imported (validated: ids, times, units, duplicates, arrival order),
then replayed through the real kernel (``simulate(..., feed=...)``: SimPy clock, platform,
default rulebook, warnings, work orders, self-checks) — once with the observations
archived, once without (the archive's row inserts dominate).

    python benchmarks/perf/bench_replay.py [--sensors 10000] [--ticks 360]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine_line

from citytwin.scenarios.replay.incident import read_incident
from citytwin.scenarios.replay.inventory import write_inventory_geojson
from citytwin.scenarios.replay.session import IncidentFeed, assign_streams, prepare_replay

ANCHOR = pd.Timestamp("2026-06-01T05:30:00+08:00")
CRS = "EPSG:32650"  # the synthetic city's


def make_incident(folder: Path, n: int, ticks: int) -> Path:
    """Write observations.parquet + sensors.geojson; returns the Parquet path."""
    side = int(np.ceil(np.sqrt(n)))
    k = np.arange(n)
    sensors = pd.DataFrame({
        "sensor_id": [f"CH4-{i:05d}" for i in k], "type_id": "methane_detector",
        "quantity": "ch4_lel_pct", "unit": "%LEL",
        "x_m": 400000.0 + 3.0 + (k % side) * 5.9, "y_m": 3400000.0 + 3.0 + (k // side) * 5.9,
        "z_m": 0.3, "asset_network": None, "asset_id": None, "group_id": "ch4",
        "interval_s": 10.0})
    write_inventory_geojson(sensors, CRS, folder / "sensors.geojson")
    rng = np.random.default_rng(0)
    t = np.repeat(np.arange(ticks) * 10.0, n)
    v = np.round(np.abs(rng.normal(0.5, 0.5, n * ticks)))
    leak = (np.tile(k, ticks) < 40)
    v[leak] = np.clip(5.0 + (t[leak] / 10.0 % 400) * 0.5, 0, 100)
    obs = pd.DataFrame({
        "sensor_id": np.tile(sensors["sensor_id"].to_numpy(dtype=object), ticks),
        "phenomenon_time": ANCHOR + pd.to_timedelta(t, unit="s"),
        "result": v, "unit": "%LEL",
        "result_time": ANCHOR + pd.to_timedelta(t + 5.0, unit="s"), "quality": 0})
    path = folder / "observations.parquet"
    obs.to_parquet(path, index=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sensors", type=int, default=10_000)
    ap.add_argument("--ticks", type=int, default=360)
    args = ap.parse_args()
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = make_incident(folder, args.sensors, args.ticks)
        n = args.sensors * args.ticks
        print(f"{n:,} observations, {path.stat().st_size / 1e6:.1f} MB Parquet")
        warm = folder / "warm"
        warm.mkdir()
        make_incident(warm, 100, 3)  # load pyarrow/pandas code paths once: not counted
        read_incident(warm / "observations.parquet", inventory=warm / "sensors.geojson",
                      twin_crs=CRS, anchor=ANCHOR.to_pydatetime())
        t0 = time.perf_counter()
        inc = read_incident(path, inventory=folder / "sensors.geojson", twin_crs=CRS,
                            anchor=ANCHOR.to_pydatetime())
        t_import = time.perf_counter() - t0
        from citytwin.scenarios.run.kernel import simulate

        rows = {}
        for archive in ("none", "all"):
            setup = prepare_replay(inc, synthetic=(7, "tiny"))  # twin: not counted
            sc = setup.run.scenario
            setup.run.scenario = sc.model_copy(update={"outputs": sc.outputs.model_copy(
                update={"observations": archive, "cap": False})})
            t1 = time.perf_counter()
            obs, streams = assign_streams(inc, setup.run.network.table, sc.duration_s)
            feed = IncidentFeed(obs, streams)
            t2 = time.perf_counter()
            res = simulate(setup.run, folder / f"run-{archive}", feed=feed, snapshot=False)
            t3 = time.perf_counter()
            assert res.n_observations == n, (res.n_observations, n)
            rows[archive] = (t2 - t1, t3 - t2, len(res.warnings))
        print(f"import (read + validate Parquet): {t_import:.2f} s = {n / t_import / 1e6:.2f} M/s")
        for archive, (t_feed, t_run, n_w) in rows.items():
            total = t_import + t_feed + t_run
            print(f"replay, observations archived={archive}: feed build {t_feed:.2f} s, kernel "
                  f"{t_run:.2f} s = {n / t_run / 1e6:.2f} M obs/s through the engine; "
                  f"Parquet → engine end to end {total:.2f} s = {n / total / 1e6:.2f} M obs/s "
                  f"({n_w} warning events)")
        none, full = rows["none"], rows["all"]
        date = time.strftime("%Y-%m-%d")
        print("\nRESULTS.md row:")
        print(f"| {date} | replay {args.sensors:,} sensors × {args.ticks} ticks "
              f"({n / 1e6:.1f} M obs) Parquet → import → feed → kernel/engine | "
              f"**{n / (t_import + none[0] + none[1]) / 1e6:.2f} M obs/s** end to end "
              f"(import {n / t_import / 1e6:.2f} M/s, kernel {n / none[1] / 1e6:.2f} M/s); "
              f"observations archived: {n / (t_import + full[0] + full[1]) / 1e6:.2f} M/s | "
              "≥ 1 M/s |")


if __name__ == "__main__":
    main()
