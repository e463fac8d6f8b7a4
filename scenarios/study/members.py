"""Members of a study: planned, drawn, materialised as scenario mappings, and validated.

Determinism: every draw comes from ``rng_for(study seed, "study-sample", sample, path)``, so a
member's draw of one parameter does not depend on the other variations, the variants, the
sweep point or the executor. A member's scenario seed depends only on the study seed and its
sample index, so variants and sweep points are paired on sensor noise too. A member's
parameter hash covers its scenario, rulebook, the contents of the settings files it names,
its metrics, the member format and the code version: a finished member with another hash
reruns.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from citytwin.scenarios.spec.scenario import PathError, apply_path, split_path
from citytwin.scenarios.study.spec import Study, Variation, base_rulebook, study_paths
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import rng_for, stable_key
from citytwin.twin.yamlfile import read_yaml_mapping

#: Bump when member outputs change meaning: cached members with another version rerun.
#: 2: detection metrics count only warnings of the scenario's hazard after its start.
MEMBER_FORMAT = 2
#: What a member run writes/keeps: no observations, report, render, CAP or dossiers.
MEMBER_OUTPUTS = {"observations": "none", "report": False, "render": False, "cap": False,
                  "dossiers": False}


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


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def _digest(obj: Any, n: int = 16) -> str:
    return hashlib.blake2b(canonical(obj).encode("utf-8"), digest_size=n // 2).hexdigest()


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
    uses_rulebook = any(split_path(p)[0] == "rulebook" for _, p in study_paths(spec))
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
                names = canonical([*(scenario.get(k) for k in SETTINGS_FILES),
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
                             field=blame(study, m, "twin"))
        if (m.variant, m.grid_index) in seen and m.sample > 0:
            continue
        seen.add((m.variant, m.grid_index))
        try:
            parse_scenario(m.scenario, "scenario")
        except InputError as exc:
            raise InputError(study.source, f"member {m.member_id}: {exc.reason} (scenario "
                             f"field {exc.field})", field=blame(study, m, exc.field)) from exc
        if m.rulebook is not None:
            try:
                Rulebook.model_validate(m.rulebook)
            except ValidationError as exc:
                err = exc.errors()[0]
                sub = ".".join(str(p) for p in err["loc"])
                raise InputError(study.source, f"member {m.member_id}: rulebook: "
                                 f"{err['msg']} (rulebook field {sub})",
                                 field=blame(study, m, f"rulebook.{sub}")) from exc


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


def blame(study: Study, member: MemberSpec, scenario_field: str | None) -> str:
    """The study field whose path leads to ``scenario_field`` (else ``base``)."""
    if scenario_field:
        want = scenario_field.split(".")
        for fld, p in reversed(list(study_paths(study.spec))):
            if not (fld.startswith("variations.") or fld.startswith("overrides.")
                    or fld.startswith(f"variants.{member.variant}.")):
                continue
            parts = p.split(".")
            n = min(len(parts), len(want))
            if all(a == b or a == "*" for a, b in zip(parts[:n], want[:n], strict=True)):
                return fld
    return "base" + (f" ({scenario_field})" if scenario_field else "")


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
                         field=blame(study, member, exc.field)) from exc
    produced = sorted({q for h in run.hazards for q in h.info})
    for k, m in enumerate(study.spec.metrics):
        if m.quantity not in produced:
            raise InputError(study.source, f"no hazard of the base scenario produces "
                             f"{m.quantity!r} (they produce {produced})",
                             field=f"metrics.{k}.quantity")
