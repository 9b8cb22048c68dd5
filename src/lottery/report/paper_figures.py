"""The paper's figures and claims, each one :class:`~lottery.report.base.Unit`: its view (early-stop
iteration and test accuracy against Pm), the iterative vs one-shot comparison, the claims table
(both from ``runs.csv``) and the test curves of its Figure 3 (from the replicates' test curves)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lottery import analysis, paper
from lottery.io import write_text
from lottery.report.base import PathLike, Unit, pm_panels, save_figure, variants_in, write_csv


# ---------------------------------------------------------------- the paper's view
def _draw_paper_view(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = analysis.paper_view(runs)
    write_csv(table, out["table"])
    pm_panels([(v, table[table["variant"] == v]) for v in variants_in(table)], out)


def _paragraph_paper_view(table: pd.DataFrame, max_ratio: float) -> list[str]:
    lines = ["", "## The paper's view (mean over seeds)", ""]
    for variant, part in table.groupby("variant"):
        part = part.sort_values("pm", ascending=False)
        cells = [
            f"Pm {r['pm']:g}%: early stop {r['early_stop_iteration_mean']:.0f}, test {r['test_acc_mean']:.4f}"
            for _, r in part.iterrows()
        ]
        lines.append(f"- {variant}: " + "; ".join(cells))
    return lines


PAPER_VIEW = Unit(_draw_paper_view, _paragraph_paper_view)


# ---------------------------------------------------------------- iterative vs one-shot
def _draw_oneshot(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    """The paper's iterative vs one-shot comparison at equal Pm."""
    table = paper.iterative_vs_oneshot(runs)
    write_csv(table, out["table"])
    curves = [(f"{kind} tickets", part) for kind, part in table.groupby("pruning", sort=True)]
    pm_panels(curves, out, "No one-shot tickets in this experiment.")


ONESHOT = Unit(_draw_oneshot)


# ---------------------------------------------------------------- the claims
def _draw_claims(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    """The paper's claims checked on the runs table: CSV and Markdown (which ``summary.md`` quotes)."""
    table = paper.claims_table(runs)  # Student t over seeds: no resamples, no seed
    write_csv(table, out["table"])
    write_text(out["markdown"], paper.claims_markdown(table))


CLAIMS = Unit(_draw_claims)


# ---------------------------------------------------------------- the test curves (Figure 3)
def _draw_test_curves(curves: pd.DataFrame, out: Mapping[str, PathLike]) -> None:
    """The paper's Figure 3 from the replicates' test curves (``curves``: their summaries'
    ``test_curves.csv`` one after the other): test accuracy over training iterations, tickets at the
    paper's Pm levels (left) and ticket vs reinit vs random at Pm 51.3% and 21.1% (right); mean and
    min-max over seeds."""
    table = paper.curve_table(curves)
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    iterative = table["schedule"].astype(str).str.startswith("rate-") | (table["variant"] == "dense")
    palette = sns.color_palette("viridis", len(paper.CURVE_LEVELS))
    ticket = table[iterative & table["variant"].isin(["ticket", "dense"])]
    for colour, level in zip(palette, paper.CURVE_LEVELS, strict=True):
        part = ticket[(ticket["pm"] - level).abs() <= paper.LEVEL_TOLERANCE]
        if not part.empty:
            _band(axes[0], part, f"Pm {level:g}%", colour)
    axes[0].set(title="winning tickets")
    styles = {"ticket": "-", "reinit": "--", "random": ":"}
    for colour, level in zip(sns.color_palette("deep", 3), (100.0, 51.3, 21.1), strict=True):
        for variant, style in styles.items():
            if level == 100.0 and variant != "ticket":
                continue
            wanted = ["dense"] if level == 100.0 else [variant]
            part = table[iterative & table["variant"].isin(wanted)
                         & ((table["pm"] - level).abs() <= paper.LEVEL_TOLERANCE)]  # fmt: skip
            if not part.empty:
                label = f"Pm {level:g}%" + ("" if level == 100.0 else f" {variant}")
                _band(axes[1], part, label, colour, style)
    axes[1].set(title="ticket (solid) vs reinit (dashed) vs random (dotted)")
    low = table["test_acc_mean"].quantile(0.02) if not table.empty else 0.9
    for ax in axes:
        ax.set(xlabel="training iteration", ylim=(max(low - 0.005, 0.0), None))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy")
    save_figure(fig, out["png"], out["svg"])


def _band(ax: plt.Axes, part: pd.DataFrame, label: str, colour: Any, style: str = "-") -> None:
    ax.plot(part["iteration"], part["test_acc_mean"], style, color=colour, label=label, linewidth=1)
    ax.fill_between(part["iteration"], part["test_acc_min"], part["test_acc_max"], color=colour, alpha=0.15,
                    linewidth=0)  # fmt: skip


TEST_CURVES = Unit(_draw_test_curves)
