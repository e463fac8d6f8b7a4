"""Every example is a smoke test: each file in scenarios/data/ (and the scenario and study
files of benchmarks/perf/) passes `citytwin validate`; a broken copy of each file kind is
rejected naming the file and the field; each example scenario runs, shortened, through the
kernel into a completed archive."""

import copy
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from citytwin.scenarios.cli.main import main
from citytwin.scenarios.cli.validate import KINDS, detect_kind, read_document
from citytwin.twin.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "scenarios" / "data"
ALERTING = ROOT / "alerting" / "data"
CATALOGUE = ROOT / "sensors_sim" / "data" / "catalogue.yaml"

#: Every file in scenarios/data/, globbed at collection time (a new example is covered).
EXAMPLES = sorted(p for p in DATA.iterdir() if p.is_file() and not p.name.startswith("."))


def _bench_files() -> list[Path]:
    out = []
    for p in sorted((ROOT / "benchmarks" / "perf").glob("*.yaml")):
        try:
            kind = detect_kind(read_document(p), str(p))
        except InputError:
            kind = "scenario"  # unrecognisable: let the validate test say why
        if kind in ("scenario", "study"):
            out.append(p)
    return out


BENCH = _bench_files()


def _load(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _ids(paths: list[Path]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in paths]


# --- every example validates ----------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES + BENCH, ids=_ids(EXAMPLES + BENCH))
def test_example_validates(path, capsys):
    assert main(["validate", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{path}: valid "), out
    assert err == ""


def test_examples_cover_the_file_kinds():
    """The examples are told apart by content: each kind the worked examples show is found."""
    kinds = {p.name: detect_kind(read_document(p), str(p)) for p in EXAMPLES}
    assert {"scenario", "drill-plan", "players", "study", "rulebook"} <= set(kinds.values())
    assert kinds.get("drill_gas_leak_players.yaml", "players") == "players"
    assert kinds.get("study_gas_leak.yaml", "study") == "study"


@pytest.mark.parametrize("path, kind, says", [
    (ALERTING / "default_rulebook.yaml", "rulebook", "valid rulebook 'citytwin-default'"),
    (ALERTING / "default_routing.yaml", "routing", "valid routing table"),
    (ALERTING / "default_operations.yaml", "operations", "valid operations policy"),
    (CATALOGUE, "catalogue", "valid sensor catalogue: 9 sensor types"),
], ids=["rulebook", "routing", "operations", "catalogue"])
def test_settings_files_validate(path, kind, says, capsys):
    assert detect_kind(read_document(path), str(path)) == kind
    assert main(["validate", str(path)]) == 0
    assert says in capsys.readouterr().out


def test_several_files_one_bad(tmp_path, capsys):
    """Each file is reported; one bad file makes the exit code 2."""
    bad = _write(tmp_path / "bad_rulebook.yaml", {"name": "x", "levels": ["a", "b", "c"],
                                                  "rules": []})
    rulebook = DATA / "rulebook_revised.yaml"
    routing = ALERTING / "default_routing.yaml"
    assert main(["validate", str(rulebook), str(bad), str(routing)]) == 2
    out, err = capsys.readouterr()
    assert f"{rulebook}: valid rulebook" in out and f"{routing}: valid routing" in out
    assert f"error: {bad}: rules: " in err
    assert "1 of 3 files invalid" in err


def test_kind_forced(capsys):
    """--kind skips detection: a routing table checked as a rulebook fails on its fields."""
    path = ALERTING / "default_routing.yaml"
    assert main(["validate", "--kind", "rulebook", str(path)]) == 2
    assert f"error: {path}: levels: Field required" in capsys.readouterr().err


def test_players_paired_with_plan_by_name(tmp_path, capsys):
    """NAME_players.yaml is checked against NAME.yaml beside it (as `make drill` pairs them),
    or against --plan; with neither, the error asks for --plan."""
    plan = _load(DATA / "drill_gas_leak.yaml")
    plan["scenario"] = str(DATA / plan["scenario"])
    _write(tmp_path / "mydrill.yaml", plan)
    players = _load(DATA / "drill_gas_leak_players.yaml")
    paired = _write(tmp_path / "mydrill_players.yaml", players)
    assert main(["validate", str(paired)]) == 0
    assert f"({tmp_path / 'mydrill.yaml'})" in capsys.readouterr().out
    lonely = _write(tmp_path / "team.yaml", players)
    assert main(["validate", str(lonely)]) == 2
    assert f"error: {lonely}: --plan: " in capsys.readouterr().err
    assert main(["validate", "--plan", str(DATA / "drill_gas_leak.yaml"), str(lonely)]) == 0
    assert "7 steps" in capsys.readouterr().out


# --- broken copies are rejected naming the file and the field ------------------------------

def _scenario(tmp_path):
    data = _load(DATA / "gas_leak_drill.yaml")
    data["hazards"][0]["source"]["near_place"] = "P-nowhere"
    return "scenario.yaml", data, ["hazards.0.source.near_place", "P-nowhere"]


def _drill_plan(tmp_path):
    data = _load(DATA / "drill_gas_leak.yaml")
    data["scenario"] = str(DATA / data["scenario"])
    data["msel"][-1]["at_s"] = 4000          # the drill lasts 3600 s
    return "plan.yaml", data, [f"msel.{len(data['msel']) - 1}.at_s",
                               "after the end of the drill"]


def _players(tmp_path):
    data = _load(DATA / "drill_gas_leak_players.yaml")
    data[2]["after"] = {"inject": "I9"}
    return "drill_gas_leak_players.yaml", data, ["2.after.inject", "no inject 'I9'"]


def _study(tmp_path):
    data = _load(DATA / "study_gas_leak.yaml")
    data["base"] = str(DATA / data["base"])
    data["variations"]["hazards.0.relase.hole_diameter_mm"] = data["variations"].pop(
        "hazards.0.release.hole_diameter_mm")
    return "study.yaml", data, ["variations.hazards.0.relase.hole_diameter_mm",
                                "unknown parameter path"]


def _rulebook(tmp_path):
    data = _load(DATA / "rulebook_revised.yaml")
    data["rules"][0]["thresholds"] = {"blue": 5, "yelow": 12.5, "orange": 25, "red": 40}
    return "rulebook.yaml", data, ["rules.0 (ch4_confined_space)", "'yelow'"]


def _routing(tmp_path):
    data = _load(ALERTING / "default_routing.yaml")
    hazard = next(iter(data["hazards"]))
    data["hazards"][hazard]["owner"] = "gas_compnay"
    return "routing.yaml", data, [f"hazards.{hazard}.owner", "'gas_compnay'"]


def _operations(tmp_path):
    data = _load(ALERTING / "default_operations.yaml")
    data["situation_interval_s"] = 0
    return "operations.yaml", data, ["situation_interval_s", "greater than 0"]


def _catalogue(tmp_path):
    data = _load(CATALOGUE)
    data["sensor_types"]["rain_gauge"]["resolution"] = 0
    return "catalogue.yaml", data, ["rain_gauge", "resolution must be > 0"]


BROKEN = {"scenario": _scenario, "drill-plan": _drill_plan, "players": _players,
          "study": _study, "rulebook": _rulebook, "routing": _routing,
          "operations": _operations, "catalogue": _catalogue}


def test_every_kind_has_a_broken_example():
    assert set(BROKEN) == set(KINDS)


@pytest.mark.parametrize("kind", list(BROKEN))
def test_broken_file_rejected(kind, tmp_path, capsys):
    name, data, fragments = BROKEN[kind](tmp_path)
    path = _write(tmp_path / name, data)
    argv = ["validate", str(path)]
    if kind == "players":
        argv += ["--plan", str(DATA / "drill_gas_leak.yaml")]
    assert detect_kind(data, str(path)) == kind
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"error: {path}: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_unknown_kind_lists_the_known_kinds(tmp_path, capsys):
    path = _write(tmp_path / "mystery.yaml", {"colour": "blue", "size": 3})
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: cannot tell what kind of file this is"), err
    assert "['colour', 'size']" in err
    for kind in KINDS:
        assert f"{kind} (" in err


@pytest.mark.parametrize("text, says", [("", "an empty file"), ("[1, 2", "not valid YAML")])
def test_empty_or_broken_yaml(tmp_path, capsys, text, says):
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["validate", str(path)]) == 2
    assert says in capsys.readouterr().err


# --- each example scenario runs, shortened, end to end -------------------------------------

SCENARIOS = [p for p in EXAMPLES if p.suffix in (".yaml", ".yml")
             and isinstance(_load(p), dict) and isinstance(_load(p).get("hazards"), list)
             and "twin" in _load(p)]
#: Seconds run after the first hazard starts: gas plumes are cheap; the flood models
#: (urban_flood, dam_break) step a grid, so they get less.
AFTER_S = {"gas_plume": 600.0}
FLOOD_AFTER_S = 240.0
LEAD_S = 60.0           # sensors tick before the hazard starts


def shortened(data: dict) -> tuple[dict, float]:
    """The scenario cut to a short run: the first hazard moved to LEAD_S (the others keep
    their offsets), the run ending AFTER_S later; no report, render, CAP or dossiers."""
    data = copy.deepcopy(data)
    t0 = min(float(h.get("start_s", 0.0)) for h in data["hazards"])
    shift = t0 - min(t0, LEAD_S)
    for h in data["hazards"]:
        h["start_s"] = float(h.get("start_s", 0.0)) - shift
        if "stop_s" in h:
            h["stop_s"] = float(h["stop_s"]) - shift
    start = t0 - shift
    after = min(AFTER_S.get(h["kind"], FLOOD_AFTER_S) for h in data["hazards"])
    data["duration_s"] = min(float(data["duration_s"]), start + after)
    data["actions"] = [a for a in data.get("actions", []) if a["at_s"] <= data["duration_s"]]
    data["outputs"] = {"observations": "all", "report": False, "render": False, "cap": False,
                       "dossiers": False}
    return data, start


def test_scenarios_found():
    assert SCENARIOS, "no scenario files in scenarios/data/"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_example_scenario_runs_shortened(path, tmp_path):
    data, start = shortened(_load(path))
    assert data["duration_s"] > start
    short = _write(tmp_path / path.name, data)
    out = tmp_path / "run"
    assert main(["run", str(short), "--out", str(out), "--no-render", "--quiet"]) == 0
    archive = out / "archive.sqlite"
    assert archive.is_file()
    with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
        manifest = dict(db.execute("SELECT key, value FROM manifest"))
        n_obs, last_s = db.execute("SELECT count(*), max(time_s) FROM observation_rows").fetchone()
    assert json.loads(manifest["status"]) == "completed"
    assert n_obs >= 1
    assert last_s >= start  # the sensors were still reporting once the hazard began
