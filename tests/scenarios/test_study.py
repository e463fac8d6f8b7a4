"""What-if studies: sampling, parameter paths, executors, resumption, statistics, maps."""

import argparse
import json
import math
import re
from concurrent.futures import Future
from importlib import resources
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from citytwin.scenarios.cli.study import add_study_commands
from citytwin.scenarios.spec.scenario import apply_path
from citytwin.scenarios.study.aggregate import (
    bootstrap_median_difference,
    compare,
    distribution,
    newcombe_difference,
    newcombe_paired_difference,
    paired_bootstrap_median_difference,
    probability_map,
    wilson_interval,
)
from citytwin.scenarios.study.executor import SerialExecutor, local_executor
from citytwin.scenarios.study.members import plan_members, validate_members
from citytwin.scenarios.study.metrics import (
    detection_events,
    exposure,
    make_grid,
    member_metrics,
)
from citytwin.scenarios.study.runner import StudyProgress, run_study, wall_text
from citytwin.scenarios.study.spec import load_study
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import rng_for
from citytwin.viewer.study_report import write_study_report

from .conftest import DEMO


def study_data(**changes) -> dict:
    """The demo leak on the tiny city for 20 minutes: 2 variants × 2 samples = 4 members."""
    data = {
        "name": "tiny-study",
        "base": str(DEMO),
        "seed": 5,
        "samples": 2,
        "overrides": {"duration_s": 1200, "hazards.0.start_s": 60,
                      "twin": {"synthetic": {"seed": 7, "size": "tiny"}}},
        "variations": {
            "weather.wind.*.from_deg": {"offset_uniform": [-90, 90], "decimals": 1},
            "weather.stability": {"choice": ["D", "E", "F"], "weights": [1, 2, 1]},
            "hazards.0.release.hole_diameter_mm": {"uniform": [40, 100], "decimals": 1},
        },
        "variants": {
            "A": {},
            "B": {"rulebook.rules.ch4_confined_space.thresholds.blue": 5,
                  "rulebook.rules.ch4_confined_space.thresholds.yellow": 15},
        },
        "metrics": [{"name": "lel10", "quantity": "ch4_lel_pct", "threshold": 10,
                     "height_m": 1.5, "cell_m": 10, "interval_s": 60}],
    }
    data.update(changes)
    return data


