"""Aggregate a study folder: results table, distributions, probabilities, maps, comparisons.

Pure functions over the members' ``metrics.json`` and ``max_<metric>.npy`` files (WNTR-style:
metrics are computed from tidy results, not inside the simulation):

- ``study_results.csv``: one row per finished member (parameters, then metrics), in plan
  order, so the same study gives a byte-identical file whatever executor ran it.
- ``summary.json``: per variant the distributions (median, 5 % and 95 % quantiles) of the
  times to first detection / warning / each level, P(missed detection) with a Wilson 95 %
  interval, exposure distributions; comparisons of each variant with the first one, paired
  on the members that share a sample index and sweep point (same draws, same scenario
  seed): difference in median time to first warning with a seeded paired bootstrap 95 %
  interval (sample indices resampled jointly), difference in P(miss) with Newcombe's
  paired square-and-add interval; a table by sweep point.
- ``prob_<metric>__<variant>.npy`` / ``.png``: P(max field > threshold) per cell.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from citytwin.scenarios.study.files import METRICS_FILE, jsonable, write_json_atomic
from citytwin.twin.errors import InputError
from citytwin.twin.seeding import rng_for

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``k / n`` (NaN, NaN when n = 0)."""
    if n <= 0:
        return math.nan, math.nan
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def newcombe_difference(k1: int, n1: int, k2: int, n2: int,
                        z: float = Z95) -> tuple[float, float, float]:
    """p2 − p1 with Newcombe's (1998, method 10) hybrid Wilson-score 95 % interval."""
    if n1 <= 0 or n2 <= 0:
        return math.nan, math.nan, math.nan
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, z)
    l2, u2 = wilson_interval(k2, n2, z)
    d = p2 - p1
    return (d, d - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
            d + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2))


def newcombe_paired_difference(both: int, only_1: int, only_2: int, neither: int,
                               z: float = Z95) -> tuple[float, float, float]:
    """p1 − p2 of two paired proportions with Newcombe's (1998, method 10) square-and-add
    Wilson-score 95 % interval.

    The 2 × 2 table of the N pairs: ``both`` (event in 1 and in 2), ``only_1``, ``only_2``,
    ``neither``; p1 = (both + only_1) / N, p2 = (both + only_2) / N. The correlation φ of
    the pair is corrected towards 0 (Newcombe: ``ad − bc`` reduced by N/2 when above it,
    0 in between) and taken as 0 when a margin is empty. Check value (Fagerland, Lydersen &
    Laake 2017, ch. 8, Cavo et al. 2012): (59, 6, 16, 80) → −0.0621 [−0.1186, −0.0046].
    """
    n = both + only_1 + only_2 + neither
    if n <= 0:
        return math.nan, math.nan, math.nan
    k1, k2 = both + only_1, both + only_2
    p1, p2 = k1 / n, k2 / n
    l1, u1 = wilson_interval(k1, n, z)
    l2, u2 = wilson_interval(k2, n, z)
    margins = k1 * (n - k1) * k2 * (n - k2)
    phi = 0.0
    if margins > 0:
        cross = both * neither - only_1 * only_2
        if cross > n / 2:
            phi = (cross - n / 2) / math.sqrt(margins)
        elif cross < 0:
            phi = cross / math.sqrt(margins)
    d = p1 - p2
    lo = d - math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2
                           - 2 * phi * (p1 - l1) * (u2 - p2)))
    hi = d + math.sqrt(max(0.0, (p2 - l2) ** 2 + (u1 - p1) ** 2
                           - 2 * phi * (p2 - l2) * (u1 - p1)))
    return d, lo, hi


def distribution(values) -> dict:
    """Median and 5–95 % quantiles over the finite values; ``never`` counts the NaNs."""
    v = np.asarray(values, dtype=float)
    f = v[np.isfinite(v)]
    if len(f) == 0:
        return {"n": 0, "never": int(len(v)), "median": None, "p5": None, "p95": None,
                "mean": None}
    q5, q50, q95 = np.quantile(f, [0.05, 0.5, 0.95])
    return {"n": int(len(f)), "never": int(len(v) - len(f)), "median": float(q50),
            "p5": float(q5), "p95": float(q95), "mean": float(f.mean())}


