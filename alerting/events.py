"""What the engine emits: alarm level changes and warning lifecycle events."""

from __future__ import annotations

from dataclasses import dataclass

#: Warning events that end a warning: the all-clear, and a withdrawal.
CLOSING = ("cleared", "cancelled")


@dataclass(frozen=True)
class AlarmChange:
    """A sensor's level under a rule changed (0 = no alarm)."""

    time_s: float        # phenomenon time of the reading that changed the level
    known_at_s: float    # when the platform received it
    sensor_id: str
    rule_id: str
    hazard: str
    from_level: int
    to_level: int
    value: float
    first_exceedance_s: float  # first reading above the rule's lowest threshold this episode
    warning_id: str = ""       # the incident the change was folded into ("" if none)


@dataclass(frozen=True)
class WarningEvent:
    """A warning (one incident) changed: see ``alerting.warnings`` for the lifecycle."""

    time_s: float
    known_at_s: float
    warning_id: str
    event: str           # raised | escalated | deescalated | updated | cleared | cancelled
    hazard: str
    level: int
    level_name: str
    basis: str           # "sensors" | "model" (a forecast-only pre-warning)
    certainty: str       # CAP certainty: "Observed" | "Likely"
    sensors: tuple[str, ...]
    first_exceedance_s: float
    area_wkt: str
    area_m2: float
    area_source: str     # "model", "buffer", "buffer+model" (rules differ) or "none"
    targets: tuple[str, ...]
    population: int
    loop: str            # small | middle | big
    lead_unit: str
    recipients: tuple[str, ...]
    reason: str          # why the level is what it is
