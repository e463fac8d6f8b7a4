"""Weekly / monthly operating reports over the hand-built archives of ``test_dossier``."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from citytwin.twin.errors import InputError
from citytwin.viewer.operating_report import (
    operating_report,
    period_key,
    period_label,
    write_operating_report,
)
from tests.viewer.test_dossier import S4, S5, make_archive

SECTIONS = ("Summary", "Warnings by hazard and level", "Time to first warning", "Work orders",
            "Overdue", "Escalations", "Cancelled warnings (false alarms)",
            "False-alarm rates per sensor", "Push delivery", "Platform self-checks",
            "By period", "Archives")


@pytest.fixture
def archive(tmp_path):
    return make_archive(tmp_path / "archive.sqlite")


def test_known_values_from_the_fixture(archive):
    rep = operating_report([archive])
    assert rep["periods"] == ["2026-W23"] and rep["selected"] is None
    t = rep["totals"]
    w = t["warnings"]
    assert w["count"] == 3
    assert w["by_hazard_level"] == {"gas_plume": {"blue": 1, "yellow": 1, "orange": 0, "red": 1}}
    assert w["by_max_level"] == {"blue": 1, "yellow": 1, "orange": 0, "red": 1}
    assert t["time_to_first_warning_s"] == {"n": 3, "median": 15.0, "p90": 15.0, "max": 15.0}
    wo = t["work_orders"]
    assert (wo["count"], wo["assigned"], wo["closed"]) == (3, 2, 2)
    assert wo["time_to_assignment_s"] == {"n": 2, "median": 1800.0, "p90": 1800.0,
                                          "max": 1800.0}
    assert wo["time_to_closure_s"] == {"n": 2, "median": 5895.0, "p90": 8700.0, "max": 8700.0}
    assert t["overdue"]["count"] == 1
    (od,) = t["overdue"]["list"]
    assert (od["work_order_id"], od["event"], od["state_at_end"]) == (
        "WO-0002", "overdue_unassigned", "created")
    assert od["time_wall"] == "2026-06-01T07:37:00+08:00"
    assert (t["escalations"]["warning_level"], t["escalations"]["work_order"]) == (2, 1)
    assert t["cancelled"]["count"] == 1 and t["cancelled"]["rate"] == pytest.approx(1 / 3)
    assert t["cancelled"]["list"][0]["warning_id"] == "W-0003"
    p = t["pushes"]
    assert (p["delivered"], p["count"], p["rate"]) == (7, 8, 7 / 8)
    assert p["by_channel"]["sms"] == {"count": 2, "delivered": 1, "rate": 0.5}
    assert p["delay_s"]["max"] == 35.0
    assert [(u["warning_id"], u["unit"]) for u in p["undelivered"]] == [("W-0002", "asset_owner")]


def test_false_alarm_rates_per_sensor(archive):
    fa = operating_report([archive])["totals"]["false_alarms"]
    assert (fa["alarm_episodes"], fa["false"]) == (6, 2)
    by = {s["sensor_id"]: s for s in fa["by_sensor"]}
    # The faulty detector: its cancelled warning and its later lone spike are both false.
    assert by[S5] == {"sensor_id": S5, "episodes": 2, "confirmed": 0, "false": 2,
                      "unresolved": 0, "rate": 1.0, "self_check_rate": 1.0}
    assert fa["by_sensor"][0]["sensor_id"] == S5  # worst first
    assert by[S4]["unresolved"] == 1 and by[S4]["rate"] == 0.0  # its warning is still open
    assert all(by[s]["confirmed"] == 1 for s in by if s not in (S4, S5))


def test_self_check_findings(archive):
    sc = operating_report([archive])["totals"]["self_checks"]
    assert sc["raised"] == 3
    assert sc["by_check"] == {"false_alarm_rate": {"raised": 1, "still_open": 1},
                              "sensor_offline": {"raised": 1, "still_open": 0},
                              "sync_rate": {"raised": 1, "still_open": 1}}
    offline = sc["list"][0]
    assert offline["check_id"] == "sensor_offline"
    assert offline["cleared_wall"] == "2026-06-01T07:20:00+08:00"


def test_several_archives_are_aggregated(tmp_path):
    a = make_archive(tmp_path / "a.sqlite", run_id="run-a")
    b = make_archive(tmp_path / "b.sqlite", run_id="run-b")
    t = operating_report([a, b])["totals"]
    assert t["warnings"]["count"] == 6
    assert t["warnings"]["by_hazard_level"]["gas_plume"]["red"] == 2
    assert (t["pushes"]["delivered"], t["pushes"]["count"]) == (14, 16)
    assert t["overdue"]["count"] == 2
    assert t["work_orders"]["time_to_assignment_s"]["n"] == 4
    assert {w["run_id"] for w in t["warnings"]["list"]} == {"run-a", "run-b"}
    # the same detector in both runs: its episodes add up
    by = {s["sensor_id"]: s for s in t["false_alarms"]["by_sensor"]}
    assert by[S5]["episodes"] == 4 and by[S5]["false"] == 4


def test_weeks_follow_the_local_wall_clock_of_a_plus_eight_anchor(tmp_path):
    # 23:30 on Sunday 7 June local (15:30 UTC): everything after local midnight falls in the
    # next ISO week, though in UTC the whole run is on Sunday in week 23.
    archive = make_archive(tmp_path / "a.sqlite", start="2026-06-07T23:30:00+08:00")
    rep = operating_report([archive], period="week")
    assert rep["periods"] == ["2026-W23", "2026-W24"]
    w23, w24 = rep["by_period"]["2026-W23"], rep["by_period"]["2026-W24"]
    assert [w["warning_id"] for w in w23["warnings"]["list"]] == ["W-0001"]
    assert [w["warning_id"] for w in w24["warnings"]["list"]] == ["W-0002", "W-0003"]
    assert w24["warnings"]["list"][0]["raised_wall"] == "2026-06-08T00:36:55+08:00"
    # pushes by their own time: the all-clear push at 2405 s is 00:10:05 on Monday
    assert (w23["pushes"]["count"], w24["pushes"]["count"]) == (5, 3)
    assert (w24["pushes"]["delivered"], w24["overdue"]["count"]) == (2, 1)
    assert (w23["escalations"]["warning_level"], w24["escalations"]["work_order"]) == (2, 1)
    assert rep["totals"]["warnings"]["count"] == 3

    only = operating_report([archive], period="week", start=date(2026, 6, 8))
    assert only["selected"] == "2026-W24" and only["periods"] == ["2026-W24"]
    assert only["totals"]["warnings"]["count"] == 2
    assert only["totals"]["pushes"]["rate"] == pytest.approx(2 / 3)
    assert operating_report([archive], start="2026-06-07")["totals"]["warnings"]["count"] == 1


def test_months_follow_the_local_wall_clock(tmp_path):
    archive = make_archive(tmp_path / "a.sqlite", start="2026-06-30T23:00:00+08:00")
    rep = operating_report([archive], period="month")
    assert rep["periods"] == ["2026-06", "2026-07"]
    assert rep["by_period"]["2026-06"]["warnings"]["count"] == 1
    assert rep["by_period"]["2026-07"]["warnings"]["count"] == 2
    july = operating_report([archive], period="month", start="2026-07-15T12:00:00+08:00")
    assert july["periods"] == ["2026-07"] and july["totals"]["cancelled"]["count"] == 1


def test_period_keys_and_labels():
    assert period_key(date(2026, 1, 1), "week") == "2026-W01"
    assert period_key(date(2027, 1, 1), "week") == "2026-W53"  # ISO year, not calendar year
    assert period_key(date(2026, 12, 31), "month") == "2026-12"
    assert period_label("2026-W23") == "2026-W23 (2026-06-01 – 2026-06-07)"
    assert period_label("2026-06") == "2026-06"


def test_report_is_json_ready_and_deterministic(archive):
    a = json.dumps(operating_report([archive]), sort_keys=True, allow_nan=False)
    b = json.dumps(operating_report([archive]), sort_keys=True, allow_nan=False)
    assert a == b


def test_html_has_every_section_and_is_self_contained(archive, tmp_path):
    out = write_operating_report([archive], tmp_path / "reports" / "week.html")
    text = out.read_text()
    for h in SECTIONS:
        assert f"<h2>{h}</h2>" in text, h
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 2  # counts and closure
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert 'name="viewport"' in text
    assert "7 of 8" in text and "87.5 %" in text and "WO-0002" in text
    assert "2026-W23 (2026-06-01 – 2026-06-07)" in text
    monthly = write_operating_report([archive], tmp_path / "month.html", period="month")
    assert "Monthly operating report" in monthly.read_text()


def test_zero_warnings_gives_a_valid_report_saying_so(tmp_path):
    quiet = make_archive(tmp_path / "quiet.sqlite", with_incidents=False)
    rep = operating_report([quiet])
    t = rep["totals"]
    assert t["warnings"]["count"] == 0 and t["warnings"]["by_hazard_level"] == {}
    assert t["work_orders"]["time_to_closure_s"] == {"n": 0, "median": None, "p90": None,
                                                     "max": None}
    assert t["pushes"]["rate"] is None and t["cancelled"]["rate"] is None
    json.dumps(rep, allow_nan=False)
    text = write_operating_report([quiet], tmp_path / "quiet.html").read_text()
    assert "No warnings were raised in this period." in text
    assert "No work order was closed in this period." in text
    for h in SECTIONS:
        assert f"<h2>{h}</h2>" in text, h
    # a period with nothing at all in it is still a report
    empty = write_operating_report([quiet], tmp_path / "e.html", start="2027-01-04")
    assert "No warnings were raised in this period." in empty.read_text()


def test_a_file_that_is_not_an_archive_is_named(archive, tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database\n" * 100)
    with pytest.raises(InputError, match=re.escape(str(bad))) as err:
        operating_report([archive, bad])
    assert "not a readable SQLite" in str(err.value)
    with pytest.raises(InputError, match="no such file"):
        write_operating_report([tmp_path / "missing.sqlite"], tmp_path / "x.html")
    assert not (tmp_path / "x.html").exists()


def test_bad_period_or_start(archive):
    with pytest.raises(ValueError, match="period"):
        operating_report([archive], period="fortnight")
    with pytest.raises(ValueError, match="start"):
        operating_report([archive], start="next tuesday")


def test_the_same_archive_given_twice_counts_once(archive):
    rep = operating_report([archive, archive.parent])  # the file and its run folder
    assert len(rep["archives"]) == 1 and rep["totals"]["warnings"]["count"] == 3


def test_alarm_episodes_merge_rules_of_one_sensor():
    import pandas as pd

    from citytwin.viewer.operating_report import alarm_episodes

    alarms = pd.DataFrame(
        [(1, 10.0, "s1", "level", "gas_plume", 0, 2), (2, 10.0, "s1", "rate", "gas_plume", 0, 1),
         (3, 50.0, "s1", "rate", "gas_plume", 1, 0), (4, 90.0, "s1", "level", "gas_plume", 2, 0),
         (5, 95.0, "s1", "level", "gas_plume", 0, 1), (6, 20.0, "s2", "level", "gas_plume", 0, 1)],
        columns=["seq", "time_s", "sensor_id", "rule_id", "hazard", "from_level", "to_level"])
    assert alarm_episodes(alarms) == [("s1", "gas_plume", 10.0, 90.0),
                                      ("s2", "gas_plume", 20.0, float("inf")),
                                      ("s1", "gas_plume", 95.0, float("inf"))]


def test_each_finding_is_cleared_by_the_next_all_clear_of_its_check_and_subject():
    import pandas as pd

    from citytwin.viewer.operating_report import _all_clears

    checks = pd.DataFrame(
        [(1, 10.0, "offline", "s1", "raised"), (2, 15.0, "offline", "s2", "raised"),
         (3, 20.0, "offline", "s1", "raised"), (4, 30.0, "silence", "s1", "cleared"),
         (5, 40.0, "offline", "s1", "cleared"), (6, 50.0, "offline", "s1", "raised"),
         (7, 60.0, "offline", "s1", "cleared"), (8, 70.0, "offline", "s1", "raised")],
        columns=["seq", "time_s", "check_id", "subject", "status"])
    # rows by index: s1's findings until the all-clear at 40 s, again until 60 s, then open;
    # s2 never cleared; a silence all-clear does not clear an offline finding
    assert _all_clears(checks.iloc[::-1]) == {0: 40.0, 2: 40.0, 5: 60.0, 7: None, 1: None}


def test_a_real_run_archive(tmp_path):
    """The kernel's own archive: every warning gets a dossier, the report counts its rows."""
    import sqlite3

    import yaml

    from citytwin.scenarios.run.kernel import simulate
    from citytwin.scenarios.run.prepare import prepare
    from citytwin.scenarios.spec.scenario import load_scenario
    from citytwin.viewer.dossier import build_dossiers
    from tests.scenarios.conftest import short_scenario

    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(short_scenario()))
    result = simulate(prepare(load_scenario(path), source=str(path), base_dir=tmp_path),
                      tmp_path / "run")
    with sqlite3.connect(result.archive_path) as db:
        n_warnings = db.execute("SELECT COUNT(DISTINCT warning_id) FROM warnings").fetchone()[0]
        n_pushes, n_delivered = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(delivered), 0) FROM pushes").fetchone()
    assert n_warnings >= 1
    paths = build_dossiers(result.archive_path, tmp_path / "dossiers")
    assert len(paths) == 2 * n_warnings
    first = json.loads(paths[0].read_text())
    assert first["observations"]["rows"] and first["warning_events"]
    assert first["summary"]["first_exceedance_wall"].endswith("+08:00")
    rep = operating_report([result.run_dir])
    t = rep["totals"]
    assert t["warnings"]["count"] == n_warnings
    assert (t["pushes"]["count"], t["pushes"]["delivered"]) == (n_pushes, n_delivered)
    write_operating_report([result.run_dir], tmp_path / "week.html")
