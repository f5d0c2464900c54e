"""Matplotlib figures of the evaluation pages, written as PNG atomically (no display needed).

Figures are built with :class:`matplotlib.figure.Figure` directly, not pyplot, so no GUI
backend or global figure state is involved.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from util.checkpoint import atomic_write_bytes


def save_figure(figure: Figure, path: Path) -> Path:
    """Render ``figure`` to PNG at ``path`` (atomically)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def histograms(values_by_panel: dict[str, list[float]], xlabel: str, title: str, path: Path) -> Path:
    """One histogram panel per key (e.g. per direction)."""
    panels = list(values_by_panel.items())
    figure = Figure(figsize=(4.2 * len(panels), 3.2), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, values) in zip(axes, panels):
        if values:
            ax.hist(values, bins=min(20, max(5, len(values))), range=(0.0, max(max(values) * 1.05, 1e-3)),
                    color="#4c72b0", edgecolor="white")
        ax.set_title(f"{name} (n={len(values)})")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("images")
    figure.suptitle(title)
    return save_figure(figure, path)


def per_image_points(values_by_panel: dict[str, list[float]], ylabel: str, title: str, path: Path) -> Path:
    """Per panel, the value of every image in evaluation order; inf values drawn at the top as triangles."""
    panels = list(values_by_panel.items())
    figure = Figure(figsize=(4.2 * len(panels), 3.2), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, values) in zip(axes, panels):
        finite = [(i, v) for i, v in enumerate(values) if math.isfinite(v)]
        infinite = [i for i, v in enumerate(values) if v == math.inf]
        if finite:
            ax.plot([i for i, _ in finite], [v for _, v in finite], "o", color="#4c72b0", markersize=4)
            mean = sum(v for _, v in finite) / len(finite)
            ax.axhline(mean, color="#dd8452", linestyle="--", linewidth=1, label=f"mean {mean:.2f}")
            ax.legend(fontsize=8)
        if infinite:
            top = max((v for _, v in finite), default=0.0) + 5.0
            ax.plot(infinite, [top] * len(infinite), "^", color="#55a868", markersize=5, label="identical (inf)")
        ax.set_title(f"{name} (n={len(values)})")
        ax.set_xlabel("image (evaluation order)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(ylabel)
    figure.suptitle(title)
    return save_figure(figure, path)


def grouped_bars(groups: list[str], series: dict[str, list[float | None]], ylabel: str, title: str, path: Path,
                 errors: dict[str, list[float | None]] | None = None) -> Path:
    """Bars grouped by ``groups`` (e.g. directions), one colour per series (e.g. run); missing values are gaps."""
    figure = Figure(figsize=(max(4.5, 1.2 + 0.9 * len(groups) * max(1, len(series))), 3.4), layout="constrained")
    ax = figure.subplots()
    count = max(1, len(series))
    width = 0.8 / count
    for k, (name, values) in enumerate(series.items()):
        xs = [g + (k - (count - 1) / 2) * width for g in range(len(groups))]
        heights = [v if v is not None else 0.0 for v in values]
        yerr = None
        if errors and name in errors:
            yerr = [e if e is not None else 0.0 for e in errors[name]]
        bars = ax.bar(xs, heights, width=width * 0.95, label=name, yerr=yerr, capsize=3 if yerr else 0)
        for bar, value in zip(bars, values):
            if value is None:
                bar.set_alpha(0.0)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.axhline(0.0, color="black", linewidth=0.6)
    # Below the axes, so the legend never hides a bar.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=min(3, count), frameon=False)
    return save_figure(figure, path)
