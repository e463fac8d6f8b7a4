"""Saved twin folders: identical round trips, checked files, atomic writes."""

from __future__ import annotations

import hashlib
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from geopandas.testing import assert_geodataframe_equal
from shapely.geometry import MultiPolygon, box

import citytwin.twin.store as store
from citytwin.twin.errors import TwinValidationError
from citytwin.twin.model import CityTwin
from citytwin.twin.store import load_twin, save_twin
from citytwin.twin.synthetic import synthetic_city


def raises(match: str):
    return pytest.raises(TwinValidationError, match=re.escape(match))


def assert_same_twin(a: CityTwin, b: CityTwin) -> None:
    assert a.name == b.name
    assert a.crs == b.crs and a.crs.to_wkt() == b.crs.to_wkt()
    assert a.metadata == b.metadata
    za, zb = a.terrain.elevation_m, b.terrain.elevation_m
    assert za.dtype == zb.dtype and za.shape == zb.shape
    assert np.array_equal(za, zb) and za.tobytes() == zb.tobytes()
    assert a.terrain.transform == b.terrain.transform
    assert a.terrain.crs == b.terrain.crs
    layers = [("buildings", a.buildings, b.buildings), ("places", a.places, b.places),
              ("reservoirs", a.reservoirs, b.reservoirs)]
    assert list(a.networks) == list(b.networks)
    for key in a.networks:
        assert a.networks[key].name == b.networks[key].name
        layers += [(f"{key}_nodes", a.networks[key].nodes, b.networks[key].nodes),
                   (f"{key}_links", a.networks[key].links, b.networks[key].links)]
    for name, left, right in layers:
        assert list(left.columns) == list(right.columns), name
        # Exact: dtypes, values, coordinates (no tolerance) and CRS.
        assert_geodataframe_equal(left, right, check_dtype=True, check_less_precise=False,
                                  check_crs=True, check_geom_type=True)
        pd.testing.assert_frame_equal(left.drop(columns=left.geometry.name),
                                      right.drop(columns=right.geometry.name))
        assert np.array_equal(left.geometry.get_coordinates().to_numpy(),
                              right.geometry.get_coordinates().to_numpy()), name


def test_synthetic_city_round_trip_is_identical(tmp_path):
    city = synthetic_city(seed=1, size="tiny")
    assert {"gas", "water", "drainage"} <= set(city.networks)
    assert len(city.places) and len(city.reservoirs) and len(city.buildings)
    folder = save_twin(city, tmp_path / "city")
    assert folder == tmp_path / "city"
    assert sorted(p.name for p in folder.iterdir()) == ["layers.gpkg", "manifest.json",
                                                        "terrain.tif"]
    assert_same_twin(city, load_twin(folder))


def test_hand_made_twin_with_empty_layers_float32_and_nullable_ints(tmp_path, small_twin):
    small_twin.places = small_twin.places.iloc[:0]
    small_twin.reservoirs = small_twin.reservoirs.iloc[:0]
    t = small_twin.terrain
    small_twin.terrain = type(t)(t.elevation_m.astype(np.float32), t.transform, t.crs)
    small_twin.buildings["year_built"] = pd.array([1990, pd.NA, 1970], dtype="Int64")
    small_twin.buildings.loc[1, "geometry"] = MultiPolygon(
        [box(500_100, 6_399_900, 500_110, 6_399_910), box(500_120, 6_399_900, 500_130,
                                                            6_399_910)])
    small_twin.networks["water"].links = small_twin.networks["water"].links.iloc[:0]
    folder = save_twin(small_twin, tmp_path / "small")
    back = load_twin(folder)
    assert back.terrain.elevation_m.dtype == np.float32
    assert back.buildings.geom_type.tolist() == ["Polygon", "MultiPolygon", "Polygon"]
    assert len(back.places) == 0 and len(back.networks["water"].links) == 0
    assert_same_twin(small_twin, back)


