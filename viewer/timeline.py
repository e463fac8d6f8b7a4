"""Timelines people read at a glance: the warning updates that matter, times as clock times.

A run logs every refresh of a warning (``W-0001 updated: …``, some 300 characters each, often
twenty in a row that differ only in a few square metres or people). ``condense_timeline``
keeps what a reader needs — every line that is not a warning update, and the updates that
change the level, the protected targets inside, or the area or the population by at least
``SIGNIFICANT_CHANGE`` (25 %) since the last line shown for that warning — writes a kept
update as what changed (``W-0001 updated: area 0.28 → 0.44 ha; people ≈ 49 → 315``) and
folds the others into one line per run of them. The archive's ``timeline`` and ``warnings``
tables keep the full list. ``readable`` turns raw seconds in a message into clock times.

Used by the terminal timeline (``scenarios/cli/main.print_timeline``) and the reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any

from citytwin.scenarios.spec.scenario import clock_text

#: Relative change of area or population that makes a warning update worth a line.
SIGNIFICANT_CHANGE = 0.25
#: Timeline kinds of warning events (``warning_<event>``).
WARNING_PREFIX = "warning_"


@dataclass(frozen=True)
class TimelineLine:
    """One line of a condensed timeline; ``folded`` counts the updates a summary line
    stands for (0 for an ordinary line)."""

    t_s: float
    kind: str
    message: str
    folded: int = 0


def _targets(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return (value,) if value else ()
    return tuple(str(v) for v in value or ())


def _record(event: Any) -> dict[str, Any]:
    """A warning event (``WarningEvent``, archive row as a mapping or namedtuple) as a dict."""
    if is_dataclass(event) and not isinstance(event, type):
        rec = asdict(event)
    elif isinstance(event, Mapping):
        rec = dict(event)
    else:
        rec = event._asdict()
    rec["targets"] = _targets(rec.get("targets"))
    return rec


def _changed(old: float, new: float) -> bool:
    base = max(abs(float(old)), abs(float(new)))
    return base > 0 and abs(float(new) - float(old)) / base >= SIGNIFICANT_CHANGE


def update_changes(shown: Mapping[str, Any], event: Mapping[str, Any]) -> list[str]:
    """What an update changes that matters, against the last event shown for its warning:
    level, protected targets, area or people by ≥ ``SIGNIFICANT_CHANGE``; [] if nothing."""
    out = []
    if event.get("level_name") != shown.get("level_name"):
        out.append(f"level {shown.get('level_name')} → {event.get('level_name')}")
    old_t, new_t = set(shown["targets"]), set(event["targets"])
    if new_t - old_t:
        out.append("targets + " + ", ".join(sorted(new_t - old_t)))
    if old_t - new_t:
        out.append("targets − " + ", ".join(sorted(old_t - new_t)))
    a0, a1 = float(shown.get("area_m2") or 0.0), float(event.get("area_m2") or 0.0)
    if _changed(a0, a1):
        out.append(f"area {a0 / 1e4:.2f} → {a1 / 1e4:.2f} ha")
    p0, p1 = int(shown.get("population") or 0), int(event.get("population") or 0)
    if _changed(p0, p1):
        out.append(f"people ≈ {p0:,} → {p1:,}")
    return out


def significant(events: Iterable[Any]) -> list[str | None]:
    """For each warning event in issue order: None for an update that changes nothing that
    matters (see :func:`update_changes`), else the text of what it says — the changes for a
    kept update, ``""`` for every other event (raised, escalated, cleared, …)."""
    shown: dict[str, dict[str, Any]] = {}
    out: list[str | None] = []
    for raw in events:
        e = _record(raw)
        wid = str(e["warning_id"])
        if e.get("event") == "updated" and wid in shown:
            changes = update_changes(shown[wid], e)
            if not changes:
                out.append(None)
                continue
            out.append("; ".join(changes))
        else:
            out.append("")
        shown[wid] = e
    return out


_DEADLINE = re.compile(r"\b(deadline|due|at) (T\+)?(\d+(?:\.\d+)?) ?s\b")
_LONG_FLOAT = re.compile(r"(?<![\w.])(\d+\.\d)\d{3,}\b")


def readable(message: str) -> str:
    """A logged message with raw seconds from the start as clock times (``deadline 7525 s``
    → ``deadline T+02:05:25``) and long decimals cut to one place."""
    text = _DEADLINE.sub(lambda m: f"{m.group(1)} {clock_text(float(m.group(3)))}", message)
    return _LONG_FLOAT.sub(r"\1", text)


def condense_timeline(entries: Sequence[Sequence[Any]], warnings: Iterable[Any] = (),
                      ) -> list[TimelineLine]:
    """The timeline ``entries`` — ``(t_s, kind, message[, data])`` in time order — with the
    minor warning updates folded (module docstring). ``warnings``: the run's warning events
    in issue order (``RunResult.warnings`` or the archive's ``warnings`` rows by seq); the
    k-th ``warning_*`` line of a warning is its k-th event. Lines with no matching event are
    kept as they are."""
    per_warning: dict[str, list[tuple[dict[str, Any], str | None]]] = {}
    records = [_record(w) for w in warnings]
    for rec, verdict in zip(records, significant(records), strict=True):
        per_warning.setdefault(str(rec["warning_id"]), []).append((rec, verdict))
    used: dict[str, int] = {}
    out: list[TimelineLine | None] = []
    open_runs: dict[str, tuple[int, list[float]]] = {}  # warning → (slot, folded times)

    def close(wid: str) -> None:
        slot, times = open_runs.pop(wid)
        n = len(times)
        span = (clock_text(times[0]) if n == 1
                else f"{clock_text(times[0])}–{clock_text(times[-1])}")
        out[slot] = TimelineLine(times[0], f"{WARNING_PREFIX}updated",
                                 f"{wid}: {n} minor update{'s' * (n > 1)} {span} (same level "
                                 f"and targets, area and people within "
                                 f"{SIGNIFICANT_CHANGE:.0%}; all in the archive)", folded=n)

    for entry in entries:
        t_s, kind, message = float(entry[0]), str(entry[1]), str(entry[2])
        data = entry[3] if len(entry) > 3 else None
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                data = None
        wid = data.get("warning_id") if isinstance(data, Mapping) else None
        if not kind.startswith(WARNING_PREFIX) or wid is None:
            out.append(TimelineLine(t_s, kind, readable(message)))
            continue
        wid = str(wid)
        k = used.get(wid, 0)
        used[wid] = k + 1
        events = per_warning.get(wid, [])
        verdict = events[k][1] if k < len(events) else ""
        if verdict is None:  # a minor update: folded into the current run of them
            if wid not in open_runs:
                open_runs[wid] = (len(out), [])
                out.append(None)
            open_runs[wid][1].append(t_s)
            continue
        if wid in open_runs:
            close(wid)
        if verdict and kind == f"{WARNING_PREFIX}updated":
            level = str(events[k][0].get("level_name", "")).upper()
            message = f"{wid} updated ({level}): {verdict}"
        out.append(TimelineLine(t_s, kind, readable(message)))
    for wid in list(open_runs):
        close(wid)
    return [line for line in out if line is not None]
