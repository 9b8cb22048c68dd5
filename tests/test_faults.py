"""Faults: `kill -9` at random points, a killed run's orphans, altered artifacts. Run alone with
`pytest -m faults`. Each workflow case runs a small experiment (one seed, two ticket rounds, the
reinit control, the analyses) on a temporary copy of `.test`."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml

from lottery.io import load_tensors, read_json, save_tensors

from .conftest import HUNG, ROOT, local_env
from .test_workflow import RESULTS, copy_test_dir

pytestmark = pytest.mark.faults

SMALL = {
    "seeds": {"split": 0, "init": [1]},
    "pruning": {"schedules": [{"rate": 0.2, "rounds": 2}], "sweep": {"ratios": [], "rounds": []}},
    "variants": {"reinit": True, "random": False, "rewind_iterations": [], "rounds": "auto"},
    "analysis": {
        "bootstrap": 100,
        "paper": False,
        **{name: {"enabled": False} for name in ("instability", "supermasks", "mask_overlap", "pixel_map")},
    },
}
KILLS = 10


def small_workdir(dest: Path, **changes: dict) -> Path:
    copy_test_dir(dest)
    (dest / "config" / "small.yaml").write_text(yaml.safe_dump({**SMALL, **changes}))
    return dest


def command(workdir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir), "--configfile",
            str(workdir / "config" / "config.yaml"), str(workdir / "config" / "small.yaml"), *args]  # fmt: skip


def run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(workdir, *args), cwd=ROOT, capture_output=True, text=True, timeout=HUNG, env=local_env()
    )


def result_files(workdir: Path) -> dict[str, bytes]:
    """Every file the workflow leaves under results/ and resources/, but the timings of benchmark/ and
    of the networks' provenance.json."""
    return {
        str(p.relative_to(workdir)): p.read_bytes()
        for top in (RESULTS, "resources")
        for p in sorted((workdir / top).rglob("*"))
        if p.is_file() and "benchmarks" not in p.parts and p.name != "provenance.json"
    }


def processes_in(workdir: Path) -> list[psutil.Process]:
    """This run's processes: Snakemake and its jobs (all run in ``workdir``)."""
    found = []
    for p in psutil.process_iter(["cwd", "cmdline"]):
        if p.info["cwd"] == str(workdir) or str(workdir) in " ".join(p.info["cmdline"] or ()):
            found.append(p)
    return found


def kill_targets(workdir: Path, snakemake: subprocess.Popen) -> dict[str, list[psutil.Process]]:
    mine = [p for p in processes_in(workdir) if p.pid != snakemake.pid]
    return {
        "snakemake": [psutil.Process(snakemake.pid)],
        "job script": [p for p in mine if any(".snakemake/scripts" in a for a in p.cmdline())],
    }