@pytest.fixture
def write_study(tmp_path):
    def write(data: dict, name: str = "study.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


# ------------------------------------------------------------------ sampling and paths

def test_sampling_is_deterministic_and_keyed_by_parameter(write_study):
    a = plan_members(load_study(write_study(study_data())))
    b = plan_members(load_study(write_study(study_data(), "again.yaml")))
    assert [m.member_id for m in a] == [m.member_id for m in b]
    assert [m.params for m in a] == [m.params for m in b]
    assert len(a) == 4 and len({m.member_id for m in a}) == 4
    # Variants are paired: same draws and the same scenario seed per sample.
    by = {(m.variant, m.sample): m for m in a}
    for s in range(2):
        assert by["A", s].params == by["B", s].params
        assert by["A", s].scenario_seed == by["B", s].scenario_seed
    assert by["A", 0].scenario_seed != by["A", 1].scenario_seed
    # Adding a variation does not change the draws of the others (keyed by path).
    more = study_data()
    more["variations"]["sensors.groups.0.interval_s"] = {"choice": [10, 20]}
    c = plan_members(load_study(write_study(more, "more.yaml")))
    for m, n in zip(a, c, strict=True):
        assert {k: n.params[k] for k in m.params} == m.params
    # Another seed gives other draws.
    d = plan_members(load_study(write_study(study_data(seed=6), "seed6.yaml")))
    assert [m.params for m in d] != [m.params for m in a]


def test_offset_rotates_every_wind_point_and_wraps(write_study):
    members = plan_members(load_study(write_study(study_data())))
    base = yaml.safe_load(DEMO.read_text())
    for m in members:
        off = m.params["weather.wind.*.from_deg"]
        for w0, w in zip(base["weather"]["wind"], m.scenario["weather"]["wind"], strict=True):
            assert w["from_deg"] == pytest.approx(round((w0["from_deg"] + off) % 360, 1))
        assert m.scenario["hazards"][0]["release"]["hole_diameter_mm"] == \
            m.params["hazards.0.release.hole_diameter_mm"]
        assert m.scenario["seed"] == m.scenario_seed
        assert m.scenario["outputs"]["observations"] == "none"
    b = next(m for m in members if m.variant == "B")
    rules = {r["id"]: r for r in b.rulebook["rules"]}
    assert rules["ch4_confined_space"]["thresholds"]["yellow"] == 15


def test_sweeps_form_a_grid_crossed_with_the_samples(write_study):
    data = study_data(variants={})
    data["variations"]["sensors.groups.0.interval_s"] = {"sweep": [10, 30, 60]}
    members = plan_members(load_study(write_study(data)))
    assert len(members) == 3 * 2
    assert sorted({m.params["sensors.groups.0.interval_s"] for m in members}) == [10, 30, 60]
    assert {m.variant for m in members} == {"base"}
    # The random draws of a sample are shared by every sweep point.
    draws = {(m.sample, m.params["weather.stability"]) for m in members}
    assert len(draws) == 2


@pytest.mark.parametrize("values", [[10, 30, 10], [10, 10.0]])
def test_duplicate_sweep_values_are_rejected(write_study, values):
    # Two equal sweep points would be one member id twice: one folder, one metrics.json.
    data = study_data(variants={})
    data["variations"]["sensors.groups.0.interval_s"] = {"sweep": values}
    with pytest.raises(InputError) as err:
        load_study(write_study(data))
    assert err.value.field == "variations.sensors.groups.0.interval_s.sweep"
    assert "given twice" in str(err.value)


def test_member_ids_are_unique_across_sweep_points_variants_and_samples(write_study):
    data = study_data()
    data["variations"]["sensors.groups.0.interval_s"] = {"sweep": [10, 30]}
    data["variations"]["hazards.0.release.pressure_kpa_gauge"] = {"sweep": [300, 400]}
    members = plan_members(load_study(write_study(data)))
    assert len({m.member_id for m in members}) == len(members) == 2 * 4 * 2


def test_apply_path_by_index_star_and_id():
    root = {"rules": [{"id": "a", "t": {"x": 1}}, {"id": "b", "t": {"x": 2}}],
            "w": [{"v": 1}, {"v": 2}]}
    assert apply_path(root, ["rules", "b", "t", "x"], lambda _: 9) == 1
    assert apply_path(root, ["w", "*", "v"], lambda old: old + 10) == 2
    assert apply_path(root, ["rules", "0", "t", "x"], lambda _: 7) == 1
    assert root == {"rules": [{"id": "a", "t": {"x": 7}}, {"id": "b", "t": {"x": 9}}],
                    "w": [{"v": 11}, {"v": 12}]}


@pytest.mark.parametrize("path,field,fragment", [
    ("weather.windd.0.from_deg", "variations.weather.windd.0.from_deg", "no field 'windd'"),
    ("hazards.3.release.hole_diameter_mm", "variations.hazards.3.release.hole_diameter_mm",
     "index 3 out of range"),
    ("rulebook.rules.no_such_rule.thresholds.yellow",
     "variations.rulebook.rules.no_such_rule.thresholds.yellow", "no item with id"),
    ("weather.stabilty", "variations.weather.stabilty", "unknown field"),
])
def test_unknown_parameter_path_names_the_study_file_and_field(write_study, path, field,
                                                                fragment):
    data = study_data()
    data["variations"][path] = {"choice": ["D"]}
    study_file = write_study(data)
    with pytest.raises(InputError) as err:
        members = plan_members(load_study(study_file))
        validate_members(load_study(study_file), members)
    assert err.value.source == str(study_file)
    assert err.value.field == field
    assert fragment in str(err.value)


def test_a_bad_value_among_choices_or_at_a_range_end_fails_before_any_run(write_study,
                                                                          tmp_path):
    data = study_data()
    data["variations"]["weather.stability"] = {"choice": ["D", "X"]}
    with pytest.raises(InputError) as err:
        run_study(load_study(write_study(data)), tmp_path / "out", SerialExecutor())
    assert err.value.field == "variations.weather.stability"
    data = study_data()
    data["variations"]["weather.wind.*.speed_m_s"] = {"uniform": [1, 80]}  # schema: ≤ 60
    with pytest.raises(InputError) as err:
        run_study(load_study(write_study(data, "speed.yaml")), tmp_path / "out",
                  SerialExecutor())
    assert err.value.field == "variations.weather.wind.*.speed_m_s"
    assert "less than or equal to 60" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_bad_study_fields_are_input_errors(write_study, tmp_path):
    with pytest.raises(InputError) as err:
        load_study(write_study(study_data(samplez=3)))
    assert err.value.field == "samplez"
    data = study_data()
    data["variations"]["weather.stability"] = {"choice": ["D"], "uniform": [0, 1]}
    with pytest.raises(InputError) as err:
        load_study(write_study(data, "two.yaml"))
    assert err.value.field == "variations.weather.stability"
    data = study_data()
    data["metrics"][0]["quantity"] = "depth_m"
    with pytest.raises(InputError) as err:
        run_study(load_study(write_study(data, "q.yaml")), tmp_path / "out", SerialExecutor())
    assert err.value.field == "metrics.0.quantity"
    assert not (tmp_path / "out").exists()  # rejected before anything is written


# ------------------------------------------------------------------ statistics

def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert (lo, hi) == (0.0, pytest.approx(0.27754, abs=1e-5))
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.23659, abs=1e-5), pytest.approx(0.76341, abs=1e-5))
    lo, hi = wilson_interval(10, 10)
    assert (lo, hi) == (pytest.approx(0.72246, abs=1e-5), 1.0)
    lo, hi = wilson_interval(81, 263)  # Newcombe (1998) example: 0.2553–0.3662
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_newcombe_difference_known_values():
    # Newcombe (1998) Table II, example (a): 56/70 vs 48/80 → difference 0.2 in
    # [0.0524, 0.3339] (method 10); here p2 − p1 with (k1, n1) = (48, 80).
    d, lo, hi = newcombe_difference(48, 80, 56, 70)
    assert d == pytest.approx(0.2)
    assert (lo, hi) == (pytest.approx(0.0524, abs=1e-4), pytest.approx(0.3339, abs=1e-4))


