"""Work orders: states, who/when, and each overdue rule on the simulated clock."""

import dataclasses

import pytest

from citytwin.alerting.events import WarningEvent
from citytwin.alerting.routing import load_routing
from citytwin.alerting.workorders import WorkOrderDesk, WorkOrderPolicy

LEVELS = ["blue", "yellow", "orange", "red"]
HOUR, DAY = 3600.0, 86400.0


def warning(event="raised", level=2, t=100.0, lead="gas_company", wid="W-0001"):
    return WarningEvent(
        time_s=t - 5, known_at_s=t, warning_id=wid, event=event, hazard="gas_plume",
        level=level, level_name=LEVELS[level - 1] if level else "none", basis="sensors",
        certainty="Observed", sensors=("S1",), first_exceedance_s=t - 20, area_wkt="",
        area_m2=0.0, area_source="buffer", targets=(), population=0, loop="small",
        lead_unit=lead, recipients=(lead,), reason="")


@pytest.fixture
def desk():
    return WorkOrderDesk(WorkOrderPolicy(), load_routing(), LEVELS)


def test_created_from_a_warning_with_lead_deadline_and_actions(desk):
    (e,) = desk.on_warning(warning(level=2, t=100.0))
    order = desk.orders["WO-W-0001"]
    assert (e.event, e.state, e.time_s, e.actor) == ("created", "created", 100.0, "platform")
    assert order.lead_unit == "gas_company" and order.deadline_s == 100.0 + DAY
    assert order.actions  # default actions
    assert desk.on_warning(warning(event="updated", t=200.0)) == []  # one order per warning


def test_full_handling_path_records_who_and_when(desk):
    desk.on_warning(warning())
    steps = [("assign", "gas_company", 700.0), ("start", "crew-7", 1500.0),
             ("resolve", "crew-7", 4000.0), ("review", "gas_department", 5000.0),
             ("close", "gas_department", 5100.0)]
    for action, actor, t in steps:
        desk.act(t, "WO-W-0001", action, actor, note=f"{action} done")
    history = [(e.event, e.state, e.actor, e.time_s) for e in desk.orders["WO-W-0001"].history]
    assert history == [("created", "created", "platform", 100.0),
                       ("assigned", "assigned", "gas_company", 700.0),
                       ("started", "in_progress", "crew-7", 1500.0),
                       ("resolved", "resolved", "crew-7", 4000.0),
                       ("reviewed", "reviewed", "gas_department", 5000.0),
                       ("closed", "closed", "gas_department", 5100.0)]
    assert desk.advance_to(10 * DAY) == []  # nothing overdue once closed


def test_failed_review_returns_the_order_to_work(desk):
    desk.on_warning(warning())
    for action in ("assign", "start", "resolve"):
        desk.act(200.0, "WO-W-0001", action, "crew")
    e = desk.act(300.0, "WO-W-0001", "reject", "gas_department", "valve still leaking")
    assert (e.event, e.state) == ("rejected", "in_progress")


def test_invalid_actions_name_the_order_state_and_action(desk):
    desk.on_warning(warning())
    with pytest.raises(ValueError, match="WO-W-0001: cannot close in state 'created'"):
        desk.act(200.0, "WO-W-0001", "close", "x")
    with pytest.raises(ValueError, match="unknown action 'dance'"):
        desk.act(200.0, "WO-W-0001", "dance", "x")
    with pytest.raises(KeyError, match="no work order 'WO-W-9999'"):
        desk.act(200.0, "WO-W-9999", "assign", "x")


def test_unassigned_for_one_hour_is_overdue_and_escalated_exactly_then(desk):
    desk.on_warning(warning(t=100.0))
    assert desk.next_due_s() == 100.0 + HOUR
    assert desk.advance_to(100.0 + HOUR - 0.001) == []
    events = desk.advance_to(100.0 + HOUR)
    assert [(e.event, e.time_s) for e in events] == [("overdue_unassigned", 3700.0),
                                                     ("escalated", 3700.0)]
    assert events[1].note == "escalated to gas_department"


def test_assigned_in_time_is_not_overdue(desk):
    desk.on_warning(warning(t=100.0))
    desk.act(3000.0, "WO-W-0001", "assign", "gas_company")
    assert desk.advance_to(100.0 + HOUR + 1) == []


def test_two_days_past_deadline_escalates_unless_done(desk):
    desk.on_warning(warning(level=2, t=0.0))           # yellow: deadline 1 day
    desk.act(60.0, "WO-W-0001", "assign", "gas_company")
    assert desk.advance_to(DAY + 2 * DAY - 1) == []
    events = desk.advance_to(3 * DAY)
    assert [e.event for e in events] == ["overdue_deadline", "escalated"]
    # a reviewed order past its deadline is not chased
    desk2 = WorkOrderDesk(WorkOrderPolicy(), load_routing(), LEVELS)
    desk2.on_warning(warning(level=2, t=0.0))
    for a in ("assign", "start", "resolve", "review"):
        desk2.act(100.0, "WO-W-0001", a, "x")
    assert [e.event for e in desk2.advance_to(10 * DAY)] == []


def test_escalated_warning_brings_the_deadline_forward(desk):
    desk.on_warning(warning(level=1, t=0.0))           # blue: 3 days
    (e,) = desk.on_warning(dataclasses.replace(warning(level=4, t=600.0), event="escalated"))
    assert e.event == "level_changed" and desk.orders["WO-W-0001"].deadline_s == 7200.0
    desk.act(700.0, "WO-W-0001", "assign", "gas_company")
    events = desk.advance_to(7200.0 + 2 * DAY)
    assert [e.event for e in events] == ["overdue_deadline", "escalated"]
    # the timer of the original 3-day deadline does not escalate it a second time
    assert desk.advance_to(10 * DAY) == []


def test_cancelled_warning_closes_its_order(desk):
    desk.on_warning(warning())
    (e,) = desk.on_warning(warning(event="cancelled", level=0, t=500.0))
    assert (e.event, e.state) == ("closed", "closed")
    assert desk.advance_to(10 * DAY) == []


def test_big_loop_order_is_led_by_the_sector_department(desk):
    desk.on_warning(warning(level=4, lead="city_emergency_command"))
    assert desk.orders["WO-W-0001"].lead_unit == "gas_department"


def test_clock_cannot_go_back(desk):
    desk.advance_to(100.0)
    with pytest.raises(ValueError, match="cannot go back from 100 s to 50 s"):
        desk.advance_to(50.0)
