"""The W&B report's sections, each one :class:`~lottery.report.base.Unit` drawn from ``runs.csv``:
desired vs actual pruning, accuracy against prune ratio, correlations, parameter importance and the
results per random state."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lottery import analysis
from lottery.report.base import (
    NO_SWEEP,
    PathLike,
    Unit,
    fmt,
    minmax,
    save_figure,
    variants_in,
    write_csv,
)
from lottery.text import markdown_cell


# ---------------------------------------------------------------- desired vs actual pruning
def _draw_pruning_ratios(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = analysis.pruning_ratios(runs)
    write_csv(table, out["table"])
    iterative = int(params.get("iterative_rounds", 5))
    panels = [(1, "one-shot"), (iterative, f"iterative ({iterative} rounds)")]
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True)
    for ax, (rounds, title) in zip(axes, panels, strict=True):
        part = table[table["prune_iter"] == rounds]
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="requested = actual")
        ax.plot(part["prune_ratio"], part["actual_ratio"], marker="o", label="actual (all weights)")
        ax.set(title=title, xlabel="requested prune ratio", xlim=(0, 1), ylim=(0, 1))
        if part.empty:
            ax.text(0.5, 0.5, f"no {rounds}-round schedule", ha="center", transform=ax.transAxes)
    axes[0].set_ylabel("fraction of all weights pruned")
    axes[0].legend(loc="upper left")
    save_figure(fig, out["png"], out["svg"], NO_SWEEP if table.empty else None)


def _paragraph_pruning_ratios(ratios: pd.DataFrame, max_ratio: float) -> list[str]:
    lines = ["## Desired vs actual pruning", ""]
    if ratios.empty:
        lines.append(NO_SWEEP)
    for rounds, part in ratios.groupby("prune_iter"):
        worst = part.loc[part["shortfall"].idxmax()]
        lines.append(
            f"- {rounds} round(s): requested {', '.join(f'{r:g}' for r in part['prune_ratio'])}; "
            "actual "
            f"{', '.join(f'{a:.4f}' for a in part['actual_ratio'])} of all weights (the output layer "
            f"is pruned at half rate; largest shortfall {worst['shortfall']:.4f} "
            f"at {worst['prune_ratio']:g})."
        )
    return lines


PRUNING_RATIOS = Unit(_draw_pruning_ratios, _paragraph_pruning_ratios)


# ---------------------------------------------------------------- accuracy against prune ratio
def _draw_accuracy(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    write_csv(analysis.accuracy_by_ratio(runs), out["table"])
    swept = analysis.sweep_results(runs)
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (metric, label) in zip(axes, (("val_acc", "validation"), ("test_acc", "test")), strict=True):
        sns.lineplot(data=swept, x="prune_ratio", y=metric, hue="variant", hue_order=variants_in(swept),
                     estimator="mean", errorbar=minmax, marker="o", ax=ax)  # fmt: skip
        ax.set(title=f"{label} accuracy at early stop", xlabel="prune ratio", ylabel="accuracy")
    save_figure(fig, out["png"], out["svg"], NO_SWEEP if swept.empty else None)


def _paragraph_accuracy(accuracy: pd.DataFrame, max_ratio: float) -> list[str]:
    lines = [
        "",
        "## Accuracy against prune ratio (mean over seeds and rounds; test accuracy at early stop)",
        "",
    ]
    if accuracy.empty:
        lines.append(NO_SWEEP[:-1] + ": see the paper's view below.")
    else:
        ratios_seen = sorted(set(accuracy["prune_ratio"]))
        lines += ["| variant | " + " | ".join(f"{r:g}" for r in ratios_seen) + " |"]
        lines += ["|---|" + "---|" * len(ratios_seen)]
    for variant, part in accuracy.groupby("variant"):
        values = dict(zip(part["prune_ratio"], part["test_acc_mean"], strict=True))
        cells = [fmt(values.get(r, math.nan), 4) for r in sorted(set(accuracy["prune_ratio"]))]
        lines.append(f"| {markdown_cell(variant)} | " + " | ".join(cells) + " |")
    return lines


ACCURACY = Unit(_draw_accuracy, _paragraph_accuracy)


# ---------------------------------------------------------------- correlations
def _draw_correlations(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = analysis.correlations(
        runs, float(params["max_ratio"]), int(params["bootstrap"]), int(params["seed"])
    )
    write_csv(table, out["table"])


BOOTSTRAP_OVER_NETWORKS = (
    "percentile bootstrap over the networks - the n (prune ratio, accuracy) pairs resampled "
    "(analysis.bootstrap times), not an interval over seeds"
)


def _paragraph_correlations(corr: pd.DataFrame, max_ratio: float) -> list[str]:
    lines = ["", "## Correlation of prune ratio with validation accuracy", ""]
    if corr.empty:
        lines.append(NO_SWEEP)
    else:
        lines += [
            "| variant | levels | n | Pearson [95% CI] | p | Spearman [95% CI] | p |",
            "|---|---|---|---|---|---|---|",
        ]
    for _, r in corr[corr["metric"] == "val_acc"].iterrows():
        lines.append(
            f"| {r['variant']} | {r['levels']} | {r['n']} | {fmt(r['pearson'])} "
            f"[{fmt(r['pearson_ci_low'])}, {fmt(r['pearson_ci_high'])}] | {fmt(r['pearson_p'], 4)} | "
            f"{fmt(r['spearman'])} [{fmt(r['spearman_ci_low'])}, {fmt(r['spearman_ci_high'])}] | "
            f"{fmt(r['spearman_p'], 4)} |"
        )
    if not corr.empty:
        lines += [
            "",
            f"95% CI: {BOOTSTRAP_OVER_NETWORKS}. (The W&B report: 0.596 for reinit and 0.619 for ticket "
            f"over levels <= {max_ratio:g}; negative for random.)",
        ]
    return lines


CORRELATIONS = Unit(_draw_correlations, _paragraph_correlations)


# ---------------------------------------------------------------- parameter importance
def _draw_parameter_importance(
    runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]
) -> None:
    table = analysis.parameter_importance(runs, seed=int(params["seed"]))
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    order = variants_in(table)
    for ax, column in zip(axes, ("importance", "correlation"), strict=True):
        sns.barplot(data=table, x="variant", y=column, hue="parameter", order=order, ax=ax)
        ax.set(title=f"{column} with respect to validation accuracy", xlabel="")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    save_figure(fig, out["png"], out["svg"], NO_SWEEP if table.empty else None)


def _paragraph_parameter_importance(importance: pd.DataFrame, max_ratio: float) -> list[str]:
    lines = ["", "## Parameter importance for validation accuracy", ""]
    if importance.empty:
        lines.append(NO_SWEEP)
    for variant, part in importance.groupby("variant"):
        cells = [f"{r['parameter']} importance {fmt(r['importance'])}, correlation {fmt(r['correlation'])}"
                 for _, r in part.iterrows()]  # fmt: skip
        lines.append(f"- {variant}: " + "; ".join(cells))
    return lines


PARAMETER_IMPORTANCE = Unit(_draw_parameter_importance, _paragraph_parameter_importance)


# ---------------------------------------------------------------- results per random state
def _draw_random_states(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    best = analysis.best_per_seed(runs)
    across = analysis.best_across_seeds(best)
    write_csv(best.merge(across, on="prune_ratio"), out["table"])
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(6, 4))
    for seed, part in best.groupby("seed"):
        ax.plot(
            part["prune_ratio"], part["best_val_acc"], marker="o", alpha=0.7, label=f"random state {seed}"
        )
    ax.plot(across["prune_ratio"], across["best_val_acc_mean"], color="black", label="mean over states")
    ax.fill_between(across["prune_ratio"], across["best_val_acc_min"], across["best_val_acc_max"],
                    color="black", alpha=0.1, label="min-max over states")  # fmt: skip
    ax.set(title="best validation accuracy per prune ratio", xlabel="prune ratio", ylabel="accuracy")
    ax.legend()
    save_figure(fig, out["png"], out["svg"], NO_SWEEP if best.empty else None)


def _paragraph_random_states(states: pd.DataFrame, max_ratio: float) -> list[str]:
    lines = ["", "## Results per random state (best validation accuracy over all runs of a state)", ""]
    if states.empty:
        lines.append(NO_SWEEP)
    for seed, part in states.groupby("seed"):
        best = part.loc[part["best_val_acc"].idxmax()]
        lines.append(
            f"- random state {seed}: best {best['best_val_acc']:.4f} at prune ratio {best['prune_ratio']:g}; "
            f"at the largest ratio {part['prune_ratio'].max():g}: "
            f"{part.loc[part['prune_ratio'].idxmax(), 'best_val_acc']:.4f}"
        )
    return lines


RANDOM_STATES = Unit(_draw_random_states, _paragraph_random_states)
