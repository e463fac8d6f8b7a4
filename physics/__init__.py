"""Hazards: one module per hazard, one contract (``physics.base`` for engines,
``physics.hazard`` for the hazard descriptor), one registry that every other package reads.

Importing this package registers the hazards named in ``HAZARD_MODULES`` (adding a hazard is
writing its module and adding its name there) and any a separately installed distribution
declares under the entry-point group ``citytwin.hazards``.
"""

if __name__ != "citytwin.physics":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.physics, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")

import importlib
from importlib import metadata

from citytwin.physics.base import (
    ENGINES,
    FieldGrid,
    HazardEngine,
    QuantityInfo,
    get_engine,
    polygonize,
    register_engine,
)
from citytwin.physics.dambreak import DamBreakFlood as DamBreakFlood
from citytwin.physics.flood import LocalInertialFlood as LocalInertialFlood
from citytwin.physics.forcing import ReleaseSchedule, WindSeries
from citytwin.physics.hazard import HAZARDS, HazardDescriptor, get_hazard, register_hazard
from citytwin.physics.plume import GaussianPuffPlume

#: The hazards this package ships, in registration order (each module registers itself).
HAZARD_MODULES = ("gas_plume", "urban_flood", "dam_break")

for _name in HAZARD_MODULES:
    importlib.import_module(f"citytwin.physics.{_name}")
for _entry in metadata.entry_points(group="citytwin.hazards"):
    _entry.load()  # a plug-in module registers its descriptor when imported

__all__ = [
    "ENGINES",
    "HAZARDS",
    "HAZARD_MODULES",
    "HazardDescriptor",
    "FieldGrid",
    "GaussianPuffPlume",
    "HazardEngine",
    "QuantityInfo",
    "ReleaseSchedule",
    "WindSeries",
    "get_engine",
    "get_hazard",
    "polygonize",
    "register_engine",
    "register_hazard",
]
