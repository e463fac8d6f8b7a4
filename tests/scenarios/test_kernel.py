"""The kernel end to end: determinism, the archive, event granularity, bad input."""

import hashlib
import json
import sqlite3

import numpy as np
import pytest

from citytwin.scenarios.cli.main import main
from citytwin.scenarios.run.archive import Archive
from citytwin.scenarios.run.archive_reader import content_digest, read_manifest, read_table
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario
from citytwin.sensors_sim.measurement import MeasurementModel

from .conftest import short_scenario


def run_to(path, out_dir, **kw):
    scenario = load_scenario(path)
    return simulate(prepare(scenario, source=str(path), base_dir=path.parent), out_dir, **kw)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_scenario_and_seed_give_identical_archives(write_scenario, tmp_path):
    path = write_scenario(short_scenario())
    a = run_to(path, tmp_path / "a")
    b = run_to(path, tmp_path / "b")
    assert a.n_alarms > 0, "the leak must be detected for this test to mean anything"
    assert content_digest(a.archive_path) == content_digest(b.archive_path)
    assert sha256(a.archive_path) == sha256(b.archive_path)  # byte-identical files
    other = run_to(write_scenario(short_scenario(seed=43), "s43.yaml"), tmp_path / "c")
    assert content_digest(other.archive_path) != content_digest(a.archive_path)


def test_archive_holds_manifest_observations_alarms_warnings_timeline(write_scenario, tmp_path):
    path = write_scenario(short_scenario())
    result = run_to(path, tmp_path / "run")
    manifest = read_manifest(result.archive_path)
    assert manifest["status"] == "completed" and manifest["seed"] == 42
    assert manifest["libraries"]["numpy"] == np.__version__
    assert manifest["scenario"]["name"] == "gas-leak-drill"
    obs = read_table(result.archive_path, "observations")
    assert len(obs) == result.n_observations > 0
    assert set(obs["source"]) == {"drill"}
    sensors = read_table(result.archive_path, "sensors")
    assert set(obs["sensor_id"]) <= set(sensors["sensor_id"])
    alarms = read_table(result.archive_path, "alarms")
    warnings = read_table(result.archive_path, "warnings")
    assert len(alarms) == result.n_alarms and len(warnings) == len(result.warnings)
    assert warnings["event"].iloc[0] == "raised"
    kinds = read_table(result.archive_path, "timeline")["kind"].tolist()
    assert kinds[0] == "hazard_start" and "first_detection" in kinds and kinds[-1] == "run_end"
    # No reading before the release can have alarmed.
    assert alarms["time_s"].min() >= 60


def test_one_measurement_call_per_group_tick_not_per_sensor(write_scenario, tmp_path,
                                                            monkeypatch):
    calls = []
    original = MeasurementModel.measure

    def counting(self, group, t_s, true_values):
        calls.append((group.group_id, t_s, len(true_values)))
        return original(self, group, t_s, true_values)

    monkeypatch.setattr(MeasurementModel, "measure", counting)
    data = short_scenario()
    data["sensors"]["groups"].append({
        "id": "ch4-slow", "type": "methane_detector", "interval_s": 60,
        "placement": {"network": "drainage", "node_kinds": ["manhole"]}})
    run_to(write_scenario(data), tmp_path / "run")
    per_group = {g: [c for c in calls if c[0] == g] for g in ("ch4-wells", "ch4-slow")}
    assert len(per_group["ch4-wells"]) == 900 // 10 + 1
    assert len(per_group["ch4-slow"]) == 900 // 60 + 1
    assert all(n > 1 for _, _, n in calls)  # each call covers the whole group


def test_archive_refuses_to_overwrite(tmp_path):
    Archive(tmp_path / "a.sqlite").close()
    with pytest.raises(FileExistsError, match="archive already exists"):
        Archive(tmp_path / "a.sqlite")


def test_crashed_run_leaves_a_readable_archive_marked_aborted(write_scenario, tmp_path,
                                                              monkeypatch):
    import citytwin.scenarios.run.kernel as kernel

    calls = {"n": 0}
    original = MeasurementModel.measure

    def failing(self, group, t_s, true_values):
        calls["n"] += 1
        if calls["n"] == 30:
            raise RuntimeError("simulated crash")
        return original(self, group, t_s, true_values)

    monkeypatch.setattr(MeasurementModel, "measure", failing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_to(write_scenario(short_scenario()), tmp_path / "run")
    archive = tmp_path / "run" / "archive.sqlite"
    with sqlite3.connect(archive) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        manifest = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM manifest")}
        n_ticks = db.execute("SELECT COUNT(DISTINCT time_s) FROM observations").fetchone()[0]
    assert manifest["status"] == "aborted"
    assert manifest["abort_reason"] == "RuntimeError: simulated crash"
    assert 0 < manifest["aborted_at_s"] < 900 and "summary" not in manifest
    assert n_ticks == 29  # every tick before the crash was committed
    assert kernel  # imported for monkeypatch scope


# -- bad input through the CLI: one clear error, exit code 2, nothing written ----------------

def test_typo_in_scenario_gives_one_error_and_no_run_folder(write_scenario, tmp_path, capsys):
    data = short_scenario()
    data["weather"]["stabilty"] = data["weather"].pop("stability")
    path = write_scenario(data)
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "scenario.yaml: weather.stabilty: unknown field" in err[0]
    assert not out.exists()


def test_dem_without_crs_is_rejected_by_twin_build(tmp_path, capsys):
    import rasterio
    from affine import Affine

    dem = tmp_path / "nocrs.tif"
    with rasterio.open(dem, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32",
                       transform=Affine(1, 0, 0, 0, -1, 3)) as ds:
        ds.write(np.ones((1, 3, 4), dtype="float32"))
    out = tmp_path / "twin"
    assert main(["twin", "build", "--dem", str(dem), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nocrs.tif" in err and "has no CRS" in err
    assert not out.exists()


def test_dangling_link_in_twin_is_rejected_before_any_archive(write_scenario, tmp_path, capsys):
    import geopandas as gpd

    from citytwin.twin.store import save_twin
    from citytwin.twin.synthetic import synthetic_city

    folder = save_twin(synthetic_city(7, "tiny"), tmp_path / "twin")
    links = gpd.read_file(folder / "layers.gpkg", layer="gas_links")
    links.loc[3, "to_node"] = "GN-MISSING"
    links.to_file(folder / "layers.gpkg", layer="gas_links", driver="GPKG")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["layers.gpkg"]["sha256"] = sha256(folder / "layers.gpkg")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    data = short_scenario(twin={"path": "twin"})
    out = tmp_path / "run"
    assert main(["run", str(write_scenario(data)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "gas_links" in err and "GN-MISSING" in err and links.loc[3, "id"] in err
    assert not out.exists()


def test_validate_command_checks_without_writing(write_scenario, tmp_path, capsys):
    path = write_scenario(short_scenario())
    assert main(["validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenario.yaml"]


def test_run_refuses_to_clobber_a_previous_run(write_scenario, tmp_path, capsys):
    path = write_scenario(short_scenario())
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 0
    before = sha256(out / "archive.sqlite")
    assert main(["run", str(path), "--out", str(out), "--quiet"]) == 1
    assert "not empty" in capsys.readouterr().err
    assert sha256(out / "archive.sqlite") == before


def test_every_command_has_help(capsys):
    for argv in (["--help"], ["demo", "--help"], ["run", "--help"], ["validate", "--help"],
                 ["twin", "build", "--help"], ["twin", "info", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        assert "usage: citytwin" in capsys.readouterr().out
