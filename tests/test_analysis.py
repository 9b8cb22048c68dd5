import math

import numpy as np
import pandas as pd
import pytest

from lottery import analysis


def _runs(rows):
    """A runs table with the columns the analyses read."""
    base = {"schedule_ratio": np.nan, "schedule_rounds": np.nan, "rewind_iteration": np.nan,
            "actual_ratio": 0.0, "weights_remaining_pct": 100.0, "early_stop_iteration": 1000,
            "test_acc": 0.9, "val_acc": 0.9}  # fmt: skip
    return pd.DataFrame([{**base, **row} for row in rows])


def _sweep(variant_acc, ratios=(0.2, 0.4, 0.6, 0.8, 0.9, 0.95), rounds=(1, 3), seeds=(1, 3)):
    """Final-round rows of a sweep; accuracy given by ``variant_acc[variant](ratio, rounds, seed)``."""
    rows = []
    for variant, acc in variant_acc.items():
        for seed in seeds:
            for p in ratios:
                for n in rounds:
                    rows.append({"seed": seed, "variant": variant, "schedule_ratio": p, "schedule_rounds": n,
                                 "round": n, "val_acc": acc(p, n, seed), "test_acc": acc(p, n, seed) - 0.01,
                                 "actual_ratio": p * 0.99, "weights_remaining_pct": 100 * (1 - p * 0.99)})  # fmt: skip
    return _runs(rows)


def test_sweep_results_keep_only_final_rounds():
    runs = _runs([
        {"seed": 1, "variant": "ticket", "schedule_ratio": 0.5, "schedule_rounds": 2, "round": 1},
        {"seed": 1, "variant": "ticket", "schedule_ratio": 0.5, "schedule_rounds": 2, "round": 2},
        {"seed": 1, "variant": "ticket", "round": 3},  # a fixed-rate schedule: not part of the sweep
        {"seed": 1, "variant": "rewind", "schedule_ratio": 0.5, "schedule_rounds": 2, "round": 2,
         "rewind_iteration": 100},
    ])  # fmt: skip
    swept = analysis.sweep_results(runs)
    assert list(swept["variant"]) == ["ticket", "rewind-100"]
    assert list(swept["prune_iter"]) == [2, 2] and list(swept["prune_ratio"]) == [0.5, 0.5]


def test_monotone_table_gives_spearman_one_and_filter_applies():
    runs = _sweep({"ticket": lambda p, n, s: 0.9 + 0.05 * p + 0.001 * n,
                   "random": lambda p, n, s: 0.99 - 0.2 * p ** 2 - 0.001 * n})  # fmt: skip
    table = analysis.correlations(runs, max_ratio=0.85, resamples=200, seed=0)
    ticket_all = table.query("variant == 'ticket' and levels == 'all' and metric == 'val_acc'").iloc[0]
    ticket_low = table.query("variant == 'ticket' and levels == '<= 0.85' and metric == 'val_acc'").iloc[0]
    random_all = table.query("variant == 'random' and levels == 'all' and metric == 'test_acc'").iloc[0]
    # Spearman over ratios only (rounds add ties within a ratio): strictly increasing in the ratio.
    assert ticket_all["spearman"] > 0.95 and ticket_all["pearson"] > 0.95
    assert ticket_all["n"] == 6 * 2 * 2 and ticket_low["n"] == 4 * 2 * 2  # the <= 0.85 filter
    assert random_all["spearman"] < -0.95
    assert ticket_all["pearson_ci_low"] <= ticket_all["pearson"] <= ticket_all["pearson_ci_high"]
    assert ticket_all["pearson_p"] < 1e-6


def test_perfectly_monotone_gives_spearman_exactly_one():
    runs = _sweep({"ticket": lambda p, n, s: p}, rounds=(1,), seeds=(1,))
    row = analysis.correlations(runs, resamples=100).query("levels == 'all' and metric == 'val_acc'").iloc[0]
    assert row["spearman"] == pytest.approx(1.0)


def test_constant_accuracy_gives_nan_not_an_error():
    runs = _sweep({"ticket": lambda p, n, s: 0.9}, seeds=(1,))
    row = analysis.correlations(runs, resamples=100).iloc[0]
    assert math.isnan(row["pearson"]) and math.isnan(row["spearman_ci_low"])


