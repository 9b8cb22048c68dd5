"""The paper's claims, curves and protocol deviations on small synthetic runs tables with known answers."""

import math

import pandas as pd
import pytest
import yaml

from lottery import paper, protocol
from lottery.report import summary_markdown

from .conftest import ROOT

# Pm per round of the 20%/10% schedule (the reference table), rounds 0..20.
PM = [100, 80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8, 8.7, 7.0, 5.6, 4.5, 3.6, 2.9, 2.3, 1.9,
      1.5, 1.2]  # fmt: skip


def _runs(seeds=(1, 2, 3), variants=("ticket", "reinit", "random"), oneshot=True, noise=0.0):
    """Tickets stop at 3,100 at Pm 21.1% against 5,000 dense (38% earlier), reinit at 7,781 (2.51x);
    accuracies: dense 0.980, ticket +0.4 points at 13.5%, reinit -0.5 points, random -1 point."""
    rows = []
    for seed in seeds:
        jitter = noise * (seed - 2)
        rows.append(
            {
                "seed": seed,
                "variant": "dense",
                "schedule": "dense",
                "round": 0,
                "weights_remaining_pct": 100.0,
                "early_stop_iteration": 5000,
                "test_acc": 0.980 + jitter,
            }
        )
        for k in range(1, 21):
            ticket_acc = (
                0.984 if PM[k] == 13.5 else 0.981 if PM[k] > 3.6 else 0.980 if PM[k] == 3.6 else 0.975
            )
            accs = {"ticket": ticket_acc, "reinit": ticket_acc - 0.005, "random": ticket_acc - 0.010}
            stops = {
                "ticket": 3100 if PM[k] == 21.1 else 4000,
                "reinit": 7781 if PM[k] == 21.1 else 8000,
                "random": 9000,
            }
            for variant in variants:
                rows.append(
                    {
                        "seed": seed,
                        "variant": variant,
                        "schedule": "rate-0.2",
                        "round": k,
                        "weights_remaining_pct": PM[k] + 0.01,
                        "early_stop_iteration": stops[variant],
                        "test_acc": accs[variant] + jitter,
                    }
                )
            if oneshot:
                rows.append({"seed": seed, "variant": "ticket", "schedule": "oneshot-rate-0.2", "round": k,
                             "weights_remaining_pct": PM[k] + 0.01, "early_stop_iteration": 6000,
                             "test_acc": ticket_acc - 0.002 + jitter})  # fmt: skip
    return pd.DataFrame(rows)