def test_bootstrap_is_seeded_and_distribution_ignores_nan():
    a = np.array([100.0, 120, 130, 150, np.nan])
    b = np.array([60.0, 80, 90, 95, 110])
    one = bootstrap_median_difference(a, b, rng_for(1, "b"), 500)
    two = bootstrap_median_difference(a, b, rng_for(1, "b"), 500)
    assert one == two
    assert one[0] == pytest.approx(90 - 125)
    assert one[1] <= one[0] <= one[2]
    d = distribution([1.0, 2.0, 3.0, np.nan])
    assert d["n"] == 3 and d["never"] == 1 and d["median"] == 2.0


def test_newcombe_paired_difference_known_value():
    # Fagerland, Lydersen & Laake (2017), ch. 8, complete response before/after consolidation
    # therapy (Cavo et al. 2012): Newcombe square-and-add −0.0621 [−0.1186, −0.0046].
    d, lo, hi = newcombe_paired_difference(59, 6, 16, 80)
    assert d == pytest.approx(-0.0621, abs=1e-4)
    assert (lo, hi) == (pytest.approx(-0.1186, abs=1e-4), pytest.approx(-0.0046, abs=1e-4))
    assert all(math.isnan(v) for v in newcombe_paired_difference(0, 0, 0, 0))
    # Every pair concordant: the difference is 0 but the interval is not degenerate.
    d, lo, hi = newcombe_paired_difference(10, 0, 0, 10)
    assert d == 0 and lo < 0 < hi


