"""The runs table, ``runs.csv``: one row per trained network, from every network's ``metrics.json``,
and its reader for the analyses. No PyTorch; pandas only where the table is read."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lottery.desc import Network, Replicate, recorded
from lottery.io import read_json, write_text
from lottery.logs import log, step

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike

# The columns: the experiment and replicate, the network's identity (lottery.desc.Network) with its
# pruned fraction, each layer's remaining fraction, its results (TrainingResult.metrics), and the
# trainer (backend) and path (sparse, dense-nonblank or dense) that trained each layer.
_REPLICATE_COLUMNS = tuple(recorded(Replicate(0, 0, 0)))
FIXED_COLUMNS = (
    "experiment", "seed", *_REPLICATE_COLUMNS, *Network.SCHEDULE_COLUMNS,
    "actual_ratio", "weights_remaining_pct", *Network.CONTROL_COLUMNS,
)  # fmt: skip
RESULT_COLUMNS = (
    "early_stop_iteration", "val_loss", "val_acc", "test_loss", "test_acc",
    "val_loss_final", "val_acc_final", "test_loss_final", "test_acc_final", "iterations",
)  # fmt: skip
# A network of pruning at initialisation records its mask's collapse (lottery.collapse): the layers
# left with no weight (their names, space-separated) and whether no path joins inputs to outputs.
# Columns only where a network has them, so that the other experiments' tables are as they were.
COLLAPSE_COLUMNS = ("collapsed_layers", "disconnected")
REQUIRED_COLUMNS = {"variant", "schedule_ratio", "schedule_rounds", "round", "val_acc", "test_acc"}


def csv_text(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """CSV with the given columns, ``None`` as an empty cell, ``\\n`` line ends."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return buf.getvalue()


def runs_table(metrics_files: Sequence[PathLike], experiment: str) -> str:
    """``runs.csv``: one row per trained network, sorted, with no timings (reproducible to the byte)."""
    rows, layers, paths, collapse = [], [], [], []
    for path in metrics_files:
        m = read_json(path)
        row = {**m, "experiment": experiment, "seed": m["init_seed"]}
        if "collapsed_layers" in m:  # pruning at initialisation: the mask's layer collapse
            row["collapsed_layers"] = " ".join(n.removesuffix(".weight") for n in m["collapsed_layers"])
            collapse = list(COLLAPSE_COLUMNS)
        for name, fraction in m["remaining"].items():
            column = f"remaining_{name.removesuffix('.weight')}"
            row[column] = fraction
            if column not in layers:
                layers.append(column)
        if "backend" in m and "backend" not in paths:  # the trainer that ran, then its path per layer
            paths.insert(0, "backend")
        for name, path in m.get("paths", {}).items():
            column = f"path_{name.removesuffix('.weight')}"
            row[column] = path
            if column not in paths:
                paths.append(column)
        rows.append(row)
    rows.sort(
        key=lambda r: (r["seed"], r["variant"] != "dense", r["schedule"], r["variant"],
                       r.get("rewind_iteration") or 0, r["round"], r.get("draw") or 0)
    )  # fmt: skip
    return csv_text(rows, [*FIXED_COLUMNS, *layers, *RESULT_COLUMNS, *collapse, *paths])


def concatenated_runs(tables: Sequence[PathLike]) -> str:
    """The experiment's ``runs.csv`` from its replicates' (``seed-<s>/summary/runs.csv``): their rows
    by seed, each replicate's in its own order, the columns of all of them (a replicate's table is
    what a run committed: its networks' checkpoints need not exist any more)."""
    columns: list[str] = []
    rows: list[dict[str, str]] = []
    for path in tables:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "seed" not in reader.fieldnames:
                raise ValueError(f"{path}: not a replicate's runs table (no header with a seed column)")
            columns += [c for c in reader.fieldnames if c not in columns]
            rows += list(reader)
    rows.sort(key=lambda r: int(r["seed"]))  # stable: each replicate keeps its order
    return csv_text(rows, columns)


@step
def collect_runs(metrics_files: Sequence[PathLike], experiment: str, out: PathLike) -> None:
    """One replicate's runs table, from its networks' ``metrics.json``."""
    write_text(out, runs_table(metrics_files, experiment))
    log.info("%d runs collected into %s", len(metrics_files), Path(out))


@step
def concatenate_runs(tables: Sequence[PathLike], out: PathLike) -> None:
    """The experiment's runs table, from its replicates' tables."""
    write_text(out, concatenated_runs(tables))
    log.info("%d replicates' runs collected into %s", len(tables), Path(out))


# A drawn control's draws (lottery.variants.Variant.drawn) differ in these columns only, and in results.
DRAW_COLUMNS = ("draw", "reinit_seed", "mask_seed")


def mean_over_draws(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per network and seed: the draws of a drawn control averaged (results, the early-stop
    iteration included), with their number in ``draws``; every other row as it is (``draws`` 1)."""
    if "draw" not in runs or not (runs["draw"].fillna(1) > 1).any():
        return runs.assign(draws=1)
    same = (*DRAW_COLUMNS, "actual_ratio", "weights_remaining_pct")  # equal or per draw, not keys
    keys = [c for c in FIXED_COLUMNS if c in runs and c not in same]
    results = [c for c in RESULT_COLUMNS if c in runs]
    others = [c for c in runs if c not in keys and c not in results]
    grouped = runs.groupby(keys, dropna=False, sort=False)
    table = grouped[results].mean().join(grouped[others].first()).join(grouped.size().rename("draws"))
    table = table.reset_index()
    table.loc[table["draws"] > 1, list(DRAW_COLUMNS)] = float("nan")
    return table[[*runs.columns, "draws"]]


def read_runs(path: PathLike, draws: str = "mean") -> pd.DataFrame:
    """A runs table; with ``draws="mean"`` (what the analyses read) one row per network and seed
    (:func:`mean_over_draws`), with ``"each"`` one per trained network."""
    import pandas as pd

    runs = pd.read_csv(path)
    missing = REQUIRED_COLUMNS - set(runs)
    if missing:
        raise ValueError(f"{path}: not a runs table, missing columns {sorted(missing)}")
    if draws not in ("mean", "each"):
        raise ValueError(f"draws must be 'mean' or 'each', got {draws!r}")
    return mean_over_draws(runs) if draws == "mean" else runs
