"""The run folder and what the manifest records about a run: its id, the library versions,
and the hazard-field snapshot file the renders read."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from citytwin.physics.base import FieldGrid
from citytwin.scenarios.run.prepare import PreparedRun
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import stable_key

LIBRARIES = ("citytwin", "numpy", "scipy", "simpy", "numba", "pandas", "shapely", "pyproj",
             "geopandas", "pydantic")

def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a run's numbers (recorded in the manifest)."""
    out = {"python": ".".join(map(str, sys.version_info[:2]))}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_id_for(run: PreparedRun) -> str:
    """A run id that depends only on the scenario content and seed."""
    text = json.dumps(run.scenario.model_dump(mode="json"), sort_keys=True)
    return f"{run.scenario.name}-{stable_key(text, run.scenario.seed):016x}"


#: The file citytwin leaves in every output folder it makes: ``--overwrite`` clears only
#: folders that carry it (or, made before it existed, hold a citytwin archive).
MARKER = ".citytwin-output"


def made_by_citytwin(folder: Path) -> bool:
    """Whether ``folder`` is an output folder citytwin made (its marker, or a citytwin
    archive with a manifest from before the marker)."""
    if (folder / MARKER).is_file():
        return True
    archive = folder / "archive.sqlite"
    if not archive.is_file():
        return False
    try:
        with sqlite3.connect(f"file:{archive}?mode=ro", uri=True) as db:
            return db.execute("SELECT 1 FROM manifest WHERE key = 'run_id'").fetchone() \
                is not None
    except sqlite3.Error:
        return False


def check_out_dir(run_dir: Path, overwrite: bool) -> None:
    """Refuse, touching nothing, an output folder that is a file or a symbolic link, a
    non-empty one without ``overwrite``, and with ``overwrite`` one citytwin did not make."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise InputError(str(run_dir), "is a symbolic link; give the folder itself (citytwin "
                         "never clears or writes through a link)", field="--out")
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(str(run_dir), "is a file, not a folder; choose another --out",
                         field="--out")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{run_dir}: run folder is not empty; choose another --out "
                                  "or pass --overwrite")
        if not made_by_citytwin(run_dir):
            raise InputError(str(run_dir), "is not a folder citytwin made (no "
                             f"{MARKER} marker, no citytwin archive), so --overwrite will not "
                             "clear it; choose another --out", field="--out")


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Create an empty output folder with citytwin's marker; refuse what ``check_out_dir``
    refuses, and clear a previous citytwin output only when asked (``overwrite``)."""
    run_dir = Path(run_dir)
    check_out_dir(run_dir, overwrite)
    if run_dir.exists() and any(run_dir.iterdir()):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MARKER).write_text("made by citytwin; `--overwrite` may clear this folder\n",
                                  encoding="utf-8")


def token(text: str) -> str:
    """``text`` with anything but letters, digits, ``-_.`` replaced by ``-`` (CAP senders)."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text) or "city"


def save_snapshot(path: Path, snapshot: dict[str, FieldGrid], t_s: float) -> None:
    """The hazard field when the warning area was largest, for renders (viewer reads it)."""
    arrays = {}
    for key, grid in sorted(snapshot.items()):
        safe = key.replace(":", "__")
        arrays[f"{safe}__xs"] = grid.xs_m
        arrays[f"{safe}__ys"] = grid.ys_m
        arrays[f"{safe}__values"] = grid.values
    arrays["t_s"] = np.array([t_s])
    np.savez_compressed(path, **arrays)

