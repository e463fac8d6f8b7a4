"""The rulebook: warning levels, detection rules, forecasts and impact policy, from YAML.

Who is told is the routing table's job (``alerting.routing``), not the rulebook's.

Validated with pydantic; a bad rulebook raises ``InputError`` naming the file and the field
path (e.g. ``rules.0.thresholds``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from citytwin.alerting.cap import CATEGORIES, RESPONSE_TYPES
from citytwin.twin.yamlfile import load_yaml_model

DEFAULT_RULEBOOK = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Debounce(_Strict):
    """N-of-M: a level is raised when at least ``n`` of the last ``m`` readings exceed it."""

    n: int = Field(1, ge=1)
    m: int = Field(1, ge=1, le=32)

    @model_validator(mode="after")
    def _n_le_m(self) -> Debounce:
        if self.n > self.m:
            raise ValueError(f"n ({self.n}) must not exceed m ({self.m})")
        return self


class AreaSpec(_Strict):
    """How a warning's affected area is drawn."""

    buffer_m: float = Field(100.0, gt=0)
    model_level: str | None = None
    #: Footprint threshold in the quantity's units (default: the model_level's threshold;
    #: composites, whose thresholds are index values, must give it).
    model_threshold: float | None = None
    #: The model quantity whose footprint is drawn (default: the rule's quantity), e.g. the
    #: flood depth for a reservoir-level rule.
    model_quantity: str | None = None


RULE_KINDS = ("threshold", "rate_of_rise", "composite")


class Corroboration(_Strict):
    """Raise a warning's level when ``min_sensors`` distinct sensors alarm at ``min_level`` or
    above within ``radius_m`` of one another or on the same network segment (sensors on the two
    end nodes of one pipe link) — independent readings agreeing make the event more certain."""

    min_sensors: int = Field(2, ge=2)
    radius_m: float = Field(200.0, gt=0)
    same_segment: bool = True
    min_level: str | None = None   # default: the rule's lowest level
    raise_by: int = Field(1, ge=1)


class Composite(_Strict):
    """A composite index over other rules' current levels at the same site.

    ``index = max(level_r)`` (combine ``max``) or ``sum(w_r * level_r)`` (``weighted``) over
    the rules in ``of``, where level_r is the highest level of any sensor of the site under
    rule r; the composite's thresholds then grade the index (default: index ≥ k → level k).
    """

    of: list[str] = Field(min_length=1)
    combine: str = Field("max", pattern="^(max|weighted)$")
    weights: dict[str, float] = Field(default_factory=dict)
    group_by: str = Field("sensor", pattern="^(sensor|site)$")


class Override(_Strict):
    """Per-asset settings: thresholds/hysteresis for the sensors named, or on the assets named."""

    sensors: list[str] = Field(default_factory=list)
    assets: list[str] = Field(default_factory=list)
    thresholds: dict[str, float] = Field(default_factory=dict)
    hysteresis: float | None = Field(None, ge=0)


class Rule(_Strict):
    """A multi-level detection rule with hysteresis, N-of-M debounce and a minimum duration.

    ``kind``: ``threshold`` grades the reading; ``rate_of_rise`` grades the rise per minute
    over ``window_s`` (units: the quantity's unit per minute; ``direction: falling`` grades
    the fall instead, e.g. a reservoir draining through a breach); ``composite`` grades an index
    over other rules (see ``Composite``). ``sustain_s`` > 0 makes a level count only once the
    graded value has stayed at or above its threshold for that long (sustained exceedance).
    ``warn: false`` rules alarm the asset owner but open no warning themselves (their level
    feeds a composite that does). ``unit`` is the unit of the readings the rule takes (the
    thresholds of a rate-of-rise rule are that unit per minute; a composite's are levels).
    """

    id: str
    hazard: str
    description: str = ""
    kind: str = Field("threshold", pattern=f"^({'|'.join(RULE_KINDS)})$")
    quantity: str
    unit: str
    sensor_types: list[str] = Field(default_factory=list)
    thresholds: dict[str, float]
    hysteresis: float = Field(0.0, ge=0)
    debounce: Debounce = Debounce()
    sustain_s: float = Field(0.0, ge=0)
    window_s: float = Field(60.0, gt=0)
    #: rate_of_rise only: no rate until the readings span this long (s) — a rate over one
    #: reporting interval of a quantised, noisy gauge is noise, not a trend
    min_span_s: float = Field(0.0, ge=0)
    direction: str = Field("rising", pattern="^(rising|falling)$")  # rate_of_rise only
    composite: Composite | None = None
    corroboration: Corroboration | None = None
    overrides: list[Override] = Field(default_factory=list)
    warn: bool = True
    cluster_radius_m: float = Field(300.0, gt=0)
    area: AreaSpec = AreaSpec()


