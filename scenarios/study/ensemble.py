"""What-if ensembles ("studies"): a base scenario, variations, N members, metrics.

A study file (YAML) names a base scenario (a path relative to the study file, or inline),
``variations`` of any scenario parameter by dotted path (``weather.wind.*.from_deg``,
``hazards.0.release.hole_diameter_mm``, ``rulebook.rules.ch4_confined_space.thresholds.
yellow``), ``samples`` random members per sweep point, a ``seed`` and the ``metrics`` to map
(probability of exceeding a threshold per grid cell). Optional ``variants`` are named
alternatives (a rulebook change, another sensor layout) compared side by side on the same
members (common random numbers).

Determinism: every draw comes from ``rng_for(study seed, "study-sample", sample, path)``, so a
member's draw of one parameter does not depend on the other variations, the variants, the
sweep point or the executor. A member's scenario seed depends only on the study seed and its
sample index, so variants and sweep points are paired on sensor noise too.

Layout of a study folder::

    study.json                 the resolved plan (members, parameters, hashes)
    members/<id>/run/          the member's archive (observations not stored), when the
                               worker sees the study folder (a remote worker drops it)
    members/<id>/rulebook.yaml the member's rulebook when a variation changes it
    members/<id>/max_<metric>.npy  running maximum of the metric's quantity per grid cell
    members/<id>/metrics.json  written last and atomically: a member with it is finished
    (the client writes max_*.npy, rulebook.yaml and metrics.json from what ``run_member``
    returns, so members run on remote Dask workers land here too)
    study_results.csv, summary.json, prob_<metric>__<variant>.npy/.png, study_report.html
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import io
import itertools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
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
from citytwin.twin.seeding import rng_for, stable_key
from citytwin.twin.yamlfile import input_error_from, read_yaml_mapping

#: Bump when member outputs change meaning: cached members with another version rerun.
#: 2: detection metrics count only warnings of the scenario's hazard after its start.
MEMBER_FORMAT = 2
#: What a member run writes/keeps: no observations, report, render, CAP or dossiers.
MEMBER_OUTPUTS = {"observations": "none", "report": False, "render": False, "cap": False,
                  "dossiers": False}
METRICS_FILE = "metrics.json"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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
    def variant_names(self) -> list[str]:
        return list(self.spec.variants) or ["base"]


@dataclass
class MemberSpec:
    """One member run: everything a worker needs (picklable, no open objects)."""

    member_id: str
    index: int
    variant: str
    grid_index: int
    sample: int
    scenario_seed: int
    params: dict[str, Any]
    param_hash: str
    scenario: dict
    rulebook: dict | None
    base_dir: str
    source: str
    metrics: list[dict]


# ---------------------------------------------------------------------------- paths

def get_values(root: dict, parts: list[str]) -> list[Any]:
    """The values at ``parts`` (a copy of the mapping is probed, ``root`` is untouched)."""
    seen: list[Any] = []

    def grab(v: Any) -> Any:
        seen.append(v)
        return v

    apply_path(copy.deepcopy(root), parts, grab)
    return seen


# ---------------------------------------------------------------------------- loading

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
    return study


def _study_paths(spec: StudySpec) -> Iterator[tuple[str, str]]:
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
    for fld, p in _study_paths(study.spec):
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


#: Settings files a scenario names ("default" or a path): field → packaged default.
SETTINGS_FILES = {"rulebook": ("citytwin.alerting", "data/default_rulebook.yaml"),
                  "routing": ("citytwin.alerting", "data/default_routing.yaml"),
                  "operations": ("citytwin.alerting", "data/default_operations.yaml")}


def settings_mappings(scenario: dict, base_dir: Path, *, rulebook: bool = True) -> dict:
    """The contents of the settings files a member scenario names — rulebook (unless the
    member carries its own edited copy), routing table, operations policy and sensor
    catalogue — as mappings, resolved as ``prepare`` resolves them (``default`` = the
    packaged file; a relative path against ``base_dir``). They go into the member's hash,
    so a member reruns when one of those files changes. A file that cannot be read stands
    as its error (the run reports it properly)."""
    out: dict[str, Any] = {}
    for key, (package, resource) in SETTINGS_FILES.items():
        if key == "rulebook" and not rulebook:
            continue
        name = str(scenario.get(key, "default"))
        out[key] = _settings_file(name, base_dir, (package, resource))
    sensors = scenario.get("sensors")
    name = sensors.get("catalogue") if isinstance(sensors, dict) else None
    out["catalogue"] = _settings_file("default" if name is None else str(name), base_dir,
                                      ("citytwin.sensors_sim", "data/catalogue.yaml"))
    return out


def _settings_file(name: str, base_dir: Path, default: tuple[str, str]) -> Any:
    from citytwin.scenarios.run.prepare import settings_path

    try:
        path = settings_path(name, base_dir)
        if path == "default":
            text = resources.files(default[0]).joinpath(default[1]).read_text(
                encoding="utf-8")
            return yaml.safe_load(text)
        return {"path": path, "content": read_yaml_mapping(Path(path), "settings file")}
    except (InputError, OSError, yaml.YAMLError) as exc:
        return {"path": name, "unreadable": str(exc)}


def code_version() -> str:
    """The installed citytwin version (part of every member's hash)."""
    try:
        return importlib.metadata.version("citytwin")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover (not installed)
        return "unknown"


# ---------------------------------------------------------------------------- sampling

def draw(var: Variation, rng: np.random.Generator) -> Any:
    """One draw of a random variation (sweeps are not drawn)."""
    if var.uniform is not None:
        value: Any = float(rng.uniform(*var.uniform))
    elif var.offset_uniform is not None:
        value = float(rng.uniform(*var.offset_uniform))
    elif var.normal is not None:
        n = var.normal
        lo = -math.inf if n.min is None else n.min
        hi = math.inf if n.max is None else n.max
        value = float("nan")
        for _ in range(100):  # rejection: a truncated normal, 64 candidates at a time
            cand = rng.normal(n.mean, n.sd, 64)
            ok = cand[(cand >= lo) & (cand <= hi)]
            if len(ok):
                value = float(ok[0])
                break
        else:
            value = float(np.clip(n.mean, lo, hi))
    elif var.choice is not None:
        p = None
        if var.weights is not None:
            w = np.asarray(var.weights, float)
            p = w / w.sum()
        return copy.deepcopy(var.choice[int(rng.choice(len(var.choice), p=p))])
    else:
        raise ValueError("sweeps are not drawn")
    return round(value, var.decimals) if var.decimals is not None else value


def _setter(var: Variation | None, value: Any, leaf: str) -> Callable[[Any], Any]:
    if var is not None and var.kind == "offset_uniform":
        def shift(old: Any) -> Any:
            new = float(old) + value
            if leaf.endswith("_deg"):  # angles wrap: 350° + 20° = 10°
                new %= 360.0
            return round(new, var.decimals) if var.decimals is not None else new
        return shift
    return lambda _old: copy.deepcopy(value)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _digest(obj: Any, n: int = 16) -> str:
    return hashlib.blake2b(_canonical(obj).encode("utf-8"), digest_size=n // 2).hexdigest()


def member_seed(study_seed: int, sample: int) -> int:
    """The scenario seed of sample ``sample`` (shared by its variants and sweep points)."""
    return stable_key(study_seed, "study-member-seed", sample) % (2**31 - 1)


def plan_members(study: Study) -> list[MemberSpec]:
    """Every member: variants × sweep grid × samples, in that (stable) order."""
    spec = study.spec
    sweeps = [(p, v.sweep) for p, v in spec.variations.items() if v.kind == "sweep"]
    randoms = [(p, v) for p, v in spec.variations.items() if v.kind != "sweep"]
    grid = list(itertools.product(*[vals for _, vals in sweeps])) or [()]
    variants = spec.variants or {"base": {}}
    uses_rulebook = any(split_path(p)[0] == "rulebook" for _, p in _study_paths(spec))
    rulebook_cache: dict[str, dict] = {}
    settings_cache: dict[str, dict] = {}
    version = code_version()
    members = []
    draws = [{p: draw(v, rng_for(spec.seed, "study-sample", s, p)) for p, v in randoms}
             for s in range(spec.samples)]
    for vname, sets in variants.items():
        for g, point in enumerate(grid):
            for s in range(spec.samples):
                params = {p: val for (p, _), val in zip(sweeps, point, strict=True)}
                params.update(draws[s])
                params = {p: params[p] for p in spec.variations}  # declared order
                seed = member_seed(spec.seed, s)
                scenario, rulebook = materialise(study, vname, sets, params, seed,
                                                 uses_rulebook, rulebook_cache)
                metrics = [m.model_dump(mode="json") | {"label": m.label} for m in spec.metrics]
                ident = {"variant": vname, "sets": sets, "params": params, "seed": seed}
                sensors = scenario.get("sensors")
                names = _canonical([*(scenario.get(k) for k in SETTINGS_FILES),
                                    sensors.get("catalogue") if isinstance(sensors, dict)
                                    else None, rulebook is None])
                if names not in settings_cache:
                    settings_cache[names] = settings_mappings(
                        scenario, study.base_dir, rulebook=rulebook is None)
                full = {"format": MEMBER_FORMAT, "code": version, "scenario": scenario,
                        "rulebook": rulebook, "settings": settings_cache[names],
                        "metrics": metrics, "base_dir": str(study.base_dir)}
                members.append(MemberSpec(
                    member_id=f"{vname}-{_digest(ident, 12)}", index=len(members),
                    variant=vname, grid_index=g, sample=s, scenario_seed=seed, params=params,
                    param_hash=_digest(full, 32), scenario=scenario, rulebook=rulebook,
                    base_dir=str(study.base_dir), source=study.source, metrics=metrics))
    return members


def materialise(study: Study, variant: str, sets: dict[str, Any], params: dict[str, Any],
                seed: int, uses_rulebook: bool,
                rulebook_cache: dict[str, dict]) -> tuple[dict, dict | None]:
    """The member's scenario mapping (and rulebook mapping when the study changes it)."""
    spec = study.spec
    scenario = copy.deepcopy(study.base)
    changes = [(f"overrides.{p}", p, None, v) for p, v in spec.overrides.items()]
    changes += [(f"variants.{variant}.{p}", p, None, v) for p, v in sets.items()]
    changes += [(f"variations.{p}", p, spec.variations[p], v) for p, v in params.items()]
    # Scenario fields first: a variant may name another rulebook file that paths then edit.
    for fld, p, var, value in changes:
        target, parts = split_path(p)
        if target == "scenario":
            _apply(study, scenario, parts, _setter(var, value, parts[-1]), fld)
    rulebook = None
    if uses_rulebook:
        name = str(scenario.get("rulebook", "default"))
        if name not in rulebook_cache:
            rulebook_cache[name] = base_rulebook(scenario, study.base_dir)
        rulebook = copy.deepcopy(rulebook_cache[name])
        for fld, p, var, value in changes:
            target, parts = split_path(p)
            if target == "rulebook":
                _apply(study, rulebook, parts, _setter(var, value, parts[-1]), fld)
    scenario["seed"] = seed
    scenario["mode"] = "what-if"
    scenario["outputs"] = dict(MEMBER_OUTPUTS)
    return scenario, rulebook


def _apply(study: Study, root: dict, parts: list[str], fn: Callable, fld: str) -> None:
    try:
        apply_path(root, parts, fn)
    except (PathError, TypeError, ValueError) as exc:
        raise InputError(study.source, f"cannot set the parameter: {exc}", field=fld) from exc


def validate_members(study: Study, members: list[MemberSpec]) -> None:
    """Schema-check each distinct (variant, sweep point) member, and the extremes drawn:
    InputError naming the study file and the study field to blame."""
    from citytwin.alerting.rulebook import Rulebook
    from citytwin.scenarios.spec.scenario import parse_scenario

    seen: set[tuple[str, int]] = set()
    for m in [*members, *_extreme_members(study, members[0])]:
        if m.scenario.get("twin") != members[0].scenario.get("twin"):
            raise InputError(study.source, "every member must use the same twin (maps and "
                             "exposure are per cell of one grid)",
                             field=_blame(study, m, "twin"))
        if (m.variant, m.grid_index) in seen and m.sample > 0:
            continue
        seen.add((m.variant, m.grid_index))
        try:
            parse_scenario(m.scenario, "scenario")
        except InputError as exc:
            raise InputError(study.source, f"member {m.member_id}: {exc.reason} (scenario "
                             f"field {exc.field})", field=_blame(study, m, exc.field)) from exc
        if m.rulebook is not None:
            try:
                Rulebook.model_validate(m.rulebook)
            except ValidationError as exc:
                err = exc.errors()[0]
                sub = ".".join(str(p) for p in err["loc"])
                raise InputError(study.source, f"member {m.member_id}: rulebook: "
                                 f"{err['msg']} (rulebook field {sub})",
                                 field=_blame(study, m, f"rulebook.{sub}")) from exc


def _extreme_members(study: Study, first: MemberSpec) -> list[MemberSpec]:
    """Copies of the first member with each random variation at each of its choices or at
    the ends of its range, so a value the schema rejects fails before any run."""
    out = []
    uses_rulebook = first.rulebook is not None
    sets = (study.spec.variants or {"base": {}})[first.variant]
    for p, var in study.spec.variations.items():
        if var.choice is not None:
            values = var.choice
        elif var.uniform is not None:
            values = list(var.uniform)
        elif var.offset_uniform is not None:
            values = list(var.offset_uniform)
        elif var.normal is not None:
            values = [v for v in (var.normal.min, var.normal.max) if v is not None]
        else:
            continue
        for k, value in enumerate(values):
            params = {**first.params, p: value}
            scenario, rulebook = materialise(study, first.variant, sets, params,
                                             first.scenario_seed, uses_rulebook, {})
            out.append(MemberSpec(f"{first.member_id} with {p} = {value!r}", -1,
                                  first.variant, -1 - k, 0, first.scenario_seed, params, "",
                                  scenario, rulebook, first.base_dir, first.source, []))
    return out


def _blame(study: Study, member: MemberSpec, scenario_field: str | None) -> str:
    """The study field whose path leads to ``scenario_field`` (else ``base``)."""
    if scenario_field:
        want = scenario_field.split(".")
        for fld, p in reversed(list(_study_paths(study.spec))):
            if not (fld.startswith("variations.") or fld.startswith("overrides.")
                    or fld.startswith(f"variants.{member.variant}.")):
                continue
            parts = p.split(".")
            n = min(len(parts), len(want))
            if all(a == b or a == "*" for a, b in zip(parts[:n], want[:n], strict=True)):
                return fld
    return "base" + (f" ({scenario_field})" if scenario_field else "")


# ---------------------------------------------------------------------------- members

def member_dir(members_dir: Path, member: MemberSpec) -> Path:
    return Path(members_dir) / member.member_id


def finished_metrics(folder: Path, param_hash: str) -> dict | None:
    """The member's metrics when it finished with these parameters, else None."""
    path = Path(folder) / METRICS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if data.get("param_hash") == param_hash else None


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON via a temporary file and ``os.replace``: readers see all or nothing."""
    text = json.dumps(_jsonable(data), indent=1, sort_keys=False, allow_nan=False)
    _write_atomic(Path(path), text.encode("utf-8"))


def _jsonable(obj: Any) -> Any:
    """NaN/inf → None; NumPy scalars → Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run_member(member: MemberSpec, members_dir: str, numba_threads: int | None = None) -> dict:
    """Run one member on a worker; return ``{"record": metrics record, "arrays": {label:
    float32 max field}}``: everything the client needs to write the member's files
    (``write_member``) — a remote worker's disk is not the client's.

    The member's archive goes to ``members_dir/<id>/run`` (cleared first) when the worker
    sees the study's ``members`` folder — local processes, a local Dask cluster, or a cluster
    sharing the file system; a worker that does not (another machine) runs the member in a
    temporary folder and drops its archive. Imports are local; the twin and grids are cached
    per worker process.
    """
    if numba_threads is not None:
        _limit_numba_threads(numba_threads)
    root = Path(members_dir)
    if root.is_dir():
        folder = member_dir(root, member)
        if folder.exists():
            shutil.rmtree(folder)  # a partial member from an interrupted study
        folder.mkdir(parents=True)
        return _run_member_in(member, folder)
    with tempfile.TemporaryDirectory(prefix="citytwin-member-") as tmp:
        return _run_member_in(member, Path(tmp))


def _run_member_in(member: MemberSpec, folder: Path) -> dict:
    from citytwin.scenarios.run.kernel import simulate
    from citytwin.scenarios.study.metrics import FieldRecorder, member_metrics

    run = prepare_member(member, folder)
    recorder = FieldRecorder(run, member.metrics, member.source)
    result = simulate(run, folder / "run", overwrite=True, snapshot=False,
                      processes=recorder.processes())
    record = {"member_id": member.member_id, "param_hash": member.param_hash,
              "variant": member.variant, "grid_index": member.grid_index,
              "sample": member.sample, "scenario_seed": member.scenario_seed,
              "params": member.params,
              "metrics": member_metrics(run, result, recorder)}
    return {"record": json.loads(json.dumps(_jsonable(record))),
            "arrays": {label: values.astype(np.float32)
                       for label, values in recorder.maxima().items()}}


def write_member(folder: Path, member: MemberSpec, result: dict) -> None:
    """The client side of a member: its rulebook (if edited), ``max_<metric>.npy`` and, last,
    ``metrics.json`` — each written atomically, so a member with ``metrics.json`` is whole."""
    record = result["record"]
    if record.get("param_hash") != member.param_hash:
        raise RuntimeError(f"member {member.member_id}: the worker ran other parameters")
    folder.mkdir(parents=True, exist_ok=True)
    if member.rulebook is not None:
        _write_atomic(folder / "rulebook.yaml",
                      yaml.safe_dump(member.rulebook, sort_keys=False).encode("utf-8"))
    for label, values in result["arrays"].items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(values, dtype=np.float32))
        _write_atomic(folder / f"max_{label}.npy", buf.getvalue())
    write_json_atomic(folder / METRICS_FILE, record)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prepare_member(member: MemberSpec, folder: Path):
    """parse_scenario → prepare for a member (its rulebook written beside it if changed)."""
    from citytwin.scenarios.run.prepare import prepare
    from citytwin.scenarios.spec.scenario import parse_scenario

    scenario = dict(member.scenario)
    if member.rulebook is not None:
        path = folder / "rulebook.yaml"
        path.write_text(yaml.safe_dump(member.rulebook, sort_keys=False), encoding="utf-8")
        scenario["rulebook"] = str(path.resolve())
    sc = parse_scenario(scenario, f"{member.source} member {member.member_id}")
    return prepare(sc, source=f"{member.source} member {member.member_id}",
                   base_dir=Path(member.base_dir))


def _limit_numba_threads(n: int) -> None:
    """One compiled thread per member when members run side by side (results do not depend
    on the thread count; oversubscription only slows everything down)."""
    try:
        import numba

        numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:  # pragma: no cover
        pass


# ---------------------------------------------------------------------------- study run

@dataclass
class StudyRun:
    """What ``run_study`` did."""

    out_dir: Path
    members: list[MemberSpec]
    computed: list[str] = field(default_factory=list)   # member ids run now
    reused: list[str] = field(default_factory=list)     # finished before: skipped
    summary: dict = field(default_factory=dict)
    report: Path | None = None


def write_plan(study: Study, members: list[MemberSpec], out_dir: Path) -> None:
    """``study.json``: the resolved study and its members (read by the aggregation)."""
    plan = {"study": study.spec.model_dump(mode="json"), "source": study.source,
            "base_source": study.base_source, "base_dir": str(study.base_dir),
            "variants": study.variant_names,
            "labels": [m.label for m in study.spec.metrics],
            "levels": member_levels(members, study.base_dir),
            "members": [{k: v for k, v in asdict(m).items()
                         if k not in ("scenario", "rulebook", "metrics", "base_dir", "source")}
                        for m in members],
            "base_scenario": study.base,
            "member_scenario": members[0].scenario if members else study.base}
    write_json_atomic(out_dir / "study.json", plan)


def member_levels(members: list[MemberSpec], base_dir: Path) -> list[str]:
    """The warning levels of the members' rulebooks (their union, in rulebook order): the
    ``time_to_<level>_s`` metrics the members report."""
    from citytwin.alerting.rulebook import Rulebook, load_rulebook
    from citytwin.scenarios.run.prepare import settings_path

    levels: list[str] = []
    seen: set[str] = set()
    for m in members:
        if m.rulebook is not None:
            key = _canonical(m.rulebook)
            if key not in seen:
                levels += Rulebook.model_validate(m.rulebook).levels
        else:
            key = settings_path(str(m.scenario.get("rulebook", "default")), base_dir)
            if key not in seen:
                levels += load_rulebook(key).levels
        seen.add(key)
    return list(dict.fromkeys(levels))


def run_study(study: Study | str | Path, out_dir: str | Path, executor=None,
              max_workers: int | None = None, *, report: bool = True,
              progress: Callable[[int, int, MemberSpec], None] | None = None) -> StudyRun:
    """Run every unfinished member over ``executor`` (default: a local process pool), then
    aggregate. Finished members (metrics.json with the same parameter hash) are reused, so
    an interrupted study resumes where it stopped."""
    from concurrent.futures import as_completed

    from citytwin.scenarios.study.aggregate import aggregate
    from citytwin.scenarios.study.executor import SerialExecutor, local_executor

    if not isinstance(study, Study):
        study = load_study(study)
    out_dir = Path(out_dir)
    members = plan_members(study)
    validate_members(study, members)
    check_metrics(study, members[0])
    out_dir.mkdir(parents=True, exist_ok=True)
    members_dir = out_dir / "members"
    members_dir.mkdir(exist_ok=True)
    write_plan(study, members, out_dir)
    outcome = StudyRun(out_dir, members)
    todo = []
    for m in members:
        folder = member_dir(members_dir, m)
        if finished_metrics(folder, m.param_hash) is not None:
            outcome.reused.append(m.member_id)
        else:
            if folder.exists():
                shutil.rmtree(folder)  # half-written or stale: redone from scratch
            todo.append(m)
    if todo:
        own = executor is None
        if own:
            executor = local_executor(max_workers)
        workers = max_workers or getattr(executor, "_max_workers", None) or os.cpu_count()
        # Members side by side: one compiled thread each (serial: leave numba alone).
        threads = 1 if (workers or 1) > 1 and not isinstance(executor, SerialExecutor) \
            else None
        try:
            errors: list[tuple[MemberSpec, BaseException]] = []

            def finish(fut, m: MemberSpec) -> None:
                """The client writes the member's files (the worker may be remote)."""
                try:
                    write_member(member_dir(members_dir, m), m, fut.result())
                    outcome.computed.append(m.member_id)
                except Exception as exc:  # noqa: BLE001 — reported below, others go on
                    errors.append((m, exc))
                if progress is not None:
                    progress(len(outcome.computed) + len(errors), len(todo), m)

            pending = {}
            for m in todo:
                fut = executor.submit(run_member, m, str(members_dir), threads)
                if fut.done():  # a serial executor: written at once, so Ctrl-C keeps it
                    finish(fut, m)
                else:
                    pending[fut] = m
            for fut in as_completed(pending):
                finish(fut, pending[fut])
            if errors:
                m, exc = errors[0]
                raise RuntimeError(f"{len(errors)} member(s) failed; first {m.member_id}: "
                                   f"{exc!r}. Finished members are kept: re-run to "
                                   "resume.") from exc
        except BaseException:
            if own:
                executor.shutdown(wait=False, cancel_futures=True)
                own = False
            raise
        finally:
            if own:
                executor.shutdown(wait=True)
    outcome.summary = aggregate(out_dir)
    if report:
        from citytwin.viewer.study_report import write_study_report

        outcome.report = write_study_report(out_dir)
    return outcome


def check_metrics(study: Study, member: MemberSpec) -> None:
    """The first member prepares (twin, sources, sensors) and each metric's quantity is
    produced by one of its hazards."""
    from citytwin.scenarios.run.prepare import prepare
    from citytwin.scenarios.spec.scenario import parse_scenario

    probe = copy.deepcopy(member.scenario)
    if member.rulebook is not None:
        probe["rulebook"] = "default"  # the edited rulebook was schema-checked already
    try:
        run = prepare(parse_scenario(probe, study.base_source), source=study.base_source,
                      base_dir=study.base_dir)
    except InputError as exc:
        raise InputError(study.source, f"member {member.member_id}: {exc.reason}",
                         field=_blame(study, member, exc.field)) from exc
    produced = sorted({q for h in run.hazards for q in h.info})
    for k, m in enumerate(study.spec.metrics):
        if m.quantity not in produced:
            raise InputError(study.source, f"no hazard of the base scenario produces "
                             f"{m.quantity!r} (they produce {produced})",
                             field=f"metrics.{k}.quantity")


# ---------------------------------------------------------------------------- CLI

def add_study_commands(sub) -> None:
    """Register ``citytwin study run|report`` on an argparse subparsers object."""
    s = sub.add_parser("study", help="what-if ensembles: many members, probability maps",
                       description="Run a study file (base scenario + variations + samples + "
                                   "metrics) as an ensemble, resumable, on local processes "
                                   "or a Dask cluster; aggregate into CSV, JSON, maps and an "
                                   "HTML report.")
    ssub = s.add_subparsers(dest="study_command", required=True, metavar="SUBCOMMAND")
    r = ssub.add_parser("run", help="run (or resume) a study",
                        description="Run every unfinished member of a study and aggregate. "
                                    "Re-running the same command resumes an interrupted "
                                    "study.")
    r.add_argument("study", help="study YAML file")
    r.add_argument("--out", help="study folder (default runs/<study name>)")
    r.add_argument("--workers", type=int, help="local worker processes (default: CPU count)")
    r.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (e.g. tcp://10.0.0.5:8786): run members on "
                        "that cluster instead of local processes")
    r.add_argument("--samples", type=int, help="override the study's samples")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    r.set_defaults(func=cmd_study_run)
    p = ssub.add_parser("report", help="re-aggregate a study folder and write its report",
                        description="Aggregate the finished members of a study folder and "
                                    "write study_results.csv, summary.json, maps and "
                                    "study_report.html.")
    p.add_argument("folder", help="study folder")
    p.set_defaults(func=cmd_study_report)


def cmd_study_run(args) -> int:
    import sys
    import time

    from citytwin.scenarios.study.executor import executor_for

    study = load_study(Path(args.study), samples=args.samples)
    out = Path(args.out) if args.out else Path("runs") / study.spec.name
    n = len(study.variant_names) * study.spec.samples * math.prod(
        len(v.sweep) for v in study.spec.variations.values() if v.sweep is not None)
    where = args.scheduler or f"{args.workers or os.cpu_count()} local process(es)"
    print(f"Study {study.spec.name}: {n} members ({len(study.variant_names)} variant(s)) on "
          f"{where} → {out}")
    wall0 = time.perf_counter()

    def show(k: int, total: int, m: MemberSpec) -> None:
        if not args.quiet:
            rate = k / max(time.perf_counter() - wall0, 1e-9) * 60
            print(f"  [{k}/{total}] {m.member_id} done ({rate:.0f} members/min)",
                  file=sys.stderr, flush=True)

    try:
        with executor_for(args.workers, args.scheduler) as (executor, workers):
            outcome = run_study(study, out, executor, workers, progress=show)
    except KeyboardInterrupt:
        print(f"interrupted: finished members are kept in {out}; run the same command "
              "again to resume", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # members failed: the others are kept
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(outcome.computed)} member(s) run, {len(outcome.reused)} reused; "
          f"{time.perf_counter() - wall0:.1f} s")
    _print_summary(outcome.summary)
    print(f"Results: {out / 'study_results.csv'}; summary: {out / 'summary.json'}")
    if outcome.report:
        print(f"Report: {outcome.report}")
    return 0


