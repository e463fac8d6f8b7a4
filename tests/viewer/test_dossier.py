"""Event dossiers from a hand-built run archive with three incidents.

The fixture archive (``make_archive``, also used by the operating-report tests) holds:
- W-0001, a gas leak by Central Plaza: raised yellow → escalated orange → escalated red →
  updated (largest area) → cleared; work order WO-0001 created → assigned (after exactly
  1 800 s) → started (in_progress) → resolved → reviewed → closed (8 700 s after creation).
  Its first sensor alarms under two rules at once (level and rate of rise).
- W-0002, a blue leak nobody handled: still open at the end of the run; WO-0002 fires
  overdue_unassigned after 1 h, then escalated.
- W-0003, a faulty detector: raised yellow, cancelled as a false alarm; WO-0003 assigned
  after 1 800 s and closed after 3 090 s. The same detector alarms once more later with no
  warning at all.
- 8 pushes (7 delivered), 6 CAP messages, 4 self-check rows, 7 sensors read every 10 s.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import shapely

from citytwin.scenarios.run.archive import SCHEMA
from citytwin.scenarios.run.archive_reader import load_run, wall_clock
from citytwin.twin.errors import InputError
from citytwin.viewer.dossier import build_dossiers, stats

START = "2026-06-01T05:30:00+08:00"
DURATION_S = 14400.0
LEVELS = ["blue", "yellow", "orange", "red"]
RECIPIENTS = {"blue": ["asset_owner"], "yellow": ["asset_owner", "sector_department"],
              "orange": ["asset_owner", "sector_department", "district_government"],
              "red": ["asset_owner", "sector_department", "district_government",
                      "city_emergency_command", "public"]}
RULEBOOK = {"name": "citytwin-default", "version": 1, "levels": LEVELS,
            "recipients": RECIPIENTS,
            "rules": [{"id": "ch4_confined_space", "hazard": "gas_plume",
                       "quantity": "ch4_lel_pct", "unit": "%LEL",
                       "sensor_types": ["methane_detector"],
                       "thresholds": {"blue": 10, "yellow": 25, "orange": 50, "red": 80},
                       "hysteresis": 5, "debounce": {"n": 2, "m": 3}, "kind": "threshold"},
                      {"id": "ch4_rate_of_rise", "hazard": "gas_plume", "kind": "rate_of_rise",
                       "quantity": "ch4_lel_pct", "unit": "%LEL/min",
                       "sensor_types": ["methane_detector"],
                       "thresholds": {"yellow": 10, "orange": 30}}]}
S1, S2, S3 = "ch4-wells:GN00046", "ch4-wells:GN00047", "ch4-wells:GN00048"
S4, S5, S6, S7 = ("ch4-wells:GN00101", "ch4-wells:GN00120", "ch4-wells:GN00077",
                  "ch4-wells:GN00010")
SENSORS = {S1: (400852.0, 3400402.0), S2: (400902.0, 3400402.0), S3: (400952.0, 3400402.0),
           S4: (401002.0, 3400802.0), S5: (400702.0, 3400352.0), S6: (400602.0, 3400602.0),
           S7: (400502.0, 3400152.0)}
# (t_s, %LEL) knots of each sensor's reading, linear in between.
PROFILES = {
    S1: [(0, 1), (300, 1), (310, 12), (320, 30), (400, 55), (600, 85), (900, 95), (1800, 60),
         (1900, 40), (2400, 3), (DURATION_S, 1)],
    S2: [(0, 0.5), (370, 0.5), (380, 11), (390, 12), (500, 52), (1500, 60), (2300, 4),
         (DURATION_S, 0.5)],
    S3: [(0, 0.8), (570, 0.8), (580, 11), (590, 28), (1200, 45), (2200, 3), (DURATION_S, 0.8)],
    S4: [(0, 0.6), (3990, 0.6), (4000, 11), (4010, 14), (6000, 18), (DURATION_S, 19)],
    S5: [(0, 0.3), (8980, 0.3), (8990, 26), (9000, 31), (9010, 31), (9090, 2), (9100, 0.5),
         (12980, 0.3), (12990, 11), (13000, 11), (13010, 10.5), (13020, 1), (DURATION_S, 0.3)],
    S6: [(0, 1.0), (DURATION_S, 1.0)],
    S7: [(0, 0.4), (DURATION_S, 0.4)],
}
S6_OFFLINE_S = (3000.0, 6600.0)


def _box(x0, y0, x1, y1) -> shapely.Geometry:
    return shapely.box(x0, y0, x1, y1)


def _warning_rows() -> list[tuple]:
    p = shapely.Point(*SENSORS[S4]).buffer(150.0, quad_segs=4)
    empty = shapely.Polygon()
    plaza = ["P-plaza"]
    both = ["P-plaza", "P-school-1"]
    #  time, known, id, event, level, basis, sensors, fe, area, source, targets, pop, loop,
    #  lead, reason
    spec = [
        (320, 325, "W-0001", "raised", 2, [S1], 310, _box(400832, 3400382, 400872, 3400422),
         "buffer", plaza, 0, "middle", "sector_department",
         f"{S1} at 30 %LEL >= yellow 25 %LEL in 2 of 3 readings"),
        (400, 405, "W-0001", "escalated", 3, [S1, S2], 310,
         _box(400822, 3400382, 400932, 3400422), "model", plaza, 120, "middle",
         "sector_department", f"{S1} at 55 %LEL >= orange 50 %LEL"),
        (600, 605, "W-0001", "escalated", 4, [S1, S2, S3], 310,
         _box(400822, 3400372, 400982, 3400432), "model", both, 315, "big",
         "city_emergency_command", f"{S1} at 85 %LEL >= red 80 %LEL; school inside the area"),
        (900, 905, "W-0001", "updated", 4, [S1, S2, S3], 310,
         _box(400812, 3400352, 401002, 3400452), "model", both, 420, "big",
         "city_emergency_command", "area grew to 1.90 ha (model footprint)"),
        (2400, 2405, "W-0001", "cleared", 0, [], 310, empty, "model", [], 0, "big",
         "city_emergency_command", "all sensors below threshold less hysteresis"),
        (4010, 4015, "W-0002", "raised", 1, [S4], 4000, p, "buffer", [], 40, "small",
         "asset_owner", f"{S4} at 14 %LEL >= blue 10 %LEL in 2 of 3 readings"),
        (6000, 6005, "W-0002", "updated", 1, [S4], 4000, p, "buffer", [], 40, "small",
         "asset_owner", f"{S4} still above blue 10 %LEL (18 %LEL)"),
        (9000, 9005, "W-0003", "raised", 2, [S5], 8990, _box(400682, 3400332, 400722, 3400372),
         "buffer", [], 25, "middle", "sector_department",
         f"{S5} at 31 %LEL >= yellow 25 %LEL in 2 of 3 readings"),
        (11460, 11460, "W-0003", "cancelled", 0, [S5], 8990, empty, "buffer", [], 0, "middle",
         "sector_department", "withdrawn: on-site check found a faulty detector (false alarm)"),
    ]
    rows = []
    for seq, (t, k, wid, ev, lv, sens, fe, geom, src, tg, pop, loop, lead, why) in enumerate(
            spec, start=1):
        name = "none" if lv == 0 else LEVELS[lv - 1]
        rec = RECIPIENTS[LEVELS[max(lv, 1) - 1]] if ev != "cleared" else RECIPIENTS["red"]
        rows.append((seq, float(t), float(k), wid, ev, "gas_plume", lv, name, "sensors",
                     "Observed", json.dumps(sens), float(fe), geom.wkt, float(geom.area), src,
                     json.dumps(tg), pop, loop, lead, json.dumps(rec), why))
    return rows


RATE = "ch4_rate_of_rise"
ALARMS = [  # time, sensor, from, to, value, first exceedance[, rule]
    (320, S1, 0, 2, 30, 310), (320, S1, 0, 2, 18, 310, RATE), (500, S1, 2, 0, 2, 310, RATE),
    (400, S1, 2, 3, 55, 310), (600, S1, 3, 4, 85, 310),
    (1900, S1, 4, 2, 40, 310), (2400, S1, 2, 0, 3, 310),
    (390, S2, 0, 1, 12, 380), (500, S2, 1, 3, 52, 380), (2300, S2, 3, 0, 4, 380),
    (590, S3, 0, 2, 28, 580), (2200, S3, 2, 0, 3, 580),
    (4010, S4, 0, 1, 14, 4000),
    (9000, S5, 0, 2, 31, 8990), (9100, S5, 2, 0, 0.5, 8990),
    (13000, S5, 0, 1, 11, 12990), (13020, S5, 1, 0, 1, 12990),
]
PUSHES = [  # time, warning, warning_seq, unit, channel, delivered, received
    (325, "W-0001", 1, "asset_owner", "sms", 1, 328),
    (325, "W-0001", 1, "sector_department", "app", 1, 326),
    (605, "W-0001", 3, "district_government", "app", 1, 607),
    (605, "W-0001", 3, "city_emergency_command", "app", 1, 606),
    (605, "W-0001", 3, "public", "cell_broadcast", 1, 640),
    (2405, "W-0001", 5, "public", "cell_broadcast", 1, 2420),
    (4015, "W-0002", 6, "asset_owner", "sms", 0, None),
    (9005, "W-0003", 8, "sector_department", "app", 1, 9007),
]
WORK_ORDERS = [  # id, warning, created, level, lead unit, actions, deadline
    ("WO-0001", "W-0001", 330, "yellow", "sector_department",
     ["close the upstream valve", "cordon 50 m", "ventilate the wells"], 330 + 7200),
    ("WO-0002", "W-0002", 4020, "blue", "asset_owner", ["inspect valve well GN00101"],
     4020 + 86400),
    ("WO-0003", "W-0003", 9010, "yellow", "sector_department", ["check detector GN00120"],
     9010 + 7200),
]
WORK_ORDER_EVENTS = [  # time, order, event, state, actor, note
    (330, "WO-0001", "created", "created", "platform", "created from W-0001 (yellow)"),
    (2130, "WO-0001", "assigned", "assigned", "dispatcher:li", "to gas company crew 3"),
    (2700, "WO-0001", "started", "in_progress", "crew3:wang",
     "on site; upstream valve V-12 closed, 50 m cordon, wells ventilated"),
    (4020, "WO-0002", "created", "created", "platform", "created from W-0002 (blue)"),
    (5400, "WO-0001", "resolved", "resolved", "crew3:wang",
     "leak clamped; readings below 1 %LEL for 30 min; photos attached"),
    (7620, "WO-0002", "overdue_unassigned", "created", "rule:unassigned_1h",
     "no handler assigned 1 h after creation"),
    (9000, "WO-0001", "reviewed", "reviewed", "sector:zhao", "records and photos reviewed"),
    (9010, "WO-0003", "created", "created", "platform", "created from W-0003 (yellow)"),
    (9030, "WO-0001", "closed", "closed", "sector:zhao", "closed after review"),
    (10810, "WO-0003", "assigned", "assigned", "dispatcher:li", "to maintenance crew 1"),
    (11220, "WO-0002", "escalated", "created", "rule:escalate_unassigned",
     "escalated to sector_department (middle loop)"),
    (11400, "WO-0003", "started", "in_progress", "crew1:chen",
     "on site: no odour; detector reads 30 %LEL in clean air, calibration test fails"),
    (11500, "WO-0003", "resolved", "resolved", "crew1:chen", "detector replaced"),
    (12000, "WO-0003", "reviewed", "reviewed", "sector:zhao", "false alarm confirmed"),
    (12100, "WO-0003", "closed", "closed", "sector:zhao", "closed after review"),
]
CAPS = [  # time, warning, number, type
    (325, "W-0001", 1, "Alert"), (605, "W-0001", 3, "Update"), (2405, "W-0001", 5, "Update"),
    (4015, "W-0002", 6, "Alert"), (9005, "W-0003", 8, "Alert"), (11460, "W-0003", 9, "Cancel"),
]
SELF_CHECKS = [  # time, check, subject, status, value, detail
    (3300, "sensor_offline", S6, "raised", 300.0, "no reading for 300 s (interval 10 s)"),
    (6600, "sensor_offline", S6, "cleared", None, "readings resumed"),
    (13500, "false_alarm_rate", S5, "raised", 1.0, "2 of 2 alarm episodes not confirmed"),
    (14400, "sync_rate", "district-platform", "raised", 0.85,
     "warning data sync rate 85 % < 90 %"),
]


def make_archive(path: Path, *, start: str = START, run_id: str = "fixture-drill-0001",
                 with_incidents: bool = True) -> Path:
    """A schema-v2 run archive with the three incidents above (or none at all)."""
    anchor = datetime.fromisoformat(start)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    manifest = {"schema_version": 2, "run_id": run_id, "seed": 42, "start": start,
                "duration_s": DURATION_S, "status": "completed", "rulebook": RULEBOOK,
                "scenario": {"name": "gas-leak-drill", "mode": "drill",
                             "description": "fixture"},
                "hazards": {"main-strike": {"id": "main-strike", "kind": "gas_plume",
                                            "xy_m": list(SENSORS[S1])}}}
    db.executemany("INSERT INTO manifest VALUES (?, ?)",
                   [(k, json.dumps(v, sort_keys=True)) for k, v in manifest.items()])
    db.executemany("INSERT INTO sensors VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                   [(k, sid, "methane_detector", "ch4_lel_pct", "%LEL", x, y, 0.3,
                     "ch4-wells", "gas", sid.split(":")[1])
                    for k, (sid, (x, y)) in enumerate(SENSORS.items())])
    t = np.arange(0.0, DURATION_S + 1, 10.0)
    rows = []
    for k, sid in enumerate(SENSORS):
        knots = PROFILES[sid] if with_incidents else [(0, 0.5), (DURATION_S, 0.5)]
        v = np.interp(t, [a for a, _ in knots], [b for _, b in knots])
        for ti, vi in zip(t.tolist(), v.tolist(), strict=True):
            offline = sid == S6 and S6_OFFLINE_S[0] <= ti < S6_OFFLINE_S[1]
            rows.append((k, ti, ti + 5.0, None if offline else round(vi, 3),
                         3 if offline else 0, "drill"))
    db.executemany("INSERT INTO observation_rows VALUES (?,?,?,?,?,?)", rows)
    if with_incidents:
        db.executemany(f"INSERT INTO warnings VALUES ({','.join('?' * 21)})", _warning_rows())
        db.executemany("INSERT INTO alarms VALUES (?,?,?,?,?,?,?,?,?,?,?)", [
            (seq, float(t), float(t) + 5, sid, rule[0] if rule else "ch4_confined_space",
             "gas_plume", a, b, float(v), float(fe), "")
            for seq, (t, sid, a, b, v, fe, *rule) in enumerate(sorted(ALARMS), start=1)])
        db.executemany("INSERT INTO pushes VALUES (?,?,?,?,?,?,?,?)",
                       [(i, float(p[0]), *p[1:]) for i, p in enumerate(PUSHES, start=1)])
        db.executemany("INSERT INTO work_orders VALUES (?,?,?,?,?,?,?,?)", [
            (wo, w, float(c), "gas_plume", lv, lead, json.dumps(acts), float(dl))
            for wo, w, c, lv, lead, acts, dl in WORK_ORDERS])
        db.executemany("INSERT INTO work_order_events VALUES (?,?,?,?,?,?,?)",
                       [(i, float(e[0]), *e[1:]) for i, e in enumerate(WORK_ORDER_EVENTS, 1)])
        caps = []
        for i, (t, wid, n, kind) in enumerate(CAPS, start=1):
            ident = f"urn:citytwin:{run_id}:{wid}:{n}"
            sent = (anchor + timedelta(seconds=t)).isoformat()
            first = f"citytwin,urn:citytwin:{run_id}:{wid}:1,{anchor.isoformat()}"
            refs = "" if kind == "Alert" else first  # CAP <references>: space-separated
            caps.append((i, float(t), ident, wid, kind, sent, "Exercise", "Public",
                         refs, f"cap/{wid}-{n:03d}.xml",
                         hashlib.sha256(ident.encode()).hexdigest()))
        db.executemany("INSERT INTO cap_messages VALUES (?,?,?,?,?,?,?,?,?,?,?)", caps)
        db.executemany("INSERT INTO timeline VALUES (?,?,?,?,?)", [
            (1, 300.0, "hazard_start", "main-strike: gas_plume release starts", "{}"),
            (2, 325.0, "warning_raised", "W-0001 raised: YELLOW gas_plume",
             json.dumps({"level": "yellow", "warning_id": "W-0001"})),
            (3, 2405.0, "warning_cleared", "W-0001 cleared",
             json.dumps({"level": "none", "warning_id": "W-0001"}))])
    db.executemany("INSERT INTO self_checks VALUES (?,?,?,?,?,?,?)",
                   [(i, float(c[0]), *c[1:]) for i, c in enumerate(SELF_CHECKS, start=1)])
    db.commit()
    db.close()
    return path


@pytest.fixture
def archive(tmp_path) -> Path:
    return make_archive(tmp_path / "archive.sqlite")


def _load(paths: list[Path], warning_id: str) -> dict:
    path = next(p for p in paths if p.name == f"DOSSIER-{warning_id}.json")
    return json.loads(path.read_text())


def test_one_json_and_one_html_per_warning(archive, tmp_path):
    paths = build_dossiers(archive, tmp_path / "d")
    assert [p.name for p in paths] == [
        "DOSSIER-W-0001.json", "DOSSIER-W-0001.html", "DOSSIER-W-0002.json",
        "DOSSIER-W-0002.html", "DOSSIER-W-0003.json", "DOSSIER-W-0003.html"]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)


def test_summary_of_the_handled_gas_leak(archive, tmp_path):
    d = _load(build_dossiers(archive, tmp_path / "d"), "W-0001")
    s = d["summary"]
    assert s["hazard"] == "gas_plume" and s["basis"] == "sensors"
    assert s["first_exceedance_s"] == 310.0
    assert s["first_exceedance_wall"] == "2026-06-01T05:35:10+08:00"
    assert s["raised_s"] == 325.0 and s["raised_wall"] == "2026-06-01T05:35:25+08:00"
    assert s["time_to_warning_s"] == 15.0
    assert [(x["event"], x["level_name"]) for x in s["levels_over_time"]] == [
        ("raised", "yellow"), ("escalated", "orange"), ("escalated", "red"),
        ("cleared", "none")]
    assert s["max_level"] == 4 and s["max_level_name"] == "red"
    m = s["at_max"]  # the red event with the largest area: the update at 905 s
    assert m["seq"] == 4 and m["area_m2"] == pytest.approx(19000.0)
    assert m["targets"] == ["P-plaza", "P-school-1"] and m["population"] == 420
    assert m["lead_unit"] == "city_emergency_command" and m["loop"] == "big"
    assert s["outcome"] == "cleared" and s["ended_s"] == 2405.0
    assert s["duration_s"] == 2080.0
    assert s["sensors"] == [S1, S2, S3] and s["escalations"] == 2
    assert s["pushes"] == 6 and s["pushes_delivered"] == 6


def test_abnormal_data_window_and_thresholds(archive, tmp_path):
    d = _load(build_dossiers(archive, tmp_path / "d"), "W-0001")
    obs = d["observations"]
    assert obs["from_s"] == 310.0 - 600.0 and obs["to_s"] == 2405.0 + 300.0
    rows = [dict(zip(obs["columns"], r, strict=True)) for r in obs["rows"]]
    assert {r["sensor_id"] for r in rows} == {S1, S2, S3}
    assert min(r["time_s"] for r in rows) == 0.0  # the window starts before the run
    assert max(r["time_s"] for r in rows) == 2700.0
    assert len(rows) == 3 * 271
    peak = max(rows, key=lambda r: r["value"])
    assert peak["sensor_id"] == S1 and peak["value"] == 95.0
    assert peak["time_wall"] == "2026-06-01T05:45:00+08:00"
    assert obs["thresholds"] == [
        {"rule_id": "ch4_confined_space", "kind": "threshold", "quantity": "ch4_lel_pct",
         "unit": "%LEL", "thresholds": {"blue": 10.0, "yellow": 25.0, "orange": 50.0,
                                        "red": 80.0}},
        {"rule_id": RATE, "kind": "rate_of_rise", "quantity": "ch4_lel_pct",
         "unit": "%LEL/min", "thresholds": {"yellow": 10.0, "orange": 30.0}}]
    assert [s["sensor_id"] for s in obs["sensors"]] == [S1, S2, S3]
    assert len(d["alarms"]) == 12
    assert {a["sensor_id"] for a in d["alarms"]} == {S1, S2, S3}


def test_events_pushes_orders_and_cap(archive, tmp_path):
    d = _load(build_dossiers(archive, tmp_path / "d"), "W-0001")
    assert [e["event"] for e in d["warning_events"]] == [
        "raised", "escalated", "escalated", "updated", "cleared"]
    assert d["warning_events"][1]["reason"] == f"{S1} at 55 %LEL >= orange 50 %LEL"
    assert d["warning_events"][0]["sensors"] == [S1]  # JSON columns decoded
    assert d["warning_events"][0]["known_at_wall"] == "2026-06-01T05:35:25+08:00"
    push = d["pushes"][4]
    assert (push["unit"], push["channel"], push["delivered"], push["delay_s"]) == (
        "public", "cell_broadcast", 1, 35.0)
    assert push["warning_event"] == "escalated"
    assert push["received_wall"] == "2026-06-01T05:40:40+08:00"
    (wo,) = d["work_orders"]
    assert [e["event"] for e in wo["events"]] == [
        "created", "assigned", "started", "resolved", "reviewed", "closed"]
    assert wo["time_to_assignment_s"] == 1800.0 and wo["time_to_closure_s"] == 8700.0
    assert wo["state_at_end"] == "closed" and wo["overdue_events"] == []
    assert wo["events"][2]["actor"] == "crew3:wang" and "valve V-12" in wo["events"][2]["note"]
    assert wo["events"][5]["time_wall"] == "2026-06-01T08:00:30+08:00"
    assert wo["actions"][0] == "close the upstream valve"
    assert [(c["msg_type"], c["file"]) for c in d["cap_messages"]] == [
        ("Alert", "cap/W-0001-001.xml"), ("Update", "cap/W-0001-003.xml"),
        ("Update", "cap/W-0001-005.xml")]
    assert [t["kind"] for t in d["timeline"]] == ["warning_raised", "warning_cleared"]


def test_unhandled_and_cancelled_incidents(archive, tmp_path):
    paths = build_dossiers(archive, tmp_path / "d")
    d2 = _load(paths, "W-0002")
    assert d2["summary"]["outcome"] == "open" and d2["summary"]["ended_s"] is None
    assert d2["summary"]["duration_s"] is None
    assert d2["summary"]["open_at_run_end_s"] == DURATION_S - 4015.0
    assert d2["observations"]["to_s"] == DURATION_S + 300.0
    (wo,) = d2["work_orders"]
    assert [e["event"] for e in wo["events"]] == ["created", "overdue_unassigned", "escalated"]
    assert wo["overdue_events"] == ["overdue_unassigned"] and wo["escalations"] == 1
    assert wo["time_to_assignment_s"] is None and wo["state_at_end"] == "created"
    assert d2["pushes"][0]["delivered"] == 0 and d2["pushes"][0]["delay_s"] is None
    d3 = _load(paths, "W-0003")
    s = d3["summary"]
    assert s["outcome"] == "cancelled" and "false alarm" in s["end_reason"]
    assert s["duration_s"] == 11460.0 - 9005.0 and s["max_level_name"] == "yellow"
    # The later, unrelated spike of the same detector is outside this incident's window.
    assert [a["time_s"] for a in d3["alarms"]] == [9000.0, 9100.0]
    assert [c["msg_type"] for c in d3["cap_messages"]] == ["Alert", "Cancel"]
    assert d3["self_checks"] == []


def test_json_is_canonical_and_deterministic(archive, tmp_path):
    a = build_dossiers(archive, tmp_path / "a")
    b = build_dossiers(archive, tmp_path / "b")
    for pa, pb in zip(a, b, strict=True):
        if pa.suffix == ".json":
            assert pa.read_bytes() == pb.read_bytes()
            data = json.loads(pa.read_text())
            assert pa.read_text() == json.dumps(data, sort_keys=True, indent=2,
                                                ensure_ascii=False) + "\n"
            assert "NaN" not in pa.read_text()


def test_html_is_self_contained_with_every_section(archive, tmp_path):
    paths = build_dossiers(archive, tmp_path / "d")
    text = next(p for p in paths if p.name == "DOSSIER-W-0001.html").read_text()
    for h in ("Summary", "Abnormal data", "Alarm changes", "Warning events", "Areas", "Pushes",
              "Work orders and on-site handling", "CAP messages",
              "Platform self-checks on its sensors", "Provenance"):
        assert f"<h2>{h}</h2>" in text, h
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 2
    assert 'name="viewport"' in text and "<script" not in text
    assert "http://" not in text and "https://" not in text
    assert "2026-06-01T05:35:25+08:00" in text and "T+00:05:25" in text
    assert "valve V-12 closed" in text and "cap/W-0001-003.xml" in text
    html2 = next(p for p in paths if p.name == "DOSSIER-W-0002.html").read_text()
    assert "still open at the end of the run" in html2 and "NO" in html2


def test_map_over_the_twin(tmp_path):
    from citytwin.twin.synthetic import synthetic_city

    archive = make_archive(tmp_path / "archive.sqlite")
    paths = build_dossiers(archive, tmp_path / "d", twin=synthetic_city(7, "small"))
    text = next(p for p in paths if p.name == "DOSSIER-W-0001.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 2


def test_wall_clock_with_a_plus_eight_anchor(tmp_path):
    anchor = datetime.fromisoformat("2026-06-07T23:30:00+08:00")
    assert wall_clock(anchor, 0.0) == "2026-06-07T23:30:00+08:00"
    assert wall_clock(anchor, 1800.0) == "2026-06-08T00:00:00+08:00"  # local midnight
    assert wall_clock(anchor, 1800.5) == "2026-06-08T00:00:00.500+08:00"
    assert wall_clock(anchor, None) is None
    archive = make_archive(tmp_path / "a.sqlite", start="2026-06-07T23:30:00+08:00")
    d = _load(build_dossiers(archive, tmp_path / "d"), "W-0002")
    assert d["summary"]["raised_wall"] == "2026-06-08T00:36:55+08:00"
    assert d["times"]["anchor"] == "2026-06-07T23:30:00+08:00"


def test_no_warnings_gives_no_dossiers(tmp_path):
    archive = make_archive(tmp_path / "quiet.sqlite", with_incidents=False)
    assert build_dossiers(archive, tmp_path / "d") == []


def test_p90_is_nearest_rank():
    assert stats([]) == {"n": 0, "median": None, "p90": None, "max": None}
    assert stats([1800.0]) == {"n": 1, "median": 1800.0, "p90": 1800.0, "max": 1800.0}
    assert stats(list(range(1, 11)))["p90"] == 9.0
    assert stats([8700.0, 3090.0])["p90"] == 8700.0


@pytest.mark.parametrize("case", ["missing", "text", "empty_db", "old_schema", "bad_start",
                                  "naive_start"])
def test_not_an_archive_is_refused_naming_the_file(tmp_path, case):
    path = tmp_path / f"{case}.sqlite"
    if case == "text":
        path.write_text("this is not a database, just some words\n" * 50)
    elif case == "empty_db":
        sqlite3.connect(path).close()
        path.write_bytes(b"")
    elif case == "old_schema":
        db = sqlite3.connect(path)
        db.executescript("CREATE TABLE manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                         "CREATE TABLE warnings (seq INTEGER);")
        db.execute("INSERT INTO manifest VALUES ('schema_version', '1')")
        db.commit()
        db.close()
    elif case in ("bad_start", "naive_start"):
        make_archive(path)
        db = sqlite3.connect(path)
        value = "yesterday" if case == "bad_start" else "2026-06-01T05:30:00"
        db.execute("UPDATE manifest SET value = ? WHERE key = 'start'", (json.dumps(value),))
        db.commit()
        db.close()
    with pytest.raises(InputError) as err:
        build_dossiers(path, tmp_path / "out")
    assert isinstance(err.value, ValueError)
    assert str(path) in str(err.value)
    reason = {"missing": "no such file", "text": "not a readable SQLite",
              "empty_db": "no manifest table", "old_schema": "schema version 1",
              "bad_start": "not an ISO 8601", "naive_start": "no UTC offset"}[case]
    assert reason in str(err.value)
    if case in ("bad_start", "naive_start"):
        assert err.value.field == "manifest.start"


def test_run_folder_is_accepted(archive):
    run = load_run(archive.parent)
    assert run.path == archive and run.run_id == "fixture-drill-0001"


def test_archive_with_warnings_only(tmp_path):
    """While the kernel does not yet write pushes, orders, CAP or self-checks: still a dossier."""
    archive = make_archive(tmp_path / "archive.sqlite")
    db = sqlite3.connect(archive)
    for table in ("pushes", "work_orders", "work_order_events", "cap_messages", "self_checks",
                  "timeline"):
        db.execute(f"DELETE FROM {table}")
    db.commit()
    db.close()
    paths = build_dossiers(archive, tmp_path / "d")
    d = _load(paths, "W-0001")
    assert d["pushes"] == [] and d["work_orders"] == [] and d["cap_messages"] == []
    assert d["summary"]["pushes"] == 0 and d["summary"]["max_level_name"] == "red"
    text = next(p for p in paths if p.name == "DOSSIER-W-0001.html").read_text()
    assert "No work order was created." in text and "No pushes were recorded." in text


def test_a_warning_raised_again_after_its_all_clear_is_open(tmp_path):
    archive = make_archive(tmp_path / "archive.sqlite")
    db = sqlite3.connect(archive)
    row = db.execute("SELECT * FROM warnings WHERE seq = 4").fetchone()
    db.execute(f"INSERT INTO warnings VALUES ({','.join('?' * 21)})",
               (10, 3000.0, 3005.0, *row[3:4], "raised", *row[5:]))
    db.commit()
    db.close()
    s = _load(build_dossiers(archive, tmp_path / "d"), "W-0001")["summary"]
    assert s["outcome"] == "open" and s["duration_s"] is None
    assert [x["event"] for x in s["levels_over_time"]][-2:] == ["cleared", "raised"]


def test_pushes_none_delivered(tmp_path):
    from citytwin.viewer.operating_report import operating_report

    archive = make_archive(tmp_path / "archive.sqlite")
    db = sqlite3.connect(archive)
    db.execute("UPDATE pushes SET delivered = 0, received_s = NULL")
    db.commit()
    db.close()
    d = _load(build_dossiers(archive, tmp_path / "d"), "W-0001")
    assert all(p["delay_s"] is None and p["delivered"] == 0 for p in d["pushes"])
    p = operating_report([archive])["totals"]["pushes"]
    assert (p["delivered"], p["rate"], p["delay_s"]["n"]) == (0, 0.0, 0)


def test_reports_on_an_aborted_or_interrupted_run_say_so_first(archive, tmp_path):
    """The dossier and the run report of a run that did not complete open with that fact
    (issue 11 item 5); a completed run has no banner."""
    from citytwin.viewer.report import write_report

    def pages(tag: str) -> tuple[str, str]:
        dossier = build_dossiers(archive, tmp_path / f"d-{tag}")
        html = next(p for p in dossier if p.suffix == ".html").read_text()
        report = write_report(archive, None, tmp_path / f"r-{tag}.html").read_text()
        return html, report

    for html in pages("done"):
        assert 'class="run-status"' not in html
    with sqlite3.connect(archive) as db:
        db.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?)",
                       [("status", '"aborted"'), ("abort_reason", '"RuntimeError: boom"'),
                        ("aborted_at_s", "1800.0")])
    for html in pages("aborted"):
        banner = html.index("RUN ABORTED at T+00:30:00: RuntimeError: boom")
        assert html.index("</h1>") < banner < html.index("<h2")
    with sqlite3.connect(archive) as db:
        db.execute("INSERT OR REPLACE INTO manifest VALUES ('status', '\"running\"')")
    for html in pages("running"):
        assert "RUN INCOMPLETE" in html
    assert json.loads(next(p for p in build_dossiers(archive, tmp_path / "dj")
                           if p.suffix == ".json").read_text())["run"]["status_note"]
