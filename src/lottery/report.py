"""Tables, figures (seaborn, PNG and SVG) and the Markdown summary of an experiment, one function per
section of the W&B report; the analysis rules call :func:`write_section` and :func:`write_summary`."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from lottery import analysis, paper
from lottery.io import atomic_path, write_table, write_text
from lottery.logs import step
from lottery.runs import read_runs
from lottery.sections import BY_NAME
from lottery.text import markdown_cell
from lottery.variants import FIGURE_ORDER

PathLike = str | os.PathLike
# Reproducible SVGs: fixed element ids, no date.
plt.rcParams["svg.hashsalt"] = "lottery"


def _variants(table: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(table["variant"]))
    return [v for v in FIGURE_ORDER if v in present] + sorted(v for v in present if v not in FIGURE_ORDER)


def _save(fig: plt.Figure, png: PathLike, svg: PathLike, empty_note: str | None = None) -> None:
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


def _write_csv(table: pd.DataFrame, path: PathLike) -> None:
    write_table(path, table, float_format="%.6g")


def _minmax(values: pd.Series) -> tuple[float, float]:
    return values.min(), values.max()


def section_pruning_ratios(
    runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]
) -> None:
    table = analysis.pruning_ratios(runs)
    _write_csv(table, out["table"])
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
    _save(fig, out["png"], out["svg"], NO_SWEEP if table.empty else None)


def section_accuracy(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    _write_csv(analysis.accuracy_by_ratio(runs), out["table"])
    swept = analysis.sweep_results(runs)
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (metric, label) in zip(axes, (("val_acc", "validation"), ("test_acc", "test")), strict=True):
        sns.lineplot(data=swept, x="prune_ratio", y=metric, hue="variant", hue_order=_variants(swept),
                     estimator="mean", errorbar=_minmax, marker="o", ax=ax)  # fmt: skip
        ax.set(title=f"{label} accuracy at early stop", xlabel="prune ratio", ylabel="accuracy")
    _save(fig, out["png"], out["svg"], NO_SWEEP if swept.empty else None)


def section_correlations(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = analysis.correlations(
        runs, float(params["max_ratio"]), int(params["bootstrap"]), int(params["seed"])
    )
    _write_csv(table, out["table"])


def section_parameter_importance(
    runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]
) -> None:
    table = analysis.parameter_importance(runs, seed=int(params["seed"]))
    _write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    order = _variants(table)
    for ax, column in zip(axes, ("importance", "correlation"), strict=True):
        sns.barplot(data=table, x="variant", y=column, hue="parameter", order=order, ax=ax)
        ax.set(title=f"{column} with respect to validation accuracy", xlabel="")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    _save(fig, out["png"], out["svg"], NO_SWEEP if table.empty else None)


def section_random_states(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    best = analysis.best_per_seed(runs)
    across = analysis.best_across_seeds(best)
    _write_csv(best.merge(across, on="prune_ratio"), out["table"])
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
    _save(fig, out["png"], out["svg"], NO_SWEEP if best.empty else None)


def _pm_axis(ax: plt.Axes, pms: pd.Series) -> None:
    ax.set_xscale("log")
    ticks = [t for t in (*paper.CURVE_LEVELS, 1) if pms.empty or pms.min() * 0.9 <= t]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.invert_xaxis()
    ax.set_xlabel("percent of weights remaining (Pm)")


def _pm_panels(
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
        _pm_axis(ax, pms)
        ax.set(title=title, ylabel=title)
    if curves:
        axes[0].legend()
    _save(fig, out["png"], out["svg"], empty_note if not curves else None)


def section_paper_view(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = analysis.paper_view(runs)
    _write_csv(table, out["table"])
    _pm_panels([(v, table[table["variant"] == v]) for v in _variants(table)], out)


def section_oneshot(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    """The paper's iterative vs one-shot comparison at equal Pm."""
    table = paper.iterative_vs_oneshot(runs)
    _write_csv(table, out["table"])
    curves = [(f"{kind} tickets", part) for kind, part in table.groupby("pruning", sort=True)]
    _pm_panels(curves, out, "No one-shot tickets in this experiment.")


@step
def write_section(
    section: str, runs: PathLike, out: Mapping[str, PathLike], params: Mapping[str, Any]
) -> None:
    """One section of :data:`lottery.sections.SECTIONS`: ``section_<name>`` draws it."""
    if section not in BY_NAME:
        raise ValueError(f"unknown report section {section!r}: expected one of {sorted(BY_NAME)}")
    globals()[f"section_{section}"](read_runs(runs), out, params)


