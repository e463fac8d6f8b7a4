"""Hazard engines: one module per hazard, one contract (``physics.base``), one registry.

Importing this package registers every engine in ``ENGINES``.
"""

if __name__ != "citytwin.physics":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.physics, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")

from citytwin.physics.base import (
    ENGINES,
    FieldGrid,
    HazardEngine,
    QuantityInfo,
    get_engine,
    polygonize,
    register_engine,
)
from citytwin.physics.dambreak import DamBreakFlood as DamBreakFlood  # registers "dam_break"
from citytwin.physics.flood import LocalInertialFlood as LocalInertialFlood  # registers "flood"
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.plume import GaussianPuffPlume

__all__ = [
    "ENGINES",
    "FieldGrid",
    "GaussianPuffPlume",
    "HazardEngine",
    "QuantityInfo",
    "ReleaseSchedule",
    "WindSeries",
    "get_engine",
    "polygonize",
    "register_engine",
]