def test_claims_with_known_answers():
    table = paper.claims_table(_runs()).set_index("claim")
    assert table.loc["early_stop_21", "ours"] == pytest.approx(38.0)
    assert table.loc["accuracy_13_5", "ours"] == pytest.approx(0.4)
    assert table.loc["accuracy_3_6", "ours"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc["reinit_speed_21", "ours"] == pytest.approx(7781 / 3100)
    assert table.loc["reinit_accuracy_21", "ours"] == pytest.approx(0.5)
    assert table.loc["random_degrades_fastest", "ours"] == pytest.approx(-0.5)
    assert table.loc["dense_accuracy", "ours"] == pytest.approx(98.0)
    assert table.loc["oneshot_accuracy", "ours"] == pytest.approx(0.2)
    assert table.loc["oneshot_speed", "ours"] == pytest.approx(14 * 6000 / (3100 + 13 * 4000))  # Pm <= 21.1
    assert set(table["verdict"]) == {"holds"}
    assert (table["seeds"] == 3).all()
    assert table.loc["early_stop_21", "paper_in_ci"] == "yes"


def test_a_claim_that_fails_is_reported_as_failing():
    runs = _runs()
    runs.loc[(runs["variant"] == "reinit"), "test_acc"] += 0.02  # reinit now beats the ticket
    table = paper.claims_table(runs).set_index("claim")
    assert table.loc["reinit_accuracy_21", "verdict"] == "does not hold"
    assert table.loc["reinit_accuracy_21", "ours"] < 0


def test_missing_networks_are_not_measured():
    table = paper.claims_table(_runs(variants=("ticket",), oneshot=False)).set_index("claim")
    for claim in ("reinit_speed_21", "random_degrades_fastest", "oneshot_accuracy"):
        assert table.loc[claim, "verdict"] == "not measured"
        assert math.isnan(table.loc[claim, "ours"])
    assert table.loc["early_stop_21", "verdict"] == "holds"


def test_an_interval_that_straddles_the_criterion_is_undecided():
    """Seeds disagree: the ticket beats its reinitialisation by 1.5 points on two seeds and loses by
    1.5 on the third - the interval holds 0, so neither verdict is earned."""
    runs = _runs(seeds=(1, 2, 3, 4))
    reinit = runs["variant"] == "reinit"
    runs.loc[reinit & runs["seed"].isin([1, 2]), "test_acc"] -= 0.01
    runs.loc[reinit & runs["seed"].isin([3, 4]), "test_acc"] += 0.01
    table = paper.claims_table(runs).set_index("claim")
    low, high = table.loc["reinit_accuracy_21", ["ci_low", "ci_high"]]
    assert low < 0 < high and table.loc["reinit_accuracy_21", "verdict"] == "undecided"


@pytest.mark.parametrize(
    ("criterion", "interval", "verdict"),
    [
        (paper.Criterion("above", 1.0), (1.2, 1.1, 1.3), "holds"),
        (paper.Criterion("above", 1.0), (0.8, 0.7, 0.9), "does not hold"),
        (paper.Criterion("above", 1.0), (1.1, 0.9, 1.3), "undecided"),
        (paper.Criterion("below", 0.0), (-1.0, -1.5, -0.5), "holds"),
        (paper.Criterion("below", 0.0), (-0.2, -0.5, 0.1), "undecided"),
        (paper.Criterion("within", 98.0, 0.5), (98.1, 97.8, 98.4), "holds"),
        (paper.Criterion("within", 98.0, 0.5), (98.4, 98.2, 98.6), "undecided"),
        (paper.Criterion("within", 98.0, 0.5), (97.0, 96.8, 97.2), "does not hold"),
        (paper.Criterion("within", 0.0, 0.3), (0.1, None, None), "holds"),  # too few seeds: the estimate
        (paper.Criterion("above", 0.3), (0.2, None, None), "does not hold"),
    ],
)
def test_verdicts(criterion, interval, verdict):
    assert criterion.verdict(*interval) == verdict


T_975_2 = 4.302652729749464  # Student t's 97.5% quantile with 2 degrees of freedom (tables: 4.303)


def test_a_seeds_values_interval_is_student_t_by_hand():
    """Dense accuracy 97.8, 98.0, 98.2 (%): mean 98.0, s = 0.2, half width t(0.975, 2) · 0.2 / √3."""
    table = paper.claims_table(_runs(noise=0.002)).set_index("claim")
    half = T_975_2 * 0.2 / math.sqrt(3)
    assert tuple(table.loc["dense_accuracy", ["ours", "ci_low", "ci_high"]]) == pytest.approx(
        (98.0, 98.0 - half, 98.0 + half)
    )
    assert table.loc["dense_accuracy", "interval"] == paper.VALUES


def _set(runs, variant, pm, metric, values):
    """``metric`` of ``variant`` at Pm ``pm`` (100: the dense network), seed 1, 2, 3 in turn."""
    at = (runs["variant"] == variant) & ((runs["weights_remaining_pct"] - pm).abs() <= 0.1)
    for seed, value in zip((1, 2, 3), values, strict=True):
        runs.loc[at & (runs["seed"] == seed), metric] = value


def test_a_paired_difference_is_student_t_on_each_seeds_difference():
    """Dense 97.8, 98.0, 98.2 and the ticket at Pm 13.5% 98.2, 98.7, 98.3: the differences within
    each seed are 0.4, 0.7, 0.1 points - mean 0.4, s = 0.3, so 0.4 ± t(0.975, 2) · 0.3 / √3 =
    [-0.345, 1.145]: undecided against "above 0.3". Unpaired, the two columns' spreads would add."""
    runs = _runs()
    _set(runs, "dense", 100, "test_acc", (0.978, 0.980, 0.982))
    _set(runs, "ticket", 13.5, "test_acc", (0.982, 0.987, 0.983))
    row = paper.claims_table(runs).set_index("claim").loc["accuracy_13_5"]
    half = T_975_2 * 0.3 / math.sqrt(3)
    assert (row["ours"], row["ci_low"], row["ci_high"]) == pytest.approx((0.4, 0.4 - half, 0.4 + half))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-0.3452, 1.1452), abs=1e-4)  # the numbers
    assert row["interval"] == paper.DIFFERENCE and row["verdict"] == "undecided"


