"""Pruning at initialisation against winning tickets (issue 28), each section one
:class:`~lottery.report.base.Unit` read from the experiment's runs table: accuracy and early-stop
iteration against Pm (:data:`ACCURACY`), the sanity checks' effect (:data:`SANITY`), the per-layer
densities (:data:`DENSITIES`) and the claims (:data:`CLAIMS`).

A network of pruning at initialisation is a row whose ``variant`` is its method (its own mask) or
``<method>-<check>`` (a sanity check), ``method`` the method; the iterative ticket is ``ticket`` on
the reference schedule and its checks ``ticket-<check>``; ``round`` is the level (the reference
schedule's round whose Pm it matches). The reinit and random controls of the ticket come from this
experiment's rows or, with ``pai.compare``, from another experiment's runs table (the same seeds;
:func:`with_controls`). Every interval is Student's t over seeds (:mod:`lottery.stats`); a
difference is paired within a seed (same θ0, same data order).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from lottery import paper, stats
from lottery.desc import CHECKS, FOUND, TICKET
from lottery.logs import step
from lottery.report.base import PathLike, Unit, heading, pm_axis, save_figure, write_csv
from lottery.runs import read_runs

DENSE = "dense"
CONTROLS = ("reinit", "random")  # the ticket's controls (lottery.variants), drawn beside the methods
METHOD_ORDER = ("random", "erk", "magnitude_init", "snip", "grasp", "synflow")  # the methods
NOISE_POINTS = 0.3  # "within noise": a check's effect within 0.3 points of 0 (as paper.accuracy_3_6)
WITHIN_NOISE = "within noise"  # the verdict where the interval straddles the criterion's bound
INTERVALS = (
    f"Intervals: 95% {stats.METHOD}; a difference is paired within a seed (same θ0 and data order) "
    "before the interval is taken."
)


def control_name(variant: str) -> str:
    return f"{variant} (control)"


def _flag(value: Any) -> bool:
    """A runs-table cell read back as a boolean (True, "True", 1; empty is False)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def _layers_text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def with_controls(runs: pd.DataFrame, compare: pd.DataFrame | None) -> pd.DataFrame:
    """``runs`` with the ticket's reinit and random controls of ``compare`` (another experiment's
    runs table, its seeds that ``runs`` has) in place of its own; ``compare`` None: ``runs``."""
    if compare is None:
        return runs
    own = ~(runs["variant"].isin(CONTROLS) & (runs["method"] != runs["variant"]))
    seeds = set(runs["seed"])
    theirs = compare[
        compare["variant"].isin(CONTROLS)
        & (compare["method"] != compare["variant"])
        & compare["seed"].isin(seeds)
    ]
    return pd.concat([runs[own], theirs], ignore_index=True)


