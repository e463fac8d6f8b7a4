"""One contract test over the whole path, for every registered hazard (issue 10).

For each hazard in ``physics.HAZARDS`` (parametrised at collection, so a new hazard module is
covered by being written): its example entry validates inside a scenario file; it builds on
the small synthetic city; 60 simulated seconds run through the kernel into an archive; the
run renders; and a warning of that hazard goes through CAP 1.2 and back with the event,
categories and responses its module declares. The same path runs a toy hazard defined and
registered in this file alone, which also raises a real warning through a rulebook rule.
Engine-level checks stay in ``tests/physics/test_contract.py``.
"""

from __future__ import annotations

import math
import sqlite3
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import yaml

from citytwin.alerting.cap import CAP_NS, CapContext, CapInput, CapPublisher, check_cap_structure
from citytwin.physics import HAZARDS
from citytwin.physics.base import HazardEngine, QuantityInfo
from citytwin.physics.hazard import (
    BuildContext,
    CapInfo,
    HazardDescriptor,
    HazardSpec,
    RenderStyle,
    register_hazard,
    unregister_hazard,
)
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario, parse_scenario
from citytwin.twin.errors import InputError

NS = {"cap": CAP_NS}
RUN_S = 60.0
PROBE_TYPE = "contract_probe"


def _scenario(kind_entry: dict, probe_quantity: str, probe_unit: str, tmp: Path, *,
              rulebook: str = "default", routing: str = "default") -> Path:
    """A 60 s scenario on the small synthetic city: the hazard's example entry, and a 5 × 5
    grid of noiseless probes reading the quantity its render draws (a catalogue written
    beside the scenario adds the probe type to the packaged sensor types)."""
    catalogue = yaml.safe_load(resources.files("citytwin.sensors_sim").joinpath(
        "data/catalogue.yaml").read_text(encoding="utf-8"))
    catalogue["sensor_types"][PROBE_TYPE] = {
        "description": "contract-test probe: the hazard's own value, no noise",
        "quantity": probe_quantity, "unit": probe_unit, "range_min": -1e9, "range_max": 1e9,
        "resolution": 1e-9, "noise_sd": 0.0, "bias_sd": 0.0, "drift_per_day_sd": 0.0,
        "response_t90_s": 0.0, "interval_s": 10.0, "latency_s": 0.0,
        "drop_probability": 0.0, "offline_rate_per_day": 0.0,
        "offline_mean_duration_s": 1.0, "stuck_rate_per_day": 0.0,
        "stuck_mean_duration_s": 1.0, "source": "test"}
    (tmp / "catalogue.yaml").write_text(yaml.safe_dump(catalogue), encoding="utf-8")
    xs = np.linspace(400_200.0, 401_000.0, 5)  # inside the small city (0–1 200 m)
    ys = np.linspace(3_400_200.0, 3_401_000.0, 5)
    points = [{"id": f"p{i}{j}", "xy_m": [float(x), float(y)]}
              for i, x in enumerate(xs) for j, y in enumerate(ys)]
    scenario = {
        "name": f"contract-{kind_entry['kind']}", "mode": "what-if",
        "twin": {"synthetic": {"seed": 7, "size": "small"}},
        "start": "2026-06-01T05:30:00+08:00", "duration_s": RUN_S, "seed": 3,
        "physics_step_s": 10.0,
        "weather": {"stability": "D", "wind": [{"t_s": 0, "speed_m_s": 2.0, "from_deg": 270}]},
        "hazards": [{**kind_entry, "start_s": 0.0}],
        "sensors": {"catalogue": "catalogue.yaml", "groups": [
            {"id": "probes", "type": PROBE_TYPE, "interval_s": 10.0,
             "placement": {"points": points, "height_m": 1.5}}]},
        "rulebook": rulebook, "routing": routing,
        "outputs": {"report": False, "render": True, "cap": True, "dossiers": False}}
    path = tmp / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False), encoding="utf-8")
    return path