def bootstrap_median_difference(a, b, rng: np.random.Generator,
                                n_boot: int = 2000) -> tuple[float, float, float]:
    """median(b) − median(a) over finite values, with a percentile bootstrap 95 % interval
    (each sample resampled with replacement, independently)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) == 0 or len(b) == 0:
        return math.nan, math.nan, math.nan
    est = float(np.median(b) - np.median(a))
    ia = rng.integers(0, len(a), size=(n_boot, len(a)))
    ib = rng.integers(0, len(b), size=(n_boot, len(b)))
    diffs = np.median(b[ib], axis=1) - np.median(a[ia], axis=1)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return est, float(lo), float(hi)


def paired_bootstrap_median_difference(a, b, groups, rng: np.random.Generator,
                                       n_boot: int = 2000) -> tuple[float, float, float]:
    """median(b) − median(a) over the finite values of paired members, with a percentile
    bootstrap 95 % interval that resamples the pairs jointly.

    ``a[i]`` and ``b[i]`` are the two members of pair ``i`` (NaN: never happened);
    ``groups[i]`` is the resampling unit of the pair (the sample index: every sweep point of
    a sample shares its draws, so a drawn sample brings all its pairs). Replicates where a
    side has no finite value are left out of the quantiles.
    """
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    groups = np.asarray(groups)
    if len(a) != len(b) or len(a) != len(groups):
        raise ValueError("a, b and groups must have one entry per pair")
    fa, fb = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(fa) == 0 or len(fb) == 0:
        return math.nan, math.nan, math.nan
    est = float(np.median(fb) - np.median(fa))
    units = np.unique(groups)
    rows = [np.flatnonzero(groups == u) for u in units]
    width = max(len(r) for r in rows)
    pad = len(a)  # padding points at an appended NaN
    table = np.full((len(units), width), pad)
    for k, r in enumerate(rows):
        table[k, :len(r)] = r
    a_ext, b_ext = np.append(a, np.nan), np.append(b, np.nan)
    draws = rng.integers(0, len(units), size=(n_boot, len(units)))
    idx = table[draws].reshape(n_boot, -1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates → NaN
        diffs = np.nanmedian(b_ext[idx], axis=1) - np.nanmedian(a_ext[idx], axis=1)
    diffs = diffs[np.isfinite(diffs)]
    if len(diffs) == 0:
        return est, math.nan, math.nan
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return est, float(lo), float(hi)


def paired_frame(df: pd.DataFrame, ref: str, variant: str) -> pd.DataFrame:
    """The members of ``ref`` and ``variant`` that share a sweep point and a sample index
    (same draws, same scenario seed), one row per pair; columns suffixed ``_ref``/``_var``."""
    keys = ["grid_index", "sample"]
    return df[df["variant"] == ref].merge(df[df["variant"] == variant], on=keys,
                                          how="inner", suffixes=("_ref", "_var"),
                                          validate="one_to_one")


def compare(df: pd.DataFrame, ref: str, variant: str, seed: int, n_boot: int) -> dict:
    """``variant`` − ``ref`` on their paired members (see the module docstring)."""
    pairs = paired_frame(df, ref, variant)
    est, lo, hi = paired_bootstrap_median_difference(
        pairs["time_to_first_warning_s_ref"], pairs["time_to_first_warning_s_var"],
        pairs["sample"], rng_for(seed, "study-bootstrap", ref, variant), n_boot)
    both = pairs[pairs["hazard_reached_ref"].astype(bool)
                 & pairs["hazard_reached_var"].astype(bool)]
    mv = both["missed_detection_var"].astype(bool)
    mr = both["missed_detection_ref"].astype(bool)
    d, dlo, dhi = newcombe_paired_difference(int((mv & mr).sum()), int((mv & ~mr).sum()),
                                             int((~mv & mr).sum()), int((~mv & ~mr).sum()))
    return {
        "variant": variant, "reference": ref, "pairs": int(len(pairs)),
        "median_time_to_first_warning_diff_s": {
            "estimate": est, "ci95": [lo, hi],
            "method": f"paired percentile bootstrap over sample indices, {n_boot} draws"},
        "p_miss_diff": {
            "estimate": d, "ci95": [dlo, dhi], "pairs": int(len(both)),
            "method": "Newcombe paired square-and-add (Wilson score), over the pairs where "
                      "both members reached the threshold"}}


def probability_map(fields: list[np.ndarray], threshold: float) -> np.ndarray:
    """P(field > threshold) per cell: the fraction of members above it."""
    if not fields:
        raise ValueError("no member fields")
    stack = np.stack([np.asarray(f) for f in fields])
    return (stack > threshold).mean(axis=0)


def read_plan(out_dir: Path) -> dict:
    """``study.json`` (written by ``study.write_plan``)."""
    path = Path(out_dir) / "study.json"
    plan = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("labels", "levels") if k not in plan]
    if missing:
        raise InputError(str(path), f"no {' or '.join(missing)} (written by an older "
                         "citytwin): run 'citytwin study run' on the study again to rewrite "
                         "the plan (finished members are reused)", field=missing[0])
    return plan


def collect(out_dir: str | Path) -> tuple[dict, list[dict]]:
    """The plan and the finished members' records (plan order)."""
    out_dir = Path(out_dir)
    plan = read_plan(out_dir)
    records = []
    for m in plan["members"]:
        path = out_dir / "members" / m["member_id"] / METRICS_FILE
        if not path.exists():
            continue
        rec = json.loads(path.read_text(encoding="utf-8"))
        if rec.get("param_hash") == m["param_hash"]:
            records.append(rec)
    return plan, records


