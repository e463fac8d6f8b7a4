"""The HTML kit every report page shares: escaping, tables, badges, embedded PNG, the page."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from citytwin.scenarios.spec.scenario import clock_text  # noqa: E402

LEVEL_COLOURS = {"none": "#9e9e9e", "blue": "#1e88e5", "yellow": "#fdd835",
                 "orange": "#fb8c00", "red": "#e53935"}

CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 0.8em;
       color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.3em; color: #000;
         font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
figure { display: inline-block; margin: 0.5em; max-width: 48%; }
.run-status { border: 2px solid #c62828; background: #ffebee; padding: 0.5em 0.8em;
              font-weight: bold; }
@media (max-width: 600px) { body { padding: 0.4em; } table { font-size: 0.78em; } }
"""

clock = clock_text  # (the reports' name for it)


def png(fig) -> str:
    """A matplotlib figure as a base64 PNG data URI (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def esc(value: Any) -> str:
    """HTML-escaped text of a value; None and an empty list show as an em dash."""
    return html.escape("—" if value is None or value == [] else str(value))


def badge(text: str, colour: str) -> str:
    """A coloured label (the pages' ``.badge`` style)."""
    return f'<span class="badge" style="background:{colour}">{html.escape(text)}</span>'


def html_table(header: Iterable[object], rows: Iterable[Iterable[str]]) -> str:
    """A table: header texts are escaped here, cells are HTML already (escape before)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def scroll_table(header: Iterable[object], rows: Iterable[Iterable[str]]) -> str:
    """:func:`html_table` in a horizontally scrollable box (for phones)."""
    return f'<div class="scroll">{html_table(header, rows)}</div>'


def table(df: pd.DataFrame) -> str:
    """A data frame as a table, every header and cell escaped."""
    return html_table(df.columns, ([html.escape(str(v)) for v in r]
                                   for r in df.itertuples(index=False, name=None)))


def run_status_text(manifest: Mapping[str, Any]) -> str:
    """One line saying the run did not complete (status ``aborted`` by an error,
    ``interrupted`` by Ctrl-C or SIGTERM, or still ``running``: killed or in progress);
    empty for a completed run (or an archive without status)."""
    status = manifest.get("status")
    if status in ("aborted", "interrupted"):
        at = manifest.get("aborted_at_s")
        when = f" at {clock_text(at)}" if isinstance(at, int | float) else ""
        reason = manifest.get("abort_reason") or "no reason recorded"
        return (f"RUN {status.upper()}{when}: {reason}. Everything here covers only the part "
                "that ran; what was due later counts as not done.")
    if status == "running":
        return ("RUN INCOMPLETE: the archive still says 'running' — the run was interrupted "
                "(or is still in progress). Everything here covers only the part that was "
                "archived.")
    return ""


def status_banner(text: str) -> str:
    """A run-status line as a banner for the top of a report page ('' for no text)."""
    return f'<p class="run-status" role="alert">{html.escape(text)}</p>' if text else ""


def run_status_banner(manifest: Mapping[str, Any]) -> str:
    """:func:`run_status_text` as a banner for the top of a report page ('' if completed)."""
    return status_banner(run_status_text(manifest))


def page(title: str, body: str) -> str:
    """A self-contained HTML page (inline CSS, no scripts, viewport for phones)."""
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style></head><body>\n"
            f"{body}\n</body></html>\n")


def duration_text(seconds: float | None) -> str:
    """A duration people read: ``45 s``, ``54 min 35 s``, ``2 h 05 min``, ``3 d 00 h 31 min``
    ("—" for None); negative durations keep their sign."""
    if seconds is None:
        return "—"
    sign, t = ("−" if seconds < 0 else ""), int(round(abs(float(seconds))))
    if t < 120:
        return f"{sign}{t} s"
    if t < 7200:
        return f"{sign}{t // 60} min {t % 60:02d} s"
    if t < 172800:
        return f"{sign}{t // 3600} h {t % 3600 // 60:02d} min"
    return f"{sign}{t // 86400} d {t % 86400 // 3600:02d} h {t % 3600 // 60:02d} min"


def number_text(value: float | None, unit: str = "") -> str:
    """A measured value rounded for reading (three significant digits, whole numbers from
    100 up, thousands separated), with its unit: ``61.5 %LEL``, ``0.0412 m``, ``1,235 m³/s``."""
    if value is None or value != value:  # None or NaN
        return "—"
    v = float(value)
    text = f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return f"{text} {unit}".strip()
