"""Models other than LeNet-300-100 through the whole workflow (issue 27): ``lenet5`` and ``conv2`` on
the committed MNIST sample, and ``lenet5`` on a small CIFAR-10 archive in the official binary format
that the test writes - dense network, ticket rounds, reinit and random controls, the tables, the
summary and the report, trained by the autograd trainer with the conv layers pruned at their rate."""

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
from .test_datasets import _archive, _batches, _cifar_arrays, _own_spec

ROUNDS = (1, 2)


def snakemake(workdir: Path, *configfiles: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Snakemake in ``workdir`` with config/conv.yaml and ``configfiles`` read after config.yaml."""
    files = [str(workdir / "config" / "conv.yaml"), *map(str, configfiles)]
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir), "--configfile", *files,
         *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=HUNG, env=local_env(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("models")
    shutil.copytree(ROOT / ".test" / "config", workdir / "config")
    shutil.copytree(ROOT / ".test" / "data", workdir / "data")
    return workdir


def _run(workdir: Path, experiment: str, report: bool = False, **config: object) -> Path:
    """Run the experiment ``experiment``: config/conv.yaml and then ``config`` (written as a config
    file of its own), and where asked its report."""
    own = workdir / "config" / f"{experiment}.yaml"
    own.write_text(yaml.safe_dump({"experiment": experiment, **config}))
    result = snakemake(workdir, own)
    assert result.returncode == 0, result.stderr[-5000:]
    if report:
        made = snakemake(workdir, own, extra=("--report", f"{experiment}.html"))
        assert made.returncode == 0, made.stderr[-3000:]
    return workdir / "results" / experiment


def _check_experiment(results: Path, weights: dict[str, tuple[int, ...]]) -> None:
    runs = pd.read_csv(results / "runs.csv")
    assert set(runs["variant"]) == {"dense", "ticket", "reinit", "random"}
    assert set(runs.loc[runs["variant"] == "ticket", "round"]) == set(ROUNDS)
    assert set(runs.loc[runs["variant"] == "random", "round"]) == {ROUNDS[-1]}  # variants.rounds final
    assert set(runs["backend"]) == {"autograd"}
    seed = results / "seed-1"
    init = load_arrays(seed / "init.safetensors")
    assert {n: tuple(t.shape) for n, t in init.items() if n.endswith(".weight")} == weights
    kinds = pruning.layer_kinds(list(weights))
    assert "conv" in kinds.values()
    for k in ROUNDS:
        folder = seed / "rate-0.2" / "ticket" / f"round-{k}"
        mask = load_arrays(folder / "mask.safetensors")
        rates = {"conv": 0.1, "fc": 0.2, "output": 0.1}  # conv_rate_factor and output_rate_factor 0.5
        for name, shape in weights.items():
            assert int(mask[name].sum()) == pruning.kept_count(int(np.prod(shape)), rates[kinds[name]], k)
        final = load_arrays(folder / "final.safetensors")
        for name in weights:  # pruned weights stayed exactly zero through training
            assert not final[name][mask[name] == 0].any()
        metrics = json.loads((folder / "metrics.json").read_text())
        assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["backend"] == "autograd"
    random = load_arrays(seed / "rate-0.2" / "random" / "round-2" / "mask.safetensors")
    assert pruning.kept_counts(random) == pruning.kept_counts(mask)
    summary = (results / "summary.md").read_text()
    assert "## Mask overlap" in summary


def test_lenet5_through_the_workflow(workdir):
    results = _run(workdir, "tiny-lenet5", report=True, model={"name": "lenet5"})
    _check_experiment(results, {
        "conv1.weight": (6, 1, 5, 5), "conv2.weight": (16, 6, 5, 5), "fc1.weight": (120, 400),
        "fc2.weight": (84, 120), "fc3.weight": (10, 84),
    })  # fmt: skip
    html = (workdir / "tiny-lenet5.html").read_text(errors="replace").replace("\\n", " ")
    assert "lenet5" in html and "784 inputs" in html


def test_conv2_through_the_workflow(workdir):
    results = _run(workdir, "tiny-conv2", model={"name": "conv2"})
    _check_experiment(results, {
        "conv1.weight": (64, 1, 3, 3), "conv2.weight": (64, 64, 3, 3), "fc1.weight": (256, 14 * 14 * 64),
        "fc2.weight": (256, 256), "fc3.weight": (10, 256),
    })  # fmt: skip


def test_lenet5_on_cifar10_in_the_official_binary_format(tmp_path):
    """A CIFAR-10 archive of 60 training and 12 test images (the official binary layout, written here)
    given with the offline option and its own checksums: decoded, split with per-channel statistics,
    and a lenet5 experiment on it (3 x 32 x 32 inputs) completes. Its own folder: the sample's config names MNIST files."""
    workdir = tmp_path
    folder = workdir / "data" / "cifar10-tiny"
    folder.mkdir(parents=True)
    raw = _archive(_batches(_cifar_arrays(seed=5)))
    (folder / "cifar-10-binary.tar.gz").write_bytes(raw)
    spec = _own_spec(raw, "cifar-10-binary.tar.gz", md5="md5")
    config = yaml.safe_load((ROOT / ".test" / "config" / "conv.yaml").read_text())
    config["data"] = {"name": "cifar10-tiny", "source": "data/cifar10-tiny", "validation_size": 20,
                      "files": {"archive": spec}}  # fmt: skip
    config["model"] = {"name": "lenet5"}
    (workdir / "config").mkdir()
    for name in ("config.yaml", "conv.yaml"):
        (workdir / "config" / name).write_text(yaml.safe_dump(config))
    results = _run(workdir, "tiny-cifar10")
    split = load_arrays(results / "data" / "split.safetensors")
    assert split["mean"].shape == (3,) and split["std"].shape == (3,)
    _check_experiment(results, {
        "conv1.weight": (6, 3, 5, 5), "conv2.weight": (16, 6, 5, 5), "fc1.weight": (120, 576),
        "fc2.weight": (84, 120), "fc3.weight": (10, 84),
    })  # fmt: skip