def test_a_ratio_within_a_seed_is_student_t_on_the_log_scale():
    """At Pm 21.1% the ticket stops at 2,500, 5,000, 1,250 and its reinitialisation at 5,000,
    20,000, 1,250: per-seed ratios 2, 4, 1, whose logs are ln 2 · (1, 2, 0) - mean ln 2, s = ln 2.
    The estimate is their geometric mean, 2 (the ratio of the means would be 26,250 / 8,750 = 3), the
    interval 2 · exp(± t(0.975, 2) · ln 2 / √3) = [0.357x, 11.19x]: undecided against "above 1x".
    Against the dense network's 5,000 the ticket's ratios are 0.5, 1, 0.25: geometric mean 0.5, 50%
    earlier, the interval 100 · (1 - 0.5 · exp(± the same half width)) with its bounds swapped."""
    runs = _runs()
    _set(runs, "ticket", 21.1, "early_stop_iteration", (2500, 5000, 1250))
    _set(runs, "reinit", 21.1, "early_stop_iteration", (5000, 20000, 1250))
    table = paper.claims_table(runs).set_index("claim")
    half = math.exp(T_975_2 * math.log(2) / math.sqrt(3))
    speed = table.loc["reinit_speed_21"]
    assert (speed["ours"], speed["ci_low"], speed["ci_high"]) == pytest.approx((2.0, 2.0 / half, 2.0 * half))
    assert (speed["ci_low"], speed["ci_high"]) == pytest.approx((0.3575, 11.19), abs=1e-2)  # the numbers
    assert speed["interval"] == paper.RATIO and speed["verdict"] == "undecided"
    earlier = table.loc["early_stop_21"]
    assert (earlier["ours"], earlier["ci_low"], earlier["ci_high"]) == pytest.approx(
        (50.0, 100.0 * (1 - 0.5 * half), 100.0 * (1 - 0.5 / half))
    )
    assert earlier["interval"] == paper.RATIO and earlier["verdict"] == "undecided"


def test_a_ratio_of_sums_over_levels_is_taken_within_each_seed():
    """Seed 1's reinitialised tickets stop twice as late at every level: its ratio of sums doubles,
    the others' stay r. The estimate is the per-seed ratios' geometric mean, r · 2^(1/3), not the
    ratio of the sums over seeds; the logs (ln r + ln 2, ln r, ln r) have s = ln 2 / √3."""
    runs = _runs()
    r = (19 * 8000 + 7781) / (19 * 4000 + 3100)  # reinit / ticket, every pruned level of a seed
    runs.loc[(runs["variant"] == "reinit") & (runs["seed"] == 1), "early_stop_iteration"] *= 2
    row = paper.claims_table(runs).set_index("claim").loc["reinit_slower"]
    centre, half = r * 2 ** (1 / 3), math.exp(T_975_2 * math.log(2) / 3)
    expected = (centre, centre / half, centre * half)
    assert (row["ours"], row["ci_low"], row["ci_high"]) == pytest.approx(expected)
    assert row["ours"] != pytest.approx(r * 4 / 3)  # the ratio of the sums over seeds


def test_a_differences_estimate_is_the_claims_statistic_over_all_seeds():
    """For a difference (or a seed's value) the mean of the per-seed values is the statistic over
    the whole table, so the estimate shown is what it always was."""
    runs = _runs(seeds=(1, 2, 3, 4), noise=0.001)
    runs["test_acc"] += 0.0007 * (runs["seed"] % 3) * (runs["variant"] == "reinit")
    table = paper.claims_table(runs).set_index("claim")
    for claim in paper.CLAIMS:
        if claim.interval != paper.RATIO:
            paired = claim.paired(runs)
            assert table.loc[claim.key, "ours"] == pytest.approx(claim.statistic(paired)), claim.key
            assert paper.per_seed(claim, paired).mean() == pytest.approx(claim.statistic(paired))


def test_claims_markdown_has_a_row_per_claim():
    text = paper.claims_markdown(paper.claims_table(_runs()))
    assert len([line for line in text.splitlines() if line.startswith("| ")]) == len(paper.CLAIMS) + 1
    assert len([line for line in text.splitlines() if line.startswith("- ")]) == len(paper.CLAIMS)
    assert "2.51x" in text and "**holds**" in text
    assert "read off the paper's Figure 3" in text  # how the project reads "back to the original level"
    assert "95% intervals: Student t over seeds, mean ± t(0.975, n - 1) · s / √n" in text
    assert text.count("; interval: paired ratio, log scale (Student t over seeds).") == 4


def test_too_few_seeds_for_an_interval_are_judged_on_the_point_estimate():
    runs = _runs(seeds=(1, 2))
    runs.loc[(runs["variant"] == "reinit") & (runs["seed"] == 2), "test_acc"] += 0.02  # seed 2: reinit wins
    table = paper.claims_table(runs).set_index("claim")
    assert (table["seeds"] == 2).all()
    assert table["ci_low"].isna().all() and table["ci_high"].isna().all()
    # Mean ticket - reinit = 0.5 - 1.0 = -0.5 points: judged on the mean, it fails.
    assert table.loc["reinit_accuracy_21", "ours"] == pytest.approx(-0.5)
    assert table.loc["reinit_accuracy_21", "verdict"] == "does not hold"
    assert table.loc["early_stop_21", "verdict"] == "holds"
    assert table.loc["accuracy_3_6", "verdict"] == "holds"  # an equivalence claim: |mean| < 0.3 points
    text = paper.claims_markdown(table.reset_index())
    assert "n/a (2 seeds)" in text and "point estimate" in text


