"""Fixtures for sensors_sim tests: the shipped catalogue and a tiny twin."""

from __future__ import annotations

import pytest

from citytwin.sensors_sim.catalogue import SensorType, load_catalogue
from citytwin.twin.model import CityTwin
from tests.sensors_sim.support import make_tiny_twin


@pytest.fixture(scope="session")
def catalogue() -> dict[str, SensorType]:
    """The shipped catalogue."""
    return load_catalogue()


@pytest.fixture
def tiny_twin() -> CityTwin:
    """A fresh tiny twin (see ``support.make_tiny_twin``)."""
    return make_tiny_twin()
