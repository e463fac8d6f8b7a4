"""Running a study: its members over an executor, resumably, then the aggregation.

Layout of a study folder::

    study.json                 the resolved plan (members, parameters, hashes)
    members/<id>/run/          the member's archive (observations not stored), when the
                               worker sees the study folder (a remote worker drops it)
    members/<id>/rulebook.yaml the member's rulebook when a variation changes it
    members/<id>/max_<metric>.npy  running maximum of the metric's quantity per grid cell
    members/<id>/metrics.json  written last and atomically: a member with it is finished
    (the client writes max_*.npy, rulebook.yaml and metrics.json from what ``run_member``
    returns, so members run on remote Dask workers land here too)
    study_results.csv, summary.json, prob_<metric>__<variant>.npy/.png
    study_report.html          written by the command line (``citytwin study run|report``)
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from citytwin.scenarios.study.aggregate import aggregate
from citytwin.scenarios.study.executor import SerialExecutor, local_executor
from citytwin.scenarios.study.files import (
    METRICS_FILE,
    jsonable,
    write_atomic,
    write_json_atomic,
)
from citytwin.scenarios.study.members import (
    MemberSpec,
    canonical,
    check_metrics,
    plan_members,
    validate_members,
)
from citytwin.scenarios.study.spec import Study, load_study


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
    return {"record": json.loads(json.dumps(jsonable(record))),
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
        write_atomic(folder / "rulebook.yaml",
                      yaml.safe_dump(member.rulebook, sort_keys=False).encode("utf-8"))
    for label, values in result["arrays"].items():
        buf = io.BytesIO()
        np.save(buf, np.asarray(values, dtype=np.float32))
        write_atomic(folder / f"max_{label}.npy", buf.getvalue())
    write_json_atomic(folder / METRICS_FILE, record)


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


def wall_text(seconds: float) -> str:
    """A wall-clock duration for the terminal: ``45 s``, ``3 min 05 s``, ``2 h 04 min``."""
    t = max(int(round(seconds)), 0)
    if t < 60:
        return f"{t} s"
    if t < 3600:
        return f"{t // 60} min {t % 60:02d} s"
    return f"{t // 3600} h {t % 3600 // 60:02d} min"


@dataclass
class StudyProgress:
    """Progress of the members being run, for the terminal only: members done out of the
    total, wall time elapsed, and the time left estimated from the mean wall time per member
    so far (elapsed / done: with members side by side this is the time between finishes, so
    it already counts the workers). Wall-clock times never enter a study's files."""

    clock: Callable[[], float] = time.perf_counter
    start_s: float | None = None

    def __post_init__(self) -> None:
        if self.start_s is None:
            self.start_s = self.clock()

    def eta_s(self, done: int, total: int) -> float | None:
        """Estimated wall time left (s); None before the first member finishes."""
        if done <= 0:
            return None
        return max(total - done, 0) * (self.clock() - self.start_s) / done

    def line(self, done: int, total: int, member_id: str) -> str:
        """``[3/8] <id> done; elapsed 1 min 30 s, about 2 min 30 s left``."""
        elapsed = self.clock() - self.start_s
        left = self.eta_s(done, total)
        rest = "all done" if done >= total else (
            "time left unknown" if left is None else f"about {wall_text(left)} left")
        return f"[{done}/{total}] {member_id} done; elapsed {wall_text(elapsed)}, {rest}"


@dataclass
class StudyRun:
    """What ``run_study`` did."""

    out_dir: Path
    members: list[MemberSpec]
    computed: list[str] = field(default_factory=list)   # member ids run now
    reused: list[str] = field(default_factory=list)     # finished before: skipped
    summary: dict = field(default_factory=dict)


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
            key = canonical(m.rulebook)
            if key not in seen:
                levels += Rulebook.model_validate(m.rulebook).levels
        else:
            key = settings_path(str(m.scenario.get("rulebook", "default")), base_dir)
            if key not in seen:
                levels += load_rulebook(key).levels
        seen.add(key)
    return list(dict.fromkeys(levels))


def run_study(study: Study | str | Path, out_dir: str | Path, executor=None,
              max_workers: int | None = None, *,
              progress: Callable[[int, int, MemberSpec], None] | None = None) -> StudyRun:
    """Run every unfinished member over ``executor`` (default: a local process pool), then
    aggregate. Finished members (metrics.json with the same parameter hash) are reused, so
    an interrupted study resumes where it stopped."""
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
    return outcome
