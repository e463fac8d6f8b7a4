"""The run folder and what the manifest records about a run: its id, the library versions,
and the hazard-field snapshot file the renders read."""

from __future__ import annotations

import json
import shutil
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from citytwin.physics.base import FieldGrid
from citytwin.scenarios.run.prepare import PreparedRun
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


def prepare_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Create an empty run folder; refuse to clobber a previous run unless asked."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{run_dir}: run folder is not empty; choose another --out "
                                  "or pass --overwrite")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


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

