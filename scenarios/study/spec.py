"""Study files: the schema (pydantic), loading, and the checks of their parameter paths.

A study file (YAML) names a base scenario (a path relative to the study file, or inline),
``variations`` of any scenario parameter by dotted path (``weather.wind.*.from_deg``,
``hazards.0.release.hole_diameter_mm``, ``rulebook.rules.ch4_confined_space.thresholds.
yellow``), ``samples`` random members per sweep point, a ``seed`` and the ``metrics`` to map
(probability of exceeding a threshold per grid cell). Optional ``variants`` are named
alternatives (a rulebook change, another sensor layout) compared side by side on the same
members (common random numbers). Members are planned by :mod:`scenarios.study.members` and
run by :mod:`scenarios.study.runner`.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from citytwin.scenarios.spec.scenario import PathError, apply_path, split_path
from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import input_error_from, read_yaml_mapping

#: The most members one study may plan (all are planned in memory before the first runs).
MAX_MEMBERS = 100_000

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class NormalSpec(_Strict):
    """A normal distribution, truncated to [min, max] by rejection."""

    mean: float
    sd: float = Field(gt=0)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _range(self) -> NormalSpec:
        if self.min is not None and self.max is not None and self.max <= self.min:
            raise ValueError("max must be above min")
        return self


class Variation(_Strict):
    """How one parameter varies: exactly one of the kinds below."""

    sweep: list[Any] | None = Field(None, min_length=1)    # grid: every value, crossed
    uniform: tuple[float, float] | None = None              # U(lo, hi)
    normal: NormalSpec | None = None
    choice: list[Any] | None = Field(None, min_length=1)   # one of the values
    weights: list[float] | None = None                      # ... with these weights
    offset_uniform: tuple[float, float] | None = None       # base value + U(lo, hi)
    decimals: int | None = Field(None, ge=0, le=12)          # round drawn numbers

    @model_validator(mode="after")
    def _one(self) -> Variation:
        kinds = [k for k in KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of {', '.join(KINDS)}")
        for k in ("uniform", "offset_uniform"):
            lo_hi = getattr(self, k)
            if lo_hi is not None and not lo_hi[0] <= lo_hi[1]:
                raise ValueError(f"{k}: low must not exceed high")
        if self.weights is not None:
            if self.choice is None:
                raise ValueError("weights go with choice")
            if len(self.weights) != len(self.choice):
                raise ValueError(f"{len(self.weights)} weights for {len(self.choice)} choices")
            if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("weights must be ≥ 0 with a positive sum")
        return self

    @field_validator("sweep")
    @classmethod
    def _distinct(cls, values: list[Any] | None) -> list[Any] | None:
        """Two equal sweep values would be one member twice (same id, same folder)."""
        keys = [_value_key(v) for v in values or []]
        for v, k in zip(values or [], keys, strict=True):
            if keys.count(k) > 1:
                raise ValueError(f"sweep values must differ: {v!r} is given twice (two "
                                 "equal points would be one member run twice)")
        return values

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)


def _value_key(v: Any) -> str:
    """Equality key of a sweep value (10 and 10.0 are one value; True is not 1)."""
    if isinstance(v, int | float) and not isinstance(v, bool):
        return f"number:{float(v)!r}"
    return json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)


KINDS = ("sweep", "uniform", "normal", "choice", "offset_uniform")


class MetricSpec(_Strict):
    """A probability map: P(max over time of ``quantity`` > ``threshold``) per grid cell."""

    quantity: str
    threshold: float
    height_m: float = Field(1.5, ge=0)
    cell_m: float = Field(10.0, gt=0)
    interval_s: float = Field(60.0, gt=0)
    bounds_m: tuple[float, float, float, float] | None = None  # default: the twin's terrain
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")

    @property
    def label(self) -> str:
        return self.name or f"{self.quantity}_gt_{self.threshold:g}"


class StudySpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    base: str | dict[str, Any]
    seed: int = Field(ge=0)
    samples: int = Field(1, ge=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    variations: dict[str, Variation] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    metrics: list[MetricSpec] = Field(min_length=1)
    bootstrap: int = Field(2000, ge=100)

    @model_validator(mode="after")
    def _names(self) -> StudySpec:
        labels = [m.label for m in self.metrics]
        if len(set(labels)) != len(labels):
            raise ValueError(f"metric names must differ, got {labels}")
        bad = [v for v in self.variants if not v.replace("-", "").replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"variant names may hold letters, digits, - and _ only: {bad}")
        return self


@dataclass
class Study:
    """A validated study file with its base scenario mapping."""

    spec: StudySpec
    source: str                 # the study file (for error messages)
    base: dict                  # base scenario mapping
    base_source: str            # where the base came from
    base_dir: Path              # folder relative paths of the base scenario are resolved in

    @property
    def member_count(self) -> int:
        """How many members the study plans: variants × samples × sweep points."""
        return len(self.variant_names) * self.spec.samples * math.prod(
            len(v.sweep) for v in self.spec.variations.values() if v.sweep is not None)

    @property
    def variant_names(self) -> list[str]:
        return list(self.spec.variants) or ["base"]


def get_values(root: dict, parts: list[str]) -> list[Any]:
    """The values at ``parts`` (a copy of the mapping is probed, ``root`` is untouched)."""
    seen: list[Any] = []

    def grab(v: Any) -> Any:
        seen.append(v)
        return v

    apply_path(copy.deepcopy(root), parts, grab)
    return seen


def default_rulebook_mapping() -> dict:
    text = resources.files("citytwin.alerting").joinpath("data/default_rulebook.yaml").read_text(
        encoding="utf-8")
    return yaml.safe_load(text)


def load_study(path: str | Path, *, samples: int | None = None) -> Study:
    """Read and validate a study file (and its base scenario); InputError naming the field."""
    path = Path(path)
    data = read_yaml_mapping(path, "study")
    if samples is not None:
        data["samples"] = samples
    return parse_study(data, str(path), path.parent)


def parse_study(data: dict, source: str, base_dir: Path) -> Study:
    """Validate a study mapping; ``base_dir`` is where relative paths are resolved."""
    try:
        spec = StudySpec.model_validate(data)
    except ValidationError as exc:
        raise input_error_from(source, exc) from exc
    if isinstance(spec.base, str):
        base_path = Path(spec.base)
        if not base_path.is_absolute():
            base_path = base_dir / base_path
        if not base_path.exists():
            raise InputError(source, f"base scenario {base_path} does not exist", field="base")
        base = read_yaml_mapping(base_path, "scenario")
        study = Study(spec, source, base, str(base_path), base_path.parent)
    else:
        study = Study(spec, source, copy.deepcopy(spec.base), f"{source}: base", base_dir)
    check_paths(study)
    members = study.member_count
    if members > MAX_MEMBERS:
        raise InputError(source, f"{members:,} members (variants × samples × sweep points) "
                         f"is more than a study may plan ({MAX_MEMBERS:,}: every member is "
                         "planned in memory before the first runs); lower samples or split "
                         "the study", field="samples")
    return study


def study_paths(spec: StudySpec) -> Iterator[tuple[str, str]]:
    """(study field, parameter path) of every path the study sets."""
    for p in spec.overrides:
        yield f"overrides.{p}", p
    for name, sets in spec.variants.items():
        for p in sets:
            yield f"variants.{name}.{p}", p
    for p in spec.variations:
        yield f"variations.{p}", p


def check_paths(study: Study) -> None:
    """Every path must lead somewhere in the base scenario (or its rulebook)."""
    rulebook = None
    for fld, p in study_paths(study.spec):
        try:
            target, parts = split_path(p)
            if target == "rulebook":
                if rulebook is None:
                    rulebook = base_rulebook(study.base, study.base_dir)
                get_values(rulebook, parts)
            else:
                get_values(study.base, parts)
        except PathError as exc:
            raise InputError(study.source, f"unknown parameter path: {exc}", field=fld) from exc
        spec = study.spec.variations.get(p) if fld.startswith("variations.") else None
        if spec is not None and spec.kind == "offset_uniform":
            root = rulebook if target == "rulebook" else study.base
            bad = [v for v in get_values(root, parts) if not isinstance(v, int | float)]
            if bad:
                raise InputError(study.source, f"offset_uniform needs numbers at the path, "
                                 f"found {bad[0]!r}", field=fld)


def base_rulebook(scenario: dict, base_dir: Path) -> dict:
    """The rulebook mapping a scenario names (``default`` or a path relative to it)."""
    from citytwin.scenarios.run.prepare import settings_path

    name = settings_path(str(scenario.get("rulebook", "default")), base_dir)
    return default_rulebook_mapping() if name == "default" else read_yaml_mapping(
        Path(name), "rulebook")
