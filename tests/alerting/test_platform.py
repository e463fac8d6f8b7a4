"""The closed loop: pushes, work orders, CAP and self-checks around the engine — and the same
archive whether observations arrive one at a time or in batches, disorder included."""

import hashlib
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citytwin.alerting import Engine, Observation, ObservationBatch
from citytwin.alerting.cap import CapContext
from citytwin.alerting.platform import OperationsPolicy, Platform, load_operations
from citytwin.scenarios.run.archive import Archive
from citytwin.scenarios.run.archive_reader import content_digest, read_table

from .conftest import HAZARD_INFO, make_inventory, simple_rulebook

ANCHOR = datetime(2026, 6, 1, 5, 30, tzinfo=timezone(timedelta(hours=8)))


def make_platform(n=3, spacing_m=100.0, mode="what-if", policy=None, on_disorder="reject",
                  seed=1):
    inv = make_inventory(n, spacing_m)
    inv["interval_s"] = 10.0
    engine = Engine(simple_rulebook(), inv, on_disorder=on_disorder)
    cap = CapContext(sender="citytwin@test", mode=mode, anchor=ANCHOR, crs="EPSG:32650",
                     run_id="t", hazards=HAZARD_INFO)
    return Platform(engine, inv, policy or load_operations(),
                    rng=np.random.default_rng(seed), cap=cap)


def feed(p, ids, times, values):
    return p.ingest(ObservationBatch(np.array(ids, dtype=object), np.array(times, float),
                                     np.array(values, float), "%LEL"))


def test_each_warning_event_is_pushed_to_every_recipient_channel_and_downstream():
    p = make_platform()
    out = feed(p, ["S000"], [0], [90])                  # red: big loop
    (w,) = out.warnings
    units = [(x.unit, x.channel) for x in out.pushes]
    expected = [(u, c) for u in w.recipients for c in p.routing.units[u].channels]
    assert units == expected + [("city_integrated_platform", "sync")]
    assert all(x.warning_index == 0 for x in out.pushes)
    delivered = [x for x in out.pushes if x.delivered]
    assert all(x.received_s >= x.time_s for x in delivered)


def test_owner_only_warnings_make_no_cap_departmental_and_public_ones_do():
    p = make_platform(mode="drill")
    out = feed(p, ["S000"], [0], [12])                  # blue: small loop, owner only
    assert out.cap_messages == [] and out.warnings[0].loop == "small"
    out = feed(p, ["S000"], [10], [60])                 # orange: middle loop, departmental
    (m,) = out.cap_messages
    assert m.msg_type == "Alert" and b"<status>Exercise</status>" in m.xml
    assert b"<scope>Restricted</scope>" in m.xml
    out = feed(p, ["S000"], [20], [90])                 # red: public, an Update
    (m2,) = out.cap_messages
    assert m2.msg_type == "Update" and b"<scope>Public</scope>" in m2.xml
    assert m2.references == (f"citytwin@test,{m.identifier},2026-06-01T05:30:10+08:00",)
    out = feed(p, ["S000"], [30], [0])                  # all-clear references both
    (m3,) = out.cap_messages
    assert m3.msg_type == "Update" and b"AllClear" in m3.xml and len(m3.references) == 2


def test_cancel_action_sends_a_cap_cancel_and_closes_the_order():
    p = make_platform()
    w = feed(p, ["S000"], [0], [90]).warnings[0]
    out = p.act(60.0, "cancel", w.warning_id, "duty officer", "calibration gas")
    assert [x.event for x in out.warnings] == ["cancelled"]
    assert out.cap_messages[0].msg_type == "Cancel"
    assert b"<status>Test</status>" in out.cap_messages[0].xml
    assert [(e.event, e.state) for e in out.work_order_events] == [("closed", "closed")]


def test_nobody_acts_order_escalates_on_the_platform_clock():
    p = make_platform()
    feed(p, ["S000"], [100], [90])
    assert p.next_due_s(100.0) <= 160.0     # situation/self-check cadence
    out = p.advance_to(100.0 + 3600.0)
    events = [e.event for e in out.work_order_events]
    assert events == ["overdue_unassigned", "escalated"]
    # the unit escalated to is told
    assert [x.unit for x in out.pushes if x.warning_index is None] == ["district_government"] * 2


