"""`citytwin twin build|info` on the real Gothenburg block and on the synthetic city."""

import json

from citytwin.scenarios.cli.main import main


def test_build_gothenburg_twin_from_real_files(gothenburg_dir, tmp_path, capsys):
    out = tmp_path / "gothenburg"
    assert main(["twin", "build", "--dem", str(gothenburg_dir / "DEM_KRbig.tif"),
                 "--dsm", str(gothenburg_dir / "DSM_KRbig.tif"),
                 "--buildings", str(gothenburg_dir / "buildings.shp"),
                 "--name", "gothenburg-kronenhuset", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["twin", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["crs"] == "EPSG:3007"
    assert info["terrain_shape"] == [223, 234]
    assert 30 <= info["buildings"] <= 41  # 41 footprints overlap the DEM; a few lack height
    assert info["population"] > 0


def test_build_synthetic_twin_and_info(tmp_path, capsys):
    out = tmp_path / "syn"
    assert main(["twin", "build", "--synthetic", "3", "--size", "tiny", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["twin", "info", str(out)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "synthetic-3-600m" and info["networks"]["gas"]["nodes"] > 0
