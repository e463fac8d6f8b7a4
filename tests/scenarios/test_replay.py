"""Incident replay: exact self-replay, counterfactuals, the source fit, importers, CLI."""

import argparse
import json
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.gas_plume_fit import fit_gas_source
from citytwin.physics.plume import GaussianPuffPlume
from citytwin.scenarios.cli.replay import add_replay_commands
from citytwin.scenarios.replay.counterfactual import Counterfactual
from citytwin.scenarios.replay.diff import diff_warnings
from citytwin.scenarios.replay.export import export_incident
from citytwin.scenarios.replay.incident import read_incident
from citytwin.scenarios.replay.investigation import diff_text, run_investigation
from citytwin.scenarios.replay.session import prepare_replay, run_replay
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.run.run_files import MARKER
from citytwin.scenarios.spec.scenario import Weather, WindPoint, load_scenario
from citytwin.twin.errors import InputError
from citytwin.twin.synthetic import synthetic_city
from citytwin.viewer.investigation_report import investigation_html

from .conftest import short_scenario

REVISED = str(resources.files("citytwin.scenarios").joinpath("data/rulebook_revised.yaml"))
SOURCE_XY = (400452.0, 3400202.0)  # valve well GN00008 near P-plaza, tiny city seed 7


@pytest.fixture(scope="module")
def demo_archive(tmp_path_factory):
    """The short demo drill (strong leak at a sensored valve well), 1200 s."""
    import yaml

    tmp = tmp_path_factory.mktemp("demo")
    data = short_scenario(duration_s=1200)
    data["outputs"]["cap"] = True
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    run = prepare(load_scenario(path), source=str(path), base_dir=tmp)
    return simulate(run, tmp / "run").archive_path


@pytest.fixture(scope="module")
def sweep_archive(tmp_path_factory):
    """A 1 kg/s leak at an *unsensored* valve well; the wind swings the plume over three
    sensors (so the source can be located), 1200 s."""
    import yaml

    tmp = tmp_path_factory.mktemp("sweep")
    nodes = synthetic_city(7, "tiny").networks["gas"].nodes
    pts = [{"id": i, "xy_m": [g.x, g.y]} for i, g in zip(nodes["id"], nodes.geometry,
                                                         strict=True) if i != "GN00008"]
    data = short_scenario(duration_s=1200)
    data["hazards"][0]["release"] = {"rate_kg_s": 1.0}
    data["sensors"]["groups"][0]["placement"] = {"points": pts, "height_m": 0.3}
    data["weather"]["wind"] = [
        {"t_s": t, "speed_m_s": 1.5, "from_deg": d}
        for t, d in ((0, 270), (400, 270), (600, 225), (800, 225), (1000, 315), (1200, 315))]
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    run = prepare(load_scenario(path), source=str(path), base_dir=tmp)
    return simulate(run, tmp / "run").archive_path


# --- replay reproduces the run ----------------------------------------------------------------

def test_replay_of_own_archive_reproduces_warnings_exactly(demo_archive, tmp_path):
    inc = read_incident(demo_archive)
    res = run_replay(prepare_replay(inc), tmp_path / "replay")
    for table in ("warnings", "alarms", "pushes", "work_order_events", "self_checks"):
        a, b = read_table(demo_archive, table), read_table(res.archive_path, table)
        assert len(a) > 0 or table != "warnings"
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=table)
    obs = read_table(res.archive_path, "observations")
    assert set(obs["source"]) == {"archive"} and len(obs) == len(inc.observations)


def test_exported_folder_replays_identically_and_formats_round_trip(demo_archive, tmp_path):
    frames = {}
    for fmt in ("csv", "parquet", "jsonl"):
        folder = export_incident(demo_archive, tmp_path / fmt, fmt)
        assert {p.name for p in folder.iterdir()} == {
            f"observations.{fmt}", "sensors.geojson", "warnings.csv", "work_orders.csv",
            "incident.json"}
        frames[fmt] = read_incident(folder)
    base = read_incident(demo_archive)
    cols = ["sensor_id", "time_s", "received_s", "value", "unit", "quality"]
    for fmt, inc in frames.items():
        pd.testing.assert_frame_equal(inc.observations[cols], base.observations[cols],
                                      check_exact=True, obj=fmt)
        pd.testing.assert_frame_equal(inc.sensors, base.sensors, check_exact=False, obj=fmt)
        assert inc.warnings[["warning_id", "event", "known_at_s", "level_name"]].equals(
            base.warnings[["warning_id", "event", "known_at_s", "level_name"]])
    res = run_replay(prepare_replay(frames["parquet"]), tmp_path / "replay")
    pd.testing.assert_frame_equal(read_table(demo_archive, "warnings"),
                                  read_table(res.archive_path, "warnings"))