def test_player_action_in_time_prevents_escalation():
    p = make_platform()
    feed(p, ["S000"], [100], [90])
    out = p.act(1000.0, "assign", "WO-W-0001", "gas_company")
    assert out.work_order_events[0].event == "assigned"
    assert p.advance_to(100.0 + 3600.0).work_order_events == []


def test_offline_sensor_self_check_fires_and_clears_through_the_platform():
    p = make_platform(n=2)
    feed(p, ["S000", "S001"], [0, 0], [0, 0])
    for t in range(10, 300, 10):
        feed(p, ["S000"], [t], [0])          # S001 stops reporting after t = 0
    out = p.advance_to(300.0)
    offline = [(c.check_id, c.subject, c.status) for c in out.self_checks]
    assert ("sensor_offline", "S001", "raised") in offline
    assert ("sensor_offline", "S000", "raised") not in offline
    feed(p, ["S001"], [310], [0])
    out = p.advance_to(360.0)
    assert ("sensor_offline", "S001", "cleared") in [(c.check_id, c.subject, c.status)
                                                     for c in out.self_checks]


def test_low_downstream_delivery_raises_the_sync_rate_self_check():
    policy = OperationsPolicy.model_validate(
        {"pushes": {"downstream_delivery_probability": 0.0},
         "self_checks": {"sync_min_events": 2}})
    p = make_platform(policy=policy)
    for t, v in [(0, 12), (10, 30), (20, 60), (30, 90)]:
        feed(p, ["S000"], [t], [v])
    checks = p.advance_to(60.0).self_checks
    assert [(c.check_id, c.status, c.value) for c in checks if c.check_id == "sync_rate"] == [
        ("sync_rate", "raised", 0.0)]


def test_unknown_action_target_is_refused():
    p = make_platform()
    with pytest.raises(KeyError):
        p.act(0.0, "assign", "WO-W-0042", "x")


def archive_of(path, outputs):
    with Archive(path) as archive:
        for out in outputs:
            files = [(m.identifier, hashlib.sha256(m.xml).hexdigest())
                     for m in out.cap_messages]
            archive.write_tick(out=out, cap_files=files)
    return content_digest(path)


@settings(max_examples=25, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40),
                               st.floats(0, 100, allow_nan=False)), min_size=1, max_size=60),
       cuts=st.lists(st.integers(1, 60), max_size=5))
def test_streaming_and_batches_give_identical_archives_with_disorder(tmp_path_factory, data,
                                                                     cuts):
    """Random streams with repeated and earlier times per sensor: those rows are dropped by
    the stated rule (a time not after the sensor's last accepted time) the same way in both
    feeding styles, and the archives are byte-for-byte the same."""
    ids = [f"S{s:03d}" for s, _, _ in data]
    times = [float(t) for _, t, _ in data]
    values = [v for _, _, v in data]
    one = make_platform(n=4, spacing_m=150.0, on_disorder="drop")
    streamed = [one.ingest_one(Observation(i, t, v, "%LEL"))
                for i, t, v in zip(ids, times, values, strict=True)]
    many = make_platform(n=4, spacing_m=150.0, on_disorder="drop")
    edges = sorted({0, len(data), *[c for c in cuts if c < len(data)]})
    batched = [feed(many, ids[a:b], times[a:b], values[a:b])
               for a, b in zip(edges, edges[1:], strict=False)]
    n_dropped = sum(len(o.dropped) for o in streamed)
    assert n_dropped == sum(len(o.dropped) for o in batched)
    expected = 0
    last: dict[str, float] = {}
    for i, t in zip(ids, times, strict=True):
        if t <= last.get(i, -np.inf):
            expected += 1
        else:
            last[i] = t
    assert n_dropped == expected
    folder = tmp_path_factory.mktemp("arch")
    assert archive_of(folder / "a.sqlite", streamed) == archive_of(folder / "b.sqlite", batched)


def test_reject_mode_refuses_disorder_and_leaves_state_untouched(tmp_path):
    p = make_platform()
    feed(p, ["S000"], [10], [30])
    from citytwin.twin.errors import InputError

    with pytest.raises(InputError, match="out-of-order observation for sensor S000"):
        feed(p, ["S001", "S000"], [20, 5], [90, 90])
    # S001's reading in the refused batch was not applied either
    out = feed(p, ["S001"], [20], [0])
    assert out.alarms == []
    path = tmp_path / "a.sqlite"
    archive_of(path, [out])
    assert len(read_table(path, "warnings")) == 0


