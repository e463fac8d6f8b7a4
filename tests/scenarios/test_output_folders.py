"""--overwrite only ever clears a folder citytwin made (issue 12, data loss first): an
unrelated folder given as --out is refused and left untouched, as are a file and a symbolic
link; a previous citytwin output (with its marker, or an archive from before the marker) is
replaced when asked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citytwin.scenarios.cli.main import main
from citytwin.scenarios.run.run_files import MARKER

from .conftest import short_scenario


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def scenario(write_scenario):
    return write_scenario(short_scenario(duration_s=120))


def test_overwrite_refuses_a_folder_citytwin_did_not_make(scenario, tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "2026").mkdir(parents=True)
    (photos / "2026" / "holiday.jpg").write_bytes(b"\xff\xd8 irreplaceable")
    (photos / "notes.txt").write_text("keep me")
    before = _tree(photos)
    assert main(["run", str(scenario), "--out", str(photos), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{photos}: --out: is not a folder citytwin made" in err
    assert "will not clear it" in err and "Traceback" not in err
    assert _tree(photos) == before  # nothing deleted, nothing written


def test_overwrite_replaces_a_previous_citytwin_output(scenario, tmp_path):
    out = tmp_path / "run"
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 0
    assert (out / MARKER).is_file() and (out / "archive.sqlite").is_file()
    (out / "stale.txt").write_text("from an earlier run")
    assert main(["run", str(scenario), "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert not (out / "stale.txt").exists() and (out / "archive.sqlite").is_file()
    # an output from before the marker existed is recognised by its citytwin archive
    (out / MARKER).unlink()
    assert main(["run", str(scenario), "--out", str(out), "--overwrite", "--quiet"]) == 0
    # without --overwrite a previous output is never replaced
    assert main(["run", str(scenario), "--out", str(out), "--quiet"]) == 1


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_out_as_a_file_or_a_symlink_is_one_clear_error(scenario, tmp_path, capsys, kind):
    target = tmp_path / "real"
    if kind == "file":
        out = tmp_path / "out.txt"
        out.write_text("not a folder")
        words = "is a file, not a folder"
    else:
        target.mkdir()
        (target / "keep.txt").write_text("keep")
        out = tmp_path / "out"
        os.symlink(target, out)
        words = "is a symbolic link"
    before = _tree(tmp_path)
    assert main(["run", str(scenario), "--out", str(out), "--overwrite", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{out}: --out: {words}" in err and "Traceback" not in err
    assert _tree(tmp_path) == before


def test_every_overwrite_command_refuses_a_foreign_folder(tmp_path, capsys):
    """replay export and drill run share the rule (one check in run_files)."""
    demo = tmp_path / "demo"
    assert main(["demo", "--out", str(demo), "--quiet"]) == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("a,b\n")
    assert main(["replay", "export", str(demo / "archive.sqlite"), "--out", str(foreign),
                 "--overwrite"]) == 2
    assert "is not a folder citytwin made" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["data.csv"]