def test_twin_made_from_empty_layer_helper_round_trips(tmp_path, small_twin):
    twin = CityTwin(name="bare", crs=small_twin.crs, terrain=small_twin.terrain,
                    buildings=small_twin.buildings)  # places/reservoirs from empty_layer
    assert_same_twin(twin, load_twin(save_twin(twin, tmp_path / "bare")))


def test_manifest_contents(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "citytwin-twin" and manifest["format_version"] == 1
    assert manifest["name"] == "small"
    assert manifest["crs"]["epsg"] == 3006 and "SWEREF99 TM" in manifest["crs"]["wkt"]
    assert list(manifest["layers"]) == ["buildings", "places", "reservoirs", "gas_nodes",
                                        "gas_links", "water_nodes", "water_links"]
    assert manifest["layers"]["buildings"]["columns"] == [
        "id", "height_m", "floors", "use", "occupants", "year_built", "geometry"]
    assert manifest["networks"]["gas"] == {"name": "gas", "nodes_layer": "gas_nodes",
                                           "links_layer": "gas_links"}
    assert manifest["metadata"] == small_twin.metadata
    assert manifest["terrain"]["file"] == "terrain.tif"
    assert manifest["terrain"]["transform"] == list(small_twin.terrain.transform)[:6]
    for name in ("layers.gpkg", "terrain.tif"):
        data = (folder / name).read_bytes()
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(),
                                           "size_bytes": len(data)}
    assert set(pyogrio.list_layers(folder / "layers.gpkg")[:, 0]) == set(manifest["layers"])