class Forecast(_Strict):
    """Model-based pre-warning: the attached hazard model is run ``horizon_s`` ahead every
    ``interval_s``; when it predicts ``quantity`` at a protected target reaching a level's
    threshold, a warning (basis ``model``, certainty Likely) is raised before any sensor sees
    it. ``max_level`` caps a forecast-only warning's level."""

    id: str
    hazard: str
    description: str = ""
    quantity: str
    unit: str
    thresholds: dict[str, float]
    targets: str = Field("protected", pattern="^(protected|places)$")  # where it forecasts
    horizon_s: float = Field(900.0, gt=0)
    interval_s: float = Field(60.0, gt=0)
    step_s: float = Field(30.0, gt=0)
    height_m: float = Field(1.5, ge=0)
    max_level: str | None = None
    #: Grade by time left instead: level → longest lead time (s) from the forecast to the
    #: predicted arrival (value reaching the lowest threshold) that still earns that level.
    arrival_levels: dict[str, float] = Field(default_factory=dict)
    cluster_radius_m: float = Field(500.0, gt=0)
    area: AreaSpec = AreaSpec()


class ImpactPolicy(_Strict):
    """Level from impact: a protected target inside the area lifts the warning to at least
    ``protected_target_level``; population inside lifts it per ``population_levels``."""

    protected_target_level: str | None = None
    population_levels: dict[str, int] = Field(default_factory=dict)
    area_update_ratio: float = Field(0.25, gt=0)   # re-issue when the area changes this much


#: CAP 1.2 ``<category>`` and ``<responseType>`` values (3.3.2; the lists in alerting.cap).
CapCategory = Literal[CATEGORIES]  # type: ignore[valid-type]
CapResponse = Literal[RESPONSE_TYPES]  # type: ignore[valid-type]


class HazardInfo(_Strict):
    """How warnings of a hazard with no physics module (sensor-only, e.g. a crowd density
    rule on live counts) read in CAP and to the public. Hazards with a module declare this
    in it (``physics/<kind>.py``); an entry here overrides theirs."""

    categories: list[CapCategory] = Field(min_length=1)
    event: str = Field(min_length=1)
    #: public ``<responseType>`` by level rank from the top (Extreme, Severe, Moderate, Minor)
    public_responses: tuple[CapResponse, CapResponse, CapResponse, CapResponse]
    instruction: str = Field(min_length=1)


