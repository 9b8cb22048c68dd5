"""The paper's LeNet-300-100 results (Frankle & Carbin, ICLR 2019) checked against a run: one row per
stated claim, the test-accuracy curves of its Figure 3, iterative vs one-shot, and the list of ways a
configuration departs from the paper's protocol.

Every claim is computed per seed on paired networks (same θ0, same data order): each seed's own value
(a difference or a ratio within the seed), summarised over seeds with a Student-t 95% interval on those
per-seed values (:mod:`lottery.stats`; a ratio on the log scale, shown as the per-seed ratios'
geometric mean). ``test`` applies the criterion written next to it; a claim without the networks it
needs is "not measured" - never dropped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from lottery import stats
from lottery.analysis import summarise_by_pm
from lottery.desc import reference_schedule_name
from lottery.io import read_json, write_table

PathLike = str | os.PathLike

# The Pm levels (percent of weights remaining) of the paper's test-curve figure; 20%/10% per round.
CURVE_LEVELS = (100.0, 51.3, 21.1, 7.0, 3.6, 1.9)
LEVEL_TOLERANCE = 0.1  # Pm is matched to a paper level within 0.1 percentage points


def iterative_schedule(runs: pd.DataFrame) -> str | None:
    """The iterative fixed-rate schedule the paper's plots are about, by the rule the ticket analyses
    use too (:func:`lottery.desc.reference_schedule_name`)."""
    fixed = runs[runs["schedule"].astype(str).str.startswith("rate-")]
    rounds = fixed.groupby("schedule")["round"].max()
    return reference_schedule_name({str(name): int(r) for name, r in rounds.items()})


def level_values(
    runs: pd.DataFrame, variant: str, pm: float, metric: str, schedule: str | None = None
) -> pd.Series:
    """``metric`` per seed of ``variant`` at the Pm level ``pm`` (100 is the dense network)."""
    if pm >= 100.0 - LEVEL_TOLERANCE:
        rows = runs[runs["variant"] == "dense"]
    else:
        schedule = schedule or iterative_schedule(runs)
        rows = runs[
            (runs["variant"] == variant)
            & (runs["schedule"] == schedule)
            & ((runs["weights_remaining_pct"] - pm).abs() <= LEVEL_TOLERANCE)
        ]
    return rows.set_index("seed")[metric].astype(float)


def levels_values(
    runs: pd.DataFrame, variant: str, metric: str, max_pm: float = 100.0, schedule: str | None = None
) -> pd.DataFrame:
    """``metric`` of ``variant`` at every pruned level with Pm <= ``max_pm``: seeds x rounds."""
    schedule = schedule or iterative_schedule(runs)
    rows = runs[
        (runs["variant"] == variant)
        & (runs["schedule"] == schedule)
        & (runs["weights_remaining_pct"] <= max_pm + LEVEL_TOLERANCE)
        & (runs["round"] > 0)
    ]
    return rows.pivot_table(index="seed", columns="round", values=metric, aggfunc="first").astype(float)


HOLDS, FAILS, UNDECIDED, NOT_MEASURED = "holds", "does not hold", "undecided", "not measured"


@dataclass(frozen=True)
class Criterion:
    """What a claim's statistic must be: ``above`` or ``below`` a threshold, or ``within`` a
    tolerance of it. With an interval the verdict is :data:`HOLDS` when all of the interval meets it,
    :data:`FAILS` when none does, :data:`UNDECIDED` when the interval straddles it; with too few
    seeds for an interval, the estimate alone decides (holds or does not hold)."""

    kind: str  # above, below or within
    threshold: float
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("above", "below", "within"):
            raise ValueError(f"a criterion is above, below or within, got {self.kind!r}")

    def verdict(self, estimate: float, low: float | None = None, high: float | None = None) -> str:
        if low is None or high is None:
            low = high = estimate
        t, tol = self.threshold, self.tolerance
        if self.kind == "above":
            meets, misses = low > t, high < t
        elif self.kind == "below":
            meets, misses = high < t, low > t
        else:
            meets = t - tol <= low and high <= t + tol
            misses = high < t - tol or low > t + tol
        if low == high:  # an estimate alone: no undecided
            return HOLDS if meets else FAILS
        return HOLDS if meets else FAILS if misses else UNDECIDED


# How a claim's interval over seeds is made (the claims table's ``interval`` column): Student t on
# the per-seed values - a difference within each seed (paired), a ratio within each seed on the log
# scale (paired; the estimate the per-seed ratios' geometric mean), or one quantity's per-seed values.
DIFFERENCE = "paired difference (Student t over seeds)"
RATIO = "paired ratio, log scale (Student t over seeds)"
VALUES = "per-seed values (Student t over seeds)"


@dataclass(frozen=True)
class Claim:
    """One statement of the paper: what it says, its number, how ours is measured and judged.

    ``paired`` builds the per-seed table the statistic needs (one row per seed); ``statistic`` maps a
    table to a number, and one seed's own row to that seed's value; ``interval`` says how the per-seed
    values make the estimate and its interval (:data:`DIFFERENCE`, :data:`RATIO` or :data:`VALUES`);
    ``shown`` maps a ratio to the unit shown (monotone; ``None``: the ratio itself); ``test`` judges
    the estimate and interval (:class:`Criterion`); ``reading`` says which of this project's numbers
    stands for the paper's statement."""

    key: str
    statement: str
    paper: float | None
    unit: str
    criterion: str
    reading: str
    paired: Callable[[pd.DataFrame], pd.DataFrame]
    statistic: Callable[[pd.DataFrame], float]
    test: Criterion
    interval: str = DIFFERENCE
    shown: Callable[[float], float] | None = None

    def __post_init__(self) -> None:
        if self.interval not in (DIFFERENCE, RATIO, VALUES):
            raise ValueError(f"claim {self.key}: no interval {self.interval!r}")
        if self.shown is not None and self.interval != RATIO:
            raise ValueError(f"claim {self.key}: only a ratio is shown in another unit")


