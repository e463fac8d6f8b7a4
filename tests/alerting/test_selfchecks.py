"""Platform self-checks: sensor offline, silence, sync rate and false-alarm rate."""

import math
import time

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from citytwin.alerting.observation import QUALITY_DROPPED, QUALITY_OFFLINE, QUALITY_OK
from citytwin.alerting.selfchecks import DAY_S, SelfCheckEvent, SelfCheckPolicy, SelfChecks

W = 600.0   # default confirm window


def make(n=1, interval_s=10.0, subsystems=(), start_s=0.0, **policy) -> SelfChecks:
    ids = np.array([f"S{i:05d}" for i in range(n)], dtype=object)
    return SelfChecks(ids, np.full(n, interval_s), list(subsystems), SelfCheckPolicy(**policy),
                      start_s=start_s)


def brief(events):
    return [(e.check_id, e.subject, e.status, e.value) for e in events]


def seen(sc, k, t):
    sc.observed(np.array([k]), np.array([float(t)]))


# ---------------------------------------------------------------- policy and construction

def test_policy_defaults_are_the_operations_rules():
    p = SelfCheckPolicy()
    assert p.silence_days == [1.0, 3.0, 7.0]
    assert p.sync_rate_min == 0.90
    assert (p.offline_after_intervals, p.min_offline_s) == (3.0, 120.0)
    assert (p.false_alarm_rate_max, p.false_alarm_min_alarms, p.confirm_window_s) == (0.5, 3, W)


@pytest.mark.parametrize("bad, field", [
    ({"silence_dayz": [1]}, "silence_dayz"),
    ({"silence_days": [3, 1]}, "silence_days"),
    ({"silence_days": [0, 1]}, "silence_days"),
    ({"sync_rate_min": 1.5}, "sync_rate_min"),
    ({"offline_after_intervals": 0}, "offline_after_intervals"),
    ({"sync_min_events": 0}, "sync_min_events"),
    ({"min_offline_s": float("nan")}, "min_offline_s"),
])
def test_policy_rejects_bad_settings_naming_the_field(bad, field):
    with pytest.raises(ValidationError, match=field):
        SelfCheckPolicy.model_validate(bad)


def test_policy_is_frozen():
    with pytest.raises(ValidationError):
        SelfCheckPolicy().sync_rate_min = 0.5


def test_constructor_rejects_bad_inventory():
    pol = SelfCheckPolicy()
    with pytest.raises(ValueError, match="duplicate sensor id.*'A'"):
        SelfChecks(np.array(["A", "B", "A"]), np.ones(3), [], pol)
    with pytest.raises(ValueError, match="'B'.*interval_s"):
        SelfChecks(np.array(["A", "B"]), np.array([10.0, 0.0]), [], pol)
    with pytest.raises(ValueError, match="shape"):
        SelfChecks(np.array(["A", "B"]), np.ones(3), [], pol)
    with pytest.raises(ValueError, match="subsystems"):
        SelfChecks(np.array(["A"]), np.ones(1), ["gas", "gas"], pol)


# ---------------------------------------------------------------- sensor offline

def test_ten_second_sensor_silent_29_s_is_fine_and_31_s_is_offline():
    sc = make(min_offline_s=0)
    seen(sc, 0, 100)
    assert sc.check(129) == []
    (e,) = sc.check(131)
    assert (e.time_s, e.check_id, e.subject, e.status) == (131, "sensor_offline", "S00000",
                                                          "raised")
    assert e.value == 31
    assert "last at 100 s" in e.detail
    assert sc.check(140) == []                      # reported once, not on every check


def test_offline_starts_exactly_at_three_intervals():
    sc = make(min_offline_s=0)
    assert sc.check(np.nextafter(30.0, 0)) == []
    assert brief(sc.check(30.0)) == [("sensor_offline", "S00000", "raised", 30.0)]


