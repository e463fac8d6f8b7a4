"""The study report: one self-contained HTML file (plots embedded) from a study folder."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from citytwin.scenarios.study.aggregate import plan_twin  # noqa: E402
from citytwin.viewer.html import LEVEL_COLOURS, page, png, table  # noqa: E402
from citytwin.viewer.maps import probability_map_figure  # noqa: E402


def _s(v, spec: str = ".0f", unit: str = "") -> str:
    return "—" if v is None else f"{format(v, spec)}{unit}"


def _pct(p: dict) -> str:
    if p.get("p") is None:
        return "—"
    lo, hi = p.get("ci95", [None, None])
    ci = f" [{lo:.0%}, {hi:.0%}]" if lo is not None else ""
    return f"{p['p']:.0%}{ci} ({p['k']}/{p['n']})"


def time_plot(df: pd.DataFrame, variants: list[str], levels: list[str]) -> str:
    """Empirical CDFs of time to first warning and to each level, per variant."""
    cols = ["time_to_first_detection_s", "time_to_first_warning_s",
            *[f"time_to_{lv}_s" for lv in levels]]
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 3.8), squeeze=False,
                             sharey=True)
    for ax, v in zip(axes[0], variants, strict=True):
        part = df[df["variant"] == v]
        for c in cols:
            t = np.sort(part[c].to_numpy(float))
            name = c.removeprefix("time_to_").removesuffix("_s")
            finite = t[np.isfinite(t)]
            if len(finite) == 0:
                continue
            y = np.arange(1, len(finite) + 1) / len(t)
            ax.step(finite / 60, y, where="post", label=name,
                    color=LEVEL_COLOURS.get(name), lw=1.5 if name in LEVEL_COLOURS else 1.2,
                    ls="-" if name in LEVEL_COLOURS else "--")
        ax.set_title(v)
        ax.set_xlabel("minutes after the hazard started")
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1.02)
    axes[0][0].set_ylabel("fraction of members reached")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle("Time to detection, first warning and each level (curves below 1: some "
                 "members never got there)", fontsize=10)
    return png(fig)


def miss_plot(summary: dict) -> str:
    """P(missed detection) per variant with Wilson 95 % intervals."""
    names = list(summary["variants"])
    p = [summary["variants"][v]["missed_detection"]["p"] for v in names]
    ci = [summary["variants"][v]["missed_detection"]["ci95"] for v in names]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names), 3.2))
    xs = np.arange(len(names))
    val = np.array([np.nan if x is None else x for x in p])
    lo = np.array([np.nan if c[0] is None else c[0] for c in ci])
    hi = np.array([np.nan if c[1] is None else c[1] for c in ci])
    ax.bar(xs, val, color="#90a4ae")
    err = [np.clip(val - lo, 0, None), np.clip(hi - val, 0, None)]
    ax.errorbar(xs, val, yerr=err, fmt="none", ecolor="k", capsize=4)
    ax.set_xticks(xs, names, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("P(missed detection)")
    ax.set_title("Missed detections (Wilson 95 %)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return png(fig)


def exposure_plot(df: pd.DataFrame, variants: list[str], label: str) -> str:
    """Distributions of people and buildings exposed per member, per variant."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, what in zip(axes, ("people", "buildings"), strict=True):
        data = [df.loc[df["variant"] == v, f"{label}_{what}"].to_numpy(float)
                for v in variants]
        ax.boxplot(data, whis=(5, 95))
        ax.set_xticks(np.arange(1, len(variants) + 1), variants, fontsize=8)
        ax.set_ylabel(f"{what} exposed")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"Exposure per member: {label} (box 25–75 %, whiskers 5–95 %)", fontsize=10)
    return png(fig)


