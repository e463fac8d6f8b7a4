"""Drill mode: injects on the drill clock, contingencies, scripted players and their scores,
Exercise status of every CAP message, plan errors naming file and field, the console."""

import io
import json
import queue
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import pytest
import simpy
import yaml

from citytwin.physics.urban_flood import scaled_rain
from citytwin.scenarios.cli.drill import run_scored_drill
from citytwin.scenarios.drill.console import (
    Command,
    CommandError,
    DrillConsole,
    make_command,
    parse_command,
)
from citytwin.scenarios.drill.director import load_players
from citytwin.scenarios.drill.plan import load_plan
from citytwin.scenarios.drill.score import ExpectedOutcome, rate
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.twin.errors import InputError

from .conftest import short_scenario

DATA = Path(str(resources.files("citytwin.scenarios").joinpath("data")))
CAP_NS = "{urn:oasis:names:tc:emergency:cap:1.2}"
LEAK_SENSOR = "ch4-wells:GN00008"      # the valve well at the leak on the tiny city


def base_plan(**changes) -> dict:
    """A tiny drill: the leak starts at 60 s (an inject), a hotline call, a sensor fault."""
    sc = short_scenario(duration_s=600)
    plan = {
        "name": "tiny-drill",
        "scenario": sc,
        "objectives": [{"id": "O1", "title": "Detect and act", "unit": "duty office"},
                       {"id": "O2", "title": "Warn the public"}],
        "msel": [
            {"id": "leak", "at_s": 60, "kind": "hazard_start", "hazard": "main-strike",
             "expected": [
                 {"id": "ack", "action": "acknowledge", "target": "{warning}",
                  "within_s": 60, "after": "warning", "objective": "O1"},
                 {"id": "pub", "action": "publish", "target": "{warning}", "within_s": 120,
                  "after": "warning", "objective": "O2"}]},
            {"id": "call", "at_s": 100, "kind": "hotline_call", "message": "gas smell",
             "location": "P-plaza",
             "expected": [{"id": "evac", "action": "evacuate", "target": "P-plaza",
                           "within_s": 200, "objective": "O2"}]},
            {"id": "fault", "at_s": 200, "kind": "sensor_offline", "sensors": [LEAK_SENSOR],
             "duration_s": 150},
            {"id": "note", "at_s": 250.5, "kind": "message", "message": "shift change"},
            {"id": "media", "at_s": 300, "kind": "media_report", "message": "TV at the plaza",
             "warning": "leak", "contingency": {"if_missing": "pub", "by_s": 280}},
        ],
    }
    plan.update(changes)
    return plan