def test_min_offline_s_dominates_for_fast_sensors_and_intervals_for_slow_ones():
    sc = SelfChecks(np.array(["fast", "slow"]), np.array([10.0, 3600.0]), [],
                    SelfCheckPolicy())            # min_offline_s = 120
    assert sc.check(119.9) == []
    assert brief(sc.check(120)) == [("sensor_offline", "fast", "raised", 120.0)]
    assert sc.check(3 * 3600 - 1) == []
    assert brief(sc.check(3 * 3600)) == [("sensor_offline", "slow", "raised", 10800.0)]


def test_a_sensor_never_heard_from_counts_from_start():
    sc = make(min_offline_s=0, start_s=1000.0)
    assert sc.check(1029) == []
    assert brief(sc.check(1030)) == [("sensor_offline", "S00000", "raised", 30.0)]


def test_back_online_clears_once():
    sc = make(min_offline_s=0)
    sc.check(40)
    seen(sc, 0, 45)
    (e,) = sc.check(46)
    assert (e.status, e.value) == ("cleared", 1.0)
    assert "received again at 45 s" in e.detail and "since 0 s" in e.detail
    assert sc.check(50) == []
    assert sc.summary()["offline_sensors"] == []
    assert brief(sc.check(75)) == [("sensor_offline", "S00000", "raised", 30.0)]


def test_observed_batch_in_any_order_keeps_the_latest_reception():
    sc = make(n=2, min_offline_s=0)
    sc.observed(np.array([0, 1, 0, 0]), np.array([50.0, 5.0, 20.0, 10.0]))
    sc.observed(np.array([0]), np.array([1.0]))     # a late, older row does not go back
    assert brief(sc.check(35)) == [("sensor_offline", "S00001", "raised", 30.0)]
    assert sc.check(79) == []
    assert brief(sc.check(80)) == [("sensor_offline", "S00000", "raised", 30.0)]


def test_dropped_and_offline_rows_were_never_received():
    sc = make(n=3, min_offline_s=0)
    sc.observed(np.array([0, 1, 2]), np.array([20.0, 20.0, 20.0]),
                quality=np.array([QUALITY_OK, QUALITY_DROPPED, QUALITY_OFFLINE]))
    assert [e.subject for e in sc.check(30)] == ["S00001", "S00002"]


