"""`citytwin validate FILE [FILE ...]`: check any input file without running anything.

The kind of each file is told from its top-level keys (or forced with ``--kind``), then the
file goes through the same loaders a run, drill or study uses, so "valid" here means the
real command would accept it:

- scenario: schema, then ``prepare`` (twin, hazard sources, sensor placement, catalogue,
  rulebook, routing coverage, operations policy);
- drill plan: the plan (schema and references), its scenario with the injects compiled in,
  prepared, and the sensors and places the injects name;
- players file (a scripted player list): every step against its drill plan (``--plan``, or
  ``NAME.yaml`` beside ``NAME_players.yaml``);
- study: every member planned and schema-checked (with the extremes of each random
  variation), the first member prepared and each metric produced by a hazard; nothing run;
- rulebook, routing table, operations policy, sensor catalogue: their loaders' checks.

One line per valid file; each bad file is reported as ``error: FILE: FIELD: reason`` and
the command exits 2 if any file is bad.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citytwin.twin.errors import InputError
from citytwin.twin.yamlfile import read_yaml

EXIT_OK, EXIT_BAD_INPUT = 0, 2


@dataclass(frozen=True)
class Kind:
    """A file kind: the top-level keys that give it away and its check (→ summary line)."""

    name: str
    keys: tuple[str, ...]
    check: Callable[[Path, object], str]
    shape: str = ""     # how the file is told apart, for the error listing the kinds

    @property
    def described(self) -> str:
        return f"{self.name} ({self.shape or ', '.join(self.keys)})"


# --- detection ------------------------------------------------------------------------------

def read_document(path: Path) -> object:
    """The parsed YAML document at ``path`` (InputError naming the file otherwise)."""
    return read_yaml(path, "input")


def _present(kind: Kind, data: dict) -> list[str]:
    hits = [k for k in kind.keys if k in data]
    if kind.name == "scenario" and "hazards" in hits and not isinstance(data["hazards"], list):
        hits.remove("hazards")  # a routing table's hazards are a mapping, a scenario's a list
    return hits


def detect_kind(data: object, source: str) -> str:
    """The kind of a parsed document, from its top-level keys; InputError if unclear."""
    if isinstance(data, list) or (isinstance(data, dict) and set(data) == {"players"}):
        return "players"
    if isinstance(data, dict):
        scores = sorted(((len(_present(k, data)), k.name) for k in KINDS.values()
                         if k.name != "players"), reverse=True)
        (best, name), (second, other) = scores[0], scores[1]
        if best and best > second:
            return name
        if best:
            raise InputError(source, f"looks like both a {name} and a {other} (top-level "
                             f"keys {sorted(map(str, data))}); give --kind")
    what = "an empty file" if data is None else (
        f"top-level keys {sorted(map(str, data))}" if isinstance(data, dict)
        else f"a YAML {type(data).__name__}")
    known = "; ".join(k.described for k in KINDS.values())
    raise InputError(source, f"cannot tell what kind of file this is ({what}). Known kinds, "
                     f"by their top-level keys: {known}; give --kind KIND to force one")


# --- checks ---------------------------------------------------------------------------------

def _prepared(run) -> str:
    return (f"twin {run.twin.name} ({len(run.twin.buildings)} buildings); "
            f"{len(run.network.table)} sensors in {len(run.network.groups())} cadence "
            f"group(s); {len(run.hazards)} hazard(s); rulebook {run.rulebook.name} "
            f"({len(run.rulebook.rules)} rules, {len(run.rulebook.forecasts)} forecasts), "
            f"routing {run.routing.name}, operations {run.operations.name}")


def check_scenario(path: Path, args) -> str:
    from citytwin.scenarios.run.prepare import prepare
    from citytwin.scenarios.spec.scenario import load_scenario

    scenario = load_scenario(path)
    run = prepare(scenario, source=str(path), base_dir=path.parent)
    return (f"scenario '{scenario.name}' ({scenario.mode}, {scenario.duration_s:g} s): "
            f"{_prepared(run)}")


def check_drill_plan(path: Path, args) -> str:
    from citytwin.scenarios.drill.plan import (
        HAZARD_INJECTS,
        check_places,
        check_sensors,
        load_plan,
    )
    from citytwin.scenarios.run.prepare import prepare

    loaded = load_plan(path)
    run = prepare(loaded.scenario, source=loaded.scenario_source, base_dir=loaded.scenario_dir)
    check_sensors(loaded, set(run.network.table["sensor_id"].astype(str)))
    check_places(loaded, set(run.twin.places["id"].astype(str)))
    plan = loaded.plan
    n_hazard = sum(i.kind in HAZARD_INJECTS for i in plan.msel)
    n_contingent = sum(i.contingency is not None for i in plan.msel)
    return (f"drill plan '{plan.name}': {len(plan.msel)} injects ({n_hazard} hazard, "
            f"{n_contingent} contingency), {len(plan.objectives)} objectives, "
            f"{len(plan.expected_items())} expected actions; its scenario "
            f"'{loaded.scenario.name}' after the injects ({loaded.scenario.duration_s:g} s): "
            f"{_prepared(run)}")


def plan_for_players(path: Path, plan: str | None) -> Path:
    """The drill plan of a players file: ``--plan``, else ``NAME.yaml`` (or ``.yml``) beside
    ``NAME_players.yaml`` (the pairing ``make drill`` uses) when exactly one exists."""
    if plan is not None:
        return Path(plan)
    stem = path.stem
    for suffix in ("_players", "-players"):
        if stem.endswith(suffix):
            base = stem[: -len(suffix)]
            found = [p for p in (path.with_name(base + ".yaml"), path.with_name(base + ".yml"))
                     if p.is_file()]
            if len(found) == 1:
                return found[0]
            if found:
                raise InputError(str(path), f"two drill plans fit: {[str(p) for p in found]}; "
                                 "give --plan PLAN", field="--plan")
            raise InputError(str(path), f"no drill plan {base}.yaml beside this players "
                             "file; give --plan PLAN", field="--plan")
    raise InputError(str(path), "a players file is checked against its drill plan: give "
                     "--plan PLAN (or name the file PLAN_players.yaml beside PLAN.yaml)",
                     field="--plan")


def check_players(path: Path, args) -> str:
    from citytwin.scenarios.drill.director import load_players
    from citytwin.scenarios.drill.plan import load_plan

    plan_path = plan_for_players(path, getattr(args, "plan", None))
    loaded = load_plan(plan_path)
    steps = load_players(path, loaded.plan)
    n_inject = sum(s.after is not None and s.after.inject is not None for s in steps)
    n_warning = sum(s.after is not None and s.after.warning is not None for s in steps)
    actors = sorted({s.actor for s in steps})
    return (f"players file for drill plan '{loaded.plan.name}' ({plan_path}): {len(steps)} "
            f"steps ({n_inject} after an inject, {n_warning} after a warning, "
            f"{len(steps) - n_inject - n_warning} at a time) by {len(actors)} actor(s)")


def check_study(path: Path, args) -> str:
    from citytwin.scenarios.study.members import check_metrics, plan_members, validate_members
    from citytwin.scenarios.study.spec import load_study

    study = load_study(path)
    members = plan_members(study)
    validate_members(study, members)
    check_metrics(study, members[0])
    spec = study.spec
    n_sweep = sum(v.kind == "sweep" for v in spec.variations.values())
    return (f"study '{spec.name}': {len(members)} members planned and validated "
            f"({len(study.variant_names)} variant(s) × {spec.samples} sample(s)"
            f"{f', {n_sweep} sweep(s)' if n_sweep else ''}), {len(spec.variations)} "
            f"variation(s), {len(spec.overrides)} override(s), {len(spec.metrics)} "
            "metric(s); first member prepared; nothing run")


def check_rulebook(path: Path, args) -> str:
    from citytwin.alerting.rulebook import load_rulebook

    rb = load_rulebook(path)
    return (f"rulebook '{rb.name}' v{rb.version}: levels {rb.levels}; {len(rb.rules)} rules, "
            f"{len(rb.forecasts)} forecasts for hazards {rb.hazards}")


def check_routing(path: Path, args) -> str:
    from citytwin.alerting.routing import load_routing

    rt = load_routing(path)
    return (f"routing table '{rt.name}' v{rt.version}: {len(rt.units)} units, "
            f"{len(rt.hazards)} hazards, {len(rt.loops)} loops, {len(rt.routes)} routes")


def check_operations(path: Path, args) -> str:
    from citytwin.alerting.platform import load_operations

    ops = load_operations(str(path))
    wo = ops.work_orders
    return (f"operations policy '{ops.name}': work-order deadlines for {len(wo.deadline_s)} "
            f"levels, actions for {len(wo.actions)} hazards; self-checks, pushes and "
            f"situation updates every {ops.situation_interval_s:g} s")


def check_catalogue(path: Path, args) -> str:
    from citytwin.sensors_sim.catalogue import load_catalogue

    types = load_catalogue(path)
    return f"sensor catalogue: {len(types)} sensor types ({', '.join(types)})"


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("scenario", ("hazards", "sensors", "twin", "weather", "physics_step_s",
                      "places_of_concern", "duration_s"), check_scenario),
    Kind("drill-plan", ("msel", "objectives", "pacing"), check_drill_plan),
    Kind("players", ("players",), check_players,
         "a YAML list of steps, or only the key players"),
    Kind("study", ("base", "variations", "variants", "metrics", "samples"), check_study),
    Kind("rulebook", ("rules", "levels", "forecasts", "impact"), check_rulebook),
    Kind("routing", ("units", "loops", "routes", "downstream"), check_routing),
    Kind("operations", ("work_orders", "self_checks", "pushes", "situation_interval_s"),
         check_operations),
    Kind("catalogue", ("sensor_types",), check_catalogue),
)}


# --- command --------------------------------------------------------------------------------

def validate_file(path: Path, args) -> str:
    """The summary line of one valid file; InputError naming file and field otherwise."""
    kind = getattr(args, "kind", None)
    if kind is None:
        kind = detect_kind(read_document(path), str(path))
    return f"{path}: valid {KINDS[kind].check(path, args)}"


def cmd_validate(args) -> int:
    bad = 0
    for name in args.files:
        try:
            print(validate_file(Path(name), args), flush=True)
        except InputError as exc:
            bad += 1
            print(f"error: {exc}", file=sys.stderr, flush=True)
    if bad and len(args.files) > 1:
        print(f"{bad} of {len(args.files)} files invalid", file=sys.stderr)
    return EXIT_BAD_INPUT if bad else EXIT_OK


def add_validate_command(sub) -> None:
    """Register ``citytwin validate`` on the top-level subparsers ``sub``."""
    v = sub.add_parser(
        "validate", help="check scenario, drill, players, study and settings files",
        description="Check input files without running anything: scenarios (schema, twin, "
                    "hazard sources, sensor placement, rulebook), drill plans (and their "
                    "scenario after the injects), players files (against their plan), "
                    "studies (every member planned and validated), rulebooks, routing "
                    "tables, operations policies and sensor catalogues. The kind is told "
                    "from each file's top-level keys. Nothing is written; exit 2 if any "
                    "file is bad.")
    v.add_argument("files", nargs="+", metavar="FILE", help="YAML file(s) to check")
    v.add_argument("--kind", choices=list(KINDS), help="check every FILE as this kind")
    v.add_argument("--plan", metavar="PLAN",
                   help="drill plan of a players file (default: NAME.yaml beside "
                        "NAME_players.yaml)")
    v.set_defaults(func=cmd_validate)