def networks(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per network and seed: ``network`` (``ticket``, a method, ``<control> (control)`` or
    ``dense``), ``check`` (``found`` or a sanity check), ``round``, ``pm``, ``seed``, ``test_acc``,
    ``early_stop_iteration``, ``collapsed`` (a layer left empty or no input-output path) and its
    ``collapsed_layers``, and the per-layer densities ``remaining_<layer>``."""
    schedule = paper.iterative_schedule(runs)
    variant = runs["variant"].astype(str)
    method = runs["method"].fillna("").astype(str) if "method" in runs else pd.Series("", index=runs.index)
    rewound = runs.get("rewind_iteration", pd.Series(0.0, index=runs.index)).fillna(0) > 0
    on_reference = (runs["schedule"] == schedule) & ~rewound
    network = pd.Series(None, index=runs.index, dtype=object)
    check = pd.Series(FOUND, index=runs.index, dtype=object)
    network[variant == DENSE] = DENSE
    network[on_reference & (variant == TICKET)] = TICKET
    is_method = method == variant  # the method's own mask (the controls' method is the ticket's)
    network[is_method] = variant[is_method]
    controls = on_reference & variant.isin(CONTROLS) & ~is_method
    network[controls] = variant[controls].map(control_name)
    for c in CHECKS:
        ticket = variant == f"{TICKET}-{c}"
        checked = (method != "") & (variant == method + f"-{c}") & ~ticket
        network[ticket], check[ticket] = TICKET, c
        network[checked], check[checked] = method[checked], c
    keep = network.notna()
    layers = [c for c in runs if c.startswith("remaining_")]
    layer_names = runs.get("collapsed_layers", pd.Series(None, index=runs.index)).map(_layers_text)
    disconnected = runs.get("disconnected", pd.Series(False, index=runs.index)).map(_flag)
    table = pd.DataFrame(
        {
            "network": network,
            "check": check,
            "round": runs["round"].astype(int),
            "pm": runs["weights_remaining_pct"].astype(float),
            "seed": runs["seed"],
            "test_acc": runs["test_acc"].astype(float),
            "early_stop_iteration": runs["early_stop_iteration"].astype(float),
            "collapsed": (layer_names != "") | disconnected,
            "collapsed_layers": layer_names.where(~disconnected, (layer_names + " disconnected").str.strip()),
            **{c: runs[c].astype(float) for c in layers},
        }
    )[keep]
    return table.reset_index(drop=True)


def network_order(names: Sequence[str]) -> list[str]:
    """The ticket, its controls, the issue's methods in its order, then any other method."""
    present = set(names)
    first = [TICKET, *map(control_name, CONTROLS), *METHOD_ORDER]
    return [n for n in first if n in present] + sorted(n for n in present - set(first) if n != DENSE)


def methods_in(nets: pd.DataFrame) -> list[str]:
    """The methods at initialisation of a :func:`networks` table (neither the ticket nor a control)."""
    return [n for n in network_order(nets["network"]) if n != TICKET and not n.endswith("(control)")]


def _interval(values: Sequence[float], prefix: str) -> dict[str, float]:
    mean, low, high = stats.t_interval(list(values))
    return {f"{prefix}_mean": mean, f"{prefix}_low": low, f"{prefix}_high": high}


def _per_seed(nets: pd.DataFrame, network: str, check: str, round_: int, column: str) -> pd.Series:
    rows = nets[(nets["network"] == network) & (nets["check"] == check) & (nets["round"] == round_)]
    return rows.groupby("seed")[column].mean()


# ---------------------------------------------------------------- accuracy against Pm
def accuracy_table(nets: pd.DataFrame) -> pd.DataFrame:
    """Per network (own masks) and level: seeds, test accuracy at early stop and the early-stop
    iteration (mean and t interval over seeds), the seeds whose network collapsed and its layers."""
    rows = []
    found = nets[nets["check"] == FOUND]
    for name in [DENSE, *network_order(found["network"])]:
        for round_, part in found[found["network"] == name].groupby("round", sort=True):
            per_seed = part.groupby("seed")
            layers = sorted({x for text in part["collapsed_layers"] for x in text.split()})
            rows.append(
                {
                    "network": name,
                    "round": round_,
                    "pm": part["pm"].mean(),
                    "n": per_seed.ngroups,
                    **_interval(per_seed["test_acc"].mean(), "test_acc"),
                    **_interval(per_seed["early_stop_iteration"].mean(), "early_stop_iteration"),
                    "collapsed": int(per_seed["collapsed"].any().sum()),
                    "collapsed_layers": " ".join(layers),
                }
            )
    columns = [
        "network",
        "round",
        "pm",
        "n",
        "test_acc_mean",
        "test_acc_low",
        "test_acc_high",
        "early_stop_iteration_mean",
        "early_stop_iteration_low",
        "early_stop_iteration_high",
        "collapsed",
        "collapsed_layers",
    ]
    return pd.DataFrame(rows, columns=columns)


def _style(name: str) -> dict[str, Any]:
    """The ticket black, its controls grey, each method its own colour in every figure (no grey)."""
    if name == TICKET:
        return {"color": "black", "linewidth": 2.2, "marker": "*", "markersize": 9, "zorder": 4}
    if name.endswith("(control)"):
        return {"color": "grey", "linestyle": "--" if name.startswith("reinit") else ":", "marker": "o"}
    palette = [c for i, c in enumerate(sns.color_palette("deep", 10)) if i != 7]  # 7: deep's grey
    index = (
        METHOD_ORDER.index(name)
        if name in METHOD_ORDER
        else len(METHOD_ORDER) + zlib.crc32(name.encode()) % 3
    )
    return {"color": palette[index], "marker": "o", "linewidth": 1.2}


def _errorbar(ax: plt.Axes, part: pd.DataFrame, prefix: str, label: str, style: dict[str, Any]) -> None:
    mean = part[f"{prefix}_mean"].to_numpy(dtype=float)
    low = np.nan_to_num(mean - part[f"{prefix}_low"].to_numpy(dtype=float))
    high = np.nan_to_num(part[f"{prefix}_high"].to_numpy(dtype=float) - mean)
    ax.errorbar(part["pm"], mean, yerr=[low, high], capsize=3, label=label, **style)


def _draw_accuracy(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = accuracy_table(networks(runs))
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    pruned = table[table["network"] != DENSE]
    dense = table[table["network"] == DENSE]
    panels = (("test_acc", "test accuracy at early stop"), ("early_stop_iteration", "early-stop iteration"))
    for ax, (prefix, title) in zip(axes, panels, strict=True):
        for i, name in enumerate(network_order(pruned["network"])):
            part = pruned[pruned["network"] == name].sort_values("pm")
            _errorbar(ax, part, prefix, name, _style(name))
            bad = part[part["collapsed"] > 0]
            ax.scatter(
                bad["pm"],
                bad[f"{prefix}_mean"],
                marker="X",
                s=110,
                color="red",
                zorder=5,
                label="collapsed (a seed's layer cut)" if i == 0 else None,
            )
        if not dense.empty:
            ax.axhline(dense[f"{prefix}_mean"].iloc[0], color="grey", linewidth=1, label="dense (Pm 100%)")
        pm_axis(ax, pruned["pm"])
        ax.set(title=title, ylabel=title)
    handles, labels = axes[0].get_legend_handles_labels()
    if not any(table["collapsed"] > 0):  # the marker's entry only where a network collapsed
        kept = [(h, lab) for h, lab in zip(handles, labels, strict=True) if not lab.startswith("collapsed")]
        handles, labels = [h for h, _ in kept], [lab for _, lab in kept]
    if labels:
        axes[1].legend(handles, labels, fontsize=8, loc="best")
    note = None if not pruned.empty else "No networks of pruning at initialisation."
    save_figure(fig, out["png"], out["svg"], note)


def _cell(
    mean: float, low: float, high: float, scale: float = 1.0, digits: int = 2, sign: bool = False
) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    f = f"{{:{'+' if sign else ''}.{digits}f}}"
    text = f.format(scale * mean)
    if not (math.isnan(low) or math.isnan(high)):
        text += f" [{f.format(scale * low)}, {f.format(scale * high)}]"
    return text


def _pivot_markdown(rows: list[tuple[str, float, str]], columns: list[str], first: str) -> list[str]:
    """A Markdown table: one row per Pm (largest first), one column per ``columns`` (cell text)."""
    cells: dict[float, dict[str, str]] = {}
    for column, pm, text in rows:
        cells.setdefault(round(pm, 1), {})[column] = text
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for pm in sorted(cells, reverse=True):
        lines.append(f"| {pm:g}% | " + " | ".join(cells[pm].get(c, "-") for c in columns) + " |")
    return lines


def _paragraph_accuracy(table: pd.DataFrame, max_ratio: float) -> list[str]:
    pruned = table[table["network"] != DENSE]
    if pruned.empty:
        return []
    lines = heading(
        "Pruning at initialisation: accuracy and early stop against Pm",
        "Each method prunes θ0 once to the iterative ticket's Pm and trains its survivors from θ0 (the "
        "paper's protocol); beside it the iterative ticket and, where present, its reinit and random "
        "controls. Test accuracy at the early-stop iteration (%), mean over seeds [interval]; † a seed's "
        "network collapsed (a layer left empty, or no path from input to output).",
    )
    columns = network_order(pruned["network"])

    def rows(prefix: str, scale: float, digits: int) -> list[tuple[str, float, str]]:
        out = []
        for _, r in pruned.iterrows():
            text = _cell(r[f"{prefix}_mean"], r[f"{prefix}_low"], r[f"{prefix}_high"], scale, digits)
            out.append((r["network"], r["pm"], text + (" †" if r["collapsed"] > 0 else "")))
        return out

    dense = table[table["network"] == DENSE]
    if not dense.empty:
        d = dense.iloc[0]
        lines += [
            f"Dense network: {_cell(d['test_acc_mean'], d['test_acc_low'], d['test_acc_high'], 100)}% "
            f"at early stop, iteration {d['early_stop_iteration_mean']:.0f}.",
            "",
        ]
    lines += _pivot_markdown(rows("test_acc", 100.0, 2), columns, "Pm")
    lines += ["", "Early-stop iteration, mean over seeds [interval]:", ""]
    lines += _pivot_markdown(rows("early_stop_iteration", 1.0, 0), columns, "Pm")
    collapsed = pruned[pruned["collapsed"] > 0]
    lines += ["", INTERVALS]
    if not collapsed.empty:
        cut = "; ".join(
            f"{r['network']} at Pm {r['pm']:.1f}% ({int(r['collapsed'])} of {int(r['n'])} "
            f"seeds: {r['collapsed_layers']})"
            for _, r in collapsed.iterrows()
        )
        lines += ["", f"Collapsed networks (†): {cut}."]
    return lines


ACCURACY = Unit(_draw_accuracy, _paragraph_accuracy)


# ---------------------------------------------------------------- the sanity checks
def sanity_table(nets: pd.DataFrame) -> pd.DataFrame:
    """Per network (the ticket and each method), check and level: the check's test accuracy minus
    the network's own mask's, in points, paired per seed: mean and t interval over seeds."""
    rows = []
    for name in network_order(nets["network"]):
        if name.endswith("(control)"):
            continue
        mine = nets[nets["network"] == name]
        for c in CHECKS:
            for round_, part in mine[mine["check"] == c].groupby("round", sort=True):
                own = _per_seed(nets, name, FOUND, round_, "test_acc")
                checked = part.groupby("seed")["test_acc"].mean()
                paired = pd.concat([checked.rename("check"), own.rename("own")], axis=1, join="inner")
                rows.append(
                    {
                        "network": name,
                        "check": c,
                        "round": round_,
                        "pm": part["pm"].mean(),
                        "n": len(paired),
                        "own_acc_mean": paired["own"].mean(),
                        "check_acc_mean": paired["check"].mean(),
                        **_interval(100.0 * (paired["check"] - paired["own"]), "effect_points"),
                        "check_collapsed": int(part.groupby("seed")["collapsed"].any().sum()),
                    }
                )
    columns = [
        "network",
        "check",
        "round",
        "pm",
        "n",
        "own_acc_mean",
        "check_acc_mean",
        "effect_points_mean",
        "effect_points_low",
        "effect_points_high",
        "check_collapsed",
    ]
    return pd.DataFrame(rows, columns=columns)


def _draw_sanity(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = sanity_table(networks(runs))
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    checks = [c for c in CHECKS if c in set(table["check"])] or list(CHECKS)
    fig, axes = plt.subplots(1, len(checks), figsize=(5.2 * len(checks), 4.5), squeeze=False, sharey=True)
    order = network_order(table["network"])
    for ax, c in zip(axes[0], checks, strict=True):
        part = table[table["check"] == c]
        for name in order:
            rows = part[part["network"] == name].sort_values("pm")
            if not rows.empty:
                _errorbar(ax, rows, "effect_points", name, _style(name))
        ax.axhline(0.0, color="grey", linewidth=1)
        pm_axis(ax, table["pm"])
        ax.set(title=f"{c} minus own mask", ylabel="test accuracy difference (points)")
    if not table.empty:
        axes[0][0].legend(fontsize=8)
    save_figure(
        fig, out["png"], out["svg"], None if not table.empty else "No sanity checks in this experiment."
    )


def _paragraph_sanity(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    lines = heading(
        "Pruning at initialisation: the sanity checks",
        "Test accuracy at early stop of each check minus the network's own mask, in percentage points, "
        "paired per seed, mean [interval]: shuffled - the mask permuted within each layer; reinit - θ0 "
        "drawn afresh; inverted - the lowest scores kept at the same per-layer counts. Frankle et al. "
        "(ICLR 2021) and Su et al. (NeurIPS 2020) find the methods at initialisation unharmed by "
        "shuffling and reinitialisation, and the iterative ticket harmed.",
    )
    levels = sorted(set(table["pm"].round(1)), reverse=True)
    header = [f"Pm {pm:g}%" for pm in levels]
    lines += ["| network | check | " + " | ".join(header) + " |", "|---" * (len(header) + 2) + "|"]
    for name in network_order(table["network"]):
        for c in CHECKS:
            part = table[(table["network"] == name) & (table["check"] == c)]
            if part.empty:
                continue
            cells = {
                round(r["pm"], 1): _cell(
                    r["effect_points_mean"], r["effect_points_low"], r["effect_points_high"], sign=True
                )
                for _, r in part.iterrows()
            }
            lines.append(f"| {name} | {c} | " + " | ".join(cells.get(pm, "-") for pm in levels) + " |")
    return [*lines, "", INTERVALS]


SANITY = Unit(_draw_sanity, _paragraph_sanity)


# ---------------------------------------------------------------- per-layer densities
def densities_table(nets: pd.DataFrame) -> pd.DataFrame:
    """Per network (the ticket and each method, own masks), level and layer: the layer's density
    (fraction of its weights kept), mean, min and max over seeds."""
    layers = [c for c in nets if c.startswith("remaining_")]
    found = nets[
        (nets["check"] == FOUND) & (nets["network"] != DENSE) & ~nets["network"].str.endswith("(control)")
    ]
    rows = []
    for name in network_order(found["network"]):
        for round_, part in found[found["network"] == name].groupby("round", sort=True):
            for column in layers:
                values = part.groupby("seed")[column].mean()
                rows.append(
                    {
                        "network": name,
                        "round": round_,
                        "pm": part["pm"].mean(),
                        "layer": column.removeprefix("remaining_"),
                        "n": len(values),
                        "density_mean": values.mean(),
                        "density_min": values.min(),
                        "density_max": values.max(),
                    }
                )
    columns = ["network", "round", "pm", "layer", "n", "density_mean", "density_min", "density_max"]
    return pd.DataFrame(rows, columns=columns)


def _draw_densities(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    table = densities_table(networks(runs))
    write_csv(table, out["table"])
    sns.set_theme(style="whitegrid")
    layers = list(dict.fromkeys(table["layer"])) or ["fc1"]
    fig, axes = plt.subplots(1, len(layers), figsize=(4.8 * len(layers), 4.3), squeeze=False, sharey=True)
    order = network_order(table["network"])
    for ax, layer in zip(axes[0], layers, strict=True):
        part = table[table["layer"] == layer]
        for name in order:
            rows = part[part["network"] == name].sort_values("pm")
            label = "ticket (20/20/10% a round)" if name == TICKET else name
            style = _style(name)
            ax.plot(rows["pm"], rows["density_mean"], label=label, **style)
            ax.fill_between(
                rows["pm"], rows["density_min"], rows["density_max"], color=style["color"], alpha=0.12
            )
        ax.set_yscale("log")
        pm_axis(ax, table["pm"])
        ax.set(title=layer, ylabel="fraction of the layer's weights kept")
    if not table.empty:
        axes[0][0].legend(fontsize=8)
    save_figure(
        fig, out["png"], out["svg"], None if not table.empty else "No masks of pruning at initialisation."
    )


def _paragraph_densities(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    lines = heading(
        "Pruning at initialisation: per-layer densities",
        "Each layer's fraction of weights kept by each method's own mask, beside the iterative ticket's "
        "(its layers lose 20/20/10% a round), mean over seeds (min-max): what a method finds when its "
        "mask can be shuffled within layers without loss is these densities.",
    )
    pms = sorted(set(table["pm"].round(1)), reverse=True)
    wanted = [
        pm for pm in pms if any(abs(pm - level) <= paper.LEVEL_TOLERANCE for level in paper.CURVE_LEVELS)
    ]
    shown = wanted or pms[:: max(1, len(pms) // 5)]
    layers = list(dict.fromkeys(table["layer"]))
    for pm in shown:
        part = table[table["pm"].round(1) == pm]
        lines += [
            "",
            f"Pm {pm:g}%:",
            "",
            "| network | " + " | ".join(layers) + " |",
            "|---" * (len(layers) + 1) + "|",
        ]
        for name in network_order(part["network"]):
            rows = part[part["network"] == name].set_index("layer")
            cells = []
            for layer in layers:
                r = rows.loc[layer]
                spread = (
                    ""
                    if r["density_min"] == r["density_max"]
                    else f" ({r['density_min']:.3f}-{r['density_max']:.3f})"
                )
                cells.append(f"{r['density_mean']:.3f}{spread}")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, "", "Densities: mean over seeds, their min and max in parentheses (no interval)."]


DENSITIES = Unit(_draw_densities, _paragraph_densities)


# ---------------------------------------------------------------- the claims
SNIP_PUBLISHED = ((95.0, 1.6), (98.0, 2.4))  # Lee et al. (ICLR 2019), LeNet-300-100: sparsity %, test error %
SNIP_NEAREST = 1.0  # percentage points of Pm within which a level stands for a published sparsity
# Lee et al. (ICLR 2019), section 5's experiment setup: "SGD with momentum of 0.9, batch size of 100 for
# MNIST ... weight decay rate of 0.0005 ... initial learning rate 0.1 and decayed by 0.1 at every 25k
# ... iterations"; "we spare 10% of the training data as a validation set"
SNIP_RECIPE = (
    "SNIP's recipe: SGD with momentum 0.9, batch 100, weight decay 5e-4, learning rate 0.1 decayed "
    "tenfold every 25k iterations, 10% of the training set held out, variance-scaling θ0, saliency "
    "from one minibatch of 100 examples, error at the end of training; ours: the paper's Adam at 1.2e-3, "
    "batch 60, 50,000 iterations, 5,000 images held out, no "
    "weight decay, Gaussian Glorot θ0, saliency from 10 examples per class, error at the early-stop "
    "iteration (minimum validation loss)"
)
CLAIM1_PM, CLAIM2_PM = 21.1, 7.0
INVERTED = ("snip", "synflow", "magnitude_init")  # claim 4's methods
COLLAPSING = ("synflow", "snip", "grasp")  # claim 5's


def _claim_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """A claim's mean over seeds and t interval; no interval (NaN) below the paper's
    :data:`~lottery.paper.MIN_SEEDS_FOR_CI` seeds, as its claims have none."""
    mean, low, high = stats.t_interval(list(values))
    if len(values) < paper.MIN_SEEDS_FOR_CI:
        return mean, math.nan, math.nan
    return mean, low, high


def _judged(criterion: paper.Criterion, values: Sequence[float]) -> dict[str, Any]:
    """The mean of per-seed ``values``, its t interval and the verdict - on the mean alone, with no
    interval, below the paper's :data:`~lottery.paper.MIN_SEEDS_FOR_CI` seeds (as its claims are)."""
    mean, low, high = _claim_interval(values)
    bounded = not math.isnan(low)
    verdict = criterion.verdict(mean, low if bounded else None, high if bounded else None)
    verdict = WITHIN_NOISE if verdict == paper.UNDECIDED else verdict
    return {"ours": mean, "ci_low": low, "ci_high": high, "seeds": len(values), "verdict": verdict}


def _row(key: str, statement: str, unit: str, criterion: str, reading: str, **values: Any) -> dict[str, Any]:
    row = {
        "claim": key,
        "statement": statement,
        "reading": reading,
        "unit": unit,
        "paper": math.nan,
        "ours": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "interval": paper.DIFFERENCE,
        "seeds": 0,
        "criterion": criterion,
        "verdict": paper.NOT_MEASURED,
        "paper_in_ci": "",
    }
    return row | values


def _paired(a: pd.Series, b: pd.Series) -> pd.Series:
    """``a - b`` per seed, in points (seeds with both)."""
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    return 100.0 * (both["a"] - both["b"])


def _over_levels(levels: list[tuple[float, pd.Series]], criterion: paper.Criterion) -> dict[str, Any]:
    """A claim "at every level": each level's paired differences judged by ``criterion``; it does not
    hold where some level's does not, holds where every level's holds, is within noise otherwise.
    Shown: the deciding level (a failing one, else the smallest mean difference)."""
    judged = [(pm, _judged(criterion, diffs.tolist())) for pm, diffs in levels]
    verdicts = [j["verdict"] for _, j in judged]
    overall = (
        paper.FAILS
        if paper.FAILS in verdicts
        else paper.HOLDS
        if all(v == paper.HOLDS for v in verdicts)
        else WITHIN_NOISE
    )
    pm, shown = min(judged, key=lambda j: (j[1]["verdict"] != paper.FAILS, j[1]["ours"]))
    counts = ", ".join(
        f"{v} at {verdicts.count(v)}" for v in (paper.HOLDS, WITHIN_NOISE, paper.FAILS) if v in verdicts
    )
    detail = f" - {len(judged)} level(s): {counts}; shown: Pm {pm:.1f}%"
    return shown | {"verdict": overall, "detail": detail}


def _levels_of(nets: pd.DataFrame, name: str, max_pm: float) -> list[int]:
    rows = nets[
        (nets["network"] == name) & (nets["check"] == FOUND) & (nets["pm"] <= max_pm + paper.LEVEL_TOLERANCE)
    ]
    return sorted(set(rows["round"]))


def _claim_at_every_level(
    nets: pd.DataFrame, key: str, statement: str, reading: str, better: str, worse: str, max_pm: float
) -> dict[str, Any]:
    criterion = paper.Criterion("above", 0.0)
    levels = []
    for round_ in _levels_of(nets, worse, max_pm):
        diffs = _paired(
            _per_seed(nets, better, FOUND, round_, "test_acc"),
            _per_seed(nets, worse, FOUND, round_, "test_acc"),
        )
        if len(diffs):
            pm = nets[(nets["network"] == worse) & (nets["round"] == round_)]["pm"].mean()
            levels.append((pm, diffs))
    row = _row(key, statement, "points", "above 0 points at every level", reading)
    if not levels:
        return row
    judged = _over_levels(levels, criterion)
    return row | {k: v for k, v in judged.items() if k != "detail"} | {"reading": reading + judged["detail"]}


def _claim_check(
    nets: pd.DataFrame,
    key: str,
    statement: str,
    reading: str,
    name: str,
    check: str,
    criterion: paper.Criterion,
    text: str,
) -> dict[str, Any]:
    """A check's effect on ``name``: per seed, the mean over its checked levels of check minus own."""
    per_level = []
    for round_ in sorted(set(nets[(nets["network"] == name) & (nets["check"] == check)]["round"])):
        diffs = _paired(
            _per_seed(nets, name, check, round_, "test_acc"), _per_seed(nets, name, FOUND, round_, "test_acc")
        )
        per_level.append(diffs.rename(round_))
    row = _row(key, statement, "points", text, reading)
    if not per_level:
        return row
    per_seed = pd.concat(per_level, axis=1).mean(axis=1).dropna()
    if per_seed.empty:
        return row
    pms = sorted(set(nets[(nets["network"] == name) & (nets["check"] == check)]["pm"].round(1)), reverse=True)
    where = ", ".join(f"{pm:g}" for pm in pms)
    return row | _judged(criterion, per_seed.tolist()) | {"reading": f"{reading} (Pm {where}%)"}


def _claim_collapse(nets: pd.DataFrame, method: str) -> dict[str, Any]:
    never = method == "synflow"
    statement = (
        f"(5) {method} never collapses a layer"
        if never
        else f"(5) {method} collapses a layer first at the smallest Pm"
    )
    reading = (
        f"the largest Pm at which a seed's {method} mask (its own) left a layer empty or cut every "
        "input-output path, mean over the seeds that collapse [interval]"
    )
    row = _row(
        f"5_{method}",
        statement,
        "%",
        "never collapses" if never else "reports where it collapses",
        reading,
        interval=paper.VALUES,
    )
    own = nets[(nets["network"] == method) & (nets["check"] == FOUND)]
    if own.empty:
        return row
    seeds = own.groupby("seed")
    first = own[own["collapsed"]].groupby("seed")["pm"].max()
    smallest = own["pm"].min()
    layers = sorted({x for text in own["collapsed_layers"] for x in text.split()})
    row["seeds"] = seeds.ngroups
    if first.empty:
        where = f"never collapses (down to Pm {smallest:.1f}%, {seeds.ngroups} seed(s))"
        return row | {
            "verdict": f"{paper.HOLDS}: {where}" if never else where.replace("never collapses", "no collapse")
        }
    mean, low, high = _claim_interval(first.tolist())
    at = f"collapses from Pm {first.max():.1f}% ({len(first)} of {seeds.ngroups} seeds; {' '.join(layers)})"
    if not never and abs(first.max() - smallest) <= paper.LEVEL_TOLERANCE:
        at += ", the smallest Pm measured"
    return row | {
        "ours": mean,
        "ci_low": low,
        "ci_high": high,
        "verdict": f"{paper.FAILS}: {at}" if never else at,
    }


def _snip_published(nets: pd.DataFrame, sparsity: float, error: float) -> dict[str, Any]:
    target = 100.0 - sparsity
    row = _row(
        f"snip_published_{sparsity:g}",
        f"SNIP (Lee et al. 2019): LeNet-300-100 test error {error:g}% at {sparsity:g}% sparsity",
        "%",
        "beside ours at the nearest Pm",
        SNIP_RECIPE,
        paper=error,
        interval=paper.VALUES,
    )
    own = nets[(nets["network"] == "snip") & (nets["check"] == FOUND)]
    if own.empty:
        return row
    level = own.groupby("round")["pm"].mean()
    nearest = (level - target).abs().idxmin()
    pm = level[nearest]
    if abs(pm - target) > SNIP_NEAREST:
        return row | {"verdict": f"{paper.NOT_MEASURED}: the nearest snip level is Pm {pm:.1f}%"}
    errors = 100.0 * (1.0 - _per_seed(nets, "snip", FOUND, nearest, "test_acc"))
    mean, low, high = _claim_interval(errors.tolist())
    inside = "" if math.isnan(low) else ("yes" if low <= error <= high else "no")
    return row | {
        "ours": mean,
        "ci_low": low,
        "ci_high": high,
        "seeds": len(errors),
        "verdict": f"ours at Pm {pm:.1f}%",
        "paper_in_ci": inside,
    }


def claims_table(nets: pd.DataFrame) -> pd.DataFrame:
    """The issue's five claims, one row per method (and check) they name, as the paper's claims
    table (:data:`lottery.paper.CLAIM_COLUMNS`), then SNIP's published errors beside ours. A method
    the run lacks is "not measured"."""
    methods = list(dict.fromkeys([*METHOD_ORDER, *methods_in(nets)]))
    rows = []
    for m in methods:
        rows.append(
            _claim_at_every_level(
                nets,
                f"1_{m}",
                f"(1) At every Pm <= {CLAIM1_PM}% the iterative ticket is at least as accurate as {m}",
                f"the ticket minus {m}, test accuracy at early stop, paired per seed at each level",
                TICKET,
                m,
                CLAIM1_PM,
            )
        )
    for m in (m for m in methods if m != "random"):
        rows.append(
            _claim_at_every_level(
                nets,
                f"2_{m}",
                f"(2) {m} beats random pruning at every Pm <= {CLAIM2_PM}%",
                f"{m} minus random (uniform per layer), test accuracy at early stop, paired per seed at each "
                "level",
                m,
                "random",
                CLAIM2_PM,
            )
        )
    within = paper.Criterion("within", 0.0, NOISE_POINTS)
    hurts = paper.Criterion("below", 0.0)
    for name in (*methods, TICKET):
        for check in ("shuffled", "reinit"):
            ticket = name == TICKET
            statement = (
                f"(3) {check.capitalize()} hurts the iterative ticket"
                if ticket
                else f"(3) {check.capitalize()} leaves {name} within noise"
            )
            rows.append(
                _claim_check(
                    nets,
                    f"3_{name}_{check}",
                    statement,
                    f"{name}'s {check} minus its own mask, test accuracy at early stop, per seed the mean "
                    "over the sanity levels",
                    name,
                    check,
                    hurts if ticket else within,
                    "below 0 points" if ticket else f"within {NOISE_POINTS:g} points of 0",
                )
            )
    for m in INVERTED:
        rows.append(
            _claim_check(
                nets,
                f"4_{m}",
                f"(4) Inversion hurts {m}",
                f"{m}'s inverted mask minus its own, test accuracy at early stop, per seed the mean over the "
                "sanity levels",
                m,
                "inverted",
                hurts,
                "below 0 points",
            )
        )
    rows += [_claim_collapse(nets, m) for m in COLLAPSING]
    rows += [_snip_published(nets, sparsity, error) for sparsity, error in SNIP_PUBLISHED]
    return pd.DataFrame(rows, columns=list(paper.CLAIM_COLUMNS))


def _draw_claims(runs: pd.DataFrame, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    write_csv(claims_table(networks(runs)), out["table"])


def _paragraph_claims(table: pd.DataFrame, max_ratio: float) -> list[str]:
    if table.empty:
        return []
    table = table.assign(seeds=table["seeds"].fillna(0).astype(int))
    published = table["claim"].astype(str).str.startswith("snip_published")
    lines = heading(
        "Pruning at initialisation: the claims",
        "The claims of issue 28 (after Frankle et al. ICLR 2021, Su et al. NeurIPS 2020 and Tanaka et al. "
        "NeurIPS 2020) read from these networks, one row per method and check they name; differences in "
        "percentage points of test accuracy at early stop, paired per seed.",
    )
    lines += paper.claims_markdown(table[~published]).rstrip().splitlines()
    lines += [
        "",
        f"{INTERVALS} Verdict {WITHIN_NOISE!r}: the interval straddles the criterion's bound (the seeds "
        f"cannot tell); a claim at every level holds when it holds at each, does not hold when it fails at "
        f"one. Claim 5 states where a method collapses a layer (its number: the first Pm of a collapse).",
        "",
    ]
    cells = []
    for _, r in table[published].iterrows():
        ours = (
            "not measured"
            if pd.isna(r["ours"])
            else f"ours {_cell(r['ours'], r['ci_low'], r['ci_high'])}% ({r['verdict']})"
        )
        if pd.isna(r["ours"]) and str(r["verdict"]) != paper.NOT_MEASURED:
            ours = str(r["verdict"])
        cells.append(f"{r['paper']:g}% at {r['statement'].split(' at ')[-1]} - {ours}")
    if cells:
        recipe = table[published]["reading"].iloc[0]
        lines.append(f"- SNIP's published LeNet-300-100 errors beside ours: {'; '.join(cells)}. {recipe}.")
    return lines


CLAIMS = Unit(_draw_claims, _paragraph_claims)


# ---------------------------------------------------------------- the workflow's step
@step
def write_pai_section(
    section: str,
    runs: PathLike,
    out: Mapping[str, PathLike],
    params: Mapping[str, Any],
    compare: PathLike | None = None,
) -> None:
    """A section of pruning at initialisation (workflow/rules/pai.smk) from the experiment's runs
    table and, with ``compare`` (``pai.compare``'s runs table), another experiment's controls."""
    from lottery.sections import BY_NAME, PAI

    found = BY_NAME.get(section)
    if found is None or found.rule != PAI:
        expected = sorted(name for name, s in BY_NAME.items() if s.rule == PAI)
        raise ValueError(
            f"unknown section of pruning at initialisation {section!r}: expected one of {expected}"
        )
    other = read_runs(compare) if compare is not None else None
    found.load().draw(with_controls(read_runs(runs), other), out, params)
