"""The routing table: loops by level and area facts, owners per hazard, escalation ladder."""

import pytest

from citytwin.alerting.routing import load_routing
from citytwin.twin.errors import InputError


@pytest.fixture(scope="module")
def table():
    return load_routing()


@pytest.mark.parametrize("hazard, level, targets, population, loop, lead", [
    ("gas_plume", "blue", (), 0, "small", "gas_company"),
    ("gas_plume", "yellow", (), 0, "small", "gas_company"),
    ("gas_plume", "yellow", (), 1000, "middle", "gas_department"),
    ("gas_plume", "yellow", ("P-school-1",), 0, "middle", "gas_department"),
    ("gas_plume", "orange", (), 0, "middle", "gas_department"),
    ("gas_plume", "orange", ("P-school-1",), 0, "big", "city_emergency_command"),
    ("urban_flood", "red", (), 0, "big", "city_emergency_command"),
    ("crowd_crush", "orange", (), 0, "middle", "public_security"),
])
def test_first_matching_route(table, hazard, level, targets, population, loop, lead):
    r = table.route(hazard, level, targets=targets, population=population)
    assert (r.loop, r.lead_unit) == (loop, lead)
    assert r.public == (loop == "big")
    assert r.recipients[0] == table.hazards[hazard].owner


def test_escalation_ladder(table):
    assert table.escalation_unit("gas_plume", "gas_company") == "gas_department"
    assert table.escalation_unit("gas_plume", "gas_department") == "district_government"
    assert table.escalation_unit("gas_plume", "district_government") == "city_emergency_command"
    assert table.escalation_unit("gas_plume", "city_emergency_command") == \
        "city_emergency_command"


def test_coverage_check_names_hazard_and_level(table):
    with pytest.raises(InputError, match="no owner/department for hazard 'tsunami'"):
        table.check_covers(["tsunami"], ["blue"], "scenario.yaml")
    with pytest.raises(InputError, match="no route for hazard 'gas_plume' at level 'purple'"):
        table.check_covers(["gas_plume"], ["purple"], "scenario.yaml")


def test_bad_routing_file_names_file_and_field(tmp_path):
    path = tmp_path / "routing.yaml"
    path.write_text("name: x\nunits: {a: {name: A, kind: owner}}\n"
                    "hazards: {gas_plume: {owner: a, department: nobody}}\n"
                    "loops: {}\nroutes: [{loop: small}]\n")
    with pytest.raises(InputError, match=r"routing.yaml: .*unknown unit 'nobody'"):
        load_routing(path)
    path.write_text("name: x\nunits: {}\nhazards: {}\nloops: {}\nroutes: [{loop: huge}]\n")
    with pytest.raises(InputError, match=r"routing.yaml: routes.0.loop"):
        load_routing(path)
