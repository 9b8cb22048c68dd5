from __future__ import annotations

import os

import pytest
import torch

from lottery.data import TensorData

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
SAMPLE = ROOT / ".test" / "data" / "mnist-sample"
# Seconds a test's Snakemake run or other child process may take before it counts as hung: far above
# the slowest machine kind under load (the tiny workflow took 11 min on a 2-core AVX2 EPYC beside
# another test file), within CI's 90 minutes. No test depends on the machine's speed.
HUNG = 3600


def local_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `snakemake` run on this machine (no cluster): this process's, with SLURM's
    tools pointed at an empty configuration, which they refuse at once. Snakemake imports every executor
    plugin it finds when it starts, and the SLURM plugin (the test extra) asks `scontrol show config`
    for the cluster's MinJobAge as it is imported; where SLURM is installed but its controller is not
    running (tests/slurm/setup.sh run once, its daemons since gone), scontrol waits 9 s for it first:
    9 s of each of the suite's ~120 `snakemake` runs. A local run never uses SLURM."""
    return os.environ | {"SLURM_CONF": os.devnull} | (extra or {})


def synthetic_data(n_train: int = 240, n_val: int = 60, n_test: int = 60, dim: int = 20, seed: int = 0):
    """A small learnable classification problem: labels from a fixed random linear map."""
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(dim, 4, generator=g)

    def part(n):
        x = torch.randn(n, dim, generator=g)
        return x, (x @ proj).argmax(dim=1)

    (tx, ty), (vx, vy), (sx, sy) = part(n_train), part(n_val), part(n_test)
    return TensorData(tx, ty, vx, vy, sx, sy)


def with_background(data, fraction=0.8, seed=0):
    """``data`` with most inputs set to one background value (like MNIST's blank pixels)."""
    g = torch.Generator().manual_seed(seed)
    background = -0.42

    def blank(x):
        x = x.clone()
        x[torch.rand(x.shape, generator=g) < fraction] = background
        x[0] = background  # an example that is all background
        return x

    return type(data)(blank(data.train_x), data.train_y, blank(data.val_x), data.val_y,
                      blank(data.test_x), data.test_y, background=background)  # fmt: skip


@pytest.fixture
def tiny_data() -> TensorData:
    return synthetic_data()


# The longest files first (with two at a time on the 2-core AVX2 EPYC, 2026-12-04: test_model_workflow
# 3.6 min, test_faults 3.2, test_workflow 3.1, test_pai_workflow 1.8, test_bad_input 1.5, test_records
# 1.0, the rest under 35 s each; test_slurm, through a running SLURM, minutes): with two files at a
# time (pytest-xdist, pyproject's addopts, which keep this order), none is left running alone at the end.
LONGEST_FIRST = (
    "test_model_workflow.py",
    "test_slurm.py",
    "test_faults.py",
    "test_workflow.py",
    "test_pai_workflow.py",
    "test_bad_input.py",
    "test_records.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's own order is kept