def test_iterative_vs_oneshot_table():
    table = paper.iterative_vs_oneshot(_runs())
    assert set(table["pruning"]) == {"iterative", "one-shot"}
    dense = table[table["pm"] == 100.0]
    assert list(dense["n"]) == [3, 3]  # the dense network is the first point of both
    one_shot = table[(table["pruning"] == "one-shot") & (table["pm"] == 21.1)]
    assert one_shot["early_stop_iteration_mean"].item() == 6000


def test_curve_table_aggregates_over_seeds():
    curves = pd.DataFrame({
        "seed": [1, 1, 2, 2], "variant": "ticket", "schedule": "rate-0.2", "weights_remaining_pct": 21.13,
        "iteration": [100, 200, 100, 200], "test_acc": [0.9, 0.95, 0.92, None],
    })  # fmt: skip
    table = paper.curve_table(curves)
    first = table[table["iteration"] == 100].iloc[0]
    assert (first["n"], first["test_acc_mean"], first["test_acc_min"], first["test_acc_max"]) == (
        2,
        pytest.approx(0.91),
        0.9,
        0.92,
    )
    assert table[table["iteration"] == 200]["n"].item() == 1  # a row without a test evaluation is dropped


def _config(path):
    """A config file merged over the schema's defaults, as Snakemake sees it."""
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / path).read_text())
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_paper_config_deviations_are_only_the_documented_ones():
    deviations = protocol.protocol_deviations(_config("config/paper.yaml"))
    text = " ".join(deviations)
    assert "test curve is recorded only at rounds [0, 3, 7, 12, 15, 18]" in text
    # The paper's control counts: 3 reinits per ticket, 2 random masks per level and seed (10 in all).
    for word in ("iterations", "batch_size", "learning_rate", "seed(s)", "No iterative", "No one-shot",
                 "reinitialisation", "random pruning mask"):  # fmt: skip
        assert word not in text, word
    assert len(deviations) == 2


def test_default_config_deviations_name_the_control_counts():
    text = " ".join(protocol.protocol_deviations(_config("config/config.yaml")))
    assert "1 random reinitialisation(s) per ticket and seed (the paper: 3)" in text
    assert "1 random pruning mask(s) per level and seed, 2 in all (the paper: 10" in text


def test_default_config_deviations_name_the_short_training():
    text = " ".join(protocol.protocol_deviations(_config("config/config.yaml")))
    assert "training.iterations is 8000 (the paper: 50000)" in text
    assert "No one-shot tickets" in text and "2 seed(s)" in text


def test_summary_lists_claims_and_deviations(tmp_path):
    runs = _runs()
    tables = {}
    from lottery import analysis

    empty = pd.DataFrame(columns=["prune_iter", "prune_ratio", "actual_ratio", "shortfall"])
    for name, frame in {
        "pruning_ratios": empty,
        "accuracy": pd.DataFrame(columns=["variant", "prune_ratio", "test_acc_mean"]),
        "correlations": pd.DataFrame(columns=["metric", "variant", "levels"]),
        "parameter_importance": pd.DataFrame(columns=["variant", "parameter", "importance", "correlation"]),
        "random_states": pd.DataFrame(columns=["seed", "prune_ratio", "best_val_acc"]),
        "paper_view": analysis.paper_view(runs),
    }.items():
        tables[name] = tmp_path / f"{name}.csv"
        frame.to_csv(tables[name], index=False)
    claims = tmp_path / "claims.md"
    claims.write_text(paper.claims_markdown(paper.claims_table(runs)))
    text = summary_markdown(tables, "paper", 0.85, claims, ["One reinit per ticket."])
    assert "## The paper's claims" in text and "up to 3 seed(s)" in text
    claims_part = text[text.index("## The paper's claims") : text.index("## Deviations")]
    assert "interval by Student t over seeds" in claims_part and "bootstrap 95%" not in claims_part
    assert "## Deviations from the paper's protocol\n\n- One reinit per ticket." in text
    # Without a {ratio, rounds} sweep every seed-report section says so instead of an empty table.
    assert text.count("No {ratio, rounds} schedule in this experiment") == 5
    assert "| variant | levels |" not in text
