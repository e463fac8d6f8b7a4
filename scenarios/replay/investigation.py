"""An incident investigation: the replay, its diff against the warnings of the time, the
"what was known when" timeline, the fitted hazard source and every counterfactual.

``plan_investigation`` checks every input before anything is written; ``InvestigationPlan.run``
then replays into ``out_dir/replay`` and each counterfactual into ``out_dir/cf-<n>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from citytwin.alerting.observation import QUALITY_CLIPPED, QUALITY_OK
from citytwin.physics import HAZARDS
from citytwin.physics.hazard import FittedSource, SourceFit
from citytwin.scenarios.replay.counterfactual import (
    Counterfactual,
    CounterfactualResult,
    check_counterfactuals,
    run_counterfactual,
)
from citytwin.scenarios.replay.diff import diff_warnings
from citytwin.scenarios.replay.incident import Incident
from citytwin.scenarios.replay.session import (
    ReplayResult,
    ReplaySetup,
    known_when,
    prepare_replay,
    run_replay,
    warning_summary,
)
from citytwin.scenarios.spec.scenario import clock_text
from citytwin.twin.errors import InputError
from citytwin.twin.model import CityTwin


@dataclass
class Investigation:
    """A replay with its diff, timeline, fit and counterfactuals."""

    incident: Incident
    setup: ReplaySetup
    replay: ReplayResult
    timeline: list[dict[str, Any]]
    diff: list[dict[str, Any]] | None  #: replay vs the warnings of the time (None: not given)
    archived_summary: dict[str, Any] | None
    fit: FittedSource | None
    fit_note: str
    counterfactuals: list[CounterfactualResult]

    @property
    def levels(self) -> list[str]:
        return self.setup.run.rulebook.levels

    def text_summary(self) -> str:
        """Lines for the terminal."""
        lines = [f"Replay of {self.incident.source}: {self.replay.n_observations:,} "
                 f"observations, rulebook {self.setup.rulebook_label}, hazard model "
                 f"{'rebuilt' if self.setup.with_model else 'not used'} "
                 f"({self.replay.wall_s:.1f} s)"]
        if self.setup.anchor is None:
            lines.append("Wall clock unknown (numeric times, no anchor): times are T+ from the "
                         "incident's t = 0")
        status = self.incident.manifest.get("status", "completed")
        if status != "completed":
            lines.append(f"The archive is marked {status!r} "
                         f"({self.incident.manifest.get('abort_reason') or 'no reason'}): "
                         "replayed up to its last complete tick, "
                         f"{clock_text(self.incident.manifest.get('replayed_to_s'))}")
        rows = [("archived", self.archived_summary)] if self.archived_summary else []
        rows += [("replay", self.replay.summary)]
        rows += [(c.cf.label, c.result.summary) for c in self.counterfactuals]
        for label, s in rows:
            lv = ", ".join(f"{k} {clock_text(v)}" for k, v in s["level_first_s"].items())
            lines.append(f"  {label:<28} first warning {clock_text(s['first_warning_s'])}; {lv}; "
                         f"{s['warnings']} warning(s)")
        if self.diff is not None:
            lines.append(f"Diff against the warnings of the time: {diff_text(self.diff)}")
        if self.fit is not None:
            lines.append(self.fit.summary())
        elif self.fit_note:
            lines.append(f"No source fit: {self.fit_note}")
        for c in self.counterfactuals:
            for a in c.added:
                lines.append(f"  {c.cf.label}: model-derived {a['sensor_id']} would have "
                             f"alarmed at {clock_text(a['first_alarm_s'])} (in a warning at "
                             f"{clock_text(a['in_warning_s'])})")
        return "\n".join(lines)


def diff_text(diff: Sequence[dict[str, Any]]) -> str:
    """``diff_warnings`` statuses in words: "1 warning the same, 2 changed (1 earlier, 1
    different level), 0 only then (missed by the replay), 0 only now (extra in the
    replay)"; a changed warning counts once, its differences in the brackets."""
    if not diff:
        return "no warnings, then or now"
    statuses = [d["status"] for d in diff]
    same = statuses.count("same")
    then, now = statuses.count("missed"), statuses.count("extra")
    changed = [s for s in statuses if s not in ("same", "missed", "extra")]
    kinds: dict[str, int] = {}
    for s in changed:
        for part in s.split(", "):
            kinds[part] = kinds.get(part, 0) + 1
    order = ["earlier", "later", "different level", "level timing differs"]
    ranked = sorted(kinds.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order
                    else len(order))
    how = f" ({', '.join(f'{n} {k}' for k, n in ranked)})" if kinds else ""
    return (f"{same} warning{'' if same == 1 else 's'} the same, {len(changed)} changed{how}, "
            f"{then} only then (missed by the replay), {now} only now (extra in the replay)")