def results_frame(plan: dict, records: list[dict]) -> pd.DataFrame:
    """One row per member: id, variant, grid index, sample, seed, parameters, metrics."""
    params = list(plan["study"]["variations"])
    rows = []
    for r in records:
        row: dict[str, Any] = {"member_id": r["member_id"], "variant": r["variant"],
                               "grid_index": r["grid_index"], "sample": r["sample"],
                               "scenario_seed": r["scenario_seed"]}
        for p in params:
            v = r["params"].get(p)
            row[p] = v if isinstance(v, int | float | str | bool) or v is None else \
                json.dumps(v, separators=(",", ":"))
        for k, v in r["metrics"].items():
            row[k] = ";".join(v) if isinstance(v, list) else (math.nan if v is None else v)
        rows.append(row)
    return pd.DataFrame(rows)


def _summarise(df: pd.DataFrame, levels: list[str], labels: list[str]) -> dict:
    reached = df["hazard_reached"].astype(bool)
    missed = df["missed_detection"].astype(bool)
    k, n = int(missed.sum()), int(reached.sum())
    lo, hi = wilson_interval(k, n)
    out = {"members": int(len(df)),
           "time_to_first_detection_s": distribution(df["time_to_first_detection_s"]),
           "time_to_first_warning_s": distribution(df["time_to_first_warning_s"])}
    for lv in levels:
        out[f"time_to_{lv}_s"] = distribution(df[f"time_to_{lv}_s"])
    kr = int(reached.sum())
    out["hazard_reached"] = {"k": kr, "n": int(len(df)), "p": kr / len(df) if len(df) else None}
    out["missed_detection"] = {"k": k, "n": n, "p": k / n if n else None, "ci95": [lo, hi]}
    out["max_level"] = {lv: int((df["max_level"] == lv).sum()) for lv in ["none", *levels]}
    out["warnings"] = distribution(df["warnings"])
    false = df["false_warnings"] if "false_warnings" in df else pd.Series(np.nan, df.index)
    out["false_warnings"] = distribution(false)
    kf = int((false > 0).sum())
    out["members_with_false_warnings"] = {"k": kf, "n": int(len(df)),
                                          "p": kf / len(df) if len(df) else None}
    out["work_order_escalations"] = distribution(df["work_order_escalations"])
    exposure = {}
    for lab in labels:
        any_prot = int((df[f"{lab}_protected"] > 0).sum())
        plo, phi = wilson_interval(any_prot, len(df))
        exposure[lab] = {
            "area_m2": distribution(df[f"{lab}_area_m2"]),
            "buildings": distribution(df[f"{lab}_buildings"]),
            "people": distribution(df[f"{lab}_people"]),
            "protected": distribution(df[f"{lab}_protected"]),
            "p_any_protected": {"k": any_prot, "n": int(len(df)),
                                "p": any_prot / len(df) if len(df) else None,
                                "ci95": [plo, phi]}}
    out["exposure"] = exposure
    return out