Getter = Callable[[pd.DataFrame], "pd.Series | pd.DataFrame"]


def _pair(**columns: Getter) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Per-seed table of named columns (inner join over seeds; level tables add one column per round)."""

    def build(runs: pd.DataFrame) -> pd.DataFrame:
        parts = []
        for name, get in columns.items():
            values = get(runs)
            if isinstance(values, pd.DataFrame):
                values = values.add_prefix(f"{name}_")
            else:
                values = values.rename(name)
            parts.append(values)
        table = pd.concat(parts, axis=1, join="inner")
        return table.dropna()

    return build


def _mean_over_levels(table: pd.DataFrame, a: str, b: str) -> float:
    """Mean over seeds and levels of ``a_<round> - b_<round>``, in percentage points."""
    rounds = [c.removeprefix(f"{a}_") for c in table if c.startswith(f"{a}_")]
    diffs = [table[f"{a}_{r}"] - table[f"{b}_{r}"] for r in rounds if f"{b}_{r}" in table]
    return 100.0 * float(pd.concat(diffs).mean()) if diffs else math.nan


def _ratio_over_levels(table: pd.DataFrame, a: str, b: str) -> float:
    rounds = [c.removeprefix(f"{a}_") for c in table if c.startswith(f"{a}_")]
    num = sum(table[f"{a}_{r}"].mean() for r in rounds if f"{b}_{r}" in table)
    den = sum(table[f"{b}_{r}"].mean() for r in rounds if f"{b}_{r}" in table)
    return float(num / den) if den else math.nan


def _at(variant: str, pm: float, metric: str, schedule: str | None = None):
    return lambda runs: level_values(runs, variant, pm, metric, schedule)


def _levels(variant: str, metric: str, max_pm: float = 100.0, schedule: str | None = None):
    def get(runs: pd.DataFrame) -> pd.DataFrame:
        return levels_values(runs, variant, metric, max_pm, schedule or iterative_schedule(runs))

    return get


def _oneshot_levels(metric: str, max_pm: float):
    def get(runs: pd.DataFrame) -> pd.DataFrame:
        iterative = iterative_schedule(runs)
        return levels_values(runs, "ticket", metric, max_pm, f"oneshot-{iterative}" if iterative else None)

    return get


def _points(a: str, b: str) -> Callable[[pd.DataFrame], float]:
    return lambda t: 100.0 * float(t[a].mean() - t[b].mean())


ES, ACC = "early_stop_iteration", "test_acc"
AT_EARLY_STOP = "test accuracy at the early-stop iteration (minimum validation loss)"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        key="early_stop_21",
        statement="Winning tickets learn faster: at Pm 21.1% early stopping comes 38% earlier than for "
        "the original network",
        paper=38.0,
        unit="% earlier",
        criterion="above 0% earlier",
        reading="1 - the early-stop iteration of the iterative ticket at Pm 21.1% / the dense network's, "
        "a ratio within each seed: 1 - the geometric mean of the per-seed ratios (not of the means)",
        paired=_pair(ticket=_at("ticket", 21.1, ES), dense=_at("dense", 100, ES)),
        statistic=lambda t: float(t["ticket"].mean() / t["dense"].mean()),
        test=Criterion("above", 0.0),
        interval=RATIO,
        shown=lambda ratio: 100.0 * (1.0 - ratio),
    ),
    Claim(
        key="accuracy_13_5",
        statement="Test accuracy at early stop rises with pruning: more than 0.3 points above the original "
        "network at Pm 13.5%",
        paper=0.3,
        unit="points",
        criterion="above +0.3 points",
        reading=f"the iterative ticket at Pm 13.5% minus the dense network, {AT_EARLY_STOP}",
        paired=_pair(ticket=_at("ticket", 13.5, ACC), dense=_at("dense", 100, ACC)),
        statistic=_points("ticket", "dense"),
        test=Criterion("above", 0.3),
    ),
    Claim(
        key="accuracy_3_6",
        statement="At about Pm 3.6% a winning ticket is back to the original network's test accuracy",
        paper=0.0,
        unit="points",
        criterion="within 0.3 points of 0",
        reading=f"read off the paper's Figure 3 (test accuracy over training); here: the iterative ticket at "
        f"Pm 3.6% minus the dense network, {AT_EARLY_STOP}",
        paired=_pair(ticket=_at("ticket", 3.6, ACC), dense=_at("dense", 100, ACC)),
        statistic=_points("ticket", "dense"),
        test=Criterion("within", 0.0, 0.3),
    ),
    Claim(
        key="reinit_speed_21",
        statement="At Pm 21.1% the winning ticket reaches minimum validation loss 2.51x faster than when "
        "randomly reinitialised",
        paper=2.51,
        unit="x",
        criterion="above 1x",
        reading="early-stop iteration at Pm 21.1% of the reinitialised ticket (a seed's draws averaged) "
        "/ the ticket's, a ratio within each seed: the geometric mean of the per-seed ratios",
        paired=_pair(ticket=_at("ticket", 21.1, ES), reinit=_at("reinit", 21.1, ES)),
        statistic=lambda t: float(t["reinit"].mean() / t["ticket"].mean()),
        test=Criterion("above", 1.0),
        interval=RATIO,
    ),
    Claim(
        key="reinit_accuracy_21",
        statement="At Pm 21.1% the winning ticket is 0.5 points more accurate than when randomly "
        "reinitialised",
        paper=0.5,
        unit="points",
        criterion="above 0 points",
        reading=f"the ticket minus its reinitialisations (a seed's draws averaged) at Pm 21.1%, "
        f"{AT_EARLY_STOP}",
        paired=_pair(ticket=_at("ticket", 21.1, ACC), reinit=_at("reinit", 21.1, ACC)),
        statistic=_points("ticket", "reinit"),
        test=Criterion("above", 0.0),
    ),
    Claim(
        key="reinit_slower",
        statement="Randomly reinitialised tickets learn more slowly (early-stop iteration over all pruned "
        "levels)",
        paper=None,
        unit="x",
        criterion="above 1x",
        reading="early-stop iteration of the reinitialised tickets / the tickets', each summed over every "
        "pruned level of a seed: the geometric mean of the per-seed ratios (not the ratio of the sums "
        "over seeds)",
        paired=_pair(reinit=_levels("reinit", ES), ticket=_levels("ticket", ES)),
        statistic=lambda t: _ratio_over_levels(t, "reinit", "ticket"),
        test=Criterion("above", 1.0),
        interval=RATIO,
    ),
    Claim(
        key="reinit_loses_accuracy",
        statement="Randomly reinitialised tickets lose accuracy as they are pruned (smallest Pm vs the "
        "original network)",
        paper=None,
        unit="points",
        criterion="below 0 points",
        reading=f"the reinitialised ticket at the smallest Pm minus the dense network, {AT_EARLY_STOP}",
        paired=_pair(reinit=lambda runs: _smallest_level(runs, "reinit", ACC), dense=_at("dense", 100, ACC)),
        statistic=_points("reinit", "dense"),
        test=Criterion("below", 0.0),
    ),
    Claim(
        key="random_degrades_fastest",
        statement="Randomly sampled sparse networks (random pruning) degrade faster than reinitialised "
        "tickets",
        paper=None,
        unit="points",
        criterion="below 0 points",
        reading=f"randomly pruned minus reinitialised networks, mean over every pruned level, "
        f"{AT_EARLY_STOP}",
        paired=_pair(random=_levels("random", ACC), reinit=_levels("reinit", ACC)),
        statistic=lambda t: _mean_over_levels(t, "random", "reinit"),
        test=Criterion("below", 0.0),
    ),
    Claim(
        key="dense_accuracy",
        statement="The original network reaches about 98% test accuracy",
        paper=98.0,
        unit="%",
        criterion="within 0.5 points of 98%",
        reading=f"the dense network's {AT_EARLY_STOP}",
        paired=_pair(dense=_at("dense", 100, ACC)),
        statistic=lambda t: 100.0 * float(t["dense"].mean()),
        test=Criterion("within", 98.0, 0.5),
        interval=VALUES,
    ),
    Claim(
        key="oneshot_accuracy",
        statement="Iteratively pruned tickets are more accurate than one-shot ones at smaller sizes "
        "(Pm <= 21.1%)",
        paper=None,
        unit="points",
        criterion="above 0 points",
        reading=f"iterative minus one-shot tickets, mean over the levels Pm <= 21.1%, {AT_EARLY_STOP}",
        paired=_pair(iterative=_levels("ticket", ACC, 21.1), oneshot=_oneshot_levels(ACC, 21.1)),
        statistic=lambda t: _mean_over_levels(t, "iterative", "oneshot"),
        test=Criterion("above", 0.0),
    ),
    Claim(
        key="oneshot_speed",
        statement="Iteratively pruned tickets learn faster than one-shot ones at smaller sizes (Pm <= 21.1%)",
        paper=None,
        unit="x",
        criterion="above 1x",
        reading="early-stop iteration of one-shot / iterative tickets, each summed over the levels "
        "Pm <= 21.1% of a seed: the geometric mean of the per-seed ratios (not the ratio of the sums over "
        "seeds)",
        paired=_pair(oneshot=_oneshot_levels(ES, 21.1), iterative=_levels("ticket", ES, 21.1)),
        statistic=lambda t: _ratio_over_levels(t, "oneshot", "iterative"),
        test=Criterion("above", 1.0),
        interval=RATIO,
    ),
)


def _smallest_level(runs: pd.DataFrame, variant: str, metric: str) -> pd.Series:
    schedule = iterative_schedule(runs)
    rows = runs[(runs["variant"] == variant) & (runs["schedule"] == schedule)]
    if rows.empty:
        return pd.Series(dtype=float)
    smallest = rows["weights_remaining_pct"].min()
    return rows[rows["weights_remaining_pct"] == smallest].set_index("seed")[metric].astype(float)


def per_seed(claim: Claim, table: pd.DataFrame) -> pd.Series:
    """The claim's statistic seed by seed: each seed's own row of its paired table (a difference or a
    ratio within the seed, or the seed's value)."""
    return pd.Series([claim.statistic(table.iloc[[i]]) for i in range(len(table))], index=table.index)


def seed_interval(claim: Claim, values: pd.Series) -> tuple[float, float, float]:
    """The estimate and Student-t 95% interval over the per-seed ``values``, in the unit shown: their
    mean for a difference or a value, their geometric mean (the interval on the log scale) for a
    ratio (positive: an early stop comes at an evaluation, the first after ``eval_every`` iterations);
    NaN bounds with fewer than two values."""
    if claim.interval != RATIO:
        return stats.t_interval(values.tolist())
    estimate, low, high = stats.ratio_interval(values.tolist())
    if claim.shown is None:
        return estimate, low, high
    shown = [claim.shown(v) for v in (estimate, low, high)]
    return shown[0], min(shown[1:]), max(shown[1:])  # a decreasing map swaps the bounds


# Student t needs n >= 2, but at n = 2 its quantile is 12.7 (one degree of freedom): an interval that
# says almost nothing. With fewer than 3 seeds there is no interval, and a claim is judged on its
# estimate alone (a two-seed run is a smoke test, not evidence).
MIN_SEEDS_FOR_CI = 3

CLAIM_COLUMNS = (
    "claim", "statement", "reading", "unit", "paper", "ours", "ci_low", "ci_high", "interval", "seeds",
    "criterion", "verdict", "paper_in_ci",
)  # fmt: skip


def claims_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per claim of :data:`CLAIMS`: the paper's number, ours with its 95% interval over seeds
    (Student t on the per-seed values, :func:`seed_interval`; its kind in ``interval``), and the
    verdict."""
    rows = []
    for claim in CLAIMS:
        table = claim.paired(runs)
        row: dict[str, Any] = {
            "claim": claim.key,
            "statement": claim.statement,
            "unit": claim.unit,
            "paper": claim.paper,
            "criterion": claim.criterion,
            "reading": claim.reading,
            "interval": claim.interval,
            "seeds": len(table),
        }
        if table.empty:
            row.update(ours=math.nan, ci_low=math.nan, ci_high=math.nan, verdict=NOT_MEASURED, paper_in_ci="")
        else:
            estimate, low, high = seed_interval(claim, per_seed(claim, table))
            if len(table) < MIN_SEEDS_FOR_CI or math.isnan(low):  # too few seeds: the estimate alone
                low = high = None
            row.update(ours=estimate, ci_low=math.nan if low is None else low,
                       ci_high=math.nan if high is None else high,
                       verdict=claim.test.verdict(estimate, low, high))  # fmt: skip
            inside = low is not None and claim.paper is not None and low <= claim.paper <= high
            row["paper_in_ci"] = "" if claim.paper is None or low is None else ("yes" if inside else "no")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def _num(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "points":
        return f"{value:+.2f}"
    return f"{value:.1f}"


METHOD_NOTE = (
    f"95% intervals: {stats.METHOD}, mean ± t(0.975, n - 1) · s / √n over the n seeds' own values - a "
    "difference within each seed for a paired difference; for a ratio within each seed, the same on the "
    "per-seed ratios' logarithms, mapped back (the estimate: their geometric mean). Not a bootstrap: with "
    "five seeds a percentile bootstrap's interval is too narrow (lottery.stats)."
)


def claims_markdown(table: pd.DataFrame) -> str:
    """The claims table in Markdown (the same rows as the CSV)."""
    lines = [
        "| claim | paper | ours (over seeds) | 95% interval | seeds | criterion | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        unit = r["unit"]
        suffix = {"points": " points", "% earlier": "% earlier", "%": "%", "x": ""}[unit]
        paper = "-" if pd.isna(r["paper"]) else _num(float(r["paper"]), unit) + suffix
        ours = _num(float(r["ours"]), unit) + ("" if pd.isna(r["ours"]) else suffix)
        if not pd.isna(r["ci_low"]):
            ci = f"[{_num(r['ci_low'], unit)}, {_num(r['ci_high'], unit)}]"
        elif 0 < r["seeds"] < MIN_SEEDS_FOR_CI:
            ci = f"n/a ({r['seeds']} seed{'s' if r['seeds'] > 1 else ''})"
        else:
            ci = "n/a"
        lines.append(f"| {r['statement']} | {paper} | {ours} | {ci} | {r['seeds']} | {r['criterion']} | "
                     f"**{r['verdict']}** |")  # fmt: skip
    lines += [
        "",
        METHOD_NOTE,
        "",
        "A claim holds when its whole 95% interval meets the criterion, does not hold when none of it "
        "does, and is undecided when the interval straddles the criterion's bound.",
    ]
    if ((table["seeds"] > 0) & (table["seeds"] < MIN_SEEDS_FOR_CI)).any():
        note = (f"With fewer than {MIN_SEEDS_FOR_CI} seeds there is no interval: such a claim is judged "
                "on its point estimate alone (holds or does not hold).")  # fmt: skip
        lines += ["", note]
    lines += ["", "How each claim is read here:", ""]
    lines += [f"- {r['statement']}: {r['reading']}; interval: {r['interval']}." for _, r in table.iterrows()]
    return "\n".join(lines) + "\n"


CURVE_COLUMNS = ("seed", "variant", "schedule", "weights_remaining_pct", "draw", "iteration", "test_acc")


def read_curves(networks: Sequence[tuple[PathLike, PathLike]]) -> pd.DataFrame:
    """The test curves of several networks (``(metrics.json, curve.csv)`` pairs): one row per
    iteration with a test evaluation, tagged with the network's seed, variant, schedule, Pm and draw."""
    frames = []
    for metrics_path, curve_path in networks:
        m = read_json(metrics_path)
        curve = pd.read_csv(curve_path).dropna(subset=["test_acc"])
        identity = {"seed": m["init_seed"], "variant": m["variant"], "schedule": m["schedule"],
                    "weights_remaining_pct": m["weights_remaining_pct"], "draw": m.get("draw")}  # fmt: skip
        frames.append(curve.assign(**identity))
    if not frames:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(CURVE_COLUMNS)]