def wait_gone(workdir: Path, seconds: float = 30) -> None:
    """A killed Snakemake's jobs stop on their own (lottery.owner): wait for it, fail if they don't."""
    deadline = time.monotonic() + seconds
    while (left := processes_in(workdir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running after Snakemake was killed: {[p.cmdline() for p in left]}"


@pytest.fixture(scope="module")
def uninterrupted_run(tmp_path_factory) -> Path:
    workdir = small_workdir(tmp_path_factory.mktemp("uninterrupted"))
    result = run(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


@pytest.fixture(scope="module")
def uninterrupted(uninterrupted_run) -> dict[str, bytes]:
    return result_files(uninterrupted_run)


def test_random_kills_then_a_rerun_give_the_uninterrupted_results(uninterrupted, tmp_path):
    """≥ 10 `kill -9` of Snakemake or a job's script, at random times; each killed run is followed
    by a rerun; the last one ends byte-identical."""
    seed = int(os.environ.get("LOTTERY_FAULT_SEED", "20261202"))
    print(f"kill points from random.Random({seed}) (set LOTTERY_FAULT_SEED to change)")
    rng = random.Random(seed)
    workdir = small_workdir(tmp_path)
    kills: list[str] = []
    while len(kills) < KILLS:
        snakemake = subprocess.Popen(
            command(workdir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=local_env()
        )
        while snakemake.poll() is None and len(kills) < KILLS:
            time.sleep(rng.uniform(0.5, 2.5))
            targets = kill_targets(workdir, snakemake)
            name = rng.choice(sorted(t for t, found in targets.items() if found))
            victim = rng.choice(targets[name])
            try:
                victim.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                continue  # it ended on its own meanwhile
            kills.append(f"{name} at {victim.pid}")
            if name == "snakemake":
                break
        ended_on_its_own = snakemake.wait(timeout=HUNG) == 0
        assert not ended_on_its_own or len(kills) == KILLS, f"the workflow ended after {len(kills)} kills"
        wait_gone(workdir)
        assert run(workdir, "--unlock").returncode == 0
    print("killed:", "; ".join(kills))
    result = run(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    after = result_files(workdir)
    assert sorted(after) == sorted(uninterrupted), "files differ: " + str(set(after) ^ set(uninterrupted))
    differ = [name for name in after if after[name] != uninterrupted[name]]
    assert not differ, differ
    print(f"{len(after)} files compared, 0 differ")
    assert not list(workdir.rglob("*.tmp")), "a half-written file was left behind"


def test_a_killed_runs_orphan_does_not_overwrite_a_rerun_with_a_changed_config(tmp_path):
    """The issue's scenario: Snakemake killed while a long training runs, the config changed, the
    workflow rerun; the orphan must stop and never replace the rerun's outputs."""
    workdir = small_workdir(tmp_path, training={"iterations": 1_000_000, "eval_every": 50, "test_every": 50})
    snakemake = subprocess.Popen(
        command(workdir), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=local_env()
    )
    deadline = time.monotonic() + 120
    while not any(
        ".snakemake/scripts" in " ".join(p.cmdline()) for p in processes_in(workdir) if p.pid != snakemake.pid
    ):
        assert time.monotonic() < deadline and snakemake.poll() is None, "no training job started"
        time.sleep(0.2)
    time.sleep(2)  # the long dense training is under way
    os.kill(snakemake.pid, signal.SIGKILL)
    snakemake.wait()
    (workdir / "config" / "small.yaml").write_text(yaml.safe_dump(SMALL))  # back to 200 iterations
    assert run(workdir, "--unlock").returncode == 0
    result = run(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    wait_gone(workdir)
    metrics = workdir / RESULTS / "seed-1" / "dense" / "metrics.json"
    assert read_json(metrics)["iterations"] == 200
    before = result_files(workdir)
    time.sleep(3)  # an orphan that kept going would write now
    assert result_files(workdir) == before
    dry = run(workdir, "-n")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr


def test_an_artifact_altered_in_place_is_refused_naming_it(tmp_path):
    path = tmp_path / "weights.safetensors"
    save_tensors(path, {"fc1.weight": torch.ones(4, 3), "fc1.mask": torch.ones(4, 3, dtype=torch.bool)})
    assert load_tensors(path)["fc1.weight"].sum() == 12
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01  # one bit of one weight: same size, still a valid safetensors file
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"{path}: its tensors do not match the digest"):
        load_tensors(path)


def test_an_artifact_altered_in_the_workflow_is_refused_by_the_next_job(
    uninterrupted_run, uninterrupted, tmp_path
):
    """A ticket round's mask altered in place (same size, newer mtime) in a copy of a finished run: the
    rerun's next job refuses it and the log names the file and says how to make it again, which gives
    the uninterrupted results."""
    workdir = tmp_path / "altered"
    shutil.copytree(uninterrupted_run, workdir, symlinks=True)
    mask = workdir / RESULTS / "seed-1" / "rate-0.2" / "ticket" / "round-1" / "mask.safetensors"
    data = bytearray(mask.read_bytes())
    data[-1] ^= 0x01
    mask.write_bytes(data)
    result = run(workdir)
    assert result.returncode != 0
    message = f"{mask.relative_to(workdir)}: its tensors do not match the digest"
    assert message in result.stdout + result.stderr
    assert f"`snakemake --forcerun {mask.relative_to(workdir)}`" in result.stdout + result.stderr
    result = run(workdir, "--forcerun", str(mask.relative_to(workdir)))  # as the message says
    assert result.returncode == 0, result.stderr[-5000:]
    assert result_files(workdir) == uninterrupted