def test_no_model_replay_uses_buffer_areas(demo_archive, tmp_path):
    inc = read_incident(demo_archive)
    res = run_replay(prepare_replay(inc, with_model=False), tmp_path / "r")
    w = read_table(res.archive_path, "warnings")
    assert len(w) and set(w["area_source"]) == {"buffer"}
    assert res.summary["first_warning_s"] == read_table(demo_archive,
                                                        "warnings")["known_at_s"].min()


# --- counterfactuals ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def investigation(sweep_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("inv")
    x, y = SOURCE_XY
    cfs = [Counterfactual("revised", rulebook=REVISED),
           Counterfactual("remove first", remove=["ch4-wells:GN00009"]),
           Counterfactual("add near source", add=[(x + 15.0, y)])]
    return run_investigation(read_incident(sweep_archive), out, counterfactuals=cfs)


def test_lowered_thresholds_warn_earlier(investigation):
    base = investigation.replay.summary["first_warning_s"]
    revised = investigation.counterfactuals[0].result.summary["first_warning_s"]
    assert base is not None and revised is not None and revised < base
    assert revised > 60.0  # not a noise alarm before the release


def test_removing_first_alarming_sensor_warns_later_or_never(investigation):
    assert investigation.replay.summary["first_sensors"] == ["ch4-wells:GN00009"]
    removed = investigation.counterfactuals[1].result.summary["first_warning_s"]
    assert removed is None or removed > investigation.replay.summary["first_warning_s"]


def test_added_sensor_near_source_warns_earlier_and_is_model_derived(investigation):
    cf = investigation.counterfactuals[2]
    assert cf.result.summary["first_warning_s"] < investigation.replay.summary["first_warning_s"]
    (added,) = cf.added
    assert added["sensor_id"] == "CF-1" and added["model_derived"]
    assert added["first_alarm_s"] is not None
    assert added["first_alarm_s"] < investigation.replay.summary["first_warning_s"]
    # the fit found the unsensored source well and about its rate
    fit = investigation.fit
    assert fit.source_xy_m == SOURCE_XY
    assert fit.rate_kg_s == pytest.approx(1.0, rel=0.25)
    html = investigation_html(investigation)
    assert "CF-1" in html and "model-derived" in html and "<script" not in html


def test_fit_recovers_a_known_source_on_a_synthetic_plume():
    weather = Weather(stability="D", terrain="urban",
                      wind=[WindPoint(t_s=0, speed_m_s=2.0, from_deg=250),
                            WindPoint(t_s=600, speed_m_s=2.0, from_deg=300)])
    truth_xy, rate, start = (1000.0, 2000.0), 0.8, 100.0
    plume = GaussianPuffPlume(
        source_xy_m=truth_xy, source_height_m=0.5,
        release=ReleaseSchedule.constant(start, math.inf, rate),
        wind=WindSeries(np.array([0.0, 600.0]), np.array([2.0, 2.0]),
                        np.array([250.0, 300.0])),
        stability="D", terrain="urban",
        temperature_k=weather.air_temperature_c + 273.15, pressure_pa=weather.pressure_pa)
    gx, gy = np.meshgrid(np.arange(900.0, 1301.0, 50.0), np.arange(1850.0, 2151.0, 50.0))
    sensors = pd.DataFrame({"sensor_id": [f"S{k}" for k in range(gx.size)],
                            "quantity": "ch4_lel_pct", "x_m": gx.ravel(), "y_m": gy.ravel(),
                            "z_m": 0.3})
    rows = []
    xyz = sensors[["x_m", "y_m", "z_m"]].to_numpy()
    for t in np.arange(0.0, 1201.0, 10.0):
        plume.advance_to(t)
        v = plume.sample("ch4_lel_pct", xyz)
        rows.append(pd.DataFrame({"sensor_id": sensors["sensor_id"], "time_s": t, "value": v,
                                  "usable": True, "clipped": False}))
    obs = pd.concat(rows, ignore_index=True)
    cx, cy = np.meshgrid(np.arange(950.0, 1101.0, 25.0), np.arange(1925.0, 2076.0, 25.0))
    cand = np.column_stack([cx.ravel(), cy.ravel()])
    fit = fit_gas_source(obs, sensors, weather, candidates_xy=cand, alarm_value=5.0,
                         start_candidates_s=[0.0, 50.0, 100.0, 150.0])
    assert fit.source_xy_m == truth_xy
    assert fit.start_s == start
    assert fit.rate_kg_s == pytest.approx(rate, rel=0.02)
    assert fit.misfit_rms < 0.01 * fit.observed_rms