def aggregate(out_dir: str | Path, twin=None) -> dict:
    """Write ``study_results.csv``, ``summary.json`` and the probability maps; return the
    summary. ``twin`` (for map extents and outlines) is loaded from the plan if not given."""
    out_dir = Path(out_dir)
    plan, records = collect(out_dir)
    study = plan["study"]
    df = results_frame(plan, records)
    df.to_csv(out_dir / "study_results.csv", index=False)
    labels, levels = plan["labels"], plan["levels"]
    summary: dict[str, Any] = {
        "study": study["name"], "members_planned": len(plan["members"]),
        "members_finished": len(records),
        "missing": [m["member_id"] for m in plan["members"]
                    if m["member_id"] not in set(df.get("member_id", []))],
        "levels": levels, "metrics": labels, "variants": {}, "comparisons": [],
        "maps": [], "by_sweep": []}
    if not len(df):
        write_json_atomic(out_dir / "summary.json", summary)
        return jsonable(summary)
    variants = [v for v in plan["variants"] if v in set(df["variant"])]
    for v in variants:
        summary["variants"][v] = _summarise(df[df["variant"] == v], levels, labels)
    ref = variants[0]
    for v in variants[1:]:
        summary["comparisons"].append(compare(df, ref, v, study["seed"], study["bootstrap"]))
    sweeps = [p for p, v in study["variations"].items() if v.get("sweep") is not None]
    if sweeps:
        for (v, g), part in df.groupby(["variant", "grid_index"], sort=False):
            miss, n = int(part["missed_detection"].sum()), int(part["hazard_reached"].sum())
            lo, hi = wilson_interval(miss, n)
            summary["by_sweep"].append({
                "variant": v, "grid_index": int(g),
                **{p: part[p].iloc[0] for p in sweeps}, "members": int(len(part)),
                "time_to_first_warning_s": distribution(part["time_to_first_warning_s"]),
                "missed_detection": {"k": miss, "n": n, "p": miss / n if n else None,
                                     "ci95": [lo, hi]}})
    summary["maps"] = write_maps(out_dir, plan, df, labels, variants, twin)
    summary = jsonable(summary)
    write_json_atomic(out_dir / "summary.json", summary)
    return summary


def write_maps(out_dir: Path, plan: dict, df: pd.DataFrame, labels: list[str],
               variants: list[str], twin=None) -> list[dict]:
    """P(max field > threshold) per cell for each metric and variant (.npy; the study
    report draws each as ``png`` over the twin)."""
    from citytwin.scenarios.study.metrics import grid_for

    if twin is None:
        twin = plan_twin(plan)
    maps = []
    for metric, lab in zip(plan["study"]["metrics"], labels, strict=True):
        grid = grid_for(metric, twin)
        for v in variants:
            ids = df.loc[df["variant"] == v, "member_id"]
            fields = [np.load(out_dir / "members" / i / f"max_{lab}.npy") for i in ids]
            prob = probability_map(fields, metric["threshold"])
            stem = f"prob_{lab}__{v}"
            np.save(out_dir / f"{stem}.npy", prob)
            maps.append({"metric": lab, "variant": v, "npy": f"{stem}.npy",
                         "png": f"{stem}.png", "extent_m": list(grid.extent),
                         "title": f"P({metric['quantity']} > {metric['threshold']:g}) — {v}, "
                                  f"{len(fields)} members",
                         "members": len(fields),
                         "max_p": float(prob.max()),
                         "area_p_ge_0_5_m2": float((prob >= 0.5).sum() * grid.cell_m ** 2),
                         "area_p_gt_0_m2": float((prob > 0).sum() * grid.cell_m ** 2)})
    return maps


def plan_twin(plan: dict):
    """The base scenario's twin (the synthetic city is rebuilt in milliseconds)."""
    from citytwin.scenarios.run.prepare import load_scenario_twin
    from citytwin.scenarios.spec.scenario import parse_scenario

    sc = parse_scenario(plan["member_scenario"], plan["base_source"])
    return load_scenario_twin(sc, Path(plan["base_dir"]), plan["base_source"])
