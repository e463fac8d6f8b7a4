"""End-to-end throughput: ~10 000 methane detectors at 10 s for 1 h of plume (3.6 M samples).

Runs the real kernel (SimPy clock, plume sampling, measurement model, alerting engine,
archive) on the large synthetic city, with detectors in every gas valve well and junction,
every drainage manhole and every water hydrant and junction chamber. Reports samples/s end
to end with the archive keeping alarms and warnings only, and with every observation
archived; and SimPy events/s of the kernel.

    python benchmarks/perf/bench_pipeline.py
"""

from __future__ import annotations

import copy
import tempfile
import time
from importlib import resources
from pathlib import Path

import simpy
import yaml
from _common import machine_line

from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import parse_scenario

DEMO = Path(str(resources.files("citytwin.scenarios").joinpath("data/gas_leak_drill.yaml")))


def scenario(observations: str) -> dict:
    data = yaml.safe_load(DEMO.read_text())
    data["twin"] = {"synthetic": {"seed": 7, "size": "large"}}
    data["outputs"] = {"observations": observations, "report": False, "render": False}
    group = data["sensors"]["groups"][0]
    groups = [copy.deepcopy(group)]
    for gid, net, kinds in (("ch4-manholes", "drainage", ["manhole"]),
                            ("ch4-water-chambers", "water", ["hydrant", "junction"])):
        g = copy.deepcopy(group)
        g["id"], g["placement"]["network"], g["placement"]["node_kinds"] = gid, net, kinds
        groups.append(g)
    data["sensors"]["groups"] = groups
    return data


def run(observations: str) -> tuple[int, int, float, int]:
    sc = parse_scenario(scenario(observations), "bench")
    prepared = prepare(sc, source="bench")
    n_sensors = len(prepared.network.table)
    counted = {"n": 0}
    original = simpy.Environment.step

    def counting_step(self):
        counted["n"] += 1
        return original(self)

    simpy.Environment.step = counting_step
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = simulate(prepared, Path(tmp) / "run")
            wall = time.perf_counter() - t0
    finally:
        simpy.Environment.step = original
    return n_sensors, result.n_observations, wall, counted["n"]


def simpy_baseline(n_events: int = 300_000) -> float:
    """Raw SimPy timeouts/s on this machine, for scale."""
    env = simpy.Environment()

    def proc():
        for _ in range(n_events):
            yield env.timeout(1)

    env.process(proc())
    t0 = time.perf_counter()
    env.run()
    return n_events / (time.perf_counter() - t0)


if __name__ == "__main__":
    print(machine_line())
    run("none")  # warm-up: numba JIT cache, imports
    for mode in ("none", "all"):
        n_sensors, n_obs, wall, events = run(mode)
        label = "alarms/warnings archived" if mode == "none" else "every observation archived"
        print(f"pipeline ({label}): {n_sensors} sensors, {n_obs:,} samples in {wall:.2f} s "
              f"= {n_obs / wall:,.0f} samples/s; kernel {events} SimPy events "
              f"({events / wall:,.0f} events/s)")
    print(f"raw SimPy timeouts: {simpy_baseline():,.0f} events/s")
