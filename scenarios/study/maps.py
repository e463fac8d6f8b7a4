"""Probability maps of a study as pictures: P(max field > threshold) per cell over the city."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def probability_figure(prob: np.ndarray, grid, twin, title: str):
    """Probability per cell over the building outlines, cropped to where P > 0."""
    fig, ax = plt.subplots(figsize=(7, 6.5))
    if twin is not None and len(twin.buildings):
        twin.buildings.plot(ax=ax, facecolor="#e4e4e4", edgecolor="#8a8a8a", lw=0.3, zorder=1)
    shown = np.ma.masked_where(prob <= 0, prob)
    im = ax.imshow(shown, extent=grid.extent, origin="upper", cmap="inferno_r", vmin=0, vmax=1,
                   alpha=0.8, zorder=2, interpolation="nearest")
    if prob.max() >= 0.5:
        ax.contour(grid.xs_m, grid.ys_m, prob, levels=[0.5], colors="k", linewidths=0.8,
                   zorder=3)
    if twin is not None and len(twin.places):
        prot = twin.places[twin.places["protected"].fillna(False).astype(bool)]
        pts = prot.geometry.representative_point()
        ax.scatter(pts.x, pts.y, marker="*", s=60, c="#6a1b9a", zorder=4,
                   label="protected targets")
        ax.legend(fontsize=7, loc="lower left")
    rows, cols = np.nonzero(prob > 0)
    if len(rows):
        pad = 100.0
        ax.set_xlim(grid.xs_m[cols].min() - pad, grid.xs_m[cols].max() + pad)
        ax.set_ylim(grid.ys_m[rows].min() - pad, grid.ys_m[rows].max() + pad)
    else:
        left, right, bottom, top = grid.extent
        ax.set_xlim(left, right)
        ax.set_ylim(bottom, top)
    fig.colorbar(im, ax=ax, shrink=0.75, label="probability (black line: 0.5)")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.tick_params(labelsize=7)
    return fig


def map_png(prob: np.ndarray, grid, twin, path: Path, title: str) -> Path:
    """A probability map over the buildings (PNG)."""
    fig = probability_figure(prob, grid, twin, title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