def write_study_report(out_dir: str | Path, out_path: str | Path | None = None) -> Path:
    """Write ``study_report.html`` for an aggregated study folder."""
    out_dir = Path(out_dir)
    plan = json.loads((out_dir / "study.json").read_text(encoding="utf-8"))
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    df = pd.read_csv(out_dir / "study_results.csv") if summary["members_finished"] else None
    study = plan["study"]
    variants = list(summary["variants"])
    levels = summary["levels"]
    facts = [("Study", study["name"]), ("Base scenario", plan["base_source"]),
             ("Seed", study["seed"]), ("Samples per sweep point", study["samples"]),
             ("Members", f"{summary['members_finished']} finished of "
                         f"{summary['members_planned']} planned"),
             ("Variants", ", ".join(plan["variants"]))]
    facts_html = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td>"
                         "</tr>" for k, v in facts)
    var_rows = pd.DataFrame([{"path": p, **{k: json.dumps(v) for k, v in spec.items()
                                             if v is not None}}
                             for p, spec in study["variations"].items()]).fillna("")
    variant_rows = pd.DataFrame([{"variant": v, "sets": json.dumps(s)}
                                 for v, s in study["variants"].items()])
    stats = []
    for v, s in summary["variants"].items():
        row = {"variant": v, "members": s["members"]}
        for key, name in [("time_to_first_detection_s", "detection"),
                          ("time_to_first_warning_s", "first warning"),
                          *[(f"time_to_{lv}_s", lv) for lv in levels]]:
            d = s[key]
            row[f"{name}: median [5–95 %] s"] = (
                f"{_s(d['median'])} [{_s(d['p5'])}–{_s(d['p95'])}]"
                + (f", never {d['never']}" if d["never"] else ""))
        row["P(missed detection)"] = _pct(s["missed_detection"])
        fw = s.get("members_with_false_warnings")
        row["members with false warnings"] = (
            "—" if not fw or fw.get("p") is None else f"{fw['k']}/{fw['n']}")
        row["max level"] = ", ".join(f"{k} {n}" for k, n in s["max_level"].items() if n)
        row["work-order escalations (mean)"] = _s(s["work_order_escalations"]["mean"], ".2f")
        stats.append(row)
    comp = pd.DataFrame([{
        "variant − reference": f"{c['variant']} − {c['reference']}",
        "pairs": c.get("pairs", "—"),
        "Δ median time to first warning (s) [95 % paired bootstrap]":
            f"{_s(c['median_time_to_first_warning_diff_s']['estimate'])} "
            f"[{_s(c['median_time_to_first_warning_diff_s']['ci95'][0])}, "
            f"{_s(c['median_time_to_first_warning_diff_s']['ci95'][1])}]",
        "Δ P(miss) [95 % Newcombe paired]":
            f"{_s(c['p_miss_diff']['estimate'], '+.2f')} "
            f"[{_s(c['p_miss_diff']['ci95'][0], '+.2f')}, "
            f"{_s(c['p_miss_diff']['ci95'][1], '+.2f')}]"} for c in summary["comparisons"]])
    exposure_rows = []
    for v, s in summary["variants"].items():
        for lab, e in s["exposure"].items():
            exposure_rows.append({
                "variant": v, "metric": lab,
                "area m² median [5–95 %]": f"{_s(e['area_m2']['median'])} "
                                           f"[{_s(e['area_m2']['p5'])}–{_s(e['area_m2']['p95'])}]",
                "buildings median [5–95 %]": f"{_s(e['buildings']['median'])} "
                    f"[{_s(e['buildings']['p5'])}–{_s(e['buildings']['p95'])}]",
                "people median [5–95 %]": f"{_s(e['people']['median'])} "
                    f"[{_s(e['people']['p5'])}–{_s(e['people']['p95'])}]",
                "P(a protected target exposed)": _pct(e["p_any_protected"])})
    sweep_rows = pd.DataFrame([{
        "variant": r["variant"],
        **{k: v for k, v in r.items() if k not in ("variant", "grid_index", "members",
                                                    "time_to_first_warning_s",
                                                    "missed_detection")},
        "members": r["members"],
        "median time to first warning (s)": _s(r["time_to_first_warning_s"]["median"]),
        "P(miss)": _pct(r["missed_detection"])} for r in summary["by_sweep"]])
    maps_html = ""
    twin = plan_twin(plan) if summary["maps"] else None
    for m in summary["maps"]:
        if "extent_m" in m:  # (a folder aggregated before maps had context keeps its PNGs)
            fig = probability_map_figure(np.load(out_dir / m["npy"]), m["extent_m"], twin,
                                         m["title"])
            fig.savefig(out_dir / m["png"], dpi=100, bbox_inches="tight")
            plt.close(fig)
        data = base64.b64encode((out_dir / m["png"]).read_bytes()).decode("ascii")
        maps_html += (f"<figure><img alt='{html.escape(m['png'])}' "
                      f"src='data:image/png;base64,{data}'><figcaption>{html.escape(m['metric'])}"
                      f", {html.escape(m['variant'])}: highest probability {m['max_p']:.2f}; "
                      f"area with P ≥ 0.5: {m['area_p_ge_0_5_m2'] / 1e4:.2f} ha</figcaption>"
                      "</figure>")
    plots = ""
    if df is not None and len(df):
        times = time_plot(df, variants, levels)
        plots += f"<h2>Time to warning</h2><img alt='times' src='{times}'>"
        plots += f"<img alt='missed' src='{miss_plot(summary)}'>"
        for lab in summary["metrics"]:
            plots += f"<img alt='exposure' src='{exposure_plot(df, variants, lab)}'>"
    body = f"""<h1>What-if study: {html.escape(study['name'])}</h1>
<p>{html.escape(study.get('description', ''))}</p>
<h2>Study</h2><table>{facts_html}</table>
<h3>Variations</h3>{table(var_rows) if len(var_rows) else '<p>None.</p>'}
<h3>Variants</h3>{table(variant_rows) if len(variant_rows) else '<p>One (the base).</p>'}
<h2>Results by variant</h2>{table(pd.DataFrame(stats)) if stats else '<p>No members.</p>'}
<p>Times are seconds after the hazard started, over the members where it happened ("never":
members where it did not). Only warnings of the scenario's hazard raised or escalated at or
after its start count; warnings raised before the start (noise) or for another hazard are
false warnings. A missed detection is a member where the hazard exceeded the first metric's
threshold somewhere on the grid but no warning counted; P(miss) is over those members, with a
Wilson 95 % interval.</p>
{'<h2>Variants compared</h2>' + table(comp) if len(comp) else ''}
{'<p>Paired on the members sharing a sample index and sweep point (same draws, same seed): '
 'the bootstrap resamples sample indices jointly; Δ P(miss) is over the pairs where both '
 'members reached the threshold (Newcombe 1998 paired square-and-add).</p>'
 if len(comp) else ''}
{plots}
<h2>Probability maps</h2>
<p>Per cell: the fraction of members in which the maximum over the run exceeded the
threshold.</p>{maps_html}
<h2>Exposure</h2>{table(pd.DataFrame(exposure_rows)) if exposure_rows else ''}
{'<h2>By sweep point</h2>' + table(sweep_rows) if len(sweep_rows) else ''}
<h2>Files</h2><p>study_results.csv (one row per member), summary.json, prob_*.npy,
members/&lt;id&gt;/ (max fields, metrics.json; the archive when the member ran where it sees
the study folder).</p>"""
    doc = page(f"citytwin study report: {study['name']}", body)
    out_path = Path(out_path) if out_path else out_dir / "study_report.html"
    out_path.write_text(doc, encoding="utf-8")
    return out_path