@dataclass
class InvestigationPlan:
    """A checked investigation, nothing written yet: the prepared replay, the
    counterfactuals (checked by ``check_counterfactuals``) and the source fit."""

    incident: Incident
    setup: ReplaySetup
    counterfactuals: list[Counterfactual]
    fit: FittedSource | None
    fit_note: str

    def run(self, out_dir: Path) -> Investigation:
        """Replay into ``out_dir/replay``, diff, and run each counterfactual into
        ``out_dir/cf-<n>``."""
        out_dir = Path(out_dir)
        inc, setup = self.incident, self.setup
        replay = run_replay(setup, out_dir / "replay", "replay")
        levels = setup.run.rulebook.levels
        diff = archived = None
        if inc.warnings is not None:
            diff = diff_warnings(inc.warnings, replay.warnings, levels)
            archived = warning_summary(inc.warnings, levels)
        cfs = [run_counterfactual(setup, cf, self.fit, out_dir / f"cf-{k}", replay)
               for k, cf in enumerate(self.counterfactuals, start=1)]
        return Investigation(inc, setup, replay, known_when(replay.archive_path), diff,
                             archived, self.fit, self.fit_note, cfs)


def plan_investigation(inc: Incident, *, counterfactuals: Sequence[Counterfactual] = (),
                       twin_dir: str | None = None, with_model: bool | None = None,
                       wind: tuple[float, float] | None = None, rulebook: str | None = None,
                       fit: bool | None = None, synthetic: tuple[int, str] | None = None,
                       twin: CityTwin | None = None) -> InvestigationPlan:
    """Prepare the replay, check every counterfactual and fit the hazard source — everything
    that can refuse the inputs, before anything is written. ``fit`` None: fit when a
    counterfactual needs it or the incident has readings a registered hazard's source fit
    explains (``HazardDescriptor.source_fit``). Adding or moving a sensor without a fitted
    source is an InputError here."""
    setup = prepare_replay(inc, twin_dir=twin_dir, rulebook=rulebook, with_model=with_model,
                           wind=wind, synthetic=synthetic, twin=twin)
    counterfactuals = list(counterfactuals)
    check_counterfactuals(setup, counterfactuals)
    fitted, note = None, ""
    fitter = source_fit_for(setup)
    want_fit = fit if fit is not None else (
        any(c.needs_fit for c in counterfactuals) or fitter is not None)
    if want_fit:
        if fitter is None:
            note = ("no registered hazard fits a source to these readings (quantities "
                    f"{sorted(set(setup.run.network.table['quantity'].astype(str)))})")
        elif not inc.from_citytwin and wind is None:
            note = "no weather for an external incident (give --wind SPEED,FROM_DEG)"
        else:
            try:
                fitted = fitter.fit(fit_readings(setup.obs), setup.run.network.table,
                                    setup.run.scenario.weather, twin=setup.run.twin)
            except ValueError as exc:
                note = str(exc)
    needing = [c for c in counterfactuals if c.needs_fit]
    if needing and fitted is None:
        option = "--add" if needing[0].add else "--move"
        raise InputError(option, f"counterfactual {needing[0].label!r} needs a fitted hazard "
                         f"source, and none could be fitted: {note or 'fit not requested'}")
    return InvestigationPlan(inc, setup, counterfactuals, fitted, note)


def source_fit_for(setup: ReplaySetup) -> SourceFit | None:
    """The first registered hazard's source fit whose quantity the incident's sensors
    measure (one source per investigation)."""
    measured = set(setup.run.network.table["quantity"].astype(str))
    return next((d.source_fit for d in HAZARDS.values()
                 if d.source_fit is not None and d.source_fit.quantity in measured), None)


def fit_readings(obs: pd.DataFrame) -> pd.DataFrame:
    """The readings a source fit explains: ``usable`` (quality ok or clipped) and
    ``clipped`` (at the top of the range: a lower bound) flags beside the values."""
    q = obs["quality"].to_numpy()
    return obs.assign(usable=(q == QUALITY_OK) | (q == QUALITY_CLIPPED),
                      clipped=q == QUALITY_CLIPPED)


def run_investigation(inc: Incident, out_dir: Path, *,
                      counterfactuals: Sequence[Counterfactual] = (),
                      twin_dir: str | None = None, with_model: bool | None = None,
                      wind: tuple[float, float] | None = None,
                      rulebook: str | None = None, fit: bool | None = None,
                      synthetic: tuple[int, str] | None = None) -> Investigation:
    """``plan_investigation`` then ``InvestigationPlan.run`` into ``out_dir``: the replay in
    ``out_dir/replay``, each counterfactual in ``out_dir/cf-<n>``."""
    return plan_investigation(inc, counterfactuals=counterfactuals, twin_dir=twin_dir,
                              with_model=with_model, wind=wind, rulebook=rulebook, fit=fit,
                              synthetic=synthetic).run(out_dir)