def cmd_study_report(args) -> int:
    from citytwin.scenarios.study.aggregate import aggregate
    from citytwin.viewer.study_report import write_study_report

    folder = Path(args.folder)
    if not (folder / "study.json").exists():
        raise InputError(str(folder), "not a study folder (no study.json)")
    summary = aggregate(folder)
    _print_summary(summary)
    print(f"Report: {write_study_report(folder)}")
    return 0


def _print_summary(summary: dict) -> None:
    for name, v in summary.get("variants", {}).items():
        t = v["time_to_first_warning_s"]
        miss = v["missed_detection"]
        med = "—" if t["median"] is None else f"{t['median']:.0f} s"
        ci = ("" if miss["p"] is None else
              f"{miss['p']:.0%} [{miss['ci95'][0]:.0%}, {miss['ci95'][1]:.0%}]")
        print(f"  {name}: {v['members']} members; time to first warning median {med} "
              f"(5–95 %: {_fmt(t['p5'])}–{_fmt(t['p95'])}); P(missed detection) {ci or '—'}")
    for c in summary.get("comparisons", []):
        d = c["median_time_to_first_warning_diff_s"]
        pm = c["p_miss_diff"]
        print(f"  {c['variant']} − {c['reference']}: Δ median time to first warning "
              f"{_fmt(d['estimate'])} s [{_fmt(d['ci95'][0])}, {_fmt(d['ci95'][1])}]; "
              f"Δ P(miss) {_fmt(pm['estimate'], '.2f')} [{_fmt(pm['ci95'][0], '.2f')}, "
              f"{_fmt(pm['ci95'][1], '.2f')}] (paired)")


def _fmt(v: Any, spec: str = ".0f") -> str:
    return "—" if v is None else format(v, spec)
