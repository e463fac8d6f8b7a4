"""The kernel's hooks for drills, ensembles and replay: extra processes with a RunContext,
player commands archived with their outcome, scripted sensor faults, observation feeds."""

import math

import numpy as np
import pytest

from citytwin.alerting.observation import ObservationBatch
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario

from .conftest import short_scenario


def prepared(write_scenario, **changes):
    path = write_scenario(short_scenario(**changes))
    return prepare(load_scenario(path), source=str(path), base_dir=path.parent)


def commands(plan):
    """A process issuing ``(t_s, action, target, args)`` commands; outcomes kept in a list."""
    outcomes = []

    def process(ctx):
        for t_s, action, target, args in plan:
            yield ctx.env.timeout(t_s - ctx.env.now)
            outcomes.append(ctx.act(t_s, action, target, actor="desk", **args))

    return process, outcomes


def test_player_commands_go_through_the_platform_and_are_archived(write_scenario, tmp_path):
    run = prepared(write_scenario)
    plaza = run.twin.places.set_index("id").geometry["P-plaza"]
    x, y = plaza.centroid.x, plaza.centroid.y
    sx, sy = run.hazard_notes["main-strike"]["xy_m"]
    sx += 20.0  # 20 m downwind (west wind) of the leak
    process, outcomes = commands([
        (100, "acknowledge", "W-0009", {}),                 # no such warning yet: refused
        (400, "acknowledge", "W-0001", {}),
        (410, "escalate", "WO-W-0001", {}),
        (420, "publish", "W-0001", {}),
        (430, "evacuate", "P-plaza", {}),
        (440, "evacuate", f"{x},{y},0", {}),               # zero radius: refused
        (450, "measure", f"{sx},{sy}", {"delay_s": 120}),
        (460, "fly", "W-0001", {}),                         # unknown action: refused
    ])
    result = simulate(run, tmp_path / "run", processes=[process])
    assert [o.ok for o in outcomes] == [False, True, True, True, True, False, True, False]
    assert "no warning 'W-0009'" in outcomes[0].detail
    acts = read_table(result.archive_path, "actions")
    assert list(acts["action"]) == ["acknowledge", "acknowledge", "escalate", "publish",
                                    "evacuate", "evacuate", "measure", "fly", "measure_result"]
    assert list(acts["outcome"]) == ["refused", "done", "done", "done", "done", "refused",
                                     "done", "refused", "done"]
    # the manual escalation is a work-order event by the player, one rung up the ladder
    events = read_table(result.archive_path, "work_order_events")
    esc = events[(events["event"] == "escalated") & (events["actor"] == "desk")]
    assert list(esc["time_s"]) == [410.0]
    # publishing adds a CAP message at that time, status Exercise (a drill)
    caps = read_table(result.archive_path, "cap_messages")
    assert outcomes[3].data["cap"][0] in set(caps["identifier"])
    assert set(caps["status"]) == {"Exercise"}
    # the evacuation counts the people of the plaza's area (the plaza itself has none)
    assert outcomes[4].data["area_m2"] == pytest.approx(plaza.area, rel=1e-6)
    assert outcomes[4].data["population"] >= 0 and "P-plaza" in outcomes[4].data["targets"]
    # the field team measures the true concentration on arrival, 120 s later
    row = acts[acts["action"] == "measure_result"].iloc[0]
    assert row["time_s"] == 570.0
    measured = float(row["detail"].split("=")[1])
    # the plume is steady by then (the wind holds until 1500 s): the end state is the truth
    truth = run.hazards[0].sample("ch4_lel_pct", np.array([[sx, sy, 1.5]]))[0]
    assert measured == pytest.approx(truth, rel=1e-3) and measured > 10  # 4 sig. digits


def test_scripted_faults_override_the_measurements(write_scenario, tmp_path):
    run = prepared(write_scenario)
    ids = run.network.table["sensor_id"].tolist()
    a, b, c = ids[:3]

    def faults(ctx):
        ctx.faults.add("offline", [a], 100, 200)
        ctx.faults.add("stuck", [b], 100, 300)
        yield ctx.env.timeout(150)
        ctx.faults.add("false_alarm", [c], 200, 260, value=90.0)   # added while running

    result = simulate(run, tmp_path / "run", processes=[faults])
    obs = read_table(result.archive_path, "observations")
    got_a = obs[obs["sensor_id"] == a]["time_s"].to_numpy()
    assert not ((got_a >= 100) & (got_a < 200)).any() and (got_a == 200).any()
    sb = obs[obs["sensor_id"] == b].set_index("time_s")
    assert (sb.loc[100:290, "quality"] == 4).all()
    assert sb.loc[100:290, "value"].nunique() == 1
    assert sb.loc[100, "value"] == sb.loc[90, "value"]        # frozen at the last reading
    sc = obs[obs["sensor_id"] == c].set_index("time_s")["value"]
    assert (sc.loc[200:250] == 90.0).all() and sc.loc[260] != 90.0
    # the false alarm is what the platform received: it alarms on it
    alarms = read_table(result.archive_path, "alarms")
    assert ((alarms["sensor_id"] == c) & (alarms["time_s"].between(200, 260))).any()


