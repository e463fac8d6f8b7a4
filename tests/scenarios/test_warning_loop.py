"""The warning loop in a run: work orders escalate when nobody acts, player actions prevent
it, CAP files are written and valid, dossiers and the operating report read the archive."""

import hashlib

import yaml

from citytwin.alerting.cap import check_cap_structure, validate_cap
from citytwin.scenarios.cli.main import main
from citytwin.scenarios.run.archive_reader import read_table
from citytwin.scenarios.run.kernel import simulate
from citytwin.scenarios.run.prepare import prepare
from citytwin.scenarios.spec.scenario import load_scenario

from .conftest import short_scenario

FAST_OPS = {"work_orders": {"unassigned_overdue_s": 300}, "situation_interval_s": 60}


def run(write_scenario, tmp_path, name="run", ops=FAST_OPS, **changes):
    ops_path = tmp_path / f"{name}-ops.yaml"
    ops_path.write_text(yaml.safe_dump(ops))
    path = write_scenario(short_scenario(operations=str(ops_path), **changes), f"{name}.yaml")
    scenario = load_scenario(path)
    return simulate(prepare(scenario, source=str(path), base_dir=path.parent), tmp_path / name)


def test_nobody_acts_the_order_goes_overdue_and_escalates(write_scenario, tmp_path):
    result = run(write_scenario, tmp_path)
    orders = read_table(result.archive_path, "work_orders")
    events = read_table(result.archive_path, "work_order_events")
    assert list(orders["work_order_id"]) == ["WO-W-0001"]
    created = float(orders["created_s"].iloc[0])
    got = list(zip(events["event"], events["time_s"], strict=True))
    assert got[:3] == [("created", created), ("overdue_unassigned", created + 300),
                       ("escalated", created + 300)]
    pushes = read_table(result.archive_path, "pushes")
    assert (pushes["warning_seq"].isna() & (pushes["unit"] == "district_government")).any()
    kinds = [k for _, k, _, _ in result.timeline]
    assert "work_order_escalated" in kinds


def test_a_player_assigning_in_time_prevents_the_escalation(write_scenario, tmp_path):
    actions = [{"at_s": 150, "action": "assign", "target": "WO-W-0001", "actor": "gas_company"},
               {"at_s": 160, "action": "start", "target": "WO-W-0001", "actor": "crew-3"},
               {"at_s": 170, "action": "close", "target": "WO-W-0001", "actor": "crew-3"}]
    result = run(write_scenario, tmp_path, actions=actions)
    events = read_table(result.archive_path, "work_order_events")
    assert list(events["event"]) == ["created", "assigned", "started"]
    assert list(events["actor"]) == ["platform", "gas_company", "crew-3"]
    refused = [m for _, k, m, _ in result.timeline if k == "action_refused"]
    assert refused == ["actions.2: crew-3: close WO-W-0001 — refused: WO-W-0001: cannot close "
                       "in state 'in_progress' (allowed in ['reviewed'])"]
    # every command is archived with its outcome
    acts = read_table(result.archive_path, "actions")
    assert list(zip(acts["time_s"], acts["action"], acts["outcome"], strict=True)) == [
        (150.0, "assign", "done"), (160.0, "start", "done"), (170.0, "close", "refused")]


def test_cap_files_are_written_indexed_and_valid(write_scenario, tmp_path, shared_dir):
    result = run(write_scenario, tmp_path)
    caps = read_table(result.archive_path, "cap_messages")
    assert len(caps) == len(result.cap_files) > 0
    assert set(caps["status"]) == {"Exercise"}           # a drill is never Actual
    assert caps["msg_type"].iloc[0] == "Alert" and set(caps["msg_type"].iloc[1:]) <= {
        "Update", "Cancel"}
    xsd = shared_dir / "reference" / "cap" / "CAP-v1.2.xsd"
    for path, row in zip(sorted(result.cap_files), caps.sort_values("file").itertuples(),
                         strict=True):
        xml = path.read_bytes()
        assert path.name == row.file and hashlib.sha256(xml).hexdigest() == row.sha256
        assert check_cap_structure(xml) == []
        validate_cap(xml, xsd)


def test_what_if_runs_send_test_status(write_scenario, tmp_path):
    result = run(write_scenario, tmp_path, mode="what-if")
    assert set(read_table(result.archive_path, "cap_messages")["status"]) == {"Test"}


def test_dossier_and_report_commands_read_the_archive(write_scenario, tmp_path, capsys):
    result = run(write_scenario, tmp_path)
    assert main(["dossier", str(result.archive_path), "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "DOSSIER-W-0001.json").exists()
    assert main(["report", str(result.run_dir), "--out", str(tmp_path / "op.html")]) == 0
    out = capsys.readouterr().out
    assert "work orders: 1, assigned 0, closed 0; overdue: 1; escalations: 1" in out
    assert (tmp_path / "op.html").read_text().lower().startswith("<!doctype html>")