class Rulebook(_Strict):
    """Levels (least to most severe), detection rules, forecasts, the impact policy, and how
    warnings of hazards without a physics module read (``hazard_info``)."""

    name: str
    version: int = 1
    levels: list[str] = Field(min_length=3, max_length=4)
    rules: list[Rule] = Field(min_length=1)
    forecasts: list[Forecast] = Field(default_factory=list)
    impact: ImpactPolicy = ImpactPolicy()
    hazard_info: dict[str, HazardInfo] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Rulebook:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be distinct, got {self.levels}")
        ids = [r.id for r in self.rules] + [f.id for f in self.forecasts]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule id(s) {dupes}")
        seen: set[str] = set()
        for k, rule in enumerate(self.rules):
            self._check_thresholds(f"rules.{k} ({rule.id})", rule.thresholds)
            for j, ov in enumerate(rule.overrides):
                if ov.thresholds:
                    self._check_thresholds(f"rules.{k}.overrides.{j} ({rule.id})",
                                           {**rule.thresholds, **ov.thresholds})
            if rule.kind == "composite" and rule.area.model_level is not None \
                    and rule.area.model_threshold is None:
                raise ValueError(f"rules.{k} ({rule.id}): a composite's area needs "
                                 "model_threshold (its thresholds are index values)")
            if rule.area.model_level is not None and rule.area.model_level not in rule.thresholds:
                raise ValueError(f"rules.{k} ({rule.id}): area.model_level "
                                 f"{rule.area.model_level!r} has no threshold")
            if (rule.kind == "composite") != (rule.composite is not None):
                raise ValueError(f"rules.{k} ({rule.id}): a composite rule needs a 'composite' "
                                 "section and only a composite rule may have one")
            if rule.composite is not None:
                late = [r for r in rule.composite.of if r not in seen]
                if late:
                    raise ValueError(f"rules.{k} ({rule.id}): composite.of names {late}, which "
                                     "must be rules listed before it")
            if rule.min_span_s > 0 and (rule.kind != "rate_of_rise"
                                        or rule.min_span_s > rule.window_s):
                raise ValueError(f"rules.{k} ({rule.id}): min_span_s {rule.min_span_s:g} s "
                                 "needs a rate_of_rise rule and at most its window_s "
                                 f"({rule.window_s:g} s): else the rule never grades")
            c = rule.corroboration
            if c is not None and c.min_level is not None and c.min_level not in self.levels:
                raise ValueError(f"rules.{k} ({rule.id}): corroboration.min_level "
                                 f"{c.min_level!r} is not one of {self.levels}")
            seen.add(rule.id)
        for k, fc in enumerate(self.forecasts):
            self._check_thresholds(f"forecasts.{k} ({fc.id})", fc.thresholds)
            bad = [lv for lv in fc.arrival_levels if lv not in self.levels]
            if bad:
                raise ValueError(f"forecasts.{k} ({fc.id}): arrival_levels name unknown "
                                 f"level(s) {bad}; levels are {self.levels}")
            if fc.max_level is not None and fc.max_level not in self.levels:
                raise ValueError(f"forecasts.{k} ({fc.id}): max_level {fc.max_level!r} is not "
                                 f"one of {self.levels}")
        named = [self.impact.protected_target_level, *self.impact.population_levels]
        bad = [lv for lv in named if lv is not None and lv not in self.levels]
        if bad:
            raise ValueError(f"impact names unknown level(s) {bad}; levels are {self.levels}")
        return self

    def _check_thresholds(self, where: str, thresholds: dict[str, float]) -> None:
        bad = set(thresholds) - set(self.levels)
        if bad:
            raise ValueError(f"{where}: thresholds name unknown level(s) {sorted(bad)}; "
                             f"levels are {self.levels}")
        if not thresholds:
            raise ValueError(f"{where}: no thresholds")
        values = [thresholds[lv] for lv in self.levels if lv in thresholds]
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError(f"{where}: thresholds must increase with level, got {thresholds}")

    @property
    def hazards(self) -> list[str]:
        """Every hazard the rulebook warns of (detection rules and forecasts), sorted."""
        return sorted({r.hazard for r in self.rules} | {f.hazard for f in self.forecasts})

    def level_number(self, name: str) -> int:
        """1 for the least severe level … len(levels) for the most severe."""
        return self.levels.index(name) + 1

    def level_name(self, number: int) -> str:
        """Inverse of level_number; 0 → 'none'."""
        return "none" if number == 0 else self.levels[number - 1]

    def threshold_vector(self, rule: Rule | Forecast) -> np.ndarray:
        """Thresholds by level number 1..K (NaN where the rule has no such level)."""
        return np.array([rule.thresholds.get(lv, np.nan) for lv in self.levels], dtype=float)

    def rule(self, rule_id: str) -> Rule | Forecast:
        """The rule or forecast with this id; KeyError naming the known ids otherwise."""
        for r in [*self.rules, *self.forecasts]:
            if r.id == rule_id:
                return r
        raise KeyError(f"no rule {rule_id!r} in rulebook {self.name!r}")


def load_rulebook(source: str | Path = DEFAULT_RULEBOOK) -> Rulebook:
    """Load a rulebook from a YAML path, or the shipped default for ``"default"``."""
    return load_yaml_model(source, Rulebook, "rulebook", package="citytwin.alerting",
                           default_resource="data/default_rulebook.yaml")