# --- importer errors ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def csv_folder(demo_archive, tmp_path_factory):
    return export_incident(demo_archive, tmp_path_factory.mktemp("csv"), "csv")


def _set_result(text, value):
    """Replace the result of the first data row."""
    lines = text.splitlines()
    parts = lines[1].split(",")
    parts[2] = value
    lines[1] = ",".join(parts)
    return "\n".join(lines) + "\n"


def _break(folder, tmp_path, edit, name="observations.csv"):
    import shutil

    dst = tmp_path / "broken"
    shutil.copytree(folder, dst)
    path = dst / name
    path.write_text(edit(path.read_text()))
    return dst


@pytest.mark.parametrize(("edit", "field", "words"), [
    (lambda t: t.replace("ch4-wells:GN00003,", "ch4-wells:NOPE,", 1), "sensor_id",
     "unknown sensor id"),
    (lambda t: t.replace("2026-06-01T05:30:00+08:00", "yesterday-ish", 1), "phenomenon_time",
     "unparseable time"),
    (lambda t: t.replace("+08:00", "", 1), "phenomenon_time", "UTC offset"),
    (lambda t: t + t.splitlines()[1] + "\n", "phenomenon_time", "duplicate"),
    (lambda t: t.replace(",%LEL,", ",ppm,", 1), "unit", "disagrees with the inventory"),
    (lambda t: _set_result(t, "abc"), "result", "not a number"),
])
def test_observation_errors_name_file_field_and_row(csv_folder, tmp_path, edit, field, words):
    folder = _break(csv_folder, tmp_path, edit)
    with pytest.raises(InputError) as err:
        read_incident(folder)
    msg = str(err.value)
    assert "observations.csv" in msg and field in msg and words in msg and "row" in msg


def test_nan_result_only_allowed_for_lost_readings(csv_folder, tmp_path):
    with pytest.raises(InputError, match="result.*row 1"):
        read_incident(_break(csv_folder, tmp_path, lambda t: _set_result(t, "")))


def test_missing_crs_empty_file_unsupported_and_corrupt_parquet(csv_folder, tmp_path):
    folder = _break(csv_folder, tmp_path, lambda t: json.dumps(
        {k: v for k, v in json.loads(t).items() if k != "crs"}), name="sensors.geojson")
    with pytest.raises(InputError, match=r"sensors\.geojson: crs: no CRS"):
        read_incident(folder)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty.csv: empty file"):
        read_incident(empty, inventory=csv_folder / "sensors.geojson", twin_crs="EPSG:32650")
    odd = tmp_path / "obs.xlsx"
    odd.write_text("x")
    with pytest.raises(InputError, match="unsupported format"):
        read_incident(odd, inventory=csv_folder / "sensors.geojson", twin_crs="EPSG:32650")
    bad = tmp_path / "obs.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(InputError, match="obs.parquet: corrupt or not a Parquet file"):
        read_incident(bad, inventory=csv_folder / "sensors.geojson", twin_crs="EPSG:32650")


def test_inventory_is_reprojected_from_wgs84(csv_folder, tmp_path):
    from pyproj import Transformer

    doc = json.loads((csv_folder / "sensors.geojson").read_text())
    tr = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    for f in doc["features"]:
        f["geometry"]["coordinates"] = list(tr.transform(*f["geometry"]["coordinates"]))
    doc["crs"]["properties"]["name"] = "EPSG:4326"
    path = tmp_path / "wgs84.geojson"
    path.write_text(json.dumps(doc))
    a = read_incident(csv_folder)
    b = read_incident(csv_folder, inventory=path)
    np.testing.assert_allclose(b.sensors[["x_m", "y_m"]], a.sensors[["x_m", "y_m"]],
                               atol=1e-3)
    # plain RFC 7946 GeoJSON (no crs member) is longitude/latitude on WGS84
    del doc["crs"]
    path.write_text(json.dumps(doc))
    c = read_incident(csv_folder, inventory=path)
    np.testing.assert_allclose(c.sensors[["x_m", "y_m"]], a.sensors[["x_m", "y_m"]],
                               atol=1e-3)


# --- CLI ------------------------------------------------------------------------------------------

