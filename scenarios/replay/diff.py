"""The warnings of two runs compared warning by warning: same, earlier, later, missed, extra."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from citytwin.scenarios.replay.session import level_first


def _per_warning(w: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    rows = []
    for wid, g in w.groupby("warning_id", sort=True):
        g = g.sort_values("known_at_s", kind="stable")
        end = g[g["event"].isin(["cleared", "cancelled"])]
        live = g[~g["event"].isin(["cleared", "cancelled"])]
        rows.append({
            "warning_id": wid, "hazard": str(g["hazard"].iloc[0]),
            "raised_s": float(g["known_at_s"].iloc[0]),
            "end_s": float(end["known_at_s"].iloc[0]) if len(end) else math.inf,
            "max_level": int(live["level"].max()) if len(live) else 0,
            "sensors": set().union(*map(set, g["sensors"])),
            "targets": set().union(*map(set, g["targets"])),
            "cancelled": bool((g["event"] == "cancelled").any()),
            "level_first": level_first(levels, live["known_at_s"], live["level"])})
    return pd.DataFrame(rows)


def diff_warnings(archived: pd.DataFrame, replayed: pd.DataFrame,
                  levels: list[str]) -> list[dict[str, Any]]:
    """Per warning: same, earlier, later, different level, missed or extra, with deltas.

    Matching rule: warnings are summarised per ``warning_id`` (hazard, union of sensors and
    targets over its events, active from its first event to its all-clear/cancellation).
    An archived and a replayed warning *may match* when they have the same hazard, overlap
    in time, and share at least one sensor — or, when either has no sensors (a model-based
    pre-warning), at least one protected target. Pairs are taken greedily, most shared
    sensors + targets first, then smallest difference in raise time; each warning is used
    once. Unmatched archived warnings are *missed*, unmatched replayed ones *extra*.
    Times are ``known_at_s`` (when the warning was issued); deltas are replay − archived.
    """
    a = _per_warning(archived, levels)
    r = _per_warning(replayed, levels)
    pairs = []
    for i, x in enumerate(a.to_dict(orient="records")):
        for j, y in enumerate(r.to_dict(orient="records")):
            if x["hazard"] != y["hazard"]:
                continue
            if x["raised_s"] > y["end_s"] or y["raised_s"] > x["end_s"]:
                continue
            shared = len(x["sensors"] & y["sensors"])
            if not (x["sensors"] and y["sensors"]):
                shared = len(x["targets"] & y["targets"])
            if shared == 0:
                continue
            pairs.append((-shared, abs(x["raised_s"] - y["raised_s"]), i, j))
    used_a, used_r, out = set(), set(), []
    for _, _, i, j in sorted(pairs):
        if i in used_a or j in used_r:
            continue
        used_a.add(i)
        used_r.add(j)
        out.append(_compare(a.iloc[i], r.iloc[j], levels))
    for i in range(len(a)):
        if i not in used_a:
            out.append(_row(a.iloc[i], None, levels, "missed"))
    for j in range(len(r)):
        if j not in used_r:
            out.append(_row(None, r.iloc[j], levels, "extra"))
    return sorted(out, key=lambda d: min(v for v in (d["archived_raised_s"],
                                                      d["replay_raised_s"]) if v is not None))


def _row(x, y, levels: list[str], status: str) -> dict[str, Any]:
    def lv(k: int) -> str | None:
        return levels[k - 1] if k else None

    level_deltas = {}
    for name in levels:
        ta = None if x is None else x["level_first"][name]
        tb = None if y is None else y["level_first"][name]
        level_deltas[name] = {"archived_s": ta, "replay_s": tb,
                              "delta_s": None if ta is None or tb is None else tb - ta}
    return {
        "status": status, "hazard": (x if x is not None else y)["hazard"],
        "archived_id": None if x is None else x["warning_id"],
        "replay_id": None if y is None else y["warning_id"],
        "archived_raised_s": None if x is None else float(x["raised_s"]),
        "replay_raised_s": None if y is None else float(y["raised_s"]),
        "delta_raised_s": (None if x is None or y is None
                           else float(y["raised_s"] - x["raised_s"])),
        "archived_max_level": None if x is None else lv(int(x["max_level"])),
        "replay_max_level": None if y is None else lv(int(y["max_level"])),
        "levels": level_deltas,
        "sensors": sorted((set() if x is None else x["sensors"])
                          | (set() if y is None else y["sensors"])),
    }


def _compare(x, y, levels: list[str]) -> dict[str, Any]:
    parts = []
    d = y["raised_s"] - x["raised_s"]
    if d < 0:
        parts.append("earlier")
    elif d > 0:
        parts.append("later")
    if x["max_level"] != y["max_level"]:
        parts.append("different level")
    elif any(x["level_first"][n] != y["level_first"][n] for n in levels):
        parts.append("level timing differs")
    return _row(x, y, levels, ", ".join(parts) or "same")
