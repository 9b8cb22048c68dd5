"""The workflow through a real SLURM with the shipped profile (profiles/slurm), no mock.

Needs a running SLURM whose default partition has an idle node - `sudo bash tests/slurm/setup.sh`
starts a one-node cluster on this machine (CI does so before the tests) - and the executor plugin
(`pip install -e '.[test]'`). Without them the test is skipped, saying why.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT
from .test_workflow import RESULTS, copy_test_dir, snakemake

pytestmark = pytest.mark.slurm

# A cut-down tiny config: one seed, two rounds of 20%, the reinit control, none of the analyses of
# what the tickets are; 5 cluster jobs.
OVERLAY = {
    "seeds": {"init": [1]},
    "pruning": {"schedules": [{"rate": 0.2, "rounds": 2}], "sweep": {"ratios": [], "rounds": []}},
    "variants": {"reinit": True, "random": False, "rewind_iterations": []},
    "analysis": {
        name: {"enabled": False} for name in ("instability", "supermasks", "mask_overlap", "pixel_map")
    },
}
CLUSTER_RULES = {"train_dense": 1, "train_ticket": 2, "train_reinit": 2}


def slurm_unavailable() -> str | None:
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        return "snakemake-executor-plugin-slurm is not installed (pip install -e '.[test]')"
    for tool in ("sbatch", "squeue", "sinfo"):
        if shutil.which(tool) is None:
            return f"no SLURM here: {tool} not found (sudo bash tests/slurm/setup.sh starts one)"
    states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    if states.returncode != 0:
        return f"SLURM does not answer: sinfo failed ({states.stderr.strip()[:200]})"
    if not {"idle", "mixed"} & set(states.stdout.split()):
        return f"no idle SLURM node (sinfo states: {states.stdout.split()})"
    return None


def _with_overlay(workdir: Path) -> Path:
    path = workdir / "config" / "slurm-test.yaml"
    path.write_text(yaml.safe_dump(OVERLAY))
    return path


def test_tiny_config_through_slurm(tmp_path):
    reason = slurm_unavailable()
    if reason:
        pytest.skip(reason)
    cluster = copy_test_dir(tmp_path / "cluster")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    start = time.perf_counter()
    result = subprocess.run(
        ["timeout", "-s", "KILL", "900", sys.executable, "-m", "snakemake", "--profile", "profiles/slurm",
         "--directory", str(cluster), "--configfile", str(_with_overlay(cluster)),
         "--slurm-status-command", "squeue", "--slurm-keep-successful-logs"],
        cwd=ROOT, capture_output=True, text=True, env=env,
    )  # fmt: skip
    cluster_seconds = time.perf_counter() - start
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]

    # Every training job ran as a SLURM job (its log is in the plugin's log folder); nothing else did.
    logs = cluster / ".snakemake" / "slurm_logs"
    submitted = {rule: len(list(logs.glob(f"rule_{rule}/**/*.log"))) for rule in CLUSTER_RULES}
    assert submitted == CLUSTER_RULES, submitted
    assert not (logs / "rule_collect_runs").exists() and not (logs / "rule_fetch_dataset").exists()

    # The same results as a local run, to the byte.
    local = copy_test_dir(tmp_path / "local")
    start = time.perf_counter()
    local_result = snakemake(local, "--configfile", str(_with_overlay(local)))
    local_seconds = time.perf_counter() - start
    assert local_result.returncode == 0, local_result.stderr[-3000:]
    runs = (cluster / RESULTS / "runs.csv").read_bytes()
    assert runs == (local / RESULTS / "runs.csv").read_bytes()
    assert len(runs.decode().splitlines()) == 1 + sum(CLUSTER_RULES.values())
    print(f"tiny cut-down config: {cluster_seconds:.0f} s through SLURM, {local_seconds:.0f} s locally")
