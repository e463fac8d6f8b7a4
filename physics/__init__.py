"""Hazard engines: one module per hazard, one contract (``physics.base``), one registry.

Importing this package registers every engine in ``ENGINES``.
"""

from physics.base import (
    ENGINES,
    FieldGrid,
    HazardEngine,
    QuantityInfo,
    get_engine,
    polygonize,
    register_engine,
)
from physics.dambreak import DamBreakFlood as DamBreakFlood  # registers "dam_break"
from physics.flood import LocalInertialFlood as LocalInertialFlood  # registers "flood"
from physics.forcing import ReleaseSchedule, WindSeries
from physics.plume import GaussianPuffPlume

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
