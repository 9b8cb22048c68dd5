"""The W&B report's analyses on ``runs.csv``: pruning ratios, accuracy, correlations, parameter
importance, results per random state, and the paper's view. Pure functions of a runs table, so each is
tested on small synthetic tables with known answers.

Vocabulary of the W&B report: ``prune_ratio`` is the requested total fraction of the hidden weights
pruned (a ``{ratio, rounds}`` schedule's ratio) and ``prune_iter`` the number of rounds used to reach
it; a schedule's result is its last round. ``variant`` is ``ticket``, ``reinit``, ``random`` or
``rewind-<k>``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

METRICS = ("val_acc", "test_acc")


def variant_label(runs: pd.DataFrame) -> pd.Series:
    """``rewind-<k>`` for rewound networks, the variant otherwise."""
    rewind = runs.get("rewind_iteration")
    if rewind is None:
        return runs["variant"].astype(str)
    labels = runs["variant"].astype(str).copy()
    has = rewind.notna() & (runs["variant"] == "rewind")
    labels[has] = "rewind-" + rewind[has].astype(int).astype(str)
    return labels


def sweep_results(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trained network of a ``{ratio, rounds}`` schedule at its last round, with the
    W&B report's ``prune_ratio`` and ``prune_iter`` columns."""
    swept = runs[runs["schedule_ratio"].notna() & (runs["round"] == runs["schedule_rounds"])].copy()
    swept["prune_ratio"] = swept["schedule_ratio"].astype(float)
    swept["prune_iter"] = swept["schedule_rounds"].astype(int)
    swept["variant"] = variant_label(swept)
    return swept.reset_index(drop=True)


def pruning_ratios(runs: pd.DataFrame) -> pd.DataFrame:
    """Requested versus actual fraction of all prunable weights pruned, per (prune_ratio, prune_iter)."""
    tickets = sweep_results(runs).query("variant == 'ticket'")
    table = (
        tickets.groupby(["prune_iter", "prune_ratio"], as_index=False)
        .agg(actual_ratio=("actual_ratio", "mean"), weights_remaining_pct=("weights_remaining_pct", "mean"))
        .sort_values(["prune_iter", "prune_ratio"])
    )
    table["shortfall"] = table["prune_ratio"] - table["actual_ratio"]
    return table.reset_index(drop=True)


