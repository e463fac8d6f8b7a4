"""Detection and warning logic: observations → alarms → warnings (the same on live data)."""

if __name__ != "citytwin.alerting":  # the repo root on sys.path must not shadow the install
    raise ImportError(f"import citytwin.alerting, not {__name__} (citytwin installs its "
                      "packages under one root: pip install -e .)")

from citytwin.alerting.engine import Engine, EngineOutput
from citytwin.alerting.events import AlarmChange, WarningEvent
from citytwin.alerting.observation import Observation, ObservationBatch
from citytwin.alerting.rulebook import Rule, Rulebook, load_rulebook

__all__ = [
    "AlarmChange", "Engine", "EngineOutput", "Observation", "ObservationBatch", "Rule",
    "Rulebook", "WarningEvent", "load_rulebook",
]
