"""CAP 1.2 export: schema validity, mappings, references, geometry and determinism."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyproj
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon

from citytwin.alerting import cap
from citytwin.alerting.cap import (
    CAP_NS,
    CapContext,
    CapInput,
    CapPublisher,
    CapValidationError,
    area_polygons_latlon,
    cap_status,
    cap_xsd_errors,
    check_cap_structure,
    parse_cap_polygon,
    validate_cap,
    write_cap_files,
)
from tests.alerting.conftest import HAZARD_INFO

NS = {"cap": CAP_NS}
ANCHOR = datetime(2026, 7, 1, 5, 30, tzinfo=timezone(timedelta(hours=8)))
CRS = "EPSG:32649"          # UTM 49N: the test city lies near 22.6 N, 111 E
X0, Y0 = 500_000.0, 2_500_000.0
SQUARE = shapely.box(X0 - 100, Y0 - 100, X0 + 100, Y0 + 100)


@pytest.fixture(scope="module")
def xsd(shared_dir: Path) -> Path:
    path = shared_dir / "reference" / "cap" / "CAP-v1.2.xsd"
    if not path.is_file():
        pytest.skip(f"{path} not present in ../shared")
    return path


def context(mode: str = "drill", **kw) -> CapContext:
    return CapContext(sender="citytwin@test-city", mode=mode, anchor=ANCHOR, crs=CRS,
                      run_id="gas-leak-drill-00ab12cd34ef5678", hazards=HAZARD_INFO, **kw)


def item(event: str = "raised", **kw) -> CapInput:
    base = dict(
        warning_id="W-0001", event=event, time_s=310.0, hazard="gas_plume", level=2,
        level_name="yellow", n_levels=4, headline="Gas leak near Central Plaza",
        description="Methane above 25 %LEL in two valve wells.",
        instruction="Keep away from the plaza; no open flames.", area_wkt=SQUARE.wkt,
        area_desc="Central Plaza and the blocks east of it", targets=("P-plaza", "S-01"),
        population=1234, recipients=("asset_owner", "sector_department"), public=False)
    base.update(kw)
    return CapInput(**base)


def lifecycle(mode: str = "drill") -> list[cap.CapMessage]:
    """Every message kind: two warnings interleaved, one cleared, one cancelled."""
    pub = CapPublisher(context(mode))
    return [
        pub.publish(item("raised")),
        pub.publish(item("raised", warning_id="W-0002", time_s=320.0, hazard="crowd_crush",
                         level=1, level_name="blue", public=True, certainty="Likely")),
        pub.publish(item("escalated", time_s=400.5, level=4, level_name="red", public=True)),
        pub.publish(item("updated", time_s=460.0, level=4, level_name="red", public=True)),
        pub.publish(item("cancelled", warning_id="W-0002", time_s=470.0, hazard="crowd_crush",
                         level=1, level_name="blue", public=True, area_wkt="")),
        pub.publish(item("deescalated", time_s=700.0, level=3, level_name="orange")),
        pub.publish(item("cleared", time_s=900.0, level=0, level_name="none",
                         area_wkt="POLYGON EMPTY")),
    ]


def root(msg: cap.CapMessage) -> ET.Element:
    return ET.fromstring(msg.xml)


def text(msg: cap.CapMessage, path: str) -> str | None:
    return root(msg).findtext(path, namespaces=NS)


def texts(msg: cap.CapMessage, path: str) -> list[str]:
    return [e.text for e in root(msg).findall(path, namespaces=NS)]


# --- validity ---------------------------------------------------------------------------------

@pytest.mark.shared
@pytest.mark.parametrize("mode", ["drill", "what-if", "replay"])
def test_every_message_kind_validates_against_the_official_xsd(xsd: Path, mode: str) -> None:
    messages = lifecycle(mode)
    assert {m.msg_type for m in messages} == {"Alert", "Update", "Cancel"}
    for msg in messages:
        assert cap_xsd_errors(msg.xml, xsd) == [], msg.identifier
        validate_cap(msg.xml, xsd)


def test_builtin_check_passes_on_every_message_kind() -> None:
    for msg in lifecycle():
        assert check_cap_structure(msg.xml) == [], msg.identifier


@pytest.mark.shared
def test_builtin_check_accepts_the_spec_example(shared_dir: Path) -> None:
    example = shared_dir / "reference" / "cap" / "cap_amber_alert_example.xml"
    if not example.is_file():
        pytest.skip(f"{example} not present")
    assert check_cap_structure(example.read_bytes()) == []


def _break(xml: bytes, old: str, new: str) -> bytes:
    assert old.encode() in xml
    return xml.replace(old.encode(), new.encode(), 1)


def _swap_latlon(xml: bytes) -> bytes:
    doc = ET.fromstring(xml)
    poly = doc.find(".//cap:polygon", NS)
    poly.text = " ".join(f"{lon},{lat}" for lat, lon in parse_cap_polygon(poly.text))
    return ET.tostring(doc, encoding="utf-8", default_namespace=CAP_NS)


def _broken_messages() -> dict[str, bytes]:
    alert, update = lifecycle()[0].xml, lifecycle()[2].xml
    ident = text(lifecycle()[0], "cap:identifier")
    refs = ET.fromstring(update).findtext("cap:references", namespaces=NS)
    return {
        "wrong status": _break(alert, "<status>Exercise</status>", "<status>Drill</status>"),
        "missing identifier": _break(alert, f"<identifier>{ident}</identifier>", ""),
        "lon,lat swapped": _swap_latlon(alert),
        "Z time zone": _break(alert, "2026-07-01T05:35:10+08:00", "2026-06-30T21:35:10Z"),
        "fractional seconds": _break(alert, "05:35:10+08:00", "05:35:10.5+08:00"),
        "bad severity": _break(alert, "<severity>Moderate</severity>",
                               "<severity>Yellow</severity>"),
        "out of order": _break(alert, "<msgType>Alert</msgType>", "")
        .replace(b"</status>", b"</status>\n<scope>Public</scope><msgType>Alert</msgType>", 1)
        .replace(b"<scope>Restricted</scope>", b"", 1),
        "update without references": _break(update, f"<references>{refs}</references>", ""),
        "space in identifier": _break(alert, f"<identifier>{ident}", f"<identifier>a b{ident}"),
        "open polygon": _break(alert, "</polygon>", " 22.6,111.1</polygon>"),
    }


@pytest.mark.parametrize("case", sorted(_broken_messages()))
def test_builtin_check_fails_on_broken_messages(case: str, monkeypatch) -> None:
    xml = _broken_messages()[case]
    assert check_cap_structure(xml), case
    monkeypatch.setattr(cap, "find_cap_xsd", lambda: None)   # the fallback alone must catch it
    monkeypatch.delenv(cap.CAP_XSD_ENV, raising=False)
    with pytest.raises(CapValidationError) as err:
        validate_cap(xml)
    assert err.value.errors


def test_swapped_coordinates_are_named_in_the_error() -> None:
    errors = check_cap_structure(_broken_messages()["lon,lat swapped"])
    assert any("latitude 111" in e and "swapped" in e for e in errors)


@pytest.mark.shared
@pytest.mark.parametrize("case", ["wrong status", "missing identifier", "Z time zone",
                                  "bad severity", "out of order"])
def test_xsd_also_rejects_schema_breaks(xsd: Path, case: str) -> None:
    assert cap_xsd_errors(_broken_messages()[case], xsd)


def test_xsd_lookup_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(cap.CAP_XSD_ENV, str(tmp_path / "missing.xsd"))
    with pytest.raises(FileNotFoundError, match="CITYTWIN_CAP_XSD"):
        validate_cap(lifecycle()[0].xml)


@pytest.mark.shared
def test_validate_cap_uses_the_xsd_named_by_the_environment(xsd: Path, monkeypatch) -> None:
    monkeypatch.setenv(cap.CAP_XSD_ENV, str(xsd))
    assert cap.find_cap_xsd() == xsd
    validate_cap(lifecycle()[0].xml)
    with pytest.raises(CapValidationError, match="XSD: "):
        validate_cap(_broken_messages()["wrong status"])


# --- geometry ---------------------------------------------------------------------------------

def test_known_square_round_trips_latitude_first() -> None:
    to_wgs = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    corners = [(X0 - 100, Y0 - 100), (X0 + 100, Y0 - 100), (X0 + 100, Y0 + 100),
               (X0 - 100, Y0 + 100)]
    expected = set()
    for x, y in corners:
        lon, lat = to_wgs.transform(x, y)
        expected.add((lat, lon))
    msg = lifecycle()[0]
    polys = texts(msg, ".//cap:area/cap:polygon")
    assert len(polys) == 1
    pairs = parse_cap_polygon(polys[0])
    assert len(pairs) == 5 and pairs[0] == pairs[-1]
    for lat, lon in pairs:
        assert 22.0 < lat < 23.0 and 110.5 < lon < 111.5      # latitude first
        assert min(abs(lat - a) + abs(lon - b) for a, b in expected) < 1e-6
    assert {min(expected, key=lambda e: abs(e[0] - la) + abs(e[1] - lo))
            for la, lo in pairs} == expected


def test_polygon_orientation_is_counter_clockwise_in_lon_lat() -> None:
    for geom in (SQUARE, shapely.Polygon(list(SQUARE.exterior.coords)[::-1])):
        pairs = parse_cap_polygon(area_polygons_latlon(geom.wkt, CRS)[0])
        ring = shapely.LinearRing([(lon, lat) for lat, lon in pairs])
        assert ring.is_ccw


def test_multipolygon_gives_two_polygons() -> None:
    far = shapely.affinity.translate(SQUARE, 5000.0, 0.0)
    multi = MultiPolygon([SQUARE, far])
    polys = area_polygons_latlon(multi.wkt, CRS)
    assert len(polys) == 2
    msg = CapPublisher(context()).publish(item(area_wkt=multi.wkt))
    assert texts(msg, ".//cap:area/cap:polygon") == polys
    assert check_cap_structure(msg.xml) == []


def test_holes_are_dropped() -> None:
    with_hole = Polygon(SQUARE.exterior.coords, [SQUARE.buffer(-50).exterior.coords])
    assert area_polygons_latlon(with_hole.wkt, CRS) == area_polygons_latlon(SQUARE.wkt, CRS)


def test_long_ring_is_simplified_to_at_most_max_vertices_and_still_covers_the_area() -> None:
    wiggly = shapely.Point(X0, Y0).buffer(2000.0, quad_segs=256)        # 1025 vertices
    wiggly = shapely.Polygon([(x + (15.0 if i % 2 else 0.0), y)
                              for i, (x, y) in enumerate(wiggly.exterior.coords[:-1])])
    polys = area_polygons_latlon(wiggly.wkt, CRS, max_vertices=100)
    assert len(polys) == 1
    pairs = parse_cap_polygon(polys[0])
    assert 4 <= len(pairs) <= 100 and pairs[0] == pairs[-1]
    back = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    simplified = shapely.Polygon([back.transform(lon, lat) for lat, lon in pairs])
    assert wiggly.difference(simplified).area < 1e-4 * wiggly.area   # errs outward
    assert simplified.area < 1.05 * wiggly.area


def test_empty_area_gives_area_desc_only_and_closing_events_repeat_the_last_area() -> None:
    pub = CapPublisher(context())
    first = pub.publish(item(area_wkt=""))
    assert texts(first, ".//cap:area/cap:polygon") == []
    assert text(first, ".//cap:area/cap:areaDesc") == "Central Plaza and the blocks east of it"
    assert check_cap_structure(first.xml) == []
    pub.publish(item("updated", time_s=400.0))
    cleared = pub.publish(item("cleared", time_s=500.0, level=0, area_wkt="POLYGON EMPTY"))
    assert texts(cleared, ".//cap:area/cap:polygon") == area_polygons_latlon(SQUARE.wkt, CRS)


def test_non_polygonal_area_is_refused() -> None:
    with pytest.raises(ValueError, match="Point has no area"):
        area_polygons_latlon(f"POINT ({X0} {Y0})", CRS)


# --- lifecycle, references, status ----------------------------------------------------------

def test_updates_and_cancels_reference_exactly_the_earlier_messages_of_their_warning() -> None:
    messages = lifecycle()
    for k, msg in enumerate(messages):
        earlier = [m for m in messages[:k] if m.warning_id == msg.warning_id]
        want = tuple(f"citytwin@test-city,{m.identifier},{cap.cap_datetime(m.sent)}"
                     for m in earlier)
        assert msg.references == want
        if msg.msg_type == "Alert":
            assert not earlier and text(msg, "cap:references") is None
        else:
            assert earlier and text(msg, "cap:references") == " ".join(want)
        assert text(msg, "cap:incidents") == msg.warning_id


def test_msg_type_response_and_urgency_per_lifecycle_event() -> None:
    raised, crowd, escalated, updated, cancelled, deescalated, cleared = lifecycle()
    assert [m.msg_type for m in (raised, escalated, updated, deescalated, cleared)] == \
        ["Alert", "Update", "Update", "Update", "Update"]
    assert texts(cleared, ".//cap:responseType") == ["AllClear"]
    assert text(cleared, ".//cap:urgency") == "Past"
    assert text(cleared, ".//cap:expires") == "2026-07-01T06:45:00+08:00"   # sent + 1 h
    assert cancelled.msg_type == "Cancel"
    assert [text(cancelled, f".//cap:{k}") for k in ("responseType", "urgency", "severity",
                                                     "certainty")] == \
        ["None", "Past", "Unknown", "Unlikely"]
    assert text(escalated, ".//cap:responseType") == "Evacuate"             # public, red gas
    assert text(raised, ".//cap:responseType") == "Prepare"                 # departmental
    assert text(raised, ".//cap:urgency") == "Immediate"
    assert text(crowd, ".//cap:urgency") == "Expected"                      # model-based
    assert text(crowd, ".//cap:certainty") == "Likely"


def test_sent_is_anchor_plus_time_whole_seconds_with_offset() -> None:
    messages = lifecycle()
    assert text(messages[0], "cap:sent") == "2026-07-01T05:35:10+08:00"
    assert text(messages[2], "cap:sent") == "2026-07-01T05:36:41+08:00"     # 400.5 s → up
    assert messages[0].sent == ANCHOR + timedelta(seconds=310)
    utc = CapContext(sender="x@y", mode="drill", anchor=ANCHOR.astimezone(UTC), crs=CRS,
                     run_id="r", hazards=HAZARD_INFO)
    sent = text(CapPublisher(utc).publish(item()), "cap:sent")
    assert sent == "2026-06-30T21:35:10-00:00" and "Z" not in sent
    with pytest.raises(ValueError, match="time zone"):
        CapContext(sender="x@y", mode="drill", anchor=datetime(2026, 7, 1), crs=CRS,
                   run_id="r")


def test_status_and_note_follow_the_mode() -> None:
    drill = lifecycle("drill")[0]
    assert text(drill, "cap:status") == "Exercise"
    assert "gas-leak-drill-00ab12cd34ef5678" in text(drill, "cap:note")    # exercise id
    assert text(drill, ".//cap:headline").startswith("EXERCISE: ")
    for mode in ("what-if", "replay"):
        msg = lifecycle(mode)[0]
        assert text(msg, "cap:status") == "Test"
        assert "simulation" in text(msg, "cap:note")
    assert cap_status("drill") == "Exercise"
    assert cap_status("what-if") == cap_status("replay") == "Test"


def test_actual_is_refused_from_a_simulation() -> None:
    for mode in ("drill", "what-if", "replay"):
        assert cap_status(mode, allow_actual=True) != "Actual"
    with pytest.raises(ValueError, match="allow_actual"):
        cap_status("live")
    with pytest.raises(ValueError, match="allow_actual"):
        context("live")
    with pytest.raises(ValueError, match="unknown run mode"):
        cap_status("simulation")
    assert cap_status("live", allow_actual=True) == "Actual"
    live = CapPublisher(context("live", allow_actual=True)).publish(item())
    assert text(live, "cap:status") == "Actual" and text(live, "cap:note") is None


def test_scope_public_or_restricted_to_the_recipient_units() -> None:
    restricted = CapPublisher(context()).publish(item())
    assert text(restricted, "cap:scope") == "Restricted"
    assert "asset_owner, sector_department" in text(restricted, "cap:restriction")
    public = CapPublisher(context()).publish(item(public=True))
    assert text(public, "cap:scope") == "Public"
    assert text(public, "cap:restriction") is None


def test_severity_by_rank_from_the_top_for_three_and_four_levels() -> None:
    four = {lv: cap.severity_for(lv, 4) for lv in (1, 2, 3, 4)}
    assert four == {4: "Extreme", 3: "Severe", 2: "Moderate", 1: "Minor"}
    three = {lv: cap.severity_for(lv, 3) for lv in (1, 2, 3)}
    assert three == {3: "Extreme", 2: "Severe", 1: "Moderate"}
    for n, level, want in ((3, 3, "Extreme"), (3, 1, "Moderate"), (4, 1, "Minor")):
        msg = CapPublisher(context()).publish(item(n_levels=n, level=level))
        assert text(msg, ".//cap:severity") == want
    with pytest.raises(ValueError, match="level 4 outside 1..3"):
        item(n_levels=3, level=4)


def test_categories_and_parameters() -> None:
    msg = lifecycle()[0]
    assert texts(msg, ".//cap:category") == ["Safety", "Fire"]
    params = {p.findtext("cap:valueName", namespaces=NS): p.findtext("cap:value", namespaces=NS)
              for p in root(msg).findall(".//cap:parameter", NS)}
    assert params["citytwin:warningId"] == "W-0001"
    assert params["citytwin:level"] == "yellow" and params["citytwin:levelNumber"] == "2/4"
    assert params["citytwin:population"] == "1234"
    assert params["citytwin:targets"] == "P-plaza, S-01"
    flood = CapPublisher(context()).publish(item(hazard="urban_flood"))
    assert texts(flood, ".//cap:category") == ["Met"]
    assert text(flood, ".//cap:event") == "Urban flood"
    # a hazard nobody described is refused, never published as "Other"
    with pytest.raises(KeyError, match="no CAP description of hazard 'sinkhole' \\(described: "
                                       "crowd_crush, gas_plume, urban_flood\\)"):
        CapPublisher(context()).publish(item(hazard="sinkhole"))


def test_same_inputs_give_identical_bytes() -> None:
    a, b = lifecycle(), lifecycle()
    assert [m.xml for m in a] == [m.xml for m in b]
    assert [m.identifier for m in a] == [m.identifier for m in b]
    assert len({m.identifier for m in a}) == len(a)
    assert a[0].identifier == "citytwin.drill.gas-leak-drill-00ab12cd34ef5678.W-0001.001"


def test_sender_must_be_a_cap_token() -> None:
    for bad in ("", "citytwin at city", "citytwin,city", "a&b", "a<b"):
        with pytest.raises(ValueError, match="sender"):
            CapContext(sender=bad, mode="drill", anchor=ANCHOR, crs=CRS, run_id="r")
    assert CapContext(sender="citytwin@gz.example", mode="drill", anchor=ANCHOR, crs=CRS,
                      run_id="r").sender == "citytwin@gz.example"


def test_lifecycle_order_is_enforced() -> None:
    pub = CapPublisher(context())
    with pytest.raises(ValueError, match="first event must be 'raised'"):
        pub.publish(item("updated"))
    pub.publish(item())
    with pytest.raises(ValueError, match="before the previous event"):
        pub.publish(item("updated", time_s=100.0))
    pub.publish(item("cancelled", time_s=400.0))
    with pytest.raises(ValueError, match="already closed"):
        pub.publish(item("updated", time_s=500.0))
    assert [m.msg_type for m in pub.history("W-0001")] == ["Alert", "Cancel"]
    with pytest.raises(ValueError, match="event 'resolved'"):
        item("resolved")


def test_write_cap_files_one_file_per_message(tmp_path: Path) -> None:
    messages = lifecycle()
    paths = write_cap_files(messages, tmp_path / "cap")
    assert [p.name for p in paths] == [f"{m.identifier}.xml" for m in messages]
    assert [p.read_bytes() for p in paths] == [m.xml for m in messages]
    assert sorted(p.name for p in (tmp_path / "cap").iterdir()) == sorted(p.name for p in paths)
    with pytest.raises(ValueError, match="duplicate"):
        write_cap_files([messages[0], replace(messages[0])], tmp_path / "again")
    assert not (tmp_path / "again").exists()


def test_free_text_is_escaped_and_control_characters_dropped() -> None:
    msg = CapPublisher(context()).publish(item(headline="CH4 < 5 % & rising\x07",
                                               area_desc="Block A, \"east\" side"))
    assert text(msg, ".//cap:headline") == "EXERCISE: CH4 < 5 % & rising"
    assert text(msg, ".//cap:areaDesc") == "Block A, \"east\" side"
    assert check_cap_structure(msg.xml) == []


def test_message_carries_the_status_and_scope_of_its_xml() -> None:
    for mode in ("drill", "what-if", "replay"):
        for msg in lifecycle(mode):
            assert (msg.status, msg.scope) == (text(msg, "cap:status"), text(msg, "cap:scope"))
    restricted = CapPublisher(context()).publish(item())
    assert (restricted.status, restricted.scope) == ("Exercise", "Restricted")