def test_paired_p_miss_interval_is_narrower_than_the_independent_one():
    # 40 pairs, strongly concordant: 15 missed by both, 5 only by the reference.
    d, lo, hi = newcombe_paired_difference(15, 0, 5, 20)      # variant − reference
    di, loi, hii = newcombe_difference(20, 40, 15, 40)        # same margins, unpaired
    assert d == pytest.approx(di) == pytest.approx(-0.125)
    assert hi - lo < hii - loi
    assert hi < 0 < hii  # the pairing is what shows the variant misses less


def test_paired_bootstrap_is_narrower_on_correlated_pairs_and_seeded():
    rng = np.random.default_rng(3)
    base = rng.uniform(100, 2000, 40)               # members differ a lot ...
    a = base + rng.normal(0, 10, 40)
    b = base - 50 + rng.normal(0, 10, 40)           # ... the variant is ~50 s earlier in each
    a[[3, 17]] = np.nan                             # some members never warned
    samples = np.arange(40)
    one = paired_bootstrap_median_difference(a, b, samples, rng_for(9, "p"), 1000)
    two = paired_bootstrap_median_difference(a, b, samples, rng_for(9, "p"), 1000)
    assert one == two
    unpaired = bootstrap_median_difference(a, b, rng_for(9, "p"), 1000)
    assert one[0] == pytest.approx(unpaired[0])
    assert one[1] <= one[0] <= one[2]
    assert one[2] - one[1] < 0.5 * (unpaired[2] - unpaired[1])
    other = paired_bootstrap_median_difference(a, b, samples, rng_for(10, "p"), 1000)
    assert other != one
    # Two sweep points per sample: a drawn sample brings both of its pairs.
    grouped = paired_bootstrap_median_difference(np.r_[a, a + 5], np.r_[b, b + 5],
                                                 np.r_[samples, samples], rng_for(9, "p"),
                                                 1000)
    assert grouped[1] <= grouped[0] <= grouped[2]


def test_variant_comparison_pairs_members_by_sample_and_sweep_point():
    rows = []
    for s in range(12):
        t = 100.0 + 100 * s
        for v, shift, miss in (("A", 0.0, s % 3 == 0), ("B", -60.0, False)):
            rows.append({"member_id": f"{v}{s}", "variant": v, "grid_index": 0, "sample": s,
                         "time_to_first_warning_s": np.nan if miss else t + shift,
                         "hazard_reached": True, "missed_detection": miss})
    df = pd.DataFrame(rows)
    c = compare(df, "A", "B", 5, 500)
    shuffled = compare(df.sample(frac=1, random_state=1), "A", "B", 5, 500)
    assert c == shuffled  # paired on (grid_index, sample), not on row order
    assert c["pairs"] == 12 and c["p_miss_diff"]["pairs"] == 12
    assert c["p_miss_diff"]["estimate"] == pytest.approx(-4 / 12)
    assert c["p_miss_diff"]["ci95"][1] < 0
    assert "paired" in c["median_time_to_first_warning_diff_s"]["method"]


def _warning(t, wid, event, hazard="gas_plume", level=1):
    return SimpleNamespace(known_at_s=float(t), time_s=float(t), warning_id=wid, event=event,
                           hazard=hazard, level=level)