def test_importance_ranks_the_driving_parameter_first():
    runs = _sweep({"ticket": lambda p, n, s: 0.95 - 0.1 * p + 0.0001 * s},
                  ratios=(0.1, 0.3, 0.5, 0.7, 0.9), rounds=(1, 2, 3, 5))  # fmt: skip
    table = analysis.parameter_importance(runs, seed=0).set_index("parameter")
    assert table.loc["prune_ratio", "importance"] > 0.9
    assert table.loc["prune_ratio", "importance"] > table.loc["prune_iter", "importance"]
    assert table.loc["prune_ratio", "correlation"] == pytest.approx(-1.0, abs=1e-3)
    runs = _sweep({"ticket": lambda p, n, s: 0.9 + 0.01 * n}, rounds=(1, 2, 3, 5))
    table = analysis.parameter_importance(runs, seed=0).set_index("parameter")
    assert table.loc["prune_iter", "importance"] > table.loc["prune_ratio", "importance"]


def test_best_per_seed_takes_the_maximum_over_variants_and_rounds():
    runs = _sweep({"ticket": lambda p, n, s: 0.9 + 0.01 * n + 0.001 * s,
                   "reinit": lambda p, n, s: 0.5}, ratios=(0.2, 0.4), rounds=(1, 3))  # fmt: skip
    best = analysis.best_per_seed(runs)
    assert set(best["seed"]) == {1, 3}
    row = best.query("seed == 3 and prune_ratio == 0.2").iloc[0]
    assert row["best_val_acc"] == pytest.approx(0.9 + 0.03 + 0.003)
    across = analysis.best_across_seeds(best)
    assert across.loc[0, "best_val_acc_min"] == pytest.approx(0.931)
    assert across.loc[0, "best_val_acc_max"] == pytest.approx(0.933)
    assert across.loc[0, "seeds"] == 2


def test_pruning_ratios_table():
    runs = _sweep({"ticket": lambda p, n, s: 0.9}, ratios=(0.5, 0.9), rounds=(1, 5), seeds=(1,))
    table = analysis.pruning_ratios(runs)
    assert list(table["prune_iter"]) == [1, 1, 5, 5]
    assert table["shortfall"].tolist() == pytest.approx([0.005, 0.009, 0.005, 0.009])


def test_paper_view_counts_dense_for_every_variant():
    runs = _runs([
        {"seed": 1, "variant": "dense", "round": 0, "weights_remaining_pct": 100.0, "early_stop_iteration": 3000},
        {"seed": 1, "variant": "ticket", "round": 1, "weights_remaining_pct": 80.04, "early_stop_iteration": 2000},
        {"seed": 3, "variant": "ticket", "round": 1, "weights_remaining_pct": 80.04, "early_stop_iteration": 2400},
        {"seed": 1, "variant": "random", "round": 1, "weights_remaining_pct": 80.04, "early_stop_iteration": 5000},
    ])  # fmt: skip
    view = analysis.paper_view(runs)
    ticket = view[view["variant"] == "ticket"].set_index("pm")
    assert ticket.loc[100.0, "early_stop_iteration_mean"] == 3000
    assert ticket.loc[80.0, "early_stop_iteration_mean"] == 2200
    assert ticket.loc[80.0, "early_stop_iteration_min"] == 2000 and ticket.loc[80.0, "n"] == 2
    assert set(view["variant"]) == {"ticket", "random"}


def test_paper_view_prefers_fixed_rate_schedules():
    runs = _runs([
        {"seed": 1, "variant": "dense", "schedule": "dense", "round": 0, "weights_remaining_pct": 100.0},
        {"seed": 1, "variant": "ticket", "schedule": "rate-0.2", "round": 1, "weights_remaining_pct": 80.04},
        {"seed": 1, "variant": "ticket", "schedule": "ratio-0.5-rounds-1", "round": 1, "weights_remaining_pct": 50.1},
    ])  # fmt: skip
    assert sorted(analysis.paper_view(runs)["pm"]) == [80.0, 100.0]
