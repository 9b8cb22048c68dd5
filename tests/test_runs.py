"""The runs table from replicates' tables, the draws averaged within a seed, and the provenance files."""

import json

import pandas as pd
import pytest

from lottery import provenance
from lottery.runs import concatenated_runs, csv_text, mean_over_draws, read_runs

COLUMNS = ["experiment", "seed", "variant", "schedule", "round", "rewind_iteration", "reinit_seed", "mask_seed",
           "draw", "weights_remaining_pct", "early_stop_iteration", "val_acc", "test_acc", "schedule_ratio",
           "schedule_rounds"]  # fmt: skip


def _row(seed, variant, round_, acc, draw=None, stop=1000):
    return {"experiment": "x", "seed": seed, "variant": variant, "schedule": "rate-0.2", "round": round_,
            "reinit_seed": None if draw is None else 100 + draw, "draw": draw, "weights_remaining_pct": 50.0,
            "early_stop_iteration": stop, "val_acc": acc, "test_acc": acc}  # fmt: skip


def test_draws_are_averaged_within_a_seed_and_nothing_else_is():
    runs = pd.DataFrame(
        [_row(1, "ticket", 1, 0.97), _row(1, "reinit", 1, 0.90, 1, 1000), _row(1, "reinit", 1, 0.94, 2, 3000),
         _row(1, "reinit", 1, 0.95, 3, 2000), _row(2, "reinit", 1, 0.80, 1), _row(1, "reinit", 2, 0.7, 1)]
    )  # fmt: skip
    table = mean_over_draws(runs)
    assert len(table) == 4 and list(table.columns) == [*runs.columns, "draws"]
    reinit = table[(table["variant"] == "reinit") & (table["seed"] == 1) & (table["round"] == 1)].iloc[0]
    assert reinit["test_acc"] == pytest.approx(0.93) and reinit["early_stop_iteration"] == 2000
    assert reinit["draws"] == 3 and pd.isna(reinit["draw"]) and pd.isna(reinit["reinit_seed"])
    single = table[(table["seed"] == 2)].iloc[0]
    assert single["draws"] == 1 and single["test_acc"] == 0.80 and single["reinit_seed"] == 101
    ticket = table[table["variant"] == "ticket"].iloc[0]
    assert ticket["draws"] == 1 and ticket["test_acc"] == 0.97


def test_a_table_without_draws_is_read_as_it_is(tmp_path):
    runs = pd.DataFrame([_row(1, "ticket", 1, 0.97), _row(1, "reinit", 1, 0.9, 1)], columns=COLUMNS)
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    assert len(read_runs(path)) == 2 and (read_runs(path)["draws"] == 1).all()
    with pytest.raises(ValueError, match="draws must be"):
        read_runs(path, draws="some")


def test_the_experiments_table_is_its_replicates_tables(tmp_path):
    """Rows by seed, each replicate's in its own order and bytes; a column only one replicate has is
    kept (empty for the others)."""
    seed_2 = csv_text([{"seed": 2, "variant": "dense", "test_acc": "0.98"}], ["seed", "variant", "test_acc"])
    seed_1 = csv_text(
        [
            {"seed": 1, "variant": "dense", "test_acc": "0.975"},
            {"seed": 1, "variant": "ticket", "test_acc": "0.97"},
        ],
        ["seed", "variant", "test_acc"],
    )
    seed_3 = csv_text([{"seed": 3, "variant": "dense", "test_acc": "0.9", "draw": 1}], ["seed", "variant", "test_acc",
                                                                                         "draw"])  # fmt: skip
    paths = []
    for name, text in (("b", seed_2), ("a", seed_1), ("c", seed_3)):
        paths.append(tmp_path / f"{name}.csv")
        paths[-1].write_text(text)
    assert concatenated_runs(paths).splitlines() == [
        "seed,variant,test_acc,draw", "1,dense,0.975,", "1,ticket,0.97,", "2,dense,0.98,", "3,dense,0.9,1"
    ]  # fmt: skip
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad\.csv: not a replicate's runs table"):
        concatenated_runs([tmp_path / "bad.csv"])


def _network(tmp_path, name, machine, started, finished, seconds, commit="abc"):
    record = {"commit": commit, "torch": "2.14.1", "machine": machine, "paths": {"fc1.weight": "sparse"},
              "started": started, "finished": finished, "seconds": seconds}  # fmt: skip
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(record))
    return path


def test_a_replicates_provenance_gathers_its_networks(tmp_path):
    zen = {"model_name": "AMD EPYC", "cpu_family": "25", "model": "17", "isa": ["avx2", "avx512f"]}
    xeon = {"model_name": "Intel(R) Xeon(R)", "isa": ["avx2", "avx512f", "amx_tile"]}
    files = [
        _network(tmp_path, "a", zen, "2026-12-03T08:00:00+00:00", "2026-12-03T08:10:00+00:00", 600),
        _network(tmp_path, "b", zen, "2026-12-03T08:05:00+00:00", "2026-12-03T08:30:00+00:00", 1500),
        _network(tmp_path, "c", xeon, "2026-12-03T09:00:00+00:00", "2026-12-03T09:01:00+00:00", 60, "def"),
    ]
    p = provenance.replicate_provenance("seed-1", files)
    assert p["networks"] == 3 and p["training_seconds"] == 2160
    assert p["machines"] == {"AMD EPYC (family 25, model 17), avx2/avx512f": 2,
                             "Intel(R) Xeon(R), avx2/avx512f/amx_tile": 1}  # fmt: skip
    assert p["commits"] == {"abc": 2, "def": 1} and p["paths"] == {"fc1": {"sparse": 3}}
    assert p["span_seconds"] == 3660  # 08:00 to 09:01
    table = provenance.provenance_markdown([p])
    assert "| seed-1 | 3 | AMD EPYC (family 25, model 17), avx2/avx512f (2); Intel" in table
    assert "| abc (2); def (1) | 2.14.1 |" in table


def test_this_machine_is_described():
    machine = provenance.cpu()
    assert machine["model_name"] and isinstance(machine["isa"], list)
    assert provenance.git_commit("/") == "unknown"  # not a git checkout
