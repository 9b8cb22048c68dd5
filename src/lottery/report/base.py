"""What every section of the report shares: :class:`Unit` (a section's code) and the drawing helpers
- the figures' files (PNG and SVG, reproducible), the tables' CSV, the variants' order and the
paper's Pm axis."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lottery import paper
from lottery.io import atomic_path, write_table
from lottery.variants import FIGURE_ORDER

PathLike = str | os.PathLike
# Reproducible SVGs: fixed element ids, no date.
plt.rcParams["svg.hashsalt"] = "lottery"

NO_SWEEP = "No {ratio, rounds} schedule in this experiment."


@dataclass(frozen=True)
class Unit:
    """One section of the report in code, named by its entry of :data:`lottery.sections.SECTIONS`:
    ``draw`` writes its table and figure (``out``: the paths of its rule's outputs) from what its rule
    reads - for a section of ``workflow/rules/analysis.smk``, ``draw(runs, out, params)`` with the
    runs table and the analysis settings; for one whose rule is elsewhere, that rule's tables (the
    paper's: :mod:`lottery.report.paper_figures`, the ticket analyses':
    :mod:`lottery.report.tickets`). ``paragraph(table, max_ratio)`` is its part of ``summary.md``,
    from its table (None: it has none there)."""

    draw: Callable[..., None]
    paragraph: Callable[[pd.DataFrame, float], list[str]] | None = None


def variants_in(table: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(table["variant"]))
    return [v for v in FIGURE_ORDER if v in present] + sorted(v for v in present if v not in FIGURE_ORDER)


def save_figure(fig: plt.Figure, png: PathLike, svg: PathLike, empty_note: str | None = None) -> None:
    # A section with nothing to draw (e.g. the W&B report's sweep sections in config/paper.yaml)
    # says why (``empty_note``) rather than showing empty axes.
    if empty_note:
        fig.text(0.5, 0.5, empty_note, ha="center", va="center", fontsize=14,
                 bbox={"facecolor": "white", "edgecolor": "grey"})  # fmt: skip
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, bbox_inches="tight", metadata={"Date": None}
                        if fmt == "svg" else {"Software": None})  # fmt: skip
    plt.close(fig)


def write_csv(table: pd.DataFrame, path: PathLike) -> None:
    write_table(path, table, float_format="%.6g")


def minmax(values: pd.Series) -> tuple[float, float]:
    return values.min(), values.max()


def fmt(value: float, digits: int = 3) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


def pm_axis(ax: plt.Axes, pms: pd.Series) -> None:
    ax.set_xscale("log")
    ticks = [t for t in (*paper.CURVE_LEVELS, 1) if pms.empty or pms.min() * 0.9 <= t]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("percent of weights remaining (Pm)")


def pm_panels(
    curves: list[tuple[str, pd.DataFrame]], out: Mapping[str, PathLike], empty_note: str | None = None
) -> None:
    """The paper's two panels, early-stop iteration and test accuracy at early stop against Pm (log axis,
    100% on the left): one line per (label, table of :func:`analysis.summarise_by_pm`), min/max bars."""
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    pms = pd.concat([part["pm"] for _, part in curves]) if curves else pd.Series(dtype=float)
    for ax, (metric, title) in zip(
        axes, (("early_stop_iteration", "early-stop iteration"), ("test_acc", "test accuracy at early stop")),
        strict=True,
    ):  # fmt: skip
        for label, part in curves:
            mean = part[f"{metric}_mean"]
            err = [mean - part[f"{metric}_min"], part[f"{metric}_max"] - mean]
            ax.errorbar(part["pm"], mean, yerr=err, marker="o", capsize=3, label=label)
        pm_axis(ax, pms)
        ax.set(title=title, ylabel=title)
    if curves:
        axes[0].legend()
    save_figure(fig, out["png"], out["svg"], empty_note if not curves else None)


def mean_band(ax: plt.Axes, part: pd.DataFrame, x: str, y: str, label: str, **style: Any) -> None:
    """Mean over replicates with a min/max band."""
    g = part.groupby(x, sort=True)[y].agg(["mean", "min", "max"]).reset_index()
    (line,) = ax.plot(g[x], g["mean"], marker="o", label=label, **style)
    ax.fill_between(g[x], g["min"], g["max"], alpha=0.15, color=line.get_color())


def heading(title: str, text: str) -> list[str]:
    """A paragraph's first lines in summary.md: its heading and what it measures."""
    return ["", f"## {title}", "", text, ""]
