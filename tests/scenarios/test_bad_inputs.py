"""Bad inputs are refused before anything is written (issue 12, plausibility): each case is
one file made wrong in one place; `citytwin run` must exit 2 with the file and the field in
its one-line message, print no traceback, and create no run folder. A hypothesis test checks
that random finite values outside a declared range are refused."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.scenarios.cli.main import main
from citytwin.scenarios.spec.scenario import parse_scenario
from citytwin.twin.errors import InputError

from .conftest import short_scenario

ALERTING = resources.files("citytwin.alerting")


def _rulebook(change) -> dict:
    data = yaml.safe_load(ALERTING.joinpath("data/default_rulebook.yaml").read_text())
    change(data)
    return data


def _operations(change) -> dict:
    data = yaml.safe_load(ALERTING.joinpath("data/default_operations.yaml").read_text())
    change(data)
    return data


def _rule(data: dict, rule_id: str) -> dict:
    return next(r for r in data["rules"] if r["id"] == rule_id)


def _set(path: list, value):
    def change(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return change


#: (case, the file made wrong: scenario | rulebook | operations, change, field, reason words)
CASES = [
    ("release beyond a rupture", "scenario", _set(["hazards", 0, "release"],
                                                  {"rate_kg_s": 1e300}),
     "hazards.0.release.rate_kg_s", "less than or equal to 1000"),
    ("a 1 000 m hole", "scenario", _set(["hazards", 0, "release"],
                                        {"pressure_kpa_gauge": 400, "hole_diameter_mm": 1e6}),
     "hazards.0.release.hole_diameter_mm", "less than or equal to 1500"),
    ("an action after the run", "scenario", _set(["actions"], [
        {"at_s": 1e9, "action": "assign", "target": "WO-W-0001"}]),
     "actions.0.at_s", "after the end of the run"),
    ("an infinite physics step", "scenario", _set(["physics_step_s"], math.inf),
     "physics_step_s", "finite number"),
    ("a NaN wind speed", "scenario", _set(["weather", "wind", 0, "speed_m_s"], math.nan),
     "weather.wind.0.speed_m_s", "finite number"),
    ("a NaN threshold", "rulebook",
     lambda d: _rule(d, "ch4_confined_space")["thresholds"].update(yellow=math.nan),
     "rules.0.thresholds.yellow", "finite number"),
    ("thresholds not increasing", "rulebook",
     lambda d: _rule(d, "ch4_confined_space")["thresholds"].update(yellow=90.0),
     "ch4_confined_space", "thresholds must increase with level"),
    ("a rule its sensors cannot feed", "rulebook",
     lambda d: _rule(d, "ch4_confined_space").update(quantity="ch4_ppm", unit="ppm"),
     "rules.0.quantity", "would never see a reading"),
    ("a negative deadline", "operations",
     lambda d: d["work_orders"]["deadline_s"].update(red=-7200),
     "work_orders.deadline_s.red", "greater than 0"),
    ("a negative push delay", "operations",
     lambda d: d["pushes"].update(delay_s=[-5, 30]),
     "pushes", "0 ≤ shortest ≤ longest"),
]


@pytest.mark.parametrize(("case", "kind", "change", "field", "words"), CASES,
                         ids=[c[0] for c in CASES])
def test_a_bad_input_is_refused_naming_file_and_field(tmp_path, capsys, case, kind, change,
                                                      field, words):
    scenario = short_scenario(duration_s=120)
    bad = tmp_path / f"{kind}.yaml"
    if kind == "scenario":
        change(scenario)
    else:
        data = _rulebook(change) if kind == "rulebook" else _operations(change)
        bad.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        scenario[kind] = bad.name
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))
    shown = path if kind == "scenario" else bad
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {shown}") and field in err and words in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not out.exists()  # nothing written


#: (dotted path in the short scenario, lowest and highest accepted value)
RANGES = {
    ("hazards", 0, "release", "rate_kg_s"): (0.0, 1000.0),
    ("weather", "wind", 0, "speed_m_s"): (0.0, 60.0),
    ("weather", "air_temperature_c"): (-60.0, 60.0),
    ("hazards", 0, "height_m"): (0.0, math.inf),
    ("duration_s",): (0.0, 30 * 86400.0),
}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(RANGES)), st.floats(allow_nan=False, allow_infinity=False),
       st.booleans())
def test_random_values_outside_a_declared_range_are_refused(path, magnitude, below):
    lo, hi = RANGES[path]
    value = (lo - 1e-6 - abs(magnitude)) if below or math.isinf(hi) else (hi + 1e-6 +
                                                                           abs(magnitude))
    if not math.isfinite(value):
        return
    data = short_scenario()
    if path[0] == "hazards" and path[2] == "release":
        data["hazards"][0]["release"] = {"rate_kg_s": 1.0}
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(InputError) as err:
        parse_scenario(data, "s.yaml")
    assert ".".join(map(str, path)) in str(err.value)


@pytest.mark.parametrize(("content", "words"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "not a text file"),
    (b"name: x\nlevels: [blue, yellow, orange]\nlevels: [a, b, c]\n",
     "the key 'levels' is given twice"),
])
def test_binary_or_repeated_keys_are_one_clear_error(tmp_path, capsys, content, words):
    """A binary file (UnicodeDecodeError before) and a key given twice (PyYAML silently kept
    the last) are refused naming the file, for every kind of input file."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}" in err and words in err and "Traceback" not in err
    scenario = short_scenario(duration_s=120, rulebook="bad.yaml")
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert words in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_study_of_a_billion_members_is_refused_before_planning(capsys):
    """10⁹ samples grew memory without bound while planning; the study is refused with the
    member count and the limit, naming the field."""
    study = Path(str(resources.files("citytwin.scenarios").joinpath(
        "data/study_gas_leak.yaml")))
    assert main(["study", "run", str(study), "--samples", "1000000000", "--out",
                 "/nonexistent/never-written"]) == 2
    err = capsys.readouterr().err
    assert f"{study}: samples: 2,000,000,000 members" in err and "100,000" in err