def test_unknown_sensors_are_refused_by_name():
    sc = make(n=2)
    with pytest.raises(ValueError, match="unknown sensor index.*7"):
        sc.observed(np.array([0, 7]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="'nope'"):
        sc.sensor_index(np.array(["S00001", "nope"]))
    assert sc.sensor_index(["S00001", "S00000"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match="'nope'"):
        sc.alarm("nope", "gas_plume", 0.0)
    with pytest.raises(ValueError, match="finite"):
        sc.observed(np.array([0]), np.array([np.nan]))


def test_check_time_must_not_go_backwards():
    sc = make()
    sc.check(100.0)
    sc.check(100.0)                                 # the same time again is fine
    with pytest.raises(ValueError, match=r"99\.0 s.*100\.0 s"):
        sc.check(99.0)


def test_a_simpy_clock_sleeping_until_next_due_wakes_exactly_when_offline_fires():
    sc = SelfChecks(np.array(["A", "B"]), np.array([10.0, 60.0]), [],
                    SelfCheckPolicy(min_offline_s=0), start_s=0.0)
    sc.observed(np.array([0, 1]), np.array([7.3, 1.0]))
    env = simpy.Environment()
    log = []

    def checker():
        while True:
            log.extend(sc.check(env.now))
            due = sc.next_due_s(env.now)
            if math.isinf(due):
                return
            assert due > env.now
            yield env.timeout(due - env.now)

    env.process(checker())
    env.run(until=1000)
    assert [(e.time_s, e.subject, e.status) for e in log] == [(37.3, "A", "raised"),
                                                             (181.0, "B", "raised")]
    assert sc.next_due_s(1000) == math.inf          # all offline: nothing can change alone


def test_next_due_is_now_when_input_already_received_changes_a_state():
    sc = make(min_offline_s=0)
    sc.check(40)
    assert sc.next_due_s(40) == math.inf
    seen(sc, 0, 40)
    assert sc.next_due_s(40) == 40
    sc.check(40)
    assert sc.next_due_s(40) == 70


def naive_offline(last_seen, interval, policy, t, state):
    """Reference: one sensor at a time, plain Python floats."""
    out = []
    for k in sorted(range(len(last_seen)), key=lambda k: f"S{k:05d}"):
        limit = max(policy.offline_after_intervals * float(interval[k]), policy.min_offline_s)
        want = t >= last_seen[k] + limit
        if want != state[k]:
            out.append(("sensor_offline", f"S{k:05d}", "raised" if want else "cleared",
                        t - last_seen[k]))
            state[k] = want
    return out


def test_vectorised_offline_on_10000_sensors_matches_a_naive_loop():
    rng = np.random.default_rng(20261121)
    n = 10_000
    policy = SelfCheckPolicy(min_offline_s=60.0)
    interval = rng.choice([10.0, 30.0, 60.0, 300.0], size=n)
    ids = np.array([f"S{k:05d}" for k in range(n)], dtype=object)
    sc = SelfChecks(ids, interval, [], policy)
    p_report = np.where(rng.random(n) < 0.1, 0.2, 0.97)      # a tenth are flaky
    last = [0.0] * n
    state = [False] * n
    n_raised = n_cleared = 0
    elapsed = 0.0
    for tick in range(1, 61):
        t = tick * 30.0
        rows = np.flatnonzero(rng.random(n) < p_report)
        rows = rng.permutation(np.concatenate([rows, rows[: len(rows) // 3]]))
        rec = t - rng.uniform(0, 29, size=len(rows))
        for k, r in zip(rows.tolist(), rec.tolist(), strict=True):
            last[k] = max(last[k], r)
        t0 = time.perf_counter()
        sc.observed(rows, rec)
        got = brief(sc.check(t))
        elapsed += time.perf_counter() - t0
        assert got == naive_offline(last, interval, policy, t, state)
        n_raised += sum(g[2] == "raised" for g in got)
        n_cleared += sum(g[2] == "cleared" for g in got)
    assert n_raised > 100 and n_cleared > 100                  # both directions exercised
    assert sc.summary()["offline_sensors"] == [f"S{k:05d}" for k in range(n) if state[k]]
    assert elapsed < 5.0                                       # ~ms per tick in practice


@settings(max_examples=80, deadline=None)
@given(last=st.lists(st.floats(-1e6, 1e9, allow_nan=False), min_size=1, max_size=6),
       interval=st.lists(st.floats(1e-3, 1e5, allow_nan=False), min_size=6, max_size=6),
       min_offline_s=st.floats(0, 1e4))
def test_waking_at_next_due_always_fires_offline_never_a_hair_early(last, interval,
                                                                  min_offline_s):
    n = len(last)
    sc = SelfChecks(np.array([f"S{k}" for k in range(n)]), np.array(interval[:n]), [],
                    SelfCheckPolicy(min_offline_s=min_offline_s), start_s=-1e6)
    sc.observed(np.arange(n), np.array(last))
    t = -1e6
    sc.check(t)
    offline = 0
    while (due := sc.next_due_s(t)) < math.inf:
        assert due > t
        assert sc.check(np.nextafter(due, -np.inf)) == []
        events = sc.check(due)
        assert events and all(e.status == "raised" for e in events)
        offline += len(events)
        t = due
    assert offline == n


# ---------------------------------------------------------------- silence

def test_silence_at_exactly_one_day_not_just_under():
    sc = make(subsystems=["gas_plume"], min_offline_s=1e12)
    assert sc.check(DAY_S - 0.001) == []
    (e,) = sc.check(DAY_S)
    assert (e.check_id, e.subject, e.status, e.value) == ("silence", "gas_plume", "raised", 1.0)
    assert "technical fault" in e.detail


def test_silence_reports_each_stage_once_and_clears_on_a_warning():
    sc = make(subsystems=["flood", "gas_plume"], min_offline_s=1e12)
    sc.warning_issued("flood", 0.5 * DAY_S)
    got = []
    for day in (1, 1.2, 1.5, 2.9, 3, 3.5, 7, 8, 30):
        got += [(day, *b) for b in brief(sc.check(day * DAY_S))]
    assert got == [(1, "silence", "gas_plume", "raised", 1.0),
                   (1.5, "silence", "flood", "raised", 1.0),
                   (3, "silence", "gas_plume", "raised", 3.0),
                   (3.5, "silence", "flood", "raised", 3.0),
                   (7, "silence", "gas_plume", "raised", 7.0),
                   (8, "silence", "flood", "raised", 7.0)]
    assert sc.summary()["silent_subsystems"] == {"flood": 7.0, "gas_plume": 7.0}
    sc.warning_issued("gas_plume", 30 * DAY_S)
    (e,) = sc.check(30 * DAY_S)
    assert (e.subject, e.status, e.value) == ("gas_plume", "cleared", 30.0)
    assert sc.check(31 * DAY_S - 1) == []
    assert brief(sc.check(31 * DAY_S)) == [("silence", "gas_plume", "raised", 1.0)]


def test_silence_jumping_past_several_stages_reports_each_in_order():
    sc = make(subsystems=["gas_plume"], min_offline_s=1e12)
    assert [e.value for e in sc.check(8 * DAY_S)] == [1.0, 3.0, 7.0]
    assert sc.check(100 * DAY_S) == []


def test_a_warning_before_the_first_stage_restarts_the_count_and_reports_nothing():
    sc = make(subsystems=["gas_plume"], min_offline_s=1e12)
    sc.warning_issued("gas_plume", 0.9 * DAY_S)
    assert sc.check(1.5 * DAY_S) == []
    due = sc.next_due_s(1.5 * DAY_S)
    assert due == 0.9 * DAY_S + DAY_S
    assert sc.check(np.nextafter(due, 0)) == []
    assert len(sc.check(due)) == 1


def test_unknown_subsystem_is_refused_by_name():
    sc = make(subsystems=["gas_plume"])
    with pytest.raises(ValueError, match="'flod'"):
        sc.warning_issued("flod", 10.0)


# ---------------------------------------------------------------- sync rate

def pushes(sc, t0_s, outcomes, downstream="downstream"):
    for i, ok in enumerate(outcomes):
        sc.push_result(t0_s + i, ok, downstream)


def test_sync_rate_nine_of_ten_is_fine_eight_of_ten_is_a_data_fault():
    sc = make(min_offline_s=1e12)
    pushes(sc, 0, [True] * 9 + [False], "city")
    pushes(sc, 0, [True] * 8 + [False] * 2, "province")
    (e,) = sc.check(100)
    assert (e.check_id, e.subject, e.status, e.value) == ("sync_rate", "province", "raised", 0.8)
    assert "8/10" in e.detail
    s = sc.summary()["sync"]
    assert s["city"] == {"pushed": 10, "delivered": 9, "rate": 0.9, "raised": False}
    assert s["province"]["raised"] is True


def test_sync_rate_is_not_judged_on_too_few_pushes():
    sc = make(min_offline_s=1e12)
    pushes(sc, 0, [False] * 4)
    assert sc.check(10) == []
    sc.push_result(10, False)
    assert brief(sc.check(10)) == [("sync_rate", "downstream", "raised", 0.0)]


def test_sync_window_sliding_clears_the_fault_exactly_when_failures_leave():
    sc = make(min_offline_s=1e12, sync_window_s=3600.0)
    pushes(sc, 0, [False, False])                   # at 0 s and 1 s
    pushes(sc, 100, [True] * 8)
    assert brief(sc.check(200)) == [("sync_rate", "downstream", "raised", 0.8)]
    assert sc.next_due_s(200) == 3601.0             # 0 s leaves at 3600: 8/9 is still too low
    assert sc.check(3600.5) == []                   # 8/9 = 0.889 still below 90 %
    (e,) = sc.check(3601.0)
    assert (e.status, e.value) == ("cleared", 1.0)


def test_sync_fault_is_held_while_there_is_too_little_evidence():
    sc = make(n=0, sync_window_s=100.0)           # no sensors, no sub-systems: only sync
    pushes(sc, 0, [False] * 5)
    assert len(sc.check(10)) == 1
    assert sc.check(1000) == []                     # window empty: not judged, still raised
    assert sc.summary()["sync"]["downstream"] == {"pushed": 0, "delivered": 0, "rate": None,
                                                  "raised": True}
    assert sc.next_due_s(1000) == math.inf
    pushes(sc, 1000, [True] * 5)
    assert brief(sc.check(1004)) == [("sync_rate", "downstream", "cleared", 1.0)]


# ---------------------------------------------------------------- false-alarm rate

def test_false_alarm_rate_raised_once_three_unconfirmed_alarms_are_judged():
    sc = make(n=2, min_offline_s=1e12)
    for t in (0.0, 1000.0, 2000.0):
        sc.alarm("S00000", "gas_plume", t)
    assert sc.check(2000 + W - 1) == []             # third alarm still in its window
    assert sc.next_due_s(2000 + W - 1) == 2000 + W
    (e,) = sc.check(2000 + W)
    assert (e.check_id, e.subject, e.status, e.value) == ("false_alarm_rate", "S00000",
                                                          "raised", 1.0)
    assert "3 of 3" in e.detail and "gas_plume" in e.detail


def test_an_alarm_inside_its_window_is_neither_confirmed_nor_false():
    sc = make(n=2, min_offline_s=1e12, false_alarm_min_alarms=1)
    sc.alarm("S00000", "gas_plume", 0.0)
    assert sc.summary()["false_alarm"]["S00000"]["judged"] == 0
    assert sc.check(W - 1) == []
    assert sc.summary()["false_alarm"]["S00000"] == {
        "alarms": 1, "judged": 0, "unconfirmed": 0, "rate": None, "raised": False}


def test_neighbour_confirmation_within_the_window():
    sc = make(n=3, min_offline_s=1e12)
    sc.alarm("S00000", "gas_plume", -5000.0)         # old, lone: a false alarm
    sc.alarm("S00000", "gas_plume", 0.0)
    sc.alarm("S00000", "gas_plume", 100.0)
    sc.alarm("S00001", "gas_plume", 500.0, confirmed_by="neighbour S00000")
    sc.confirm("S00000", 500.0, "neighbour S00001")   # confirms 0 s and 100 s, not -5000 s
    assert sc.check(10_000) == []                   # 1 of 3 unconfirmed: fine
    fa = sc.summary()["false_alarm"]
    assert fa["S00000"] == {"alarms": 3, "judged": 3, "unconfirmed": 1, "rate": 1 / 3,
                            "raised": False}
    assert fa["S00001"]["unconfirmed"] == 0


def test_exactly_half_unconfirmed_is_not_mostly():
    sc = make(min_offline_s=1e12)
    for t in (0.0, 1000.0, 2000.0, 3000.0):
        sc.alarm("S00000", "gas_plume", t, confirmed_by="outcome" if t < 2000 else None)
    assert sc.check(10_000) == []
    sc.alarm("S00000", "gas_plume", 20_000.0)
    assert brief(sc.check(20_000 + W)) == [("false_alarm_rate", "S00000", "raised", 0.6)]


def test_a_later_confirmation_by_outcome_clears_the_finding():
    sc = make(min_offline_s=1e12)
    for t in (0.0, 1000.0, 2000.0):
        sc.alarm("S00000", "gas_plume", t)
    assert len(sc.check(3000)) == 1
    sc.confirm("S00000", 7200.0, "outcome: leak found by crew")   # latest alarm only
    sc.confirm("S00000", 1100.0, "outcome: leak found by crew")   # the 1000 s alarm
    assert sc.next_due_s(7200) == 7200
    assert brief(sc.check(7200)) == [("false_alarm_rate", "S00000", "cleared", 1 / 3)]


def test_confirming_without_an_alarm_is_refused():
    sc = make(min_offline_s=1e12)
    sc.alarm("S00000", "gas_plume", 100.0)
    with pytest.raises(ValueError, match="'S00000' has no alarm at or before 50"):
        sc.confirm("S00000", 50.0, "outcome")


# ---------------------------------------------------------------- all together

def scripted(sc: SelfChecks) -> list[SelfCheckEvent]:
    out = []
    sc.observed(np.array([1, 0]), np.array([5.0, 5.0]))
    for t in (0.0, 1000.0, 2000.0):
        sc.alarm("S00001", "gas_plume", t)
    pushes(sc, 1000, [False] * 5, "b-down")
    pushes(sc, 1000, [False] * 5, "a-down")
    out += sc.check(DAY_S)
    sc.warning_issued("gas_plume", DAY_S + 1)
    sc.observed(np.array([0]), np.array([DAY_S + 1]))
    out += sc.check(DAY_S + 2)
    return out


def test_findings_are_sorted_by_check_and_subject_and_deterministic():
    def fresh():
        return make(n=2, subsystems=["gas_plume", "flood"], min_offline_s=0)

    events = scripted(fresh())
    assert brief(events) == [
        ("false_alarm_rate", "S00001", "raised", 1.0),
        ("sensor_offline", "S00000", "raised", DAY_S - 5),
        ("sensor_offline", "S00001", "raised", DAY_S - 5),
        ("silence", "flood", "raised", 1.0),
        ("silence", "gas_plume", "raised", 1.0),
        ("sync_rate", "a-down", "raised", 0.0),
        ("sync_rate", "b-down", "raised", 0.0),
        ("sensor_offline", "S00000", "cleared", 1.0),
        ("silence", "gas_plume", "cleared", (DAY_S + 1) / DAY_S),
    ]
    assert events == scripted(fresh())


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from("oawpcx"), st.floats(0, 3000),
                              st.integers(0, 2), st.booleans()), min_size=1, max_size=40))
def test_next_due_never_misses_and_never_wakes_early_across_all_checks(ops):
    pol = SelfCheckPolicy(min_offline_s=0, silence_days=[0.01, 0.02], sync_window_s=500.0,
                          sync_min_events=2, confirm_window_s=200.0, false_alarm_min_alarms=2)
    sc = SelfChecks(np.array(["A", "B", "C"]), np.array([10.0, 60.0, 300.0]), ["gas", "flood"],
                    pol)
    t = 0.0
    for op, dt, k, flag in ops:
        x = t + dt
        if op == "o":
            sc.observed(np.array([k]), np.array([x]))
        elif op == "a":
            sc.alarm("ABC"[k], "gas", x, confirmed_by="outcome" if flag else None)
        elif op == "w":
            sc.warning_issued(["gas", "flood"][k % 2], x)
        elif op == "p":
            sc.push_result(x, flag, f"d{k}")
        elif op == "c":
            try:
                sc.confirm("ABC"[k], x, "neighbour")
            except ValueError:
                pass
        sc.check(t)
        due = sc.next_due_s(t)
        assert due > t
        if math.isfinite(due):
            assert sc.check(np.nextafter(due, -np.inf)) == []
            assert sc.check(due) != []
            t = due
