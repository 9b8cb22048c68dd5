"""The report's sections of pruning at initialisation (lottery.report.pai) on synthetic runs tables
with known answers: which row is which network, a paired difference by hand, a collapsed network
flagged, each claim's verdict each way, a missing method not measured, SNIP's published errors beside
ours, the controls of another experiment, and the sections drawn only where the experiment has
methods."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from lottery import paper
from lottery.report import pai
from lottery.report.summary import summary_markdown
from lottery.sections import BY_NAME, PAI, SECTIONS

T_975_2, T_975_4 = 4.302652729911275, 2.7764451051977987  # Student t quantiles, 2 and 4 degrees of freedom
PM = {1: 80.0, 2: 64.1, 7: 21.1, 12: 7.0, 13: 5.6, 14: 4.5, 15: 3.6, 18: 1.9, 19: 1.5}


def net(seed, variant, round_, acc, method="layerwise", schedule="rate-0.2", **extra):
    """One runs-table row: a network of seed ``seed`` at ``round_`` (its Pm from :data:`PM`)."""
    pm = 100.0 if variant == "dense" else PM[round_]
    row = {"seed": seed, "variant": variant, "method": None if variant == "dense" else method,
           "schedule": "dense" if variant == "dense" else schedule, "round": round_,
           "weights_remaining_pct": pm, "rewind_iteration": None, "test_acc": acc,
           "early_stop_iteration": 1000.0 + 10 * round_, "remaining_fc1": pm / 100, "remaining_fc2": pm / 100,
           "remaining_fc3": 1.0, "collapsed_layers": None, "disconnected": False, "schedule_ratio": None,
           "schedule_rounds": None, "val_acc": acc}  # fmt: skip
    return row | extra


def pai_net(seed, method, round_, acc, check=None, **extra):
    return net(seed, method if check is None else f"{method}-{check}", round_, acc, method=method, **extra)


def table(rows):
    return pd.DataFrame(rows)


def test_each_row_is_its_network_and_check():
    runs = table([
        net(1, "dense", 0, 0.98),
        net(1, "ticket", 7, 0.981),
        net(1, "ticket", 7, 0.5, rewind_iteration=500.0),  # a rewound ticket: not the iterative one
        net(1, "ticket", 7, 0.5, schedule="oneshot-rate-0.2"),  # a one-shot ticket
        net(1, "ticket-shuffled", 7, 0.97),
        net(1, "reinit", 7, 0.96),  # the ticket's controls: the ticket's method
        net(1, "random", 7, 0.95),
        pai_net(1, "random", 7, 0.955),  # the method random: its own name as method
        pai_net(1, "snip", 7, 0.97),
        pai_net(1, "snip", 7, 0.96, "inverted"),
        pai_net(1, "magnitude_init", 7, 0.965, "reinit"),
    ])  # fmt: skip
    got = pai.networks(runs)
    pairs = sorted(zip(got["network"], got["check"], got["test_acc"], strict=True))
    assert pairs == sorted([
        ("dense", "found", 0.98), ("ticket", "found", 0.981), ("ticket", "shuffled", 0.97),
        ("reinit (control)", "found", 0.96), ("random (control)", "found", 0.95),
        ("random", "found", 0.955), ("snip", "found", 0.97), ("snip", "inverted", 0.96),
        ("magnitude_init", "reinit", 0.965),
    ])  # fmt: skip
    assert pai.network_order(got["network"]) == [
        "ticket", "reinit (control)", "random (control)", "random", "magnitude_init", "snip"
    ]  # fmt: skip


def test_a_checks_effect_is_the_difference_paired_within_each_seed():
    own, shuffled = [0.980, 0.970, 0.960], [0.975, 0.972, 0.950]
    rows = [pai_net(s, "snip", 7, a) for s, a in zip((1, 2, 3), own, strict=True)]
    rows += [pai_net(s, "snip", 7, a, "shuffled") for s, a in zip((1, 2, 3), shuffled, strict=True)]
    rows.append(pai_net(4, "snip", 7, 0.5, "shuffled"))  # seed 4 has no own mask: not paired
    got = (
        pai.sanity_table(pai.networks(table(rows))).set_index(["network", "check"]).loc[("snip", "shuffled")]
    )
    diffs = [-0.5, 0.2, -1.0]  # points, seed by seed
    mean = sum(diffs) / 3
    s = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert got["n"] == 3
    assert got["effect_points_mean"] == pytest.approx(mean)
    assert got["effect_points_low"] == pytest.approx(mean - T_975_2 * s / math.sqrt(3))
    assert got["effect_points_high"] == pytest.approx(mean + T_975_2 * s / math.sqrt(3))


def test_a_collapsed_network_is_flagged_in_the_table_the_figure_and_the_summary(tmp_path, monkeypatch):
    rows = [pai_net(s, "snip", 18, 0.9) for s in (1, 2, 3)]
    rows[1] |= {"collapsed_layers": "fc3", "test_acc": 0.1135}
    rows[2] |= {"disconnected": "True"}  # as read back from a CSV
    rows += [pai_net(s, "snip", 15, 0.95) for s in (1, 2, 3)] + [
        net(s, "ticket", 18, 0.97) for s in (1, 2, 3)
    ]
    got = pai.accuracy_table(pai.networks(table(rows))).set_index(["network", "round"])
    assert got.loc[("snip", 18), "collapsed"] == 2
    assert got.loc[("snip", 18), "collapsed_layers"] == "disconnected fc3"
    assert got.loc[("snip", 15), "collapsed"] == 0 and got.loc[("ticket", 18), "collapsed"] == 0
    figures = []
    monkeypatch.setattr(pai, "save_figure", lambda fig, png, svg, note=None: figures.append(fig))
    pai.ACCURACY.draw(table(rows), {"table": tmp_path / "a.csv", "png": None, "svg": None}, {})
    crosses = [
        c for c in figures[0].axes[0].collections if isinstance(c, PathCollection) and len(c.get_offsets())
    ]
    points = [tuple(p) for c in crosses for p in c.get_offsets()]
    assert points == [pytest.approx((1.9, (0.9 + 0.1135 + 0.9) / 3))]  # snip at Pm 1.9% only
    paragraph = "\n".join(pai.ACCURACY.paragraph(pd.read_csv(tmp_path / "a.csv"), 0.9))
    assert "†" in paragraph and "snip at Pm 1.9% (2 of 3 seeds: disconnected fc3)" in paragraph


def _claims(rows) -> pd.DataFrame:
    return pai.claims_table(pai.networks(table(rows))).set_index("claim")


SEEDS = (1, 2, 3, 4, 5)
NOISE = (0.0, 0.001, -0.001, 0.0005, -0.0005)  # per-seed jitter (fraction of accuracy)


def test_claim_one_holds_does_not_hold_or_is_within_noise_at_every_level():
    rows = []
    for s, e in zip(SEEDS, NOISE, strict=True):
        for k in (7, 12):
            rows.append(net(s, "ticket", k, 0.98 + e))
            rows.append(pai_net(s, "snip", k, 0.97 + e / 2))  # 1 point below the ticket at each level
            rows.append(pai_net(s, "grasp", k, 0.99 + e if k == 12 else 0.97))  # better at Pm 7.0%
            rows.append(
                pai_net(s, "synflow", k, 0.98 + (0.002 if s % 2 else -0.002))
            )  # the ticket's, ± noise
        rows.append(pai_net(s, "erk", 2, 0.5))  # only at Pm 64.1%: not a level of the claim
    got = _claims(rows)
    assert got.loc["1_snip", "verdict"] == paper.HOLDS
    assert got.loc["1_snip", "seeds"] == 5 and got.loc["1_snip", "ours"] == pytest.approx(
        100 * np.mean([0.01 + e / 2 for e in NOISE])
    )
    assert got.loc["1_grasp", "verdict"] == paper.FAILS
    assert "Pm 7.0%" in got.loc["1_grasp", "reading"]  # the failing level is the one shown
    assert got.loc["1_grasp", "ours"] == pytest.approx(-1.0, abs=1e-9)
    assert got.loc["1_synflow", "verdict"] == pai.WITHIN_NOISE
    assert got.loc["1_erk", "verdict"] == paper.NOT_MEASURED and got.loc["1_magnitude_init", "seeds"] == 0


def test_a_missing_method_is_not_measured():
    rows = [net(s, "ticket", 12, 0.98) for s in SEEDS] + [pai_net(s, "snip", 12, 0.97) for s in SEEDS]
    got = _claims(rows)
    for key in ("2_snip", "1_grasp", "3_grasp_shuffled", "4_synflow", "5_grasp"):  # random, grasp, no checks
        assert got.loc[key, "verdict"] == paper.NOT_MEASURED, key
        assert got.loc[key, "seeds"] == 0 and math.isnan(got.loc[key, "ours"]), key
    assert got.loc["1_snip", "verdict"] == paper.HOLDS


def test_claims_three_and_four_judge_the_checks_over_the_sanity_levels():
    rows = []
    for s, e in zip(SEEDS, NOISE, strict=True):
        for k in (7, 15):
            rows.append(net(s, "ticket", k, 0.98))
            rows.append(net(s, "ticket-shuffled", k, 0.96 + e))  # hurts: 2 points
            rows.append(net(s, "ticket-reinit", k, 0.98 + e))  # does not: within noise of 0
            rows.append(pai_net(s, "snip", k, 0.97))
            rows.append(pai_net(s, "snip", k, 0.97 + e, "shuffled"))  # within 0.3 points
            rows.append(pai_net(s, "snip", k, 0.95 + e, "reinit"))  # 2 points lost
            rows.append(pai_net(s, "snip", k, 0.80 + e, "inverted"))
            rows.append(pai_net(s, "synflow", k, 0.97))
            rows.append(pai_net(s, "synflow", k, 0.975 + e, "inverted"))  # inversion helps
    got = _claims(rows)
    assert got.loc["3_ticket_shuffled", "verdict"] == paper.HOLDS
    assert got.loc["3_ticket_shuffled", "ours"] == pytest.approx(-2.0)
    assert got.loc["3_ticket_reinit", "verdict"] == pai.WITHIN_NOISE  # the interval holds 0
    assert got.loc["3_snip_shuffled", "verdict"] == paper.HOLDS
    assert got.loc["3_snip_reinit", "verdict"] == paper.FAILS
    assert got.loc["4_snip", "verdict"] == paper.HOLDS and got.loc["4_synflow", "verdict"] == paper.FAILS
    assert "Pm 21.1, 3.6%" in got.loc["4_snip", "reading"]
    # the interval over seeds of the per-seed mean over the two levels, by hand
    diffs = [100 * e for e in NOISE]
    half = T_975_4 * np.std(diffs, ddof=1) / math.sqrt(5)
    assert got.loc["3_snip_shuffled", "ci_high"] == pytest.approx(np.mean(diffs) + half)


def test_claim_five_says_where_a_method_collapses():
    rows = []
    for s in (1, 2, 3):
        for k in (15, 18, 19):
            rows.append(pai_net(s, "synflow", k, 0.95))
            cut = k == 19 or (k == 18 and s == 1)  # snip: from Pm 1.9% in seed 1, at 1.5% in all
            rows.append(pai_net(s, "snip", k, 0.95, collapsed_layers="fc3" if cut else None))
            rows.append(pai_net(s, "grasp", k, 0.95, disconnected=k == 19))
    got = _claims(rows)
    assert got.loc["5_synflow", "verdict"] == f"{paper.HOLDS}: never collapses (down to Pm 1.5%, 3 seed(s))"
    assert got.loc["5_snip", "verdict"] == "collapses from Pm 1.9% (3 of 3 seeds; fc3)"
    assert got.loc["5_snip", "ours"] == pytest.approx((1.9 + 1.5 + 1.5) / 3)
    assert got.loc["5_grasp", "verdict"].endswith("the smallest Pm measured")
    rows.append(pai_net(4, "synflow", 19, 0.1, collapsed_layers="fc2"))
    assert _claims(rows).loc["5_synflow", "verdict"].startswith(f"{paper.FAILS}: collapses from Pm 1.5%")


def test_snips_published_errors_sit_beside_ours_at_the_nearest_pm(tmp_path):
    accs = (0.981, 0.983, 0.982)
    rows = [pai_net(s, "snip", k, a) for s, a in zip((1, 2, 3), accs, strict=True) for k in (13, 14, 18)]
    got = _claims(rows)
    at95 = got.loc["snip_published_95"]
    assert at95["paper"] == 1.6 and at95["verdict"] == "ours at Pm 4.5%"  # 4.5 is nearer 5 than 5.6 is
    assert at95["ours"] == pytest.approx(100 * (1 - np.mean(accs)))
    assert got.loc["snip_published_98", "verdict"] == "ours at Pm 1.9%"
    far = _claims([pai_net(1, "snip", 7, 0.98)]).loc["snip_published_98", "verdict"]
    assert far == f"{paper.NOT_MEASURED}: the nearest snip level is Pm 21.1%"
    got.reset_index().to_csv(tmp_path / "claims.csv", index=False)
    text = "\n".join(pai.CLAIMS.paragraph(pd.read_csv(tmp_path / "claims.csv"), 0.9))
    assert "1.6% at 95% sparsity - ours 1.80" in text and "SGD with momentum 0.9" in text
    assert "| (1) At every Pm <= 21.1% the iterative ticket is at least as accurate as snip |" in text


def test_another_experiments_controls_replace_the_experiments_own_of_its_seeds():
    runs = table([net(1, "ticket", 7, 0.98), net(1, "reinit", 7, 0.5), pai_net(1, "random", 7, 0.96)])
    compare = table([net(s, v, 7, 0.9 + s / 100) for s in (1, 2) for v in ("reinit", "random", "ticket")])
    got = pai.networks(pai.with_controls(runs, compare))
    controls = got[got["network"].str.endswith("(control)")]
    assert sorted(zip(controls["network"], controls["seed"], strict=True)) == [
        ("random (control)", 1), ("reinit (control)", 1)
    ]  # fmt: skip
    assert controls["test_acc"].tolist() == [0.91, 0.91]  # theirs, seed 1's; not our reinit's 0.5
    assert (got["network"] == "random").sum() == 1 and (got["network"] == "ticket").sum() == 1
    assert pai.with_controls(runs, None) is runs


def test_the_sections_are_drawn_only_with_methods_and_state_their_results(tmp_path):
    pai_sections = [s for s in SECTIONS if s.rule == PAI]
    assert [s.name for s in pai_sections] == ["pai_accuracy", "pai_sanity", "pai_densities", "pai_claims"]
    for s in pai_sections:
        assert s.wanted(True, True, ("instability",), True, has_pai=True)
        assert not s.wanted(True, True, ("instability",), True)
    assert BY_NAME["accuracy"].wanted(False, False, has_pai=True)  # the others as they were
    rows = []
    for s in (1, 2, 3):
        rows.append(net(s, "dense", 0, 0.98))
        for k in (7, 12):
            rows.append(net(s, "ticket", k, 0.98 + s / 1000))
            rows.append(net(s, "ticket-shuffled", k, 0.97))
            for m in ("random", "snip"):
                rows.append(pai_net(s, m, k, 0.975 - s / 1000))
                rows.append(pai_net(s, m, k, 0.97, "shuffled"))
    table(rows).to_csv(tmp_path / "runs.csv", index=False)
    tables = {}
    for s in pai_sections:
        out = {"table": tmp_path / f"{s.name}.csv"}
        if s.figure:
            out |= {"png": tmp_path / f"{s.name}.png", "svg": tmp_path / f"{s.name}.svg"}
        pai.write_pai_section(s.name, tmp_path / "runs.csv", out, {})
        assert all(p.stat().st_size > 0 for p in out.values()), s.name
        tables[s.name] = out["table"]
    text = summary_markdown(tables, "x", 0.9)
    compare = table([net(s, "reinit", k, 0.9) for s in (1, 2, 9) for k in (7, 12)])
    compare.to_csv(tmp_path / "paper.csv", index=False)
    out = {"table": tmp_path / "with.csv", "png": tmp_path / "with.png", "svg": tmp_path / "with.svg"}
    pai.write_pai_section("pai_accuracy", tmp_path / "runs.csv", out, {}, compare=tmp_path / "paper.csv")
    controls = pd.read_csv(out["table"]).query("network == 'reinit (control)'")
    assert controls["n"].tolist() == [2, 2]  # seeds 1 and 2: this experiment's, not seed 9
    header = pai.ACCURACY.paragraph(pd.read_csv(out["table"]), 0.9)[7]
    assert header == "| Pm | ticket | reinit (control) | random | snip |"
    for title in (
        "accuracy and early stop against Pm",
        "the sanity checks",
        "per-layer densities",
        "the claims",
    ):
        assert f"## Pruning at initialisation: {title}" in text
    assert text.count("Intervals: 95% Student t over seeds") >= 3
    with pytest.raises(ValueError, match="expected one of"):
        pai.write_pai_section("accuracy", tmp_path / "runs.csv", {}, {})