def accuracy_by_ratio(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation and test accuracy per variant and prune ratio: mean, min, max over seeds and rounds."""
    swept = sweep_results(runs)
    rows = []
    for (variant, ratio), group in swept.groupby(["variant", "prune_ratio"]):
        row = {"variant": variant, "prune_ratio": ratio, "n": len(group)}
        for metric in METRICS:
            row |= {f"{metric}_mean": group[metric].mean(), f"{metric}_min": group[metric].min(),
                    f"{metric}_max": group[metric].max()}  # fmt: skip
        rows.append(row)
    columns = ["variant", "prune_ratio", "n"] + [f"{m}_{s}" for m in METRICS for s in ("mean", "min", "max")]
    return pd.DataFrame(rows, columns=columns)


def _correlation(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    result = stats.pearsonr(x, y) if kind == "pearson" else stats.spearmanr(x, y)
    return float(result[0]), float(result[1])


def bootstrap_ci(
    x: np.ndarray, y: np.ndarray, kind: str, resamples: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile 95% interval of the correlation over resampled (x, y) pairs."""
    if len(x) < 3:
        return math.nan, math.nan
    values = []
    for _ in range(resamples):
        idx = rng.integers(0, len(x), len(x))
        value, _ = _correlation(x[idx], y[idx], kind)
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


CORRELATION_COLUMNS = ["variant", "levels", "metric", "n"] + [
    f"{kind}{suffix}" for kind in ("pearson", "spearman") for suffix in ("", "_p", "_ci_low", "_ci_high")
]


def correlations(
    runs: pd.DataFrame, max_ratio: float = 0.85, resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Pearson and Spearman correlation of prune ratio with accuracy, per variant and metric, over all
    levels and over levels up to ``max_ratio``, with n, p-values and bootstrap 95% intervals."""
    swept = sweep_results(runs)
    rows = []
    for variant, group in swept.groupby("variant"):
        for levels, subset in (
            ("all", group),
            (f"<= {max_ratio:g}", group[group["prune_ratio"] <= max_ratio]),
        ):
            for metric in METRICS:
                x = subset["prune_ratio"].to_numpy(float)
                y = subset[metric].to_numpy(float)
                row = {"variant": variant, "levels": levels, "metric": metric, "n": len(subset)}
                for kind in ("pearson", "spearman"):
                    value, p = _correlation(x, y, kind)
                    # One generator per cell, so that a cell's interval does not depend on the others.
                    rng = np.random.default_rng([seed, len(rows), kind == "pearson"])
                    low, high = bootstrap_ci(x, y, kind, resamples, rng)
                    row |= {kind: value, f"{kind}_p": p, f"{kind}_ci_low": low, f"{kind}_ci_high": high}
                rows.append(row)
    return pd.DataFrame(rows, columns=CORRELATION_COLUMNS)


def parameter_importance(runs: pd.DataFrame, metric: str = "val_acc", seed: int = 0) -> pd.DataFrame:
    """Importance of prune_ratio and prune_iter for ``metric``, per variant, as experiment trackers
    compute it: a random forest's impurity importances, beside each parameter's Pearson correlation."""
    from sklearn.ensemble import RandomForestRegressor

    swept = sweep_results(runs)
    parameters = ["prune_ratio", "prune_iter"]
    rows = []
    for variant, group in swept.groupby("variant"):
        x, y = group[parameters].to_numpy(float), group[metric].to_numpy(float)
        if len(group) >= 2 and np.ptp(y) > 0:
            forest = RandomForestRegressor(n_estimators=300, random_state=seed).fit(x, y)
            importances = forest.feature_importances_
        else:
            importances = [math.nan] * len(parameters)
        for i, parameter in enumerate(parameters):
            rows.append({"variant": variant, "parameter": parameter, "metric": metric,
                         "importance": float(importances[i]),
                         "correlation": _correlation(x[:, i], y, "pearson")[0], "n": len(group)})  # fmt: skip
    return pd.DataFrame(rows, columns=["variant", "parameter", "metric", "importance", "correlation", "n"])


def best_per_seed(runs: pd.DataFrame, metric: str = "val_acc") -> pd.DataFrame:
    """For each random state and prune ratio, the best ``metric`` over all its networks (every
    prune_iter and variant), as the W&B report's 'results with different random states'."""
    swept = sweep_results(runs)
    best = swept.groupby(["seed", "prune_ratio"], as_index=False)[metric].max()
    return best.rename(columns={metric: f"best_{metric}"})


def best_across_seeds(best: pd.DataFrame, metric: str = "val_acc") -> pd.DataFrame:
    column = f"best_{metric}"
    return (
        best.groupby("prune_ratio", as_index=False)[column]
        .agg(mean="mean", min="min", max="max", seeds="count")
        .rename(columns=lambda c: c if c in ("prune_ratio", "seeds") else f"{column}_{c}")
    )


def paper_view(runs: pd.DataFrame) -> pd.DataFrame:
    """Early-stop iteration and test accuracy at early stop against the percent of weights remaining,
    per variant (the dense network counts for every variant at 100%): mean, min, max over seeds.

    The paper's plots are of iterative pruning at a fixed rate per round: when the experiment has
    ``{rate, rounds}`` schedules, only their networks are used; otherwise every network is."""
    table = runs.copy()
    fixed_rate = table.get("schedule", pd.Series("", index=table.index)).astype(str).str.startswith("rate-")
    if fixed_rate.any():
        table = table[fixed_rate | (table["variant"] == "dense")]
    table["variant"] = variant_label(table)
    table["pm"] = table["weights_remaining_pct"].round(1)
    dense = table[table["variant"] == "dense"]
    parts = [table[table["variant"] != "dense"]]
    for variant in sorted(set(parts[0]["variant"])):
        parts.append(dense.assign(variant=variant))
    return summarise_by_pm(pd.concat(parts, ignore_index=True), "variant")


def summarise_by_pm(table: pd.DataFrame, group: str) -> pd.DataFrame:
    """Per ``group`` and Pm level (column ``pm``): the number of networks and the mean, min and max of
    the early-stop iteration and the test accuracy at early stop, from 100% down."""
    result = table.groupby([group, "pm"]).agg(
        n=("seed", "size"),
        **{
            f"{metric}_{stat}": (metric, stat)
            for metric in ("early_stop_iteration", "test_acc")
            for stat in ("mean", "min", "max")
        },
    )
    return result.reset_index().sort_values([group, "pm"], ascending=[True, False]).reset_index(drop=True)
