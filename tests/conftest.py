"""Fixtures for every test package: the shared reference data beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` next to the repository; skipped when absent (a user's clone has none)."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip("../shared reference data not present (a user's clone has none)")
    return path


@pytest.fixture(scope="session")
def gothenburg_dir(shared_dir: Path) -> Path:
    """The Gothenburg Kronenhuset block (DEM, DSM, building footprints; EPSG:3007, 1 m)."""
    path = shared_dir / "realdata" / "gothenburg_kronenhuset"
    if not (path / "DEM_KRbig.tif").is_file():
        pytest.skip(f"{path} not present in ../shared")
    return path
