"""The rulebook: warning levels, detection rules and recipients, loaded from YAML.

Validated with pydantic; a bad rulebook raises ``InputError`` naming the file and the field
path (e.g. ``rules.0.thresholds``).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from twin.errors import InputError
from twin.yamlfile import parse_yaml_mapping, read_yaml_mapping

DEFAULT_RULEBOOK = "default"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class Rule(_Strict):
    """A multi-level threshold rule on one quantity, with hysteresis and N-of-M debounce."""

    id: str
    hazard: str
    description: str = ""
    quantity: str
    unit: str
    sensor_types: list[str] = Field(default_factory=list)
    thresholds: dict[str, float]
    hysteresis: float = Field(0.0, ge=0)
    debounce: Debounce = Debounce()
    cluster_radius_m: float = Field(300.0, gt=0)
    area: AreaSpec = AreaSpec()


class Rulebook(_Strict):
    """Levels (least to most severe), recipients per level and the rules."""

    name: str
    version: int = 1
    levels: list[str] = Field(min_length=3, max_length=4)
    recipients: dict[str, list[str]]
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Rulebook:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be distinct, got {self.levels}")
        unknown = set(self.recipients) - set(self.levels)
        if unknown:
            raise ValueError(f"recipients name unknown level(s) {sorted(unknown)}")
        ids = [r.id for r in self.rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule id(s) {dupes}")
        for k, rule in enumerate(self.rules):
            bad = set(rule.thresholds) - set(self.levels)
            if bad:
                raise ValueError(f"rules.{k} ({rule.id}): thresholds name unknown level(s) "
                                 f"{sorted(bad)}; levels are {self.levels}")
            if not rule.thresholds:
                raise ValueError(f"rules.{k} ({rule.id}): no thresholds")
            values = [rule.thresholds[lv] for lv in self.levels if lv in rule.thresholds]
            if any(b <= a for a, b in zip(values, values[1:], strict=False)):
                raise ValueError(f"rules.{k} ({rule.id}): thresholds must increase with level, "
                                 f"got {rule.thresholds}")
            if rule.area.model_level is not None and rule.area.model_level not in rule.thresholds:
                raise ValueError(f"rules.{k} ({rule.id}): area.model_level "
                                 f"{rule.area.model_level!r} has no threshold")
        return self

    def level_number(self, name: str) -> int:
        """1 for the least severe level … len(levels) for the most severe."""
        return self.levels.index(name) + 1

    def level_name(self, number: int) -> str:
        """Inverse of level_number; 0 → 'none'."""
        return "none" if number == 0 else self.levels[number - 1]

    def threshold_vector(self, rule: Rule) -> np.ndarray:
        """Thresholds by level number 1..K (NaN where the rule has no such level)."""
        return np.array([rule.thresholds.get(lv, np.nan) for lv in self.levels], dtype=float)

    def recipients_for(self, level: int) -> list[str]:
        """Recipient units for a level number (none for 0).

        A level without its own list inherits the nearest less severe level's list, so a
        warning is never routed to nobody because a colour was left out of the table.
        """
        for k in range(level, 0, -1):
            name = self.level_name(k)
            if name in self.recipients:
                return list(self.recipients[name])
        return []


def load_rulebook(source: str | Path = DEFAULT_RULEBOOK) -> Rulebook:
    """Load a rulebook from a YAML path, or the shipped default for ``"default"``."""
    if str(source) == DEFAULT_RULEBOOK:
        path_text = "alerting/data/default_rulebook.yaml"
        text = resources.files("alerting").joinpath("data/default_rulebook.yaml").read_text()
        data = parse_yaml_mapping(text, path_text, "rulebook")
    else:
        path_text = str(source)
        data = read_yaml_mapping(source, "rulebook")
    try:
        return Rulebook.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(path_text, err["msg"], field=field) from exc
