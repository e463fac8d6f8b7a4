"""Detection and warning logic: observations → alarms → warnings (the same on live data)."""

from alerting.engine import Engine, EngineOutput
from alerting.events import AlarmChange, WarningEvent
from alerting.observation import Observation, ObservationBatch
from alerting.rulebook import Rule, Rulebook, load_rulebook

__all__ = [
    "AlarmChange", "Engine", "EngineOutput", "Observation", "ObservationBatch", "Rule",
    "Rulebook", "WarningEvent", "load_rulebook",
]
