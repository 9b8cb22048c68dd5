"""What the tickets are (:mod:`lottery.ticket_analyses` computes their rows from masks and weights),
each analysis one :class:`~lottery.report.base.Unit`: instability, supermasks, mask overlap and the
pixel map. Their ``draw`` takes the rows (lists of dicts) of the analysis's tables; a table with no
rows says nothing in ``summary.md``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lottery.report.base import (
    PathLike,
    Unit,
    heading,
    mean_band,
    pm_axis,
    save_figure,
    variants_in,
    write_csv,
)

STABLE = 0.02  # Frankle et al. (ICML 2020) call a network stable when its instability is below ~2%


# ---------------------------------------------------------------- instability
def _draw_instability(
    rows: list[dict[str, Any]], path_rows: list[dict[str, Any]], out: Mapping[str, PathLike]
) -> None:
    table = pd.DataFrame(rows)
    write_csv(table, out["table"])
    write_csv(pd.DataFrame(path_rows), out["path"])
    sns.set_theme(style="whitegrid")
    ks = sorted(table["k"].unique())
    palette = sns.color_palette()
    fig, axes = plt.subplots(1, len(ks), figsize=(5.5 * len(ks), 4), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        part = table[table["k"] == k]
        for variant in variants_in(part):
            colour = palette[variants_in(table).index(variant)]
            mean_band(ax, part[part["variant"] == variant], "pm", "instability", variant, color=colour)
        ax.axhline(STABLE, color="grey", linestyle="--", label="2% (stable below)")
        pm_axis(ax, table["pm"])
        ax.set(title=f"copies from k = {k}", ylabel="instability (test error)")
        ax.set_ylim(bottom=0)
        ax.legend()
    save_figure(fig, out["png"], out["svg"])


def _paragraph_instability(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    lines = heading(
        "Instability (linear mode connectivity)",
        "Two copies trained from the same start with different data orders; instability = the largest "
        "test error on the straight path between them minus the mean of its ends' (mean over seeds, in "
        "percentage points). Frankle et al. (ICML 2020) find LeNet-300-100 on MNIST stable (below ~2 "
        "points) already at k = 0.",
    )
    for (variant, k), part in table.groupby(["variant", "k"], sort=True):
        g = part.groupby("pm")["instability"].mean().sort_index(ascending=False)
        stable = int((g < STABLE).sum())
        cells = "; ".join(f"Pm {pm:g}%: {100 * v:.2f}" for pm, v in g.items())
        lines.append(f"- {variant}, k = {k}: {cells} - stable at {stable} of {len(g)} levels")
    return lines


INSTABILITY = Unit(_draw_instability, _paragraph_instability)


# ---------------------------------------------------------------- supermasks
def _draw_supermasks(rows: list[dict[str, Any]], out: Mapping[str, PathLike]) -> None:
    table = pd.DataFrame(rows)
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"ticket": "-", "random": ":"}
    for (mask, weights), part in table.groupby(["mask", "weights"], sort=False):
        label = f"{mask} mask, {'θ0' if weights == 'init' else 'signed constant'}"
        mean_band(ax, part, "pm", "test_acc", label, linestyle=styles[mask])
    ax.axhline(0.1, color="grey", linestyle="--", label="chance (10%)")
    pm_axis(ax, table["pm"])
    ax.set(title="masks without training", ylabel="test accuracy")
    ax.legend(fontsize=8)
    save_figure(fig, out["png"], out["svg"])


def _paragraph_supermasks(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    lines = heading(
        "Supermasks (masks without training)",
        "Test accuracy of each round's ticket mask on θ0 and on the signed constant (θ0's signs times "
        "the layer's standard deviation), beside random masks of the same per-layer density (mean over "
        "seeds; chance 10%). Zhou et al. (NeurIPS 2019): up to 86% on MNIST with learned masks.",
    )
    g = table.groupby(["mask", "weights", "pm"])["test_acc"].mean().reset_index()
    for (mask, weights), part in g.groupby(["mask", "weights"], sort=False):
        best = part.loc[part["test_acc"].idxmax()]
        lowest = part.loc[part["pm"].idxmin()]
        lines.append(
            f"- {mask} mask on {'θ0' if weights == 'init' else 'the signed constant'}: best "
            f"{best['test_acc']:.4f} at Pm {best['pm']:g}%; at Pm {lowest['pm']:g}%: {lowest['test_acc']:.4f}"
        )
    return lines


SUPERMASKS = Unit(_draw_supermasks, _paragraph_supermasks)


# ---------------------------------------------------------------- mask overlap
def _draw_mask_overlap(rows: list[dict[str, Any]], out: Mapping[str, PathLike]) -> None:
    table = pd.DataFrame(
        rows,
        columns=[
            "comparison",
            "layer",
            "round",
            "pm",
            "density",
            "jaccard",
            "jaccard_min",
            "jaccard_max",
            "chance",
            "pairs",
        ],
    )
    table = table.sort_values(["comparison", "layer", "round"])
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    layers = sorted(table["layer"].unique()) or ["fc1"]
    fig, axes = plt.subplots(1, len(layers), figsize=(5 * len(layers), 4), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=True):
        part = table[table["layer"] == layer]
        for comparison, rows_ in part.groupby("comparison", sort=True):
            (line,) = ax.plot(rows_["pm"], rows_["jaccard"], marker="o", label=comparison.replace("_", " "))
            ax.fill_between(
                rows_["pm"], rows_["jaccard_min"], rows_["jaccard_max"], alpha=0.15, color=line.get_color()
            )
            ax.plot(rows_["pm"], rows_["chance"], linestyle="--", color=line.get_color(), alpha=0.7)
        pm_axis(ax, table["pm"])
        ax.set(title=f"{layer} (dashed: chance)", ylabel="Jaccard overlap", ylim=(0, 1.02))
        ax.legend(fontsize=8)
    save_figure(fig, out["png"], out["svg"], None if len(table) else "No masks to compare.")


def _paragraph_mask_overlap(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    lines = heading(
        "Mask overlap",
        "Jaccard overlap of ticket masks per layer, against chance (two independent random masks of the "
        "same densities: d / (2 - d) when equal). Grosse & Backes (2020) report tickets overlapping "
        "little beyond chance.",
    )
    for (comparison, layer), part in table.groupby(["comparison", "layer"], sort=True):
        part = part.sort_values("pm", ascending=False)
        cells = "; ".join(
            f"Pm {r['pm']:g}%: {r['jaccard']:.3f} (chance {r['chance']:.3f})"
            for _, r in part.iloc[:: max(1, len(part) // 4)].iterrows()
        )
        ratio = (part["jaccard"] / part["chance"]).median()
        lines.append(f"- {comparison.replace('_', ' ')}, {layer}: {cells}; median {ratio:.2f}x chance")
    return lines


MASK_OVERLAP = Unit(_draw_mask_overlap, _paragraph_mask_overlap)


# ---------------------------------------------------------------- the pixel map
def _draw_pixel_map(rows: list[dict[str, Any]], out: Mapping[str, PathLike]) -> None:
    table = pd.DataFrame(rows)
    write_csv(table, out["table"])
    rounds = sorted(table["round"].unique())

    def image(part: pd.DataFrame, column: str) -> pd.DataFrame:  # the pixels at their (row, col)
        return part.pivot(index="row", columns="col", values=column)

    fig, axes = plt.subplots(1, len(rounds) + 1, figsize=(3 * (len(rounds) + 1), 3.4))
    first = table[table["round"] == rounds[0]]
    drawn = axes[0].imshow(image(first, "mean_intensity"), cmap="gray")
    axes[0].set_title("mean intensity")
    fig.colorbar(drawn, ax=axes[0], fraction=0.046)
    top = table["surviving"].max()
    for ax, round_ in zip(axes[1:], rounds, strict=True):
        part = table[table["round"] == round_]
        drawn = ax.imshow(image(part, "surviving"), cmap="viridis", vmin=0, vmax=top)
        ax.set_title(f"round {round_}: Pm {part['pm'].iloc[0]:g}%")
    fig.colorbar(drawn, ax=list(axes[1:]), fraction=0.046, label="fraction of fc1 weights surviving")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, out["png"], out["svg"])


def _paragraph_pixel_map(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    lines = heading(
        "The pixel map",
        "For each input pixel, the fraction of its first-layer weights in the ticket (mean over seeds), "
        "against the pixel's mean intensity over the training images.",
    )
    for round_, part in table.groupby("round", sort=True):
        blank = part[part["mean_intensity"] == 0]["surviving"]
        r = part["surviving"].corr(part["mean_intensity"])
        blank_text = (
            f"{blank.mean():.3f} at the {len(blank)} always-blank pixels" if len(blank) else "no blank pixel"
        )
        lines.append(
            f"- round {round_} (Pm {part['pm'].iloc[0]:g}%): {part['surviving'].mean():.3f} of fc1's "
            f"weights survive on average, {blank_text}; correlation with mean intensity r = {r:.3f}"
        )
    return lines


PIXEL_MAP = Unit(_draw_pixel_map, _paragraph_pixel_map)
