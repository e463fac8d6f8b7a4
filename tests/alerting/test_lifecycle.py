"""Warning lifecycle: raised → escalated/deescalated/updated → cleared or cancelled;
deduplication; situation updates as the modelled area grows."""

import numpy as np
import pytest
import shapely

from citytwin.alerting import Engine, ObservationBatch

from .conftest import make_inventory, simple_rulebook


def feed(eng, ids, times, values):
    return eng.process(ObservationBatch(np.array(ids, dtype=object), np.array(times, float),
                                        np.array(values, float), "%LEL"))


def test_full_lifecycle_event_sequence():
    eng = Engine(simple_rulebook(), make_inventory(2, spacing_m=100.0))
    events = []
    for t, sid, v in [(0, "S000", 12), (10, "S000", 60), (20, "S001", 60), (30, "S000", 30),
                      (40, "S001", 30), (50, "S000", 0), (60, "S001", 0)]:
        events += [(w.event, w.level_name) for w in feed(eng, [sid], [t], [v]).warnings]
    # S000 dropping to yellow while S001 holds orange changes nothing visible: no event.
    # S000 clearing shrinks the buffer area by more than the update ratio: an update.
    assert events == [("raised", "blue"), ("escalated", "orange"), ("updated", "orange"),
                      ("deescalated", "yellow"), ("updated", "yellow"), ("cleared", "none")]


def test_forty_alarms_make_one_warning():
    inv = make_inventory(40, spacing_m=5.0)
    eng = Engine(simple_rulebook(), inv)
    out = feed(eng, inv["sensor_id"], np.zeros(40), np.full(40, 30.0))
    assert len(out.alarms) == 40
    assert {w.warning_id for w in out.warnings} == {"W-0001"}
    assert len(out.warnings[-1].sensors) == 40


def test_a_repeated_level_does_not_reissue():
    eng = Engine(simple_rulebook(), make_inventory(1))
    feed(eng, ["S000"], [0], [30])
    assert feed(eng, ["S000"], [10], [31]).warnings == []  # same level, same members


def test_cancel_withdraws_and_members_are_ignored_until_they_clear():
    eng = Engine(simple_rulebook(), make_inventory(1))
    w = feed(eng, ["S000"], [0], [30]).warnings[0]
    cancelled = eng.cancel(w.warning_id, 5.0, "false alarm: calibration gas")
    assert (cancelled.event, cancelled.reason) == ("cancelled",
                                                   "cancelled: false alarm: calibration gas")
    assert feed(eng, ["S000"], [10], [60]).warnings == []   # still alarming: suppressed
    feed(eng, ["S000"], [20], [0])                          # clears: suppression ends
    again = feed(eng, ["S000"], [30], [30]).warnings[0]
    assert again.event == "raised" and again.warning_id == "W-0002"
    with pytest.raises(KeyError, match="not an active warning"):
        eng.cancel("W-0001", 40.0, "twice")


def test_situation_update_follows_a_growing_model_area():
    area = {"geom": shapely.box(0, 0, 10, 10)}
    eng = Engine(simple_rulebook(), make_inventory(1),
                 area_provider=lambda hz, q, thr, t: area["geom"])
    w = feed(eng, ["S000"], [0], [30]).warnings[0]
    assert w.area_source == "model" and w.area_m2 == 100.0
    area["geom"] = shapely.box(0, 0, 10, 11)   # +10 %: below the 25 % update ratio
    assert eng.refresh(60.0) == []
    area["geom"] = shapely.box(0, 0, 20, 20)   # ×4: an update
    (u,) = eng.refresh(120.0)
    assert (u.event, u.area_m2, u.time_s) == ("updated", 400.0, 120.0)
