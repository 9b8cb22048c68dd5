"""Pruning at initialisation through the workflow (issue 28): every method prunes θ0 to the Pm of the
ticket's round 2 and trains, with the sanity checks of every method and of the ticket, on the
committed MNIST sample (.test/config/pai.yaml)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lottery import pruning
from lottery.io import load_arrays

from .conftest import HUNG, ROOT, local_env

METHODS = ("random", "erk", "magnitude_init", "snip", "grasp", "synflow")
RANKED = ("magnitude_init", "snip", "grasp", "synflow", "ticket")  # their masks can be inverted


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("pai")
    shutil.copytree(ROOT / ".test" / "config", workdir / "config")
    shutil.copytree(ROOT / ".test" / "data", workdir / "data")
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir),
         "--configfile", str(workdir / "config" / "pai.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=HUNG, env=local_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir / "results" / "tiny-pai"


def _mask(results: Path, method: str, check: str) -> dict[str, np.ndarray]:
    return load_arrays(results / "seed-1" / "pai" / method / check / "level-2" / "mask.safetensors")


def test_every_method_and_check_is_a_network_of_the_runs_table(run):
    runs = pd.read_csv(run / "runs.csv")
    expected = {"dense", "ticket", *METHODS}
    expected |= {f"{m}-{c}" for m in (*METHODS, "ticket") for c in ("shuffled", "reinit")}
    expected |= {f"{m}-inverted" for m in RANKED}
    assert set(runs["variant"]) == expected
    pai = runs[~runs["variant"].isin(["dense", "ticket"])]
    assert set(pai["round"]) == {2} and pai["collapsed_layers"].isna().all()
    assert not pai["disconnected"].any()
    assert set(runs.loc[runs["variant"].isin(METHODS), "method"]) == set(METHODS)
    record = json.loads((run / "seed-1" / "summary" / "record.json").read_text())
    assert record["description"]["pai"]["methods"] == list(METHODS)


def test_each_method_keeps_the_tickets_count_and_each_check_its_layers_counts(run):
    ticket = load_arrays(run / "seed-1" / "rate-0.2" / "ticket" / "round-2" / "mask.safetensors")
    total = sum(pruning.kept_counts(ticket).values())
    for method in (*METHODS, "ticket"):
        found = ticket if method == "ticket" else _mask(run, method, "found")
        assert sum(pruning.kept_counts(found).values()) == total, method
        for check in ("shuffled", "reinit", *(("inverted",) if method in RANKED else ())):
            other = _mask(run, method, check)
            assert pruning.kept_counts(other) == pruning.kept_counts(found), (method, check)
            same = all(np.array_equal(other[n], found[n]) for n in found)
            assert same == (check == "reinit"), (method, check)
    inverted = _mask(run, "magnitude_init", "inverted")  # the smallest |θ0| of each layer kept
    init = load_arrays(run / "seed-1" / "init.safetensors")
    w, m = np.abs(init["fc1.weight"]), inverted["fc1.weight"]
    assert w[m == 1].max() <= w[m == 0].min()


def test_a_reinitialised_network_trains_from_the_reinit_controls_weights(run):
    metrics = json.loads(
        (run / "seed-1" / "pai" / "snip" / "reinit" / "level-2" / "metrics.json").read_text()
    )
    assert metrics["reinit_seed"] == 1 + 10_000 and metrics["variant"] == "snip-reinit"
    final = load_arrays(run / "seed-1" / "pai" / "snip" / "reinit" / "level-2" / "final.safetensors")
    mask = _mask(run, "snip", "reinit")
    assert not final["fc1.weight"][mask["fc1.weight"] == 0].any()


def test_an_unknown_method_is_refused_before_any_job(tmp_path):
    shutil.copytree(ROOT / ".test" / "config", tmp_path / "config")
    (tmp_path / "config" / "bad.yaml").write_text(yaml.safe_dump({"pai": {"methods": ["magic"]}}))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--directory", str(tmp_path), "--configfile",
         str(tmp_path / "config" / "pai.yaml"), str(tmp_path / "config" / "bad.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=HUNG, env=local_env(),
    )  # fmt: skip
    said = result.stdout + result.stderr
    assert result.returncode != 0 and "pai.methods" in said and "magic" in said


PAI_SECTIONS = ("pai_accuracy", "pai_sanity", "pai_densities", "pai_claims")


def test_the_run_draws_the_sections_of_pruning_at_initialisation(run):
    """Its report's sections (lottery.report.pai): tables, figures and summary.md's paragraphs."""
    for name in PAI_SECTIONS:
        assert (run / "analysis" / f"{name}.csv").stat().st_size > 0, name
        if name != "pai_claims":
            for ext in ("png", "svg"):
                assert (run / "figures" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    runs = pd.read_csv(run / "runs.csv").set_index("variant")
    sanity = pd.read_csv(run / "analysis" / "pai_sanity.csv").set_index(["network", "check"])
    one_seed = 100 * (runs.loc["snip-shuffled", "test_acc"] - runs.loc["snip", "test_acc"])
    assert sanity.loc[("snip", "shuffled"), "effect_points_mean"] == pytest.approx(one_seed)
    assert set(sanity.index) == {(m, c) for m in (*METHODS, "ticket") for c in ("shuffled", "reinit")} | {
        (m, "inverted") for m in RANKED
    }
    accuracy = pd.read_csv(run / "analysis" / "pai_accuracy.csv")
    assert set(accuracy["network"]) == {"dense", "ticket", *METHODS} and not accuracy["collapsed"].any()
    claims = pd.read_csv(run / "analysis" / "pai_claims.csv").set_index("claim")
    assert claims.loc["1_snip", "verdict"] == "not measured"  # no level at Pm <= 21.1% here
    assert claims.loc["5_synflow", "verdict"].startswith("holds: never collapses (down to Pm 64.1%")
    summary = (run / "summary.md").read_text()
    for title in (
        "accuracy and early stop against Pm",
        "the sanity checks",
        "per-layer densities",
        "the claims",
    ):
        assert f"\n## Pruning at initialisation: {title}\n" in summary, title


def test_pai_compare_takes_the_controls_from_another_experiments_runs_table(tmp_path):
    shutil.copytree(ROOT / ".test" / "config", tmp_path / "config")
    (tmp_path / "config" / "compare.yaml").write_text(yaml.safe_dump({"pai": {"compare": "paper"}}))
    target = "results/tiny-pai/analysis/pai_accuracy.csv"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", target, "--directory", str(tmp_path), "--configfile",
         str(tmp_path / "config" / "pai.yaml"), str(tmp_path / "config" / "compare.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=HUNG, env=local_env(),
    )  # fmt: skip
    said = result.stdout + result.stderr
    assert result.returncode != 0 and "Missing input files for rule pai_accuracy" in said
    assert "results/paper/runs.csv" in said  # its input, which no rule of this experiment makes