def test_only_warnings_of_the_hazard_after_its_start_count_as_detections(monkeypatch):
    import citytwin.scenarios.study.metrics as sm
    from citytwin.alerting.rulebook import load_rulebook

    warnings = [_warning(300, "W1", "raised"),                  # noise before the leak
                _warning(400, "W1", "cleared", level=0),
                _warning(650, "W2", "raised", hazard="urban_flood"),  # another hazard
                _warning(900, "W3", "raised", level=1),            # the leak: 300 s
                _warning(1000, "W3", "escalated", level=3)]
    hits, false = detection_events(warnings, {"gas_plume": 600.0})
    assert [w.known_at_s for w in hits] == [900, 1000] and false == {"W1", "W2"}
    # A noise warning still active when the leak starts counts from its escalation.
    hits, false = detection_events([_warning(300, "W9", "raised"),
                                    _warning(700, "W9", "escalated", level=2)],
                                   {"gas_plume": 600.0})
    assert [w.known_at_s for w in hits] == [700] and false == {"W9"}

    grid = make_grid((0, 0, 10, 10), 10)
    monkeypatch.setattr(sm, "impact_index", lambda twin: SimpleNamespace(
        count=lambda area: SimpleNamespace(buildings=0, people=0, targets=())))
    metric = {"label": "lel", "threshold": 10.0}
    recorder = SimpleNamespace(metrics=[metric], grids=[grid],
                               maxima=lambda: {"lel": np.array([[50.0]])})
    run = SimpleNamespace(rulebook=load_rulebook("default"), twin=None,
                          scenario=SimpleNamespace(hazards=[SimpleNamespace(
                              kind="gas_plume", start_s=600.0)]))

    def metrics(ws):
        return member_metrics(run, SimpleNamespace(warnings=ws, timeline=[],
                                                   n_escalations=0), recorder)

    out = metrics(warnings)
    assert out["time_to_first_warning_s"] == 300
    assert out["time_to_blue_s"] == 300 and out["time_to_orange_s"] == 400
    assert out["max_level"] == "orange" and out["max_level_index"] == 3
    assert out["warnings"] == 3 and out["false_warnings"] == 2
    assert out["missed_detection"] is False
    # Only noise and another hazard's warning: not a detection, the leak was missed.
    out = metrics(warnings[:3])
    assert math.isnan(out["time_to_first_warning_s"]) and out["max_level"] == "none"
    assert out["false_warnings"] == 2 and out["missed_detection"] is True


def test_probability_map_of_a_known_case():
    fields = [np.array([[0.0, 30.0], [26.0, 10.0]]), np.array([[0.0, 24.0], [40.0, 25.0]]),
              np.array([[50.0, 26.0], [30.0, 0.0]]), np.array([[0.0, 0.0], [99.0, 0.0]])]
    p = probability_map(fields, 25.0)
    np.testing.assert_array_equal(p, [[0.25, 0.5], [1.0, 0.0]])  # 25 is not > 25


def test_exposure_counts_as_warnings_do():
    """A study's exposure is the one people count (ImpactIndex.count) over the cells that
    exceed the threshold: a field above it over exactly one building's block counts that
    building's occupants and nothing of a block it does not reach."""
    from citytwin.alerting.impact import ImpactIndex
    from citytwin.twin.synthetic import synthetic_city

    twin = synthetic_city(7, "small")
    index = ImpactIndex(twin)
    x0, y0, x1, y1 = twin.terrain.bounds
    grid = make_grid((x0, y0, x1, y1), 10)
    b = twin.buildings.iloc[0]
    bx0, by0, bx1, by1 = b.geometry.bounds
    xx, yy = np.meshgrid(grid.xs_m, grid.ys_m)
    field = np.where((xx > bx0 - 10) & (xx < bx1 + 10) & (yy > by0 - 10) & (yy < by1 + 10),
                     30.0, 0.0)
    e = exposure(field, 25.0, grid, index)
    direct = index.count(polygonize_cells(field > 25.0, grid))
    assert e["cells"] == int((field > 25.0).sum()) > 0
    assert (e["people"], e["buildings"]) == (direct.people, direct.buildings)
    assert b["id"] in direct.building_ids and e["people"] >= round(b["occupants"])
    assert exposure(field, 99.0, grid, index) == {"cells": 0, "buildings": 0, "people": 0,
                                                  "protected": 0, "protected_ids": []}


def polygonize_cells(mask, grid):
    from citytwin.physics.base import FieldGrid, polygonize

    return polygonize(FieldGrid(xs_m=grid.xs_m, ys_m=grid.ys_m, values=mask.astype(float),
                                quantity="m", units="1", t_s=0.0, resolution_m=grid.cell_m),
                      0.5)


# ------------------------------------------------------------------ runs and executors

def read_results(out):
    return (out / "study_results.csv").read_bytes()


def metrics_files(out):
    return {p.parent.name: p.read_bytes() for p in sorted(out.glob("members/*/metrics.json"))}