def write_replicate_curves(networks: Sequence[tuple[PathLike, PathLike]], out: PathLike) -> None:
    """A replicate's test curves (its summary's ``test_curves.csv``)."""
    write_table(out, read_curves(networks))


def curve_table(curves: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy over iterations per (variant, schedule, Pm): mean, min and max over seeds (a
    seed's draws averaged first).

    ``curves`` holds the curve rows of several networks with their ``seed``, ``variant``,
    ``schedule`` and ``weights_remaining_pct``; rows without a test evaluation are dropped."""
    rows = curves.dropna(subset=["test_acc"]).copy()
    rows["pm"] = rows["weights_remaining_pct"].round(1)
    rows = rows.groupby(["variant", "schedule", "pm", "iteration", "seed"], as_index=False)["test_acc"].mean()
    table = (
        rows.groupby(["variant", "schedule", "pm", "iteration"])["test_acc"]
        .agg(n="count", test_acc_mean="mean", test_acc_min="min", test_acc_max="max")
        .reset_index()
    )
    return table.sort_values(["variant", "schedule", "pm", "iteration"], ascending=[True, True, False, True])


def iterative_vs_oneshot(runs: pd.DataFrame) -> pd.DataFrame:
    """Early-stop iteration and test accuracy of iterative and one-shot tickets at each Pm (the dense
    network counts for both at 100%): mean, min and max over seeds."""
    iterative = iterative_schedule(runs)
    if iterative is None:
        return pd.DataFrame(columns=["pruning", "pm", "n"])
    parts = []
    for label, schedule in (("iterative", iterative), ("one-shot", f"oneshot-{iterative}")):
        ticket = (runs["variant"] == "ticket") & (runs["schedule"] == schedule)
        rows = runs[ticket | (runs["variant"] == "dense")]
        if (rows["variant"] == "ticket").any():
            parts.append(rows.assign(pruning=label))
    if not parts:
        return pd.DataFrame(columns=["pruning", "pm", "n"])
    table = pd.concat(parts, ignore_index=True)
    table["pm"] = table["weights_remaining_pct"].round(1)
    return summarise_by_pm(table, "pruning")