def _fmt(value: float, digits: int = 3) -> str:
    return (
        "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"
    )


NO_SWEEP = "No {ratio, rounds} schedule in this experiment."


def summary_markdown(
    tables: Mapping[str, PathLike],
    experiment: str,
    max_ratio: float,
    claims: PathLike | None = None,
    deviations: list[str] | None = None,
    runs: PathLike | None = None,
    provenance: Sequence[PathLike] | None = None,
) -> str:
    """A short statement of each section's result in numbers; with ``claims`` (the claims table's
    Markdown) and ``deviations`` first, the paper's claims checked and how the run departs from it;
    with ``runs`` (runs.csv), how the networks were trained; with ``provenance`` (the replicates'
    ``summary/provenance.json``), which machine, commit and time made each replicate."""
    t = {name: pd.read_csv(path) for name, path in tables.items()}
    lines = [f"# Summary of experiment `{experiment}`", ""]
    if provenance:
        from lottery.provenance import provenance_markdown, read_replicate_provenance

        lines += [
            "## Who made these results",
            "",
            "Each replicate's networks were trained by the code, PyTorch and CPU below; replicates made on "
            "different machines are independent samples, rounded by different kernels. Each replicate's "
            "`seed-<s>/summary/provenance.json` also gives its trainer's path per layer and its times: "
            "the trainings' own time summed over networks (one core each, evaluations included) and the "
            "span from its first training's start to its last one's end.",
            "",
            provenance_markdown([read_replicate_provenance(p) for p in provenance]).rstrip(),
            "",
        ]
    if runs is not None:
        each = read_runs(runs, draws="each")
        lines += ["## How the networks were trained", "", training_paths(each), ""]
        lines += [draws_line(each), ""]
    seeds = sorted(set(t["paper_view"]["n"])) if "paper_view" in t else []
    if claims is not None:
        runs_seeds = int(max(seeds)) if seeds else 0
        lines += [
            "## The paper's claims (Frankle & Carbin 2019, LeNet-300-100 on MNIST)",
            "",
            f"Networks per level: up to {runs_seeds} seed(s). Mean over seeds, bootstrap 95% interval over "
            "seeds; test accuracy at the early-stop iteration (minimum validation loss).",
            "",
            Path(claims).read_text().rstrip(),
            "",
        ]
    if deviations is not None:
        lines += ["## Deviations from the paper's protocol", ""]
        lines += [f"- {d}" for d in deviations] or ["- none"]
        lines.append("")

    ratios = t["pruning_ratios"]
    lines += ["## Desired vs actual pruning", ""]
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

    accuracy = t["accuracy"]
    lines += [
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
        cells = [_fmt(values.get(r, math.nan), 4) for r in sorted(set(accuracy["prune_ratio"]))]
        lines.append(f"| {markdown_cell(variant)} | " + " | ".join(cells) + " |")

    corr = t["correlations"]
    lines += ["", "## Correlation of prune ratio with validation accuracy", ""]
    if corr.empty:
        lines.append(NO_SWEEP)
    else:
        lines += [
            "| variant | levels | n | Pearson [95% CI] | p | Spearman [95% CI] | p |",
            "|---|---|---|---|---|---|---|",
        ]
    for _, r in corr[corr["metric"] == "val_acc"].iterrows():
        lines.append(
            f"| {r['variant']} | {r['levels']} | {r['n']} | {_fmt(r['pearson'])} "
            f"[{_fmt(r['pearson_ci_low'])}, {_fmt(r['pearson_ci_high'])}] | {_fmt(r['pearson_p'], 4)} | "
            f"{_fmt(r['spearman'])} [{_fmt(r['spearman_ci_low'])}, {_fmt(r['spearman_ci_high'])}] | "
            f"{_fmt(r['spearman_p'], 4)} |"
        )
    if not corr.empty:
        lines.append(
            f"(The W&B report: 0.596 for reinit and 0.619 for ticket over levels <= {max_ratio:g}; "
            "negative for random.)"
        )

    importance = t["parameter_importance"]
    lines += ["", "## Parameter importance for validation accuracy", ""]
    if importance.empty:
        lines.append(NO_SWEEP)
    for variant, part in importance.groupby("variant"):
        cells = [f"{r['parameter']} importance {_fmt(r['importance'])}, correlation {_fmt(r['correlation'])}"
                 for _, r in part.iterrows()]  # fmt: skip
        lines.append(f"- {variant}: " + "; ".join(cells))

    states = t["random_states"]
    lines += ["", "## Results per random state (best validation accuracy over all runs of a state)", ""]
    if states.empty:
        lines.append(NO_SWEEP)
    for seed, part in states.groupby("seed"):
        best = part.loc[part["best_val_acc"].idxmax()]
        lines.append(
            f"- random state {seed}: best {best['best_val_acc']:.4f} at prune ratio {best['prune_ratio']:g}; "
            f"at the largest ratio {part['prune_ratio'].max():g}: "
            f"{part.loc[part['prune_ratio'].idxmax(), 'best_val_acc']:.4f}"
        )

    paper = t["paper_view"]
    lines += ["", "## The paper's view (mean over seeds)", ""]
    for variant, part in paper.groupby("variant"):
        part = part.sort_values("pm", ascending=False)
        cells = [
            f"Pm {r['pm']:g}%: early stop {r['early_stop_iteration_mean']:.0f}, test {r['test_acc_mean']:.4f}"
            for _, r in part.iterrows()
        ]
        lines.append(f"- {variant}: " + "; ".join(cells))
    lines += ticket_analyses_markdown(t)
    return "\n".join(lines) + "\n"


def training_paths(runs: pd.DataFrame) -> str:
    """Which trainer path trained each layer (runs.csv's ``path_*`` columns), network counts."""
    columns = [c for c in runs.columns if c.startswith("path_")]
    if not columns:
        return (
            "runs.csv records no training paths: every network was trained by the dense trainer "
            "(dense weight matrices times their masks), before the sparse path existed."
        )
    combos = runs[columns].fillna("unrecorded").astype(str).value_counts()
    lines = [
        "Each layer's path (`training.sparse_max_density` chooses it; runs.csv's `path_*` columns): "
        "`sparse` - its surviving weights only; `dense` - a dense matrix times its mask; "
        "`dense-nonblank` - dense, reading only each image's non-blank pixels."
    ]
    for combo, count in sorted(combos.items(), key=lambda item: (-item[1], item[0])):
        layers = ", ".join(
            f"{c.removeprefix('path_')} {path}" for c, path in zip(columns, combo, strict=True)
        )
        lines.append(f"- {layers}: {count} network(s)")
    return "\n".join(lines)


def draws_line(runs: pd.DataFrame) -> str:
    """How many networks of each variant a seed has per level (its draws), and how they are read."""
    per = runs.groupby(["variant", "seed", "schedule", "round", "rewind_iteration"], dropna=False).size()
    counts = per.groupby(level="variant").max()
    parts = [f"{variant} {int(n)}" for variant, n in counts.items() if variant != "dense"]
    return (
        "Networks per seed and level: " + ", ".join(parts) + ". The tables and figures average a seed's "
        "draws, then go over seeds (their bars: min and max over seeds)."
    )


@step
def write_summary(
    tables: Mapping[str, PathLike],
    experiment: str,
    max_ratio: float,
    out: PathLike,
    claims: PathLike | None = None,
    deviations: list[str] | None = None,
    runs: PathLike | None = None,
    provenance: Sequence[PathLike] | None = None,
) -> None:
    write_text(out, summary_markdown(tables, experiment, max_ratio, claims, deviations, runs, provenance))


@step
def write_claims(runs: PathLike, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    """The paper's claims checked on ``runs.csv``: CSV and Markdown."""
    table = paper.claims_table(read_runs(runs), int(params["bootstrap"]), int(params["seed"]))
    _write_csv(table, out["table"])
    write_text(out["markdown"], paper.claims_markdown(table))


@step
def write_test_curves(curves: Sequence[PathLike], out: Mapping[str, PathLike]) -> None:
    """The paper's Figure 3 from the replicates' test curves (``curves``: their summaries'
    ``test_curves.csv``): test accuracy over training iterations, tickets at the paper's Pm levels
    (left) and ticket vs reinit vs random at Pm 51.3% and 21.1% (right); mean and min-max over seeds."""
    table = paper.curve_table(pd.concat([pd.read_csv(c) for c in curves], ignore_index=True))
    _write_csv(table, out["table"])
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
    _save(fig, out["png"], out["svg"])


def _band(ax: plt.Axes, part: pd.DataFrame, label: str, colour: Any, style: str = "-") -> None:
    ax.plot(part["iteration"], part["test_acc_mean"], style, color=colour, label=label, linewidth=1)
    ax.fill_between(part["iteration"], part["test_acc_min"], part["test_acc_max"], color=colour, alpha=0.15,
                    linewidth=0)  # fmt: skip


# ------------------------------------------------ what the tickets are (lottery.ticket_analyses)
STABLE = 0.02  # Frankle et al. (ICML 2020) call a network stable when its instability is below ~2%


def _mean_band(ax: plt.Axes, part: pd.DataFrame, x: str, y: str, label: str, **style: Any) -> None:
    """Mean over replicates with a min/max band."""
    g = part.groupby(x, sort=True)[y].agg(["mean", "min", "max"]).reset_index()
    (line,) = ax.plot(g[x], g["mean"], marker="o", label=label, **style)
    ax.fill_between(g[x], g["min"], g["max"], alpha=0.15, color=line.get_color())


def draw_instability(
    rows: list[dict[str, Any]], path_rows: list[dict[str, Any]], out: Mapping[str, PathLike]
) -> None:
    table = pd.DataFrame(rows)
    _write_csv(table, out["table"])
    _write_csv(pd.DataFrame(path_rows), out["path"])
    sns.set_theme(style="whitegrid")
    ks = sorted(table["k"].unique())
    palette = sns.color_palette()
    fig, axes = plt.subplots(1, len(ks), figsize=(5.5 * len(ks), 4), squeeze=False)
    for ax, k in zip(axes[0], ks, strict=True):
        part = table[table["k"] == k]
        for variant in _variants(part):
            colour = palette[_variants(table).index(variant)]
            _mean_band(ax, part[part["variant"] == variant], "pm", "instability", variant, color=colour)
        ax.axhline(STABLE, color="grey", linestyle="--", label="2% (stable below)")
        _pm_axis(ax, table["pm"])
        ax.set(title=f"copies from k = {k}", ylabel="instability (test error)")
        ax.set_ylim(bottom=0)
        ax.legend()
    _save(fig, out["png"], out["svg"])


def draw_supermasks(rows: list[dict[str, Any]], out: Mapping[str, PathLike]) -> None:
    table = pd.DataFrame(rows)
    _write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"ticket": "-", "random": ":"}
    for (mask, weights), part in table.groupby(["mask", "weights"], sort=False):
        label = f"{mask} mask, {'θ0' if weights == 'init' else 'signed constant'}"
        _mean_band(ax, part, "pm", "test_acc", label, linestyle=styles[mask])
    ax.axhline(0.1, color="grey", linestyle="--", label="chance (10%)")
    _pm_axis(ax, table["pm"])
    ax.set(title="masks without training", ylabel="test accuracy")
    ax.legend(fontsize=8)
    _save(fig, out["png"], out["svg"])


def draw_mask_overlap(rows: list[dict[str, Any]], out: Mapping[str, PathLike]) -> None:
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
    _write_csv(table, out["table"])
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
        _pm_axis(ax, table["pm"])
        ax.set(title=f"{layer} (dashed: chance)", ylabel="Jaccard overlap", ylim=(0, 1.02))
        ax.legend(fontsize=8)
    _save(fig, out["png"], out["svg"], None if len(table) else "No masks to compare.")


def draw_pixel_map(rows: list[dict[str, Any]], out: Mapping[str, PathLike]) -> None:
    table = pd.DataFrame(rows)
    _write_csv(table, out["table"])
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
    _save(fig, out["png"], out["svg"])


def _heading(title: str, text: str) -> list[str]:
    return ["", f"## {title}", "", text, ""]


def _summary_instability(table: pd.DataFrame) -> list[str]:
    lines = _heading(
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


def _summary_supermasks(table: pd.DataFrame) -> list[str]:
    lines = _heading(
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


def _summary_mask_overlap(table: pd.DataFrame) -> list[str]:
    lines = _heading(
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


def _summary_pixel_map(table: pd.DataFrame) -> list[str]:
    lines = _heading(
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


def ticket_analyses_markdown(t: Mapping[str, pd.DataFrame]) -> list[str]:
    """summary.md's paragraphs on the analyses of :data:`lottery.experiment.TICKET_ANALYSES` whose
    tables ``t`` has (a table with no rows says nothing)."""
    from lottery.experiment import TICKET_ANALYSES

    lines: list[str] = []
    for name in TICKET_ANALYSES:
        if name in t and len(t[name]):
            lines += globals()[f"_summary_{name}"](t[name])
    return lines