def test_serial_process_pool_and_dask_give_identical_results(write_study, tmp_path):
    from distributed import Client, LocalCluster

    study = load_study(write_study(study_data()))
    serial = run_study(study, tmp_path / "serial", SerialExecutor())
    assert len(serial.computed) == 4
    summary = serial.summary
    assert summary["members_finished"] == 4 and set(summary["variants"]) == {"A", "B"}
    assert summary["variants"]["A"]["time_to_first_warning_s"]["n"] >= 1, \
        "the leak must be warned of for this test to mean anything"
    assert "false_warnings" in summary["variants"]["A"]
    assert "false_warnings" in read_results(tmp_path / "serial").decode().splitlines()[0]
    assert "paired" in summary["comparisons"][0]["p_miss_diff"]["method"]
    pool = local_executor(2)
    try:
        run_study(study, tmp_path / "pool", pool, 2)
    finally:
        pool.shutdown()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        run_study(study, tmp_path / "dask", client.get_executor(), 2)
    for other in ("pool", "dask"):
        assert read_results(tmp_path / other) == read_results(tmp_path / "serial")
        assert metrics_files(tmp_path / other) == metrics_files(tmp_path / "serial")
        for m in serial.members:
            np.testing.assert_array_equal(
                np.load(tmp_path / other / "members" / m.member_id / "max_lel10.npy"),
                np.load(tmp_path / "serial" / "members" / m.member_id / "max_lel10.npy"))
    prob = np.load(tmp_path / "serial" / "prob_lel10__A.npy")
    assert prob.max() > 0 and set(np.unique(prob)) <= {0.0, 0.5, 1.0}


class InterruptAfter(SerialExecutor):
    """Runs ``k`` members, then behaves like Ctrl-C."""

    def __init__(self, k: int) -> None:
        self.k = k

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self.k == 0:
            raise KeyboardInterrupt
        self.k -= 1
        return super().submit(fn, *args, **kwargs)


def test_interrupted_study_resumes_without_recomputing_finished_members(write_study,
                                                                        tmp_path):
    study = load_study(write_study(study_data()))
    whole = run_study(study, tmp_path / "whole", SerialExecutor())
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_study(study, out, InterruptAfter(2))
    done = sorted(out.glob("members/*/metrics.json"))
    assert len(done) == 2
    stamps = {p: p.stat().st_mtime_ns for p in done}
    # A member killed mid-run leaves a folder without metrics.json: it is redone.
    victim = next(m for m in whole.members
                  if not (out / "members" / m.member_id / "metrics.json").exists())
    partial = out / "members" / victim.member_id
    (partial / "run").mkdir(parents=True)
    (partial / "run" / "archive.sqlite").write_bytes(b"half")
    again = run_study(study, out, SerialExecutor())
    write_study_report(out)
    assert sorted(again.reused) == sorted(p.parent.name for p in done)
    assert len(again.computed) == 2 and victim.member_id in again.computed
    assert {p: p.stat().st_mtime_ns for p in done} == stamps  # not recomputed
    assert read_results(out) == read_results(tmp_path / "whole")
    assert metrics_files(out) == metrics_files(tmp_path / "whole")
    assert (out / "study_report.html").read_text().count("data:image/png;base64,") >= 3
    # A third run computes nothing.
    third = run_study(study, out, SerialExecutor())
    assert third.computed == [] and len(third.reused) == 4


def test_changed_parameters_are_recomputed(write_study, tmp_path):
    data = study_data(samples=1, variants={})
    out = tmp_path / "out"
    first = run_study(load_study(write_study(data)), out, SerialExecutor())
    [m] = first.members
    # Same member id (same variation draws) but another base: the parameter hash differs.
    data["overrides"]["sensors.groups.0.interval_s"] = 20
    second = run_study(load_study(write_study(data, "changed.yaml")), out, SerialExecutor())
    assert second.members[0].member_id == m.member_id
    assert second.computed == [m.member_id]
    record = json.loads((out / "members" / m.member_id / "metrics.json").read_text())
    assert record["param_hash"] == second.members[0].param_hash