def test_a_false_alarm_is_received_even_when_the_sensor_dropped_that_reading():
    from citytwin.sensors_sim.measurement import QUALITY_CLIPPED, QUALITY_DROPPED, QUALITY_OFFLINE
    from citytwin.sensors_sim.scripted_faults import ScriptedFaults

    f = ScriptedFaults(["s0", "s1", "s2"])
    f.add("false_alarm", ["s0", "s1"], 10, 20, value=50.0)
    value = np.array([np.nan, 100.0, 3.0])
    valid = np.array([False, True, True])
    quality = np.array([QUALITY_DROPPED, QUALITY_CLIPPED, 0], dtype=np.int8)
    f.apply(np.array([0, 1, 2]), 10.0, value, valid, quality)
    assert value.tolist() == [50.0, 50.0, 3.0] and valid.all()
    assert quality.tolist() == [0, 0, 0]          # a plausible reading: evaluated as usual
    # offline wins over the measurement's own state, and stuck holds the last reading
    f.add("offline", ["s2"], 10, 20)
    f.add("stuck", ["s1"], 30, 40)
    value, valid = np.array([1.0, 7.0, 3.0]), np.ones(3, dtype=bool)
    quality = np.zeros(3, dtype=np.int8)
    f.apply(np.array([0, 1, 2]), 15.0, value, valid, quality)
    assert not valid[2] and quality[2] == QUALITY_OFFLINE
    value, valid = np.array([1.0, 9.0, 3.0]), np.ones(3, dtype=bool)
    f.apply(np.array([0, 1, 2]), 30.0, value, valid, np.zeros(3, dtype=np.int8))
    assert value[1] == 50.0   # frozen at the last value received (the false alarm's)


def test_fault_errors_name_the_problem(write_scenario):
    from citytwin.sensors_sim.scripted_faults import ScriptedFaults

    f = ScriptedFaults(["s1", "s2"])
    with pytest.raises(KeyError, match="nope"):
        f.add("offline", ["nope"], 0, 10)
    with pytest.raises(ValueError, match="needs the"):
        f.add("false_alarm", ["s1"], 0, 10)
    with pytest.raises(ValueError, match="after start_s"):
        f.add("stuck", ["s1"], 10, 10)
    with pytest.raises(ValueError, match="unknown fault kind"):
        f.add("melted", ["s1"], 0, math.inf)


class ListFeed:
    """Two streams of hand-made observations."""

    def __init__(self, sensor_ids, unit):
        self.ids, self.unit = sensor_ids, unit
        self.times = {"a": np.array([0.0, 100.0, 110.0, 120.0]), "b": np.array([50.0])}

    def streams(self):
        return list(self.times.items())

    def batch(self, stream, k):
        t = self.times[stream][k]
        if stream == "b":
            return ObservationBatch(np.array([], dtype=object), [], [], self.unit,
                                    source="archive")
        value = 0.0 if t == 0 else 95.0
        return ObservationBatch(np.array([self.ids[0]], dtype=object), [t], [value], self.unit,
                                source="archive")


def test_a_feed_replaces_sampling(write_scenario, tmp_path):
    run = prepared(write_scenario, hazards=[])
    feed = ListFeed(run.network.table["sensor_id"].tolist(), "%LEL")
    result = simulate(run, tmp_path / "run", feed=feed)
    obs = read_table(result.archive_path, "observations")
    assert list(obs["time_s"]) == [0.0, 100.0, 110.0, 120.0]
    assert set(obs["source"]) == {"archive"}
    alarms = read_table(result.archive_path, "alarms")
    # debounce 2 of 3: the second reading above 80 %LEL raises red
    assert alarms.iloc[0]["time_s"] == 110.0 and alarms.iloc[0]["to_level"] == 4
