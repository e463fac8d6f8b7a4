"""Scenario files: the shipped demo validates; every kind of mistake names its field."""

import copy
from importlib import resources
from pathlib import Path

import pytest
import yaml

from citytwin.scenarios.spec.scenario import load_scenario, parse_scenario
from citytwin.twin.errors import InputError

DEMO = Path(str(resources.files("citytwin.scenarios").joinpath("data/gas_leak_drill.yaml")))


@pytest.fixture
def demo_data():
    return yaml.safe_load(DEMO.read_text())


def test_demo_scenario_is_valid():
    sc = load_scenario(DEMO)
    assert sc.duration_s == 5400 and sc.seed == 42
    assert [w.from_deg for w in sc.weather.wind] == [270, 270, 190, 180, 180]


@pytest.mark.parametrize("mutate, field, reason", [
    (lambda d: d["weather"].update(stabilty="D"), "weather.stabilty", "unknown field"),
    (lambda d: d.update(duraton_s=10), "duraton_s", "unknown field"),
    (lambda d: d["weather"].update(stability="G"), "weather.stability", "Input should be"),
    (lambda d: d.update(duration_s=-5), "duration_s", "greater than 0"),
    (lambda d: d["hazards"][0]["release"].update(rate_kg_s=0.1), "hazards.0.release",
     "either rate_kg_s"),
    (lambda d: d["hazards"][0].update(kind="volcano"), "hazards.0", "does not match any"),
    (lambda d: d["weather"]["wind"].reverse(), "weather.wind", "strictly increase"),
    (lambda d: d["sensors"]["groups"].append(copy.deepcopy(d["sensors"]["groups"][0])),
     "sensors.groups", "duplicate id"),
    (lambda d: d.update(start="2026-06-01T08:00:00"), "start", "needs a UTC offset"),
    (lambda d: d["twin"].update(path="x"), "twin", "exactly one of"),
])
def test_mistakes_name_the_field(demo_data, mutate, field, reason, tmp_path):
    mutate(demo_data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(demo_data))
    with pytest.raises(InputError) as err:
        load_scenario(path)
    msg = str(err.value)
    assert msg.startswith(str(path))
    if field is not None:
        assert f": {field}" in msg
    assert reason in msg


def test_not_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_scenario(bad)
    with pytest.raises(InputError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="must be a YAML mapping"):
        parse_scenario(["a"], "list.yaml")