def test_edited_settings_files_and_another_code_version_rerun_members(write_study, tmp_path,
                                                                     monkeypatch):
    rulebook = yaml.safe_load(resources.files("citytwin.alerting").joinpath(
        "data/default_rulebook.yaml").read_text())
    rb_path = tmp_path / "my_rulebook.yaml"
    rb_path.write_text(yaml.safe_dump(rulebook, sort_keys=False))
    data = study_data(samples=1, variants={})
    data["overrides"]["rulebook"] = str(rb_path)
    study_file = write_study(data)
    out = tmp_path / "out"
    first = run_study(load_study(study_file), out, SerialExecutor())
    [m] = first.members
    assert run_study(load_study(study_file), out, SerialExecutor()).reused == [m.member_id]
    # The scenario mapping is unchanged (it names the same file), the file's content is not.
    rules = {r["id"]: r for r in rulebook["rules"]}
    rules["ch4_confined_space"]["thresholds"]["blue"] = 5
    rb_path.write_text(yaml.safe_dump(rulebook, sort_keys=False))
    second = run_study(load_study(study_file), out, SerialExecutor())
    assert second.members[0].member_id == m.member_id
    assert second.members[0].param_hash != m.param_hash
    assert second.computed == [m.member_id] and second.reused == []
    # Routing, operations and catalogue files, and the code version, are in the hash too.
    import citytwin.scenarios.study.members as study_mod

    monkeypatch.setattr(study_mod, "code_version", lambda: "999.0")
    assert plan_members(load_study(study_file))[0].param_hash != second.members[0].param_hash
    monkeypatch.undo()
    routing = tmp_path / "routing.yaml"
    routing.write_text(resources.files("citytwin.alerting").joinpath(
        "data/default_routing.yaml").read_text())
    data["overrides"]["routing"] = "routing.yaml"  # relative to the base scenario
    data["base"] = yaml.safe_load(DEMO.read_text())  # inline: relative to the study file
    hashes = [plan_members(load_study(write_study(data, "r.yaml")))[0].param_hash]
    routing.write_text(routing.read_text() + "\n# a comment only\n")
    hashes.append(plan_members(load_study(write_study(data, "r.yaml")))[0].param_hash)
    routing.write_text(routing.read_text().replace("Public security bureau", "Police", 1))
    hashes.append(plan_members(load_study(write_study(data, "r.yaml")))[0].param_hash)
    assert hashes[0] == hashes[1] != hashes[2]  # content, not bytes


class RemoteWorker(SerialExecutor):
    """A Dask worker on another machine: it does not see the client's study folder."""

    def __init__(self, worker_disk) -> None:
        self.worker_disk = worker_disk

    def submit(self, fn, /, *args, **kwargs) -> Future:
        member, _members_dir, *rest = args
        return super().submit(fn, member, str(self.worker_disk / "members"), *rest, **kwargs)


def test_members_run_on_remote_workers_are_written_by_the_client(write_study, tmp_path):
    study = load_study(write_study(study_data(samples=1)))
    local = run_study(study, tmp_path / "local", SerialExecutor())
    remote = run_study(study, tmp_path / "remote", RemoteWorker(tmp_path / "elsewhere"))
    assert sorted(remote.computed) == sorted(local.computed)
    assert remote.summary["members_finished"] == 2
    assert read_results(tmp_path / "remote") == read_results(tmp_path / "local")
    assert metrics_files(tmp_path / "remote") == metrics_files(tmp_path / "local")
    for m in local.members:
        here = tmp_path / "remote" / "members" / m.member_id
        assert (here / "max_lel10.npy").read_bytes() == \
            (tmp_path / "local" / "members" / m.member_id / "max_lel10.npy").read_bytes()
        assert (here / "rulebook.yaml").exists() == (m.rulebook is not None)
        assert not (here / "run").exists()  # the remote archive stayed with the worker
        assert (tmp_path / "local" / "members" / m.member_id / "run").is_dir()
    assert not (tmp_path / "elsewhere").exists()  # a temporary folder, dropped