def run_contract(d: HazardDescriptor, tmp: Path, **files) -> tuple:
    """The whole path for one hazard; returns (prepared run, result)."""
    # the entry validates, with the kind name the descriptor, engine and spec share
    entry = dict(d.example)
    spec = d.spec.model_validate(entry)
    assert spec.kind == d.kind == d.engine.kind
    with pytest.raises(Exception, match="extra|not permitted"):
        d.spec.model_validate({**entry, "no_such_field": 1})
    q = d.style.quantity
    info = d.engine.info[q]
    assert info.combine in ("sum", "max", "min") and info.units
    path = _scenario(entry, q, info.units, tmp, **files)

    # builds on the small synthetic city through the registry
    scenario = load_scenario(path)
    run = prepare(scenario, source=str(path), base_dir=path.parent)
    engine = run.hazards[0]
    assert isinstance(engine, d.engine)
    note = run.hazard_notes[entry["id"]]
    assert note["kind"] == d.kind and note["id"] == entry["id"] and note["summary"]

    # 60 simulated seconds through the kernel into an archive
    result = simulate(run, tmp / "run")
    with sqlite3.connect(result.archive_path) as db:
        manifest = dict(db.execute("SELECT key, value FROM manifest").fetchall())
        n_obs, values = db.execute("SELECT COUNT(*), GROUP_CONCAT(value) FROM observations"
                                   ).fetchone()
        kinds = [k for (k,) in db.execute("SELECT kind FROM timeline")]
    assert '"completed"' in manifest["status"]
    assert n_obs == 25 * (int(RUN_S // 10) + 1)  # every probe at every tick, none lost
    assert all(math.isfinite(float(v)) for v in values.split(","))
    assert "hazard_start" in kinds and "run_end" in kinds
    assert engine.t_s == pytest.approx(RUN_S)

    # renders in its registered style
    from citytwin.viewer.render import load_fields, render_run, style_for

    _, fields = load_fields(result.run_dir / "hazard_field.npz")
    assert [style_for(name) for name, *_ in fields] == [d.style]
    png = render_run(run.twin, result.run_dir / "hazard_field.npz", tmp / "render.png")
    assert png.stat().st_size > 10_000

    # a warning of this hazard through CAP 1.2 and back
    ctx = CapContext(sender="citytwin@contract", mode="what-if", anchor=scenario.start,
                     crs=run.twin.crs, run_id="contract", hazards=run.hazard_descriptions())
    x0, y0, x1, y1 = run.twin.terrain.bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    msg = CapPublisher(ctx).publish(CapInput(
        warning_id="W-0001", event="raised", time_s=30.0, hazard=d.kind, level=4,
        level_name="red", n_levels=4, headline="", description="contract", instruction=
        d.cap.instruction, area_wkt=f"POLYGON(({cx} {cy}, {cx + 100} {cy}, {cx + 100} "
        f"{cy + 100}, {cx} {cy}))", area_desc="", targets=(), population=0, recipients=(),
        public=True))
    assert check_cap_structure(msg.xml) == []
    root = ET.fromstring(msg.xml)
    assert root.findtext(".//cap:event", namespaces=NS) == d.cap.event
    assert [c.text for c in root.findall(".//cap:category", NS)] == list(d.cap.categories)
    assert root.findtext(".//cap:responseType", namespaces=NS) == d.cap.public_responses[0]
    assert root.findtext(".//cap:instruction", namespaces=NS) == d.cap.instruction
    assert root.findtext(".//cap:status", namespaces=NS) == "Test"
    return run, result


@pytest.mark.parametrize("kind", list(HAZARDS))
def test_every_registered_hazard_runs_the_whole_path(kind, tmp_path):
    run_contract(HAZARDS[kind], tmp_path)


def test_an_unknown_kind_is_refused_with_the_registered_kinds(tmp_path):
    path = _scenario({"id": "x", "kind": "meteor_strike"}, "depth_m", "m", tmp_path)
    with pytest.raises(InputError) as err:
        load_scenario(path)
    text = str(err.value)
    assert "hazards.0" in text and "'meteor_strike'" in text
    for kind in HAZARDS:
        assert f"'{kind}'" in text


# --- a toy hazard, in this file only ----------------------------------------------------------

class ToyHeatEngine(HazardEngine):
    """A warm spot: air temperature rising linearly at its centre, Gaussian in space."""

    kind = "toy_heat"
    info = {"toy_air_temp_c": QuantityInfo("degC", "air temperature", "max")}
    render_quantity = "toy_air_temp_c"

    def __init__(self, centre_xy_m: tuple[float, float], rise_c_per_s: float, start_s: float):
        self.centre = np.asarray(centre_xy_m, float)
        self.rise, self.start_s, self.t_s = rise_c_per_s, start_s, 0.0

    def advance_to(self, t_s: float) -> None:
        self.t_s = self.check_not_backwards(t_s)

    def sample(self, quantity: str, xyz_m: np.ndarray) -> np.ndarray:
        self.check_quantity(quantity)
        d2 = ((np.asarray(xyz_m)[:, :2] - self.centre) ** 2).sum(axis=1)
        peak = self.rise * max(self.t_s - self.start_s, 0.0)
        return 20.0 + peak * np.exp(-d2 / (2 * 150.0 ** 2))

    def default_bounds(self):
        x, y = self.centre
        return (x - 450.0, y - 450.0, x + 450.0, y + 450.0)

    @classmethod
    def example(cls) -> ToyHeatEngine:
        return cls((0.0, 0.0), 1.0, 0.0)


class ToyHeatSpec(HazardSpec):
    kind: Literal["toy_heat"]
    centre_xy_m: tuple[float, float]
    rise_c_per_s: float


def _build_toy(spec: ToyHeatSpec, ctx: BuildContext) -> tuple[ToyHeatEngine, dict]:
    return (ToyHeatEngine(spec.centre_xy_m, spec.rise_c_per_s, spec.start_s),
            {"id": spec.id, "kind": spec.kind, "start_s": spec.start_s,
             "summary": f"warm spot at {spec.centre_xy_m}"})


TOY = HazardDescriptor(
    kind="toy_heat", title="Toy heat", spec=ToyHeatSpec, engine=ToyHeatEngine,
    from_spec=_build_toy,
    cap=CapInfo(categories=("Fire",), event="Toy heat",
                public_responses=("Shelter", "Avoid", "Prepare", "Monitor"),
                instruction="Stay indoors."),
    style=RenderStyle(quantity="toy_air_temp_c", floor=25.0, top=None, log=False,
                      cmap="Reds", label="toy air temperature (°C)", lift_m=2.0),
    example={"id": "warm", "kind": "toy_heat", "centre_xy_m": [400_600.0, 3_400_600.0],
             "rise_c_per_s": 1.0})


@pytest.fixture
def toy():
    register_hazard(TOY)
    yield TOY
    unregister_hazard(TOY.kind)


def _with_toy_rule(tmp: Path) -> dict:
    """A rulebook and routing table beside the scenario that also cover the toy hazard."""
    read = resources.files("citytwin.alerting").joinpath
    rulebook = yaml.safe_load(read("data/default_rulebook.yaml").read_text(encoding="utf-8"))
    rulebook["rules"].append({
        "id": "toy_hot", "hazard": "toy_heat", "quantity": "toy_air_temp_c", "unit": "degC",
        "sensor_types": [PROBE_TYPE], "thresholds": {"blue": 30, "yellow": 40, "orange": 50,
                                                     "red": 60},
        "hysteresis": 1.0, "debounce": {"n": 1, "m": 1}, "cluster_radius_m": 300,
        "area": {"buffer_m": 50, "model_level": "blue"}})
    routing = yaml.safe_load(read("data/default_routing.yaml").read_text(encoding="utf-8"))
    routing["hazards"]["toy_heat"] = {"owner": "building_operator", "department": "fire_rescue"}
    (tmp / "rulebook.yaml").write_text(yaml.safe_dump(rulebook), encoding="utf-8")
    (tmp / "routing.yaml").write_text(yaml.safe_dump(routing), encoding="utf-8")
    return {"rulebook": "rulebook.yaml", "routing": "routing.yaml"}


def test_a_toy_hazard_in_one_file_runs_end_to_end(toy, tmp_path):
    """Scenario → kernel → archive → warning → CAP files → render, with nothing outside this
    file knowing the kind: the warning, its CAP messages and the render come from the toy's
    own declaration."""
    _, result = run_contract(toy, tmp_path, **_with_toy_rule(tmp_path))
    with sqlite3.connect(result.archive_path) as db:
        hazards = {h for (h,) in db.execute("SELECT hazard FROM warnings")}
        top = db.execute("SELECT MAX(level) FROM warnings").fetchone()[0]
    assert hazards == {"toy_heat"}
    assert top == 4  # 20 °C + 1 °C/s reaches the red 60 °C at the centre within the minute
    events = {ET.fromstring(p.read_bytes()).findtext(".//cap:event", namespaces=NS)
              for p in result.cap_files}
    assert result.cap_files and events == {"Toy heat"}


def test_a_toy_hazard_is_refused_once_unregistered(tmp_path):
    register_hazard(TOY)
    data = yaml.safe_load(_scenario(dict(TOY.example), "toy_air_temp_c", "degC",
                                    tmp_path).read_text())
    assert parse_scenario(data).hazards[0].kind == "toy_heat"
    unregister_hazard(TOY.kind)
    with pytest.raises(InputError, match="does not match any of the expected tags"):
        parse_scenario(data)
    assert "toy_heat" not in HAZARDS


def test_a_declaration_that_disagrees_with_another_hazard_is_refused():
    class Clash(ToyHeatEngine):
        kind = "toy_clash"
        info = {"depth_m": QuantityInfo("m", "water depth", "max")}  # floods sum depths
        render_quantity = "depth_m"

    class ClashSpec(HazardSpec):
        kind: Literal["toy_clash"]

    bad = HazardDescriptor(
        kind="toy_clash", title="x", spec=ClashSpec, engine=Clash, from_spec=_build_toy,
        cap=TOY.cap, style=RenderStyle("depth_m", 0.1, None, False, "Blues", "d"),
        example={"id": "c", "kind": "toy_clash"})
    with pytest.raises(TypeError, match="quantity 'depth_m' is m combined by max, but "
                                        "urban_flood declares m by sum"):
        register_hazard(bad)
    assert "toy_clash" not in HAZARDS


@pytest.mark.parametrize(("change", "message"), [
    ({"kind": "Toy_Heat"}, "kind must be a lower-case identifier"),
    ({"cap": CapInfo(("Fire",), "Toy heat", ("Shelter", "Avoid", "Monitor"), "Stay in.")},
     "public_responses needs one response per level rank from the top \\(4\\), got 3"),
    ({"cap": CapInfo(("Weather",), "Toy heat", ("Shelter",) * 4, "Stay in.")},
     "not CAP 1.2 values: \\['Weather'\\]"),
])
def test_a_faulty_declaration_is_refused_with_a_clear_message(change, message):
    import dataclasses

    with pytest.raises(TypeError, match=message):
        register_hazard(dataclasses.replace(TOY, **change))
    assert "toy_heat" not in HAZARDS and "Toy_Heat" not in HAZARDS


def test_an_engine_without_quantities_is_refused_with_a_clear_message():
    import dataclasses

    class Mute(ToyHeatEngine):
        info: dict = {}

    with pytest.raises(TypeError, match="engine Mute declares no quantities in 'info'"):
        register_hazard(dataclasses.replace(TOY, engine=Mute))
