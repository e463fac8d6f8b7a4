"""One import root: the card's folders install as ``citytwin.<folder>`` and nothing else.

No generic top-level name (``physics``, ``scenarios``, ``viewer`` …) is installed, where
another distribution of the same name would silently replace it; and the repo root on
``sys.path`` (running from a clone) cannot shadow the installed package either.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("twin", "physics", "sensors_sim", "alerting", "scenarios", "viewer", "assets3d")


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin"})


@pytest.mark.parametrize("name", FOLDERS)
def test_only_the_citytwin_root_is_importable(name, tmp_path):
    bare = _python(f"import {name}", tmp_path)
    assert bare.returncode != 0
    assert f"No module named '{name}'" in bare.stderr
    rooted = _python(f"import citytwin.{name} as m; print(m.__file__)", tmp_path)
    assert rooted.returncode == 0, rooted.stderr
    assert Path(rooted.stdout.strip()).parent == ROOT / name


@pytest.mark.parametrize("name", FOLDERS)
def test_the_repo_root_cannot_shadow_the_installed_package(name):
    """From a clone's root, ``import physics`` finds the folder; it refuses to load as such."""
    shadow = _python(f"import {name}", ROOT)
    assert shadow.returncode != 0
    assert f"ImportError: import citytwin.{name}, not {name}" in shadow.stderr


def test_pyproject_lists_every_package_folder():
    """setuptools maps only listed packages into the wheel: every folder with an
    ``__init__.py`` under the card's folders must be listed (a new sub-package is not
    forgotten), and nothing else."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    listed = set(config["setuptools"]["packages"])
    found = {"citytwin." + ".".join(p.parent.relative_to(ROOT).parts)
             for folder in FOLDERS for p in (ROOT / folder).rglob("__init__.py")}
    assert listed == found
    assert config["setuptools"]["package-dir"] == {f"citytwin.{f}": f for f in FOLDERS}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"citytwin": "citytwin.scenarios.cli.main:main"}