def test_cli_study_run_and_report(write_study, tmp_path, capsys):
    path = write_study(study_data(samples=1))
    p = argparse.ArgumentParser()
    add_study_commands(p.add_subparsers(dest="command"))
    out = tmp_path / "cli"
    args = p.parse_args(["study", "run", str(path), "--out", str(out), "--workers", "1"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "2 member(s) run, 0 reused" in text and "time to first warning" in text
    # progress as the members finish: done / total, elapsed, time left (terminal only)
    progress = [line.strip() for line in captured.err.splitlines() if "elapsed" in line]
    assert len(progress) == 2, captured.err
    took = r"\d+ (s|min \d\d s|h \d\d min)"
    assert re.fullmatch(rf"\[1/2\] \S+ done; elapsed {took}, about {took} left", progress[0])
    assert re.fullmatch(rf"\[2/2\] \S+ done; elapsed {took}, all done", progress[1])
    for f in out.rglob("*"):
        if f.suffix in (".json", ".csv", ".html"):
            assert "elapsed" not in f.read_text(encoding="utf-8"), f
    args = p.parse_args(["study", "report", str(out)])
    assert args.func(args) == 0
    assert (out / "study_report.html").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["comparisons"][0]["variant"] == "B"
    # the plan names the metric labels and the levels the aggregation reads
    plan = json.loads((out / "study.json").read_text())
    assert plan["labels"] == ["lel10"] and plan["levels"] == summary["levels"]
    assert plan["levels"] == ["blue", "yellow", "orange", "red"]
    assert "time_to_red_s" in (out / "study_results.csv").read_text().splitlines()[0]
    # a plan written before they were kept: rerun the study to rewrite it
    del plan["levels"]
    (out / "study.json").write_text(json.dumps(plan))
    with pytest.raises(InputError, match="study.json: levels: no levels.*study run"):
        args.func(args)


def test_study_progress_estimates_the_time_left_from_the_mean_member_time():
    now = [100.0]
    progress = StudyProgress(clock=lambda: now[0])
    assert progress.eta_s(0, 8) is None
    now[0] = 130.0                        # 3 members in 30 s: 10 s each, 5 to go
    assert progress.eta_s(3, 8) == pytest.approx(50.0)
    assert progress.line(3, 8, "A-s000") == "[3/8] A-s000 done; elapsed 30 s, about 50 s left"
    now[0] = 100.0 + 7 * 60 + 5           # 7 in 7 min 05 s: the last one in about a minute
    assert progress.line(7, 8, "B-s001") == ("[7/8] B-s001 done; elapsed 7 min 05 s, about "
                                             "1 min 01 s left")
    assert progress.line(8, 8, "B-s002").endswith("elapsed 7 min 05 s, all done")
    assert [wall_text(s) for s in (0.4, 59, 61, 3599, 3600, 7500)] == [
        "0 s", "59 s", "1 min 01 s", "59 min 59 s", "1 h 00 min", "2 h 05 min"]


def _plan_and_validate(study_file):
    study = load_study(study_file)
    validate_members(study, plan_members(study))


@pytest.mark.parametrize(("change", "field", "words"), [
    (lambda d: d["variants"]["B"].update(twin={"synthetic": {"seed": 8, "size": "tiny"}}),
     "variants.B.twin", "every member must use the same twin"),
    (lambda d: d["variations"].update({"weather.stability": {"offset_uniform": [0, 1]}}),
     "variations.weather.stability", "offset_uniform needs numbers at the path, found 'E'"),
    # the override empties the list the variation then reaches into
    (lambda d: d["overrides"].update(hazards=[]),
     "variations.hazards.0.release.hole_diameter_mm", "cannot set the parameter: index 0"),
])
def test_study_errors_name_the_study_file_and_field(write_study, change, field, words):
    data = study_data()
    change(data)
    path = write_study(data)
    with pytest.raises(InputError) as err:
        _plan_and_validate(path)
    assert err.value.source == str(path) and err.value.field == field
    assert words in str(err.value), str(err.value)