def test_cli_export_and_run(demo_archive, tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_replay_commands(p.add_subparsers(dest="command"))
    args = p.parse_args(["replay", "export", str(demo_archive), "--out",
                         str(tmp_path / "inc"), "--format", "jsonl"])
    assert args.func(args) == 0
    args = p.parse_args(["replay", "run", str(tmp_path / "inc"), "--rulebook", REVISED,
                         "--remove", "ch4-wells:GN00008", "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert ("Diff against the warnings of the time: 1 warning the same, 0 changed, 0 only "
            "then (missed by the replay), 0 only now (extra in the replay)") in out
    assert "{'same'" not in out                        # no raw dict
    assert (tmp_path / "out" / "investigation.html").is_file()
    # outputs are never silently replaced, and never over their own input
    with pytest.raises(FileExistsError, match="not empty"):
        args.func(args)
    args = p.parse_args(["replay", "export", str(demo_archive), "--out",
                         str(tmp_path / "inc"), "--format", "csv", "--overwrite"])
    assert args.func(args) == 0
    assert sorted(f.name for f in (tmp_path / "inc").iterdir()) == [
        MARKER, "incident.json", "observations.csv", "sensors.geojson", "warnings.csv",
        "work_orders.csv"]
    args = p.parse_args(["replay", "run", str(tmp_path / "inc"), "--out", str(tmp_path),
                         "--overwrite"])
    with pytest.raises(InputError, match="holds the input"):
        args.func(args)
    assert (tmp_path / "inc" / "incident.json").is_file()


def test_cli_bad_input_leaves_out_untouched(demo_archive, tmp_path):
    """Every input is checked before --out is cleared: the old output survives a refusal."""
    p = argparse.ArgumentParser()
    add_replay_commands(p.add_subparsers(dest="command"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous investigation")
    (out / MARKER).write_text("")  # an output citytwin made: --overwrite may clear it
    cases = [
        (["--remove", "ch4-wells:GN00008,ch4-wells:NOPE"], ["--remove", "ch4-wells:NOPE"]),
        (["--move", "ch4-wells:GONE=400452,3400202"], ["--move", "ch4-wells:GONE"]),
        (["--rulebook", str(tmp_path / "missing.yaml")], ["missing.yaml"]),
        (["--add", "0,0"], ["--add", "outside the twin's terrain"]),
        (["--add", "nan,3400202"], ["--add", "not x,y[,z]"]),
    ]
    for extra, words in cases:
        args = p.parse_args(["replay", "run", str(demo_archive), "--out", str(out),
                             "--overwrite", *extra])
        with pytest.raises(InputError) as err:
            args.func(args)
        assert all(w in str(err.value) for w in words), (extra, str(err.value))
        assert sorted(f.name for f in out.iterdir()) == [MARKER, "keep.txt"], extra
        assert (out / "keep.txt").read_text() == "previous investigation"
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database")
    args = p.parse_args(["replay", "export", str(bad), "--out", str(out), "--overwrite"])
    with pytest.raises(InputError, match="bad.sqlite"):
        args.func(args)
    assert sorted(f.name for f in out.iterdir()) == [MARKER, "keep.txt"]


# --- cadence, anchors -----------------------------------------------------------------------

def test_iso_rounded_times_snap_onto_a_fast_cadence():
    from citytwin.scenarios.replay.cadence import cadence_ticks, snap_to_cadence
    from citytwin.scenarios.replay.tables import parse_times

    ticks = cadence_ticks(0.1, 60.0)  # summed like SimPy: 0.30000000000000004, …
    anchor = pd.Timestamp("2026-06-01T05:30:00+08:00")
    iso = pd.Series([(anchor + pd.Timedelta(seconds=t)).isoformat() for t in ticks])
    secs, _ = parse_times(iso, "f.csv", "phenomenon_time", anchor.to_pydatetime())
    assert (secs != ticks).any()  # ns rounding through ISO strings
    snapped, rx = snap_to_cadence(secs, secs + 0.5, np.full(len(secs), 0.1), 60.0, "f.csv",
                                  "phenomenon_time")
    assert np.array_equal(snapped, ticks) and np.array_equal(rx, secs + 0.5)
    with pytest.raises(InputError,
                       match=r"f\.csv: phenomenon_time \(feature row 3\): .*cadence"):
        snap_to_cadence(secs + np.where(np.arange(len(secs)) == 2, 0.04, 0.0), secs,
                        np.full(len(secs), 0.1), 60.0, "f.csv", "phenomenon_time")


def _rewrite_times(folder, tmp_path, shift):
    """A copy of an incident folder with ``shift(row index, Timestamp series)`` added to the
    phenomenon/result times (a Timedelta series each)."""
    import shutil

    dst = tmp_path / "shifted"
    shutil.copytree(folder, dst)
    obs = pd.read_csv(dst / "observations.csv", dtype=str, keep_default_na=False)
    for col in ("phenomenon_time", "result_time"):
        stamps = pd.to_datetime(obs[col], format="ISO8601")
        obs[col] = [ts.isoformat() for ts in stamps + shift(col, len(obs))]
    obs.to_csv(dst / "observations.csv", index=False)
    return dst


def test_jittered_times_replay_identically(csv_folder, demo_archive, tmp_path):
    def jitter(col, n):
        return pd.to_timedelta(np.where(np.arange(n) % 2, 100, -100), unit="ns")  # ±1e-7 s

    folder = _rewrite_times(csv_folder, tmp_path, jitter)
    assert "00.0000001" in (folder / "observations.csv").read_text()
    inc = read_incident(folder)
    base = read_incident(demo_archive)
    np.testing.assert_array_equal(inc.observations["time_s"], base.observations["time_s"])
    res = run_replay(prepare_replay(inc), tmp_path / "replay")
    pd.testing.assert_frame_equal(read_table(demo_archive, "warnings"),
                                  read_table(res.archive_path, "warnings"))


def test_off_cadence_reading_is_refused_at_import(csv_folder, tmp_path):
    def one_row(col, n):
        d = np.zeros(n, dtype="int64")
        if col == "phenomenon_time":
            d[41] = -2_500_000_000  # 2.5 s early on a 10 s cadence
        return pd.to_timedelta(d, unit="ns")

    folder = _rewrite_times(csv_folder, tmp_path, one_row)
    with pytest.raises(InputError) as err:
        read_incident(folder)
    msg = str(err.value)
    assert "observations.csv" in msg and "phenomenon_time" in msg and "row 42" in msg
    assert "cadence" in msg


def test_numeric_times_without_anchor_show_t_plus_only(csv_folder, tmp_path):
    from citytwin.scenarios.replay.session import PLACEHOLDER_START

    anchor = pd.Timestamp(json.loads((csv_folder / "incident.json").read_text())["anchor"])
    obs = pd.read_csv(csv_folder / "observations.csv", dtype=str, keep_default_na=False)
    for col in ("phenomenon_time", "result_time"):
        obs[col] = (pd.to_datetime(obs[col], format="ISO8601") - anchor).dt.total_seconds()
    path = tmp_path / "external.csv"
    obs.to_csv(path, index=False)
    inventory = csv_folder / "sensors.geojson"
    # warnings with wall-clock times only cannot be placed on an unanchored incident
    warnings = pd.read_csv(csv_folder / "warnings.csv").drop(columns=["time_s", "known_at_s"])
    warnings.to_csv(tmp_path / "warnings.csv", index=False)
    with pytest.raises(InputError, match=r"warnings\.csv: time: .*no wall-clock anchor"):
        read_incident(path, inventory=inventory, twin_crs="EPSG:32650",
                      warnings=tmp_path / "warnings.csv")
    inc = read_incident(path, inventory=inventory, twin_crs="EPSG:32650")
    assert inc.anchor is None
    inv = run_investigation(inc, tmp_path / "inv", synthetic=(7, "tiny"), fit=False)
    assert inv.setup.anchor is None and inv.setup.run.scenario.start == PLACEHOLDER_START
    assert inv.timeline  # the leak is detected: the timeline has rows
    html = investigation_html(inv)
    assert "wall clock" not in html and "2026-" not in html and "T+00:" in html
    assert "Start</td><td>unknown" in html
    text = inv.text_summary()
    assert "Wall clock unknown" in text and "2026-" not in text
    # with an anchor, the same replay shows wall-clock times
    inv.setup.anchor = anchor.to_pydatetime()
    html = investigation_html(inv)
    assert "wall clock" in html and anchor.isoformat() in html


def test_archive_read_through_archive_helpers_and_shared_constants(demo_archive, tmp_path):
    import inspect

    from citytwin.physics import gas_plume_fit
    from citytwin.scenarios import replay as replay_pkg
    from citytwin.scenarios.replay import session as replay
    from citytwin.scenarios.run import cascade

    for module in Path(replay_pkg.__file__).parent.glob("*.py"):  # archives via archive_reader
        assert "read_sql" not in module.read_text(encoding="utf-8"), module.name
    assert gas_plume_fit.GAS_QUANTITY is cascade.GAS_QUANTITY  # one name, physics/gas.py
    assert not hasattr(replay, "_measurement") and "MeasurementModel" not in inspect.getsource(
        replay)
    # warnings of the time from a file that is no archive: an InputError naming it
    bad = tmp_path / "other.sqlite"
    bad.write_text("not a database")
    with pytest.raises(InputError, match="other.sqlite: not a readable citytwin archive"):
        read_incident(demo_archive, warnings=bad)
    assert prepare_replay(read_incident(demo_archive)).run.measurement is None


# --- work orders of the time ----------------------------------------------------------------

def test_work_orders_of_the_time_round_trip_and_sit_beside_the_replays(demo_archive, csv_folder,
                                                                      tmp_path):
    from citytwin.scenarios.replay.events import read_work_orders_file
    from citytwin.scenarios.replay.session import work_order_summary

    then = read_incident(demo_archive).work_orders
    events = read_table(demo_archive, "work_order_events")
    assert list(then["event"]) == list(events["event"]) and len(then) > 0
    assert list(then["warning_id"]) == ["W-0001"] * len(then)
    # through the exported folder (ISO times) they come back to the same seconds
    back = read_incident(csv_folder).work_orders
    np.testing.assert_allclose(back["time_s"], then["time_s"], atol=1e-6)
    assert list(back["work_order_id"]) == list(then["work_order_id"])
    # summary by hand: created when the warning was raised, escalated by the overdue rule
    s = work_order_summary(then)["WO-W-0001"]
    created = float(events.loc[events["event"] == "created", "time_s"].iloc[0])
    assert s["created_s"] == created and s["assigned_s"] is None
    esc = events[events["event"] == "escalated"]
    assert [t for t, _ in s["escalations"]] == esc["time_s"].tolist()
    # the investigation report shows the replay's order created at the same moment
    inv = run_investigation(read_incident(demo_archive), tmp_path / "inv")
    page = investigation_html(inv)
    assert "the response of the time and the replay" in page and "WO-W-0001" in page
    replay_orders = work_order_summary(read_work_orders_file(inv.replay.archive_path))
    assert replay_orders["WO-W-0001"]["created_s"] == created
    # a bad event names file, field and row
    bad = tmp_path / "wo.csv"
    bad.write_text("work_order_id,event,time\nWO-W-0001,created,10\nWO-W-0001,exploded,20\n")
    with pytest.raises(InputError, match=r"wo\.csv: event \(feature row 2\).*exploded"):
        read_work_orders_file(bad)


def test_bad_warnings_of_the_time_name_file_field_and_row(tmp_path):
    from citytwin.scenarios.replay.events import read_warnings_file

    bad = tmp_path / "w.csv"
    bad.write_text("warning_id,event,time,level_name\nW-1,raised,10,red\nW-1,vanished,20,red\n")
    with pytest.raises(InputError, match=r"w\.csv: event \(feature row 2\).*'vanished'"):
        read_warnings_file(bad)
    bad.write_text("warning_id,event,level_name\nW-1,raised,red\n")
    with pytest.raises(InputError, match=r"w\.csv: time: missing column 'time'"):
        read_warnings_file(bad)
    bad.write_text("warning_id,time,level_name\nW-1,10,red\n")
    with pytest.raises(InputError, match=r"w\.csv: event: missing column\(s\) \['event'\]"):
        read_warnings_file(bad)


# --- more importer errors, sensor group intervals, a saved twin ------------------------------

def _edit_obs(folder, tmp_path, edit):
    """A copy of an incident folder whose observations (a frame of text) ``edit`` changed."""
    import shutil

    dst = tmp_path / "edited"
    shutil.copytree(folder, dst)
    obs = pd.read_csv(dst / "observations.csv", dtype=str, keep_default_na=False)
    edit(obs)
    obs.to_csv(dst / "observations.csv", index=False)
    return dst


def _received_after_a_later_one(obs):
    later = int(np.flatnonzero(obs["sensor_id"] == obs["sensor_id"].iloc[0])[1])
    stamp = pd.Timestamp(obs.loc[later, "result_time"]) + pd.Timedelta(seconds=1)
    obs.loc[0, "result_time"] = stamp.isoformat()


def _seconds(obs):
    """Phenomenon times as seconds from the first one (result times stay ISO)."""
    t = pd.to_datetime(obs["phenomenon_time"], format="ISO8601")
    obs["phenomenon_time"] = ((t - t.min()).dt.total_seconds()).map("{:g}".format)


@pytest.mark.parametrize(("edit", "field", "row", "words"), [
    (lambda o: o.loc.__setitem__((3, "result_time"), ""), "result_time", 4,
     "result_time is empty"),
    (lambda o: o.loc.__setitem__((3, "result_time"), "2026-06-01T05:00:00+08:00"),
     "result_time", 4, "result_time is before phenomenon_time"),
    (_received_after_a_later_one, "result_time", 1, "received after a later one"),
    (lambda o: o.loc.__setitem__((5, "phenomenon_time"), "300"), "phenomenon_time", 1,
     "mixes seconds and ISO 8601"),
    # seconds in one column and ISO times in the other: one time base for both, refused
    (_seconds, "result_time", 1, "mixes seconds and ISO 8601"),
])
def test_more_observation_errors_name_file_field_and_row(csv_folder, tmp_path, edit, field,
                                                         row, words):
    with pytest.raises(InputError) as err:
        read_incident(_edit_obs(csv_folder, tmp_path, edit))
    e = err.value
    assert e.source.endswith("observations.csv") and e.field == field, str(e)
    assert e.feature_id == f"row {row}" and words in str(e)


def test_inventory_geometry_and_crs_errors(csv_folder, tmp_path):
    import geopandas as gpd
    import shapely

    doc = json.loads((csv_folder / "sensors.geojson").read_text())
    doc["features"][2]["geometry"] = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
    path = tmp_path / "lines.geojson"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"lines\.geojson: geometry \(feature #2\): geometry "
                                         r"must be a Point, got 'LineString'"):
        read_incident(csv_folder, inventory=path)
    props = {"sensor_id": ["S1"], "type_id": ["methane_detector"], "quantity": ["ch4_lel_pct"],
             "unit": ["%LEL"]}
    line = [shapely.LineString([(400000, 3400000), (400010, 3400010)])]
    gpd.GeoDataFrame(props, geometry=line, crs="EPSG:32650").to_file(tmp_path / "l.gpkg")
    with pytest.raises(InputError, match=r"l\.gpkg: geometry \(feature #0\): geometry must "
                                         "be a Point"):
        read_incident(csv_folder, inventory=tmp_path / "l.gpkg")
    point = [shapely.Point(400000, 3400000)]
    with pytest.warns(UserWarning, match="crs"):
        gpd.GeoDataFrame(props, geometry=point).to_file(tmp_path / "nocrs.gpkg")
    with pytest.raises(InputError, match=r"nocrs\.gpkg: crs: no CRS on the layer"):
        read_incident(csv_folder, inventory=tmp_path / "nocrs.gpkg")


@pytest.mark.parametrize(("sql", "field", "words"), [
    ("DELETE FROM manifest WHERE key = 'scenario'", "manifest.scenario",
     "manifest has no scenario"),
    ("DELETE FROM observation_rows", "observations", "the archive holds no observations"),
])
def test_archive_without_scenario_or_observations_is_refused(demo_archive, tmp_path, sql,
                                                              field, words):
    import shutil
    import sqlite3

    copy = tmp_path / "archive.sqlite"
    shutil.copy(demo_archive, copy)
    with sqlite3.connect(copy) as db:
        db.execute(sql)
    with pytest.raises(InputError) as err:
        read_incident(copy)
    assert err.value.field == field and words in str(err.value)


def test_group_intervals_are_archived_and_resolved_once_per_group(demo_archive, tmp_path):
    import shutil
    import sqlite3

    from citytwin.scenarios.replay.cadence import group_intervals
    from citytwin.scenarios.run.archive_reader import read_manifest

    assert read_manifest(demo_archive)["group_intervals_s"] == {"ch4-wells": 10.0}
    inc = read_incident(demo_archive)
    assert set(inc.sensors["interval_s"]) == {10.0}
    # an archive written before the intervals were kept: the scenario's group interval
    old = tmp_path / "old.sqlite"
    shutil.copy(demo_archive, old)
    with sqlite3.connect(old) as db:
        db.execute("DELETE FROM manifest WHERE key = 'group_intervals_s'")
    pd.testing.assert_frame_equal(read_incident(old).sensors, inc.sensors)
    # no interval anywhere: the default of the type in the scenario's own catalogue
    text = resources.files("citytwin.sensors_sim").joinpath("data/catalogue.yaml").read_text()
    cat = tmp_path / "cat.yaml"
    cat.write_text(text.replace("interval_s: 10.0             # drill cadence",
                                "interval_s: 7.0  #", 1))
    manifest = {"scenario": {"sensors": {"catalogue": str(cat), "groups": [
        {"id": "g", "interval_s": None}, {"id": "h", "interval_s": 30.0}]}}}
    sensors = pd.DataFrame({"group_id": ["g", "h", "g"], "type_id": ["methane_detector"] * 3,
                            "interval_s": [np.nan, np.nan, 5.0]})
    got = group_intervals(sensors, manifest, "src")
    assert got["interval_s"].tolist() == [7.0, 30.0, 5.0]
    sensors["type_id"] = "no_such_type"
    with pytest.raises(InputError, match="cannot tell the interval of sensor group 'g'"):
        group_intervals(sensors, manifest, "src")


def test_cli_replays_an_external_incident_on_a_saved_twin(csv_folder, tmp_path, monkeypatch,
                                                          capsys):
    """--twin DIR: a saved twin (its manifest's CRS is a mapping) is loaded once, for the
    inventory's CRS and for the replay."""
    import shutil

    import citytwin.scenarios.run.prepare as prepare_mod
    import citytwin.twin.store as store_mod
    from citytwin.twin.store import save_twin

    save_twin(synthetic_city(7, "tiny"), tmp_path / "twin")
    inc = tmp_path / "external"
    inc.mkdir()
    for name in ("observations.csv", "sensors.geojson"):
        shutil.copy(csv_folder / name, inc / name)
    loads = []
    real = store_mod.load_twin

    def counting(folder):
        loads.append(folder)
        return real(folder)

    monkeypatch.setattr(store_mod, "load_twin", counting)
    monkeypatch.setattr(prepare_mod, "load_twin", counting)
    p = argparse.ArgumentParser()
    add_replay_commands(p.add_subparsers(dest="command"))
    args = p.parse_args(["replay", "run", str(inc / "observations.csv"), "--inventory",
                         str(inc / "sensors.geojson"), "--twin", str(tmp_path / "twin"),
                         "--out", str(tmp_path / "out")])
    assert args.func(args) == 0
    assert len(loads) == 1
    assert (tmp_path / "out" / "investigation.html").is_file()
    manifest = json.loads(read_table(tmp_path / "out" / "replay" / "archive.sqlite",
                                     "manifest").set_index("key").loc["scenario", "value"])
    assert manifest["twin"]["path"] == str((tmp_path / "twin").resolve())
    assert "Replay of" in capsys.readouterr().out


def _warnings(*rows) -> pd.DataFrame:
    """Warning events (id, known at s, level, sensors) of one gas hazard."""
    return pd.DataFrame([{"warning_id": wid, "known_at_s": t, "event": event, "level": level,
                          "hazard": "gas_plume", "sensors": sensors, "targets": []}
                         for wid, t, event, level, sensors in rows])


def test_the_diff_summary_names_every_status_in_words():
    levels = ["blue", "yellow"]
    archived = _warnings(("A1", 100.0, "raised", 1, ["s1"]), ("A2", 100.0, "raised", 1, ["s2"]),
                         ("A3", 100.0, "raised", 1, ["s3"]), ("A4", 100.0, "raised", 1, ["s4"]))
    replayed = _warnings(("R1", 100.0, "raised", 1, ["s1"]),     # same
                         ("R2", 40.0, "raised", 2, ["s2"]),      # earlier, different level
                         ("R3", 160.0, "raised", 1, ["s3"]),     # later (so blue later)
                         ("R5", 100.0, "raised", 1, ["s5"]))     # only now
    diff = diff_warnings(archived, replayed, levels)
    assert sorted(d["status"] for d in diff) == [
        "earlier, different level", "extra", "later, level timing differs", "missed", "same"]
    assert diff_text(diff) == (
        "1 warning the same, 2 changed (1 earlier, 1 later, 1 different level, 1 level "
        "timing differs), 1 only then (missed by the replay), 1 only now (extra in the "
        "replay)")
    assert diff_text(diff_warnings(archived, archived, levels)).startswith(
        "4 warnings the same, 0 changed, 0 only then")
    assert diff_text([]) == "no warnings, then or now"


def test_level_first_is_the_first_time_at_or_above_each_level():
    from citytwin.scenarios.replay.session import level_first

    levels = ["blue", "yellow", "orange", "red"]
    got = level_first(levels, [50.0, 10.0, 30.0, 40.0], [2, 1, 3, 1])
    assert got == {"blue": 10.0, "yellow": 30.0, "orange": 30.0, "red": None}
    assert level_first(levels, [], []) == dict.fromkeys(levels)
