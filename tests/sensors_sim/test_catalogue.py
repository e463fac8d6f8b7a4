"""The sensor catalogue: the shipped types and every validation error."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import pytest
import yaml

from citytwin.sensors_sim.catalogue import (
    ENTRY_FIELDS,
    SensorType,
    default_catalogue_path,
    load_catalogue,
    parse_sensor_type,
)
from citytwin.twin.errors import InputError

EXPECTED = {
    "methane_detector": ("ch4_lel_pct", "%LEL"),
    "gas_pressure": ("pressure_pa", "Pa"),
    "gas_flow": ("flow_m3_s", "m3/s"),
    "water_level": ("depth_m", "m"),
    "reservoir_level": ("reservoir_level_m", "m"),
    "rain_gauge": ("rain_mm_h", "mm/h"),
    "smoke_detector": ("smoke_obscuration_pct_m", "%/m"),
    "heat_detector": ("gas_temperature_c", "degC"),
    "crowd_density_camera": ("crowd_density_p_m2", "p/m2"),
}


def test_shipped_catalogue_has_every_type_with_quantity_and_unit(catalogue):
    assert set(EXPECTED) <= set(catalogue)
    for type_id, (quantity, unit) in EXPECTED.items():
        st = catalogue[type_id]
        assert isinstance(st, SensorType)
        assert (st.id, st.quantity, st.unit) == (type_id, quantity, unit)
        assert st.range_min < st.range_max
        assert st.resolution > 0 and st.interval_s > 0
        assert 0 <= st.drop_probability < 1
        assert st.description and st.source


def test_every_shipped_type_revalidates(catalogue):
    raw = yaml.safe_load(default_catalogue_path().read_text(encoding="utf-8"))
    for type_id, entry in raw["sensor_types"].items():
        assert parse_sensor_type(type_id, entry, "x") == catalogue[type_id]


def test_methane_detector_matches_the_valve_well_spec(catalogue):
    st = catalogue["methane_detector"]
    assert (st.range_min, st.range_max) == (0.0, 100.0)
    assert st.response_t90_s < 25.0  # infrared CH4 t90 < 25 s
    # ±0.1 % vol on a 5 % vol LEL = ±2 %LEL; bias and noise together stay within it (2σ)
    assert 2 * math.hypot(st.bias_sd, st.noise_sd) <= 2.5
    assert st.resolution <= 2.0  # resolution ≤ 0.1 % vol
    assert st.interval_s == 10.0
    assert st.offline_rate_per_day > 0 and st.drop_probability > 0  # battery/wireless
    assert st.tau_s == pytest.approx(st.response_t90_s / math.log(10.0))


def test_heat_detector_lag_follows_rti(catalogue):
    # RTI 75 (m·s)^½ at 1 m/s: τ = 75 s
    assert catalogue["heat_detector"].tau_s == pytest.approx(75.0, abs=0.01)


def test_default_rulebook_names_catalogue_types_with_same_quantity_and_unit(catalogue):
    path = Path(str(resources.files("citytwin.alerting") / "data" / "default_rulebook.yaml"))
    if not path.is_file():
        pytest.skip("alerting default rulebook not present")
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]
    for rule in rules:
        for type_id in rule.get("sensor_types", []):
            st = catalogue[type_id]
            assert (st.quantity, st.unit) == (rule["quantity"], rule["unit"]), rule["id"]


# --- errors -----------------------------------------------------------------------------------

def _entry(**changes: object) -> dict:
    raw = yaml.safe_load(default_catalogue_path().read_text(encoding="utf-8"))
    entry = dict(raw["sensor_types"]["methane_detector"])
    entry.update(changes)
    return entry


def _write(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "cat.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (_entry(colour="red"), "unknown key(s) ['colour']"),
        ({k: v for k, v in _entry().items() if k != "noise_sd"}, "missing key(s) ['noise_sd']"),
        (_entry(resolution=0.0), "resolution must be > 0, got 0"),
        (_entry(resolution=-0.5), "resolution must be > 0, got -0.5"),
        (_entry(range_min=100.0), "range_min (100) must be below range_max (100)"),
        (_entry(range_min=5.0, range_max=1.0), "range_min (5) must be below range_max (1)"),
        (_entry(noise_sd=-1.0), "noise_sd must be ≥ 0, got -1"),
        (_entry(interval_s=0), "interval_s must be > 0, got 0"),
        (_entry(drop_probability=1.0), "drop_probability must be < 1, got 1"),
        (_entry(bias_sd="high"), "bias_sd must be a number, got 'high'"),
        (_entry(latency_s=True), "latency_s must be a number, got True"),
        (_entry(range_max=float("inf")), "range_max must be finite, got inf"),
        (_entry(unit=""), "unit must be a non-empty string, got ''"),
        (_entry(quantity=3), "quantity must be a non-empty string, got 3"),
        ([1, 2], "entry must be a mapping of fields, got list"),
    ],
)
def test_entry_errors_name_file_type_and_reason(tmp_path, entry, reason):
    path = _write(tmp_path, {"sensor_types": {"good": _entry(), "bad_detector": entry}})
    with pytest.raises(InputError) as info:
        load_catalogue(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == "bad_detector"
    assert err.reason == reason
    assert str(err) == f"{path}: bad_detector: {reason}"


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("sensor_types: [", None, "not valid YAML"),
        ("- a\n- b\n", None, "must be a YAML mapping"),
        ("sensors: {}\n", None, "unknown top-level key(s) ['sensors']"),
        ("sensor_types: {}\n", "sensor_types", "must be a non-empty mapping"),
    ],
)
def test_file_level_errors(tmp_path, text, field, reason):
    path = tmp_path / "cat.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_catalogue(path)
    assert info.value.source == str(path)
    assert info.value.field == field
    assert reason in info.value.reason


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(InputError, match="nope.yaml: cannot read sensor catalogue"):
        load_catalogue(path)


def test_a_custom_catalogue_loads_in_file_order(tmp_path):
    path = _write(tmp_path, {"name": "mine", "version": 2,
                             "sensor_types": {"b_type": _entry(), "a_type": _entry(unit="ppm")}})
    cat = load_catalogue(path)
    assert list(cat) == ["b_type", "a_type"]
    assert cat["a_type"].unit == "ppm" and cat["a_type"].id == "a_type"
    assert set(ENTRY_FIELDS) == set(_entry())
