"""What an extra SimPy process of a run (a drill's injects and players, an ensemble's
recorder, a cascade) may use: the ``RunContext``, with player commands (``act``: work-order
and warning actions through the platform, evacuations, field measurements) archived like the
run's own events."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
import simpy

from citytwin.alerting.engine import Engine
from citytwin.alerting.events import WarningEvent
from citytwin.alerting.impact import ImpactIndex
from citytwin.alerting.platform import Platform, PlatformOutput
from citytwin.physics.base import FieldGrid, HazardEngine
from citytwin.physics.flood_impact import footprints_of
from citytwin.physics.hazard import sample_hazards
from citytwin.scenarios.run.archive import Archive
from citytwin.scenarios.run.prepare import PreparedRun
from citytwin.sensors_sim.scripted_faults import ScriptedFaults


@dataclass
class RunResult:
    """What a run produced, for the caller (the archive holds the full record)."""

    run_dir: Path
    archive_path: Path
    timeline: list[tuple[float, str, str, dict]] = field(default_factory=list)
    warnings: list[WarningEvent] = field(default_factory=list)
    n_observations: int = 0
    n_alarms: int = 0
    n_work_order_events: int = 0
    n_escalations: int = 0
    cap_files: list[Path] = field(default_factory=list)
    snapshot: dict[str, FieldGrid] = field(default_factory=dict)
    snapshot_t_s: float = 0.0
    wall_s: float = 0.0


#: A field team's default travel time before a requested measurement is taken (s).
MEASURE_DELAY_S = 600.0


@dataclass(frozen=True)
class ActionOutcome:
    """What a player command did: ``ok`` False means refused, ``detail`` says why."""

    ok: bool
    detail: str
    data: dict = field(default_factory=dict)


@dataclass
class RunContext:
    """What an extra SimPy process (a drill's injects, a player console, an ensemble's field
    recorder) may use during a run. Everything it does goes through the platform and the
    archive like the run's own processes."""

    env: simpy.Environment
    run: PreparedRun
    platform: Platform
    engine: Engine
    hazards: list[HazardEngine]
    hazard_by_id: dict[str, HazardEngine]
    result: RunResult
    faults: ScriptedFaults
    duration_s: float
    log: Callable[[float, str, str, dict], None]
    _archive: Archive
    _record: Callable
    _impact: ImpactIndex | None = None
    #: every command so far, from players and the scenario's ``actions``:
    #: (time s, action, target, done, actor)
    actions_taken: list[tuple[float, str, str, bool, str]] = field(default_factory=list)

    def inject(self, t_s: float, inject_id: str, kind: str, message: str,
               data: dict | None = None) -> None:
        """Archive a scenario event (MSEL inject) as it fires, with a timeline line."""
        self._archive.write_record("injects", float(t_s), inject_id, kind, message,
                                   data or {})
        self.log(t_s, "inject", f"inject {inject_id} ({kind}): {message}",
                 {"inject_id": inject_id, **(data or {})})

    def record_chain(self, t_s: float, parent: str, child: str, rule: str,
                     detail: str) -> None:
        """Archive a cascade link (a hazard triggering another) with a timeline line."""
        self._archive.write_record("hazard_chain", float(t_s), parent, child, rule, detail)
        self.log(t_s, "hazard_chain", f"cascade {parent} → {child} ({rule})",
                 {"parent": parent, "child": child, "rule": rule})

    def sample(self, quantity: str, xyz_m: np.ndarray, t_s: float | None = None) -> np.ndarray:
        """True hazard value of ``quantity`` at points (n × 3, m), the hazards' values
        combined by the quantity's declared rule (sum, max or min).

        With ``t_s`` the hazards are first advanced to the last physics step at or before it
        (the ``physics_step_s`` grid the physics clock runs on), never to ``t_s`` itself: an
        adaptive-step engine (the flood) cuts its step at every time it is advanced to, so
        sampling at other times would change the run."""
        xyz_m = np.atleast_2d(np.asarray(xyz_m, dtype=float))
        if t_s is not None:
            step = self.run.scenario.physics_step_s
            t_s = math.floor(float(t_s) / step + 1e-9) * step
            for h in self.hazards:
                if quantity in h.info and t_s > h.t_s:
                    h.advance_to(t_s)
        return sample_hazards(self.hazards, quantity, xyz_m)

    def act(self, t_s: float, action: str, target: str, actor: str = "player",
            note: str = "", *, ref: str = "", **args) -> ActionOutcome:
        """A player command through the platform (see ``scenarios.scenario.ACTION_NAMES``),
        archived in ``actions`` whether done or refused; never raises for a refused one.
        ``ref`` names where the command came from (e.g. ``actions.2`` of the scenario) in
        the timeline line."""
        try:
            if action == "evacuate":
                out, outcome = PlatformOutput(), self._evacuate(target)
            elif action == "measure":
                out, outcome = PlatformOutput(), self._measure(t_s, target, actor, **args)
            else:
                out = self.platform.act(t_s, action, target, actor, note, args.get("handler"))
                detail = ", ".join(m.identifier for m in out.cap_messages)
                outcome = ActionOutcome(True, f"CAP {detail}" if detail else "done",
                                        {"cap": [m.identifier for m in out.cap_messages]}
                                        if detail else {})
        except (KeyError, ValueError, TypeError) as exc:
            out = PlatformOutput()
            # a KeyError's str() wraps its message in quotes; other messages keep theirs
            reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            outcome = ActionOutcome(False, str(reason))
        self._archive.write_record("actions", float(t_s), actor, action, target,
                                   {**args, **({"note": note} if note else {})},
                                   "done" if outcome.ok else "refused", outcome.detail)
        self.actions_taken.append((float(t_s), action, target, outcome.ok, actor))
        line = ((f"{ref}: " if ref else "") + f"{actor}: {action} {target}"
                + (f" ({note})" if note else "")
                + ("" if outcome.ok else f" — refused: {outcome.detail}"))
        self._record(float(t_s), out, [(float(t_s), "action" if outcome.ok else
                                        "action_refused", line,
                                        {"action": action, "target": target,
                                         **outcome.data})])
        return ActionOutcome(outcome.ok, outcome.detail, outcome.data)

    def _area(self, target: str):
        """A place id (its polygon; a point place inside a building: that building; another
        point place: 50 m around it), or ``"x,y,radius_m"`` in the twin's CRS."""
        places = self.run.twin.places
        hit = places[places["id"].astype(str) == target] if len(places) else places
        if len(hit):
            geom = footprints_of(hit.geometry.to_numpy()[:1], self.run.twin)[0]
            return geom if geom.area > 0 else geom.buffer(50.0)
        parts = target.split(",")
        if len(parts) != 3:
            raise ValueError(f"evacuate needs a place id or 'x,y,radius_m', got {target!r}")
        x, y, r = (float(p) for p in parts)
        if not r > 0:
            raise ValueError(f"evacuation radius must be > 0 m, got {r:g}")
        return shapely.Point(x, y).buffer(r)

    @property
    def impact(self) -> ImpactIndex:
        """The twin's index of buildings, occupants and protected targets (built once)."""
        if self._impact is None:
            self._impact = ImpactIndex(self.run.twin)
        return self._impact

    def _evacuate(self, target: str) -> ActionOutcome:
        """People to move: the one count of warnings (``ImpactIndex.count``)."""
        area = self._area(target)
        counted = self.impact.count(area)
        in_places = round(sum(counted.place_people))
        data = {"area_m2": round(float(area.area), 1), "buildings": counted.buildings,
                "population": counted.people, "in_open_places": in_places,
                "targets": list(counted.targets)}
        return ActionOutcome(True, f"evacuation of {counted.people} people ordered "
                                   f"({counted.buildings} buildings, {in_places} in open "
                                   "places)", data)

    def _measure(self, t_s: float, target: str, actor: str, quantity: str | None = None,
                 height_m: float = 1.5, delay_s: float = MEASURE_DELAY_S) -> ActionOutcome:
        try:
            x, y = (float(p) for p in target.split(","))
        except ValueError:
            raise ValueError(f"measure needs 'x,y' in metres, got {target!r}") from None
        quantities = [q for h in self.hazards for q in h.info]
        if quantity is None:  # what the run's sensors measure, else the hazard's first
            sensed = set(self.run.network.table["quantity"].astype(str))
            quantity = next((q for q in quantities if q in sensed),
                            quantities[0] if quantities else None)
        if quantity is None or quantity not in quantities:
            raise ValueError(f"no hazard of this run produces {quantity!r} (known: "
                             f"{sorted(set(quantities))})")
        if not delay_s >= 0:
            raise ValueError(f"delay_s must be ≥ 0, got {delay_s}")
        due = float(t_s) + float(delay_s)

        def field_team():
            yield self.env.timeout(max(due - self.env.now, 0.0))
            value = float(self.sample(quantity, [[x, y, height_m]], t_s=due)[0])
            self._archive.write_record("actions", due, actor, "measure_result", target,
                                       {"quantity": quantity, "height_m": height_m,
                                        "value": value}, "done", f"{quantity} = {value:.4g}")
            self.log(due, "measurement", f"{actor}: field measurement at ({x:.0f}, {y:.0f}) "
                     f"m: {quantity} = {value:.4g}", {"quantity": quantity, "value": value,
                                                     "x_m": x, "y_m": y})

        if due <= self.duration_s:
            self.env.process(field_team())
        return ActionOutcome(True, f"field team sent, measuring {quantity} at T+{due:g} s",
                             {"due_s": due, "quantity": quantity})