def write_yaml(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def drill(tmp_path, plan: dict, players: list, name: str = "run", **kw):
    plan_path = write_yaml(tmp_path / f"{name}-plan.yaml", plan)
    players_path = write_yaml(tmp_path / f"{name}-players.yaml", players)
    return run_scored_drill(plan_path, tmp_path / name, players=players_path, quiet=True,
                            **kw)


def injects_of(result) -> list[tuple[str, float]]:
    t = read_table(result.archive_path, "injects")
    return list(zip(t["inject_id"], t["time_s"], strict=True))


# --- timing and pacing -------------------------------------------------------------------

def test_injects_fire_at_their_exact_drill_times(tmp_path):
    r = drill(tmp_path, base_plan(), [])
    assert injects_of(r) == [("leak", 60.0), ("call", 100.0), ("fault", 200.0),
                             ("note", 250.5), ("media", 300.0)]   # nobody published
    timeline = read_table(r.archive_path, "timeline")
    assert (timeline.loc[timeline["kind"] == "hazard_start", "time_s"] == 60.0).all()
    obs = read_table(r.archive_path, "observations")
    mine = obs[obs["sensor_id"] == LEAK_SENSOR]
    assert not mine["time_s"].between(200, 349.9).any()         # offline for 150 s
    assert mine["time_s"].between(350, 600).any() and (mine["time_s"] < 200).any()
    kinds = read_table(r.archive_path, "injects").set_index("inject_id")["kind"]
    assert kinds["fault"] == "sensor_offline" and kinds["call"] == "hotline_call"


def test_real_time_pacing_keeps_the_inject_order_and_times(tmp_path, monkeypatch):
    import citytwin.scenarios.drill.director as drill_module

    made = []
    real_make_env = drill_module.make_env
    monkeypatch.setattr(drill_module, "make_env",
                        lambda *a, **k: made.append(real_make_env(*a, **k)) or made[-1])
    unpaced = drill(tmp_path, base_plan(), [], name="fast")
    paced = drill(tmp_path, base_plan(), [], name="paced", speed=1000.0)  # ×1000: 0.6 s
    assert injects_of(paced) == injects_of(unpaced)
    # the paced drill ran on SimPy's real-time clock at 1/1000 s of wall time per second
    rt = [e for e in made if isinstance(e, simpy.rt.RealtimeEnvironment)]
    assert len(rt) == 1 and rt[0].factor == pytest.approx(1e-3) and not rt[0].strict


def test_a_contingency_counts_the_scenarios_own_actions(tmp_path):
    plan = base_plan()
    plan["scenario"]["actions"] = [{"at_s": 200, "action": "publish", "target": "W-0001",
                                    "actor": "press office"}]
    r = drill(tmp_path, plan, [])
    assert "media" not in dict(injects_of(r))        # published before 280 s: not needed
    assert {o["ref"]: o["outcome"] for o in r.aar["expected"]}["pub"] == "met"


def test_a_step_waiting_for_an_injects_warning_never_acts_on_another(tmp_path):
    players = [{"after": {"inject": "fault"}, "delay_s": 10, "action": "acknowledge",
                "target": "{warning}", "actor": "duty"}]     # an offline sensor warns of nothing
    r = drill(tmp_path, base_plan(), players)
    acts = read_table(r.archive_path, "actions")
    assert "acknowledge" not in set(acts["action"])          # not W-0001, the leak's warning
    timeline = read_table(r.archive_path, "timeline")
    skipped = timeline[timeline["kind"] == "action_skipped"]
    assert list(skipped["time_s"]) == [210.0]


# --- contingencies and scoring -------------------------------------------------------------

PLAYERS_GOOD = [
    {"after": {"warning": "raised"}, "delay_s": 30, "action": "acknowledge",
     "target": "{warning}", "actor": "duty"},
    {"after": {"warning": "raised"}, "delay_s": 60, "action": "publish",
     "target": "{warning}", "actor": "press"},
    {"after": {"inject": "call"}, "delay_s": 100, "action": "evacuate", "target": "P-plaza",
     "actor": "police"},
]


def test_contingency_does_not_fire_when_the_action_is_done_in_time(tmp_path):
    r = drill(tmp_path, base_plan(), PLAYERS_GOOD)
    assert "media" not in dict(injects_of(r))
    timeline = read_table(r.archive_path, "timeline")
    skipped = timeline[timeline["kind"] == "contingency_skipped"]
    assert list(skipped["time_s"]) == [280.0]
    assert {o["ref"]: o["outcome"] for o in r.aar["expected"]} == {
        "ack": "met", "pub": "met", "evac": "met"}
    assert [o["rating"] for o in r.aar["objectives"]] == ["P", "P"]
    assert r.aar["improvement_plan"] == []


def test_contingency_fires_when_the_action_is_missing_and_outcomes_are_scored(tmp_path):
    plan = base_plan()
    plan["msel"][4]["expected"] = [{"id": "pub2", "action": "publish", "target": "{warning}",
                                    "within_s": 100, "objective": "O2"}]
    players = [PLAYERS_GOOD[0] | {"delay_s": 90},                      # late (60 s allowed)
               {"after": {"inject": "media"}, "delay_s": 20, "action": "publish",
                "target": "{warning}", "actor": "press"}]            # contingency: met
    r = drill(tmp_path, plan, players)
    assert dict(injects_of(r))["media"] == 300.0
    got = {o["ref"]: o for o in r.aar["expected"]}
    raised = got["ack"]["reference_s"]
    assert got["ack"]["outcome"] == "late" and got["ack"]["delay_s"] == 90.0
    assert got["ack"]["late_by_s"] == 30.0 and got["ack"]["done_s"] == raised + 90
    assert got["pub"]["outcome"] == "late"         # published at 320 s: after its 120 s
    assert got["pub"]["done_s"] == 320.0
    assert got["evac"]["outcome"] == "missed"
    assert got["pub2"]["outcome"] == "met" and got["pub2"]["delay_s"] == 20.0
    assert got["pub2"]["target"] == got["ack"]["target"] == "W-0001"
    assert {o["id"]: o["rating"] for o in r.aar["objectives"]} == {"O1": "S", "O2": "M"}
    plan_rows = r.aar["improvement_plan"]
    assert [(p["expected"], p["outcome"]) for p in plan_rows] == [
        ("ack", "late"), ("pub", "late"), ("evac", "missed")]
    assert plan_rows[0]["responsible_unit"] == "duty office"
    on_disk = json.loads((tmp_path / "run" / "aar.json").read_text())
    assert on_disk["objectives"] == r.aar["objectives"]
    html = (tmp_path / "run" / "after_action.html").read_text()
    assert html.count('<img alt="drill timeline"') == 1 and 'class="run-status"' not in html


def test_the_worked_example_scores_met_late_and_missed(tmp_path):
    r = run_scored_drill(DATA / "drill_gas_leak.yaml", tmp_path / "ex",
                         players=DATA / "drill_gas_leak_players.yaml", quiet=True)
    assert {o["ref"]: o["outcome"] for o in r.aar["expected"]} == {
        "ack-leak": "met", "assign-gas": "late", "publish-leak": "late",
        "measure-station": "met", "evacuate-plaza": "missed", "cancel-false": "met",
        "publish-after-media": "met"}
    assert {o["id"]: o["rating"] for o in r.aar["objectives"]} == {
        "O1": "P", "O2": "S", "O3": "M"}
    assert dict(injects_of(r)) == {"I1": 300.0, "I2": 600.0, "I3": 900.0, "I4": 1200.0,
                                   "I5": 2700.0}
    assert len(r.aar["improvement_plan"]) == 3
    assert_all_cap_exercise(r)


def test_objective_rating_rule():
    def outs(*names):
        return [ExpectedOutcome("r", "i", "O", "publish", "", 1, "inject", "", outcome=n)
                for n in names]

    assert rate(outs("met", "met")) == "P"
    assert rate(outs("met", "late", "n/a")) == "S"
    assert rate(outs("met", "missed")) == "M"
    assert rate(outs("late", "missed", "met", "missed")) == "M"
    assert rate(outs("met", "missed", "missed")) == "U"
    assert rate(outs("n/a")) == "N/A"


# --- CAP status ----------------------------------------------------------------------------

def assert_all_cap_exercise(r) -> None:
    files = sorted((r.run_dir / "cap").glob("*.xml"))
    assert files and len(files) == len(r.result.cap_files)
    for f in files:
        assert ET.parse(f).getroot().findtext(f"{CAP_NS}status") == "Exercise", f.name
    assert set(read_table(r.archive_path, "cap_messages")["status"]) == {"Exercise"}


def test_every_cap_message_of_a_drill_is_an_exercise(tmp_path):
    plan = base_plan()
    plan["scenario"]["mode"] = "what-if"          # a drill forces mode drill anyway
    r = drill(tmp_path, plan, PLAYERS_GOOD)
    assert r.aar["mode"] == "drill"
    assert_all_cap_exercise(r)
    published = read_table(r.archive_path, "actions").query("action == 'publish'")
    assert list(published["outcome"]) == ["done"]


# --- bad input -------------------------------------------------------------------------------

def _error(tmp_path, plan: dict, players=None) -> InputError:
    with pytest.raises(InputError) as exc:
        drill(tmp_path, plan, players or [])
    assert not (tmp_path / "run").exists()        # nothing written
    return exc.value


def test_unknown_hazard_in_an_inject_names_file_and_field(tmp_path):
    plan = base_plan()
    plan["msel"][0]["hazard"] = "no-such-hazard"
    err = _error(tmp_path, plan)
    assert err.source.endswith("run-plan.yaml") and err.field == "msel.0.hazard"
    assert "no-such-hazard" in str(err)


def test_unknown_sensor_names_file_and_field(tmp_path):
    plan = base_plan()
    plan["msel"][2]["sensors"] = ["GN00008"]
    err = _error(tmp_path, plan)
    assert err.field == "msel.2.sensors.0" and "did you mean 'ch4-wells:GN00008'" in str(err)


def test_negative_time_names_the_field(tmp_path):
    plan = base_plan()
    plan["msel"][1]["at_s"] = -5
    err = _error(tmp_path, plan)
    assert err.field == "msel.1.at_s" and "run-plan.yaml" in str(err)


def test_unknown_action_names_the_field(tmp_path):
    plan = base_plan()
    plan["msel"][0]["expected"][0]["action"] = "panic"
    assert _error(tmp_path, plan).field == "msel.0.expected.0.action"
    err = _error(tmp_path, base_plan(), [{"at_s": 5, "action": "panic", "target": "W-0001"}])
    assert err.source.endswith("run-players.yaml") and err.field == "0.action"


@pytest.mark.parametrize("change, field", [
    (lambda p: p["msel"][0]["expected"][0].update(objective="O9"),
     "msel.0.expected.0.objective"),
    (lambda p: p["msel"][4]["contingency"].update(if_missing="nope"),
     "msel.4.contingency.if_missing"),
    (lambda p: p["msel"][3].update(at_s=9999), "msel.3.at_s"),
    (lambda p: p["msel"][1].update(location="P-nowhere"), "msel.1.location"),
    (lambda p: p["msel"][2].pop("sensors"), "msel.2.sensors"),
    (lambda p: p["msel"][1].update(colour="red"), "msel.1.colour"),
    (lambda p: p["msel"][0]["expected"][0].update(target="WO-W-0001"),
     "msel.0.expected.0.target"),
])
def test_other_plan_errors_name_the_field(tmp_path, change, field):
    plan = base_plan()
    change(plan)
    assert _error(tmp_path, plan).field == field


def test_player_trigger_on_an_unknown_inject(tmp_path):
    plan_path = write_yaml(tmp_path / "p.yaml", base_plan())
    players = write_yaml(tmp_path / "pl.yaml", [{"after": {"inject": "I9"}, "action": "ack",
                                                 "target": "W-0001"}])
    with pytest.raises(InputError) as exc:
        load_players(players, load_plan(plan_path).plan)
    assert exc.value.field == "0.after.inject"


# --- compiling hazard injects ----------------------------------------------------------------

def test_hazard_injects_are_compiled_into_the_scenario(tmp_path):
    plan = base_plan()
    plan["msel"].append({"id": "stop", "at_s": 400, "kind": "hazard_stop",
                         "hazard": "main-strike"})
    loaded = load_plan(write_yaml(tmp_path / "p.yaml", plan))
    h = loaded.scenario.hazards[0]
    assert (h.start_s, h.stop_s, loaded.scenario.mode) == (60.0, 400.0, "drill")


def test_rain_change_scales_the_series_from_its_time():
    hazard = {"start_s": 100.0, "rain": {"series": {"times_s": [0, 600, 1200],
                                                    "intensity_mm_h": [10, 40, 5]}}}
    got = scaled_rain(hazard, 400.0, 2.0)
    assert got == {"times_s": [0, 300, 600, 1200], "intensity_mm_h": [10, 20, 80, 10]}


# --- console ---------------------------------------------------------------------------------

def test_console_parser():
    assert parse_command("ack W-0001") == Command("acknowledge", "W-0001")
    assert parse_command("assign WO-W-0001 gas_company by dispatcher") == Command(
        "assign", "WO-W-0001", {"handler": "gas_company"}, "dispatcher")
    assert parse_command("evacuate 400850,3400450,150") == Command(
        "evacuate", "400850,3400450,150")
    assert parse_command("measure 10,20 ch4_lel_pct delay_s=120") == Command(
        "measure", "10,20", {"quantity": "ch4_lel_pct", "delay_s": 120.0})
    assert parse_command("speed 60") == Command("speed", args={"factor": 60.0})
    assert parse_command("  # a comment") is None and parse_command("") is None
    assert parse_command("PAUSE") == Command("pause")
    for bad, words in [("dance W-0001", "unknown command 'dance'"),
                       ("assign WO-W-0001", "needs a handler"),
                       ("ack WO-W-0001", "warning id"), ("escalate W-0001", "work order"),
                       ("evacuate 1,2", "place id or 'x,y,radius_m'"),
                       ("measure P-plaza", "'x,y'"), ("speed fast", "positive number"),
                       ("publish", "needs a target"), ("status now", "no arguments")]:
        with pytest.raises(CommandError, match=words):
            parse_command(bad)
    assert make_command("close", "{work_order}").target == "{work_order}"


def test_console_notes_and_arguments_are_checked_before_they_run():
    """A note is the command's note, never a keyword of the action (it crashed the drill)."""
    assert parse_command('cancel W-0002 note="faulty cell" by duty') == Command(
        "cancel", "W-0002", {}, "duty", "faulty cell")
    assert parse_command("measure 1,2 by team height_m=2") == Command(
        "measure", "1,2", {"height_m": 2.0}, "team")
    for bad, words in [("cancel W-0001 handler=x", "cancel takes no argument 'handler'"),
                       ("measure 1,2 delay_s=soon", "delay_s must be a number"),
                       ("evacuate 1,2,-5", "radius must be > 0"),
                       ("ack W-0001 by", "'by' needs the acting unit's name"),
                       ("ack W-0001 note=a note=b", "note given twice"),
                       ("ack 'W-0001", "no closing quotation")]:
        with pytest.raises(CommandError, match=words):
            parse_command(bad)


def test_scripted_notes_and_arguments_in_a_player_file(tmp_path):
    players = [{"at_s": 120, "action": "cancel", "target": "W-0001", "actor": "duty",
                "args": {"note": "field check"}}]
    r = drill(tmp_path, base_plan(), players, name="notes")  # a TypeError ended it before
    acts = read_table(r.archive_path, "actions")
    assert list(acts["args"]) == ['{"note":"field check"}']
    assert read_table(r.archive_path, "manifest").set_index("key")["value"]["status"] == \
        '"completed"'
    players[0]["args"] = {"colour": "red"}
    err = _error(tmp_path, base_plan(), players)
    assert err.field == "0.args.colour" and "cancel takes no argument 'colour'" in str(err)


def test_console_process_executes_queued_commands_and_survives_bad_ones():
    commands: queue.Queue = queue.Queue()
    done, lines = [], []
    console = DrillConsole(commands, execute=lambda c, t: done.append((t, c.text())) or "ok",
                           status=lambda t: f"status at {t:g}", poll_s=5.0,
                           write=lines.append)
    for line in ["ack W-0001", "status"]:
        commands.put(parse_command(line))
    commands.put(CommandError("unknown command 'x'"))
    commands.put(parse_command("speed 10"))
    env = simpy.Environment()
    env.process(console.process(env))
    env.run(until=7)
    assert done == [(5.0, "acknowledge W-0001")]
    assert "status at 5" in lines and "? unknown command 'x'" in lines
    assert any("paced drills only" in line for line in lines)


def test_live_drill_reads_the_console_while_paused(tmp_path):
    """Start paused: commands typed before 'resume' act at T+0; end of input = quit."""
    plan = base_plan()
    plan["pacing"] = {"accelerated": 1000, "paused": True, "poll_s": 2}
    out = io.StringIO()
    r = run_scored_drill(write_yaml(tmp_path / "p.yaml", plan), tmp_path / "live",
                         console_input=io.StringIO("evacuate P-plaza by police\nhelp\nresume\n"),
                         out=out, quiet=True)
    acts = read_table(r.archive_path, "actions")
    assert list(zip(acts["time_s"], acts["action"], acts["actor"], acts["outcome"],
                    strict=True)) == [(0.0, "evacuate", "police", "done")]
    text = out.getvalue()
    assert "paused" in text and "measure x,y" in text and "resumed" in text
    assert {o["ref"]: o["outcome"] for o in r.aar["expected"]}["evac"] == "met"


# --- overrides and hazard-inject errors ------------------------------------------------------

def _plan_error(tmp_path, plan: dict) -> InputError:
    path = write_yaml(tmp_path / "p.yaml", plan)
    with pytest.raises(InputError) as exc:
        load_plan(path)
    assert exc.value.source == str(path)
    return exc.value


def test_overrides_are_dotted_paths_like_a_studys(tmp_path):
    plan = base_plan(overrides={"weather.stability": "F", "hazards.main-strike.height_m": 1.0,
                                "duration_s": 700})
    sc = load_plan(write_yaml(tmp_path / "p.yaml", plan)).scenario
    base = short_scenario()
    assert (sc.weather.stability, sc.hazards[0].height_m, sc.duration_s) == ("F", 1.0, 700.0)
    assert [w.from_deg for w in sc.weather.wind] == [w["from_deg"]
                                                     for w in base["weather"]["wind"]]
    err = _plan_error(tmp_path, base_plan(overrides={"weather.windd.0.from_deg": 10}))
    assert err.field == "overrides.weather.windd.0.from_deg" and "no field 'windd'" in str(err)
    err = _plan_error(tmp_path, base_plan(overrides={"rulebook.levels": ["red"]}))
    assert err.field == "overrides.rulebook.levels" and "scenario fields only" in str(err)


FLOOD = {"id": "rain", "kind": "urban_flood", "start_s": 0,
         "rain": {"series": {"times_s": [0], "intensity_mm_h": [10]}}}


@pytest.mark.parametrize(("inject", "field", "words"), [
    ({"kind": "hazard_start", "hazard": "main-strike"}, "msel.5.hazard", "is started twice"),
    ({"kind": "rain_change", "hazard": "main-strike", "scale": 2}, "msel.5.hazard",
     "(gas_plume) does not take a rain_change inject (it takes: hazard_start, hazard_stop)"),
    ({"kind": "hazard_stop", "hazard": "rain"}, "msel.5.hazard",
     "(urban_flood) does not take a hazard_stop inject (it takes: hazard_start, rain_change)"),
    ({"kind": "hazard_stop", "hazard": "main-strike", "at_s": 30}, None,
     "after applying the injects: stop_s must be after start_s"),
])
def test_hazard_inject_errors_name_the_plan_and_field(tmp_path, inject, field, words):
    plan = base_plan()
    plan["scenario"]["hazards"].append(FLOOD)
    plan["msel"].append({"id": "extra", "at_s": 120, **inject})
    err = _plan_error(tmp_path, plan)
    assert words in str(err), str(err)
    if field is not None:
        assert err.field == field