def test_operations_levels_are_checked_against_the_rulebook():
    from citytwin.alerting.rulebook import Rulebook
    from citytwin.twin.errors import InputError

    three = Rulebook.model_validate({
        "name": "three", "levels": ["yellow", "orange", "red"],
        "rules": [{"id": "ch4", "hazard": "gas_plume", "quantity": "ch4_lel_pct",
                   "unit": "%LEL", "sensor_types": ["methane_detector"],
                   "thresholds": {"yellow": 25, "orange": 50, "red": 80}}]})
    inv = make_inventory(2)
    # the default policy (a 4-level deadline table) serves a 3-level rulebook
    p = Platform(Engine(three, inv), inv, load_operations(), rng=np.random.default_rng(0))
    out = feed(p, ["S000"], [0], [90])
    assert [e.event for e in out.work_order_events] == ["created"]
    bad = load_operations().model_copy(update={"work_orders": load_operations().work_orders
                                               .model_copy(update={"create_from_level": "blue"})})
    with pytest.raises(InputError, match=r"work_orders\.create_from_level.*'blue'"):
        Platform(Engine(three, inv), inv, bad, rng=np.random.default_rng(0))
    typo = load_operations().work_orders.model_copy(
        update={"deadline_s": {"yellow": 1.0, "orang": 2.0, "red": 3.0}})
    with pytest.raises(InputError, match=r"work_orders\.deadline_s\.orange.*no deadline"):
        typo.check_levels(three.levels, "ops.yaml")


def test_a_forecast_only_hazard_is_a_self_checked_subsystem():
    from citytwin.alerting.rulebook import Rulebook

    data = simple_rulebook().model_dump(mode="json")
    data["forecasts"] = [{"id": "flood_fc", "hazard": "dam_break", "quantity": "depth_m",
                          "unit": "m", "thresholds": {"yellow": 0.15, "red": 0.5},
                          "targets": "places"}]
    rb = Rulebook.model_validate(data)
    assert rb.hazards == ["dam_break", "gas_plume"]
    inv = make_inventory(2)
    places = pd.DataFrame({"id": ["ford"], "x_m": [0.0], "y_m": [0.0]})
    p = Platform(Engine(rb, inv, extra_places=places), inv, load_operations(),
                 rng=np.random.default_rng(0))
    out = p.forecast("flood_fc", 60.0, {"ford": (0.6, 600.0)})
    assert [w.hazard for w in out.warnings] == ["dam_break"]     # no unknown-subsystem error


def test_publishing_a_just_raised_warning_updates_its_departmental_message():
    """A player publishes a warning right after it was raised (its last event still
    'raised', its departmental CAP message already out): the public message is an Update
    referencing that message, not a refused second 'Alert'."""
    p = make_platform()
    first = feed(p, ["S000"], [0], [90])  # red: the big loop, a departmental message
    [dept] = first.cap_messages
    out = p.act(5.0, "publish", "W-0001", "press")
    [public] = out.cap_messages
    assert (dept.msg_type, public.msg_type) == ("Alert", "Update")
    assert public.scope == "Public" and dept.identifier.encode() in public.xml
    # headline, description and area name use the hazard's CAP event, not its kind name
    assert b"RED gas leak warning W-0001" in public.xml and b"gas plume" not in public.xml


def test_refused_platform_actions_say_why():
    p = make_platform(policy=None)
    feed(p, ["S000"], [0], [90])
    p.act(10.0, "cancel", "W-0001", "duty")
    with pytest.raises(ValueError, match="cannot publish, the warning is cancelled"):
        p.act(20.0, "publish", "W-0001", "press")
    with pytest.raises(ValueError, match="cannot escalate a closed order"):
        p.act(30.0, "escalate", "WO-W-0001", "duty")       # the cancel closed its order
    inv = make_inventory(1)
    no_cap = Platform(Engine(simple_rulebook(), inv), inv, load_operations(),
                      rng=np.random.default_rng(0))
    no_cap.ingest(ObservationBatch(np.array(["S000"], dtype=object), [0.0], [90.0], "%LEL"))
    with pytest.raises(ValueError, match="CAP publishing is off"):
        no_cap.act(5.0, "publish", "W-0001", "press")
