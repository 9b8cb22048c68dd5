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
# path (sparse or dense) that trained each layer.
_REPLICATE_COLUMNS = tuple(recorded(Replicate(0, 0, 0)))
FIXED_COLUMNS = (
    "experiment", "seed", *_REPLICATE_COLUMNS, *Network.SCHEDULE_COLUMNS,
    "actual_ratio", "weights_remaining_pct", *Network.CONTROL_COLUMNS,
)  # fmt: skip
RESULT_COLUMNS = (
    "early_stop_iteration", "val_loss", "val_acc", "test_loss", "test_acc",
    "val_loss_final", "val_acc_final", "test_loss_final", "test_acc_final", "iterations",
)  # fmt: skip
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
    rows, layers, paths = [], [], []
    for path in metrics_files:
        m = read_json(path)
        row = {**m, "experiment": experiment, "seed": m["init_seed"]}
        for name, fraction in m["remaining"].items():
            column = f"remaining_{name.removesuffix('.weight')}"
            row[column] = fraction
            if column not in layers:
                layers.append(column)
        for name, path in m.get("paths", {}).items():  # the trainer's path per layer
            column = f"path_{name.removesuffix('.weight')}"
            row[column] = path
            if column not in paths:
                paths.append(column)
        rows.append(row)
    rows.sort(
        key=lambda r: (r["seed"], r["variant"] != "dense", r["schedule"], r["variant"],
                       r.get("rewind_iteration") or 0, r["round"])
    )  # fmt: skip
    return csv_text(rows, [*FIXED_COLUMNS, *layers, *RESULT_COLUMNS, *paths])


@step
def collect_runs(metrics_files: Sequence[PathLike], experiment: str, out: PathLike) -> None:
    write_text(out, runs_table(metrics_files, experiment))
    log.info("%d runs collected into %s", len(metrics_files), Path(out))


def read_runs(path: PathLike) -> pd.DataFrame:
    import pandas as pd

    runs = pd.read_csv(path)
    missing = REQUIRED_COLUMNS - set(runs)
    if missing:
        raise ValueError(f"{path}: not a runs table, missing columns {sorted(missing)}")
    return runs