def test_checksum_mismatch_after_tampering(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    tif = folder / "terrain.tif"
    data = bytearray(tif.read_bytes())
    data[-1] ^= 0xFF
    tif.write_bytes(bytes(data))
    with raises(f"{tif}: sha256: checksum mismatch: manifest.json says sha256 "):
        load_twin(folder)


def test_missing_file(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    (folder / "layers.gpkg").unlink()
    with raises(f"{folder / 'layers.gpkg'}: file is missing (listed in manifest.json)"):
        load_twin(folder)


def test_missing_manifest_and_missing_folder(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    (folder / "manifest.json").unlink()
    with raises(f"{folder / 'manifest.json'}: file is missing: not a saved twin folder"):
        load_twin(folder)
    with raises(f"{tmp_path / 'nowhere'}: is not a folder (no saved twin here)"):
        load_twin(tmp_path / "nowhere")


def _edit_manifest(folder, edit) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_newer_format_version_and_foreign_format(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    _edit_manifest(folder, lambda m: m.update(format_version=2))
    with raises(f"{folder / 'manifest.json'}: format_version: format version 2 is newer than "
                "this citytwin reads (≤ 1); upgrade citytwin"):
        load_twin(folder)
    _edit_manifest(folder, lambda m: m.update(format="something-else"))
    with raises("format: format is 'something-else', expected 'citytwin-twin'"):
        load_twin(folder)


def test_broken_manifest_json(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    (folder / "manifest.json").write_text('{"format": ', encoding="utf-8")
    with raises(f"{folder / 'manifest.json'}: is not valid JSON (line 1, column 12"):
        load_twin(folder)


def test_load_validates_the_twin(tmp_path, small_twin):
    """A layer edited behind the manifest's back (checksum updated) still fails validation."""
    folder = save_twin(small_twin, tmp_path / "small")
    gpkg = folder / "layers.gpkg"
    b = pyogrio.read_dataframe(gpkg, layer="buildings")
    b.loc[0, "height_m"] = -1.0
    pyogrio.write_dataframe(b, gpkg, layer="buildings")
    digest = hashlib.sha256(gpkg.read_bytes()).hexdigest()
    _edit_manifest(folder, lambda m: m["files"]["layers.gpkg"].update(sha256=digest))
    with raises(f"{folder}: buildings.height_m (feature B-1): height must be finite and > 0 m, "
                "got -1.0"):
        load_twin(folder)


def test_invalid_twin_is_rejected_before_anything_is_written(tmp_path, small_twin):
    small_twin.networks["gas"].links.loc[0, "to_node"] = "G-missing"
    with raises("twin 'small': gas_links.to_node (feature G-l1): link refers to a node that "
                "does not exist"):
        save_twin(small_twin, tmp_path / "out" / "small")
    assert not (tmp_path / "out").exists()


def test_metadata_must_survive_json(tmp_path, small_twin):
    small_twin.metadata["bbox"] = (1.0, 2.0)
    with raises("twin 'small': metadata.bbox: value does not survive JSON unchanged"):
        save_twin(small_twin, tmp_path / "small")
    small_twin.metadata["bbox"] = np.int64(3)
    with raises("twin 'small': metadata.bbox: value is not JSON-serialisable"):
        save_twin(small_twin, tmp_path / "small")
    assert not (tmp_path / "small").exists()


def test_interrupted_save_leaves_no_half_written_twin(tmp_path, small_twin, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_write_terrain", boom)
    with pytest.raises(OSError, match="disk full"):
        save_twin(small_twin, tmp_path / "small")
    assert list(tmp_path.iterdir()) == []  # neither the twin nor a temporary folder


def test_failed_resave_keeps_the_previous_twin(tmp_path, small_twin, monkeypatch):
    folder = save_twin(small_twin, tmp_path / "small")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    small_twin.name = "changed"
    monkeypatch.setattr(store, "_write_terrain",
                        lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError, match="disk full"):
        save_twin(small_twin, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["small"]


def test_resave_replaces_a_saved_twin(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    small_twin.name = "renamed"
    save_twin(small_twin, folder)
    assert load_twin(folder).name == "renamed"
    assert [p.name for p in tmp_path.iterdir()] == ["small"]


def test_refuses_to_overwrite_a_folder_that_is_not_a_twin(tmp_path, small_twin):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"\xff\xd8")
    with raises(f"{other}: exists and is not a saved twin; refusing to overwrite it"):
        save_twin(small_twin, other)
    assert [p.name for p in other.iterdir()] == ["holiday.jpg"]


def test_saving_into_an_existing_empty_folder(tmp_path, small_twin):
    (tmp_path / "empty").mkdir()
    folder = save_twin(small_twin, tmp_path / "empty")
    assert load_twin(folder).name == "small"


def test_manifest_is_deterministic(tmp_path, small_twin):
    a = save_twin(small_twin, tmp_path / "a") / "manifest.json"
    b = save_twin(small_twin, tmp_path / "b") / "manifest.json"
    ma, mb = (json.loads(p.read_text(encoding="utf-8")) for p in (a, b))
    for m in (ma, mb):
        m.pop("files")  # GeoPackages carry a modification timestamp
    assert ma == mb


def test_layer_missing_from_geopackage(tmp_path, small_twin):
    folder = save_twin(small_twin, tmp_path / "small")
    gpkg = folder / "layers.gpkg"
    tmp = tmp_path / "rewritten.gpkg"
    for name in pyogrio.list_layers(gpkg)[:, 0]:
        if name != "places":
            pyogrio.write_dataframe(pyogrio.read_dataframe(gpkg, layer=name), tmp, layer=name,
                                    promote_to_multi=False)
    tmp.replace(gpkg)
    digest = hashlib.sha256(gpkg.read_bytes()).hexdigest()
    _edit_manifest(folder, lambda m: m["files"]["layers.gpkg"].update(sha256=digest))
    with raises(f"{gpkg}: places: cannot read layer"):
        load_twin(folder)


def test_geodataframe_equal_would_catch_a_coordinate_change(small_twin):
    """Guards the round-trip assertions themselves: they are exact, not approximate."""
    other = small_twin.buildings.copy()
    other.loc[0, "geometry"] = gpd.GeoSeries([box(500_020, 6_399_820, 500_050,
                                                  6_399_850.000001)]).iloc[0]
    with pytest.raises(AssertionError):
        assert_geodataframe_equal(small_twin.buildings, other, check_less_precise=False)
