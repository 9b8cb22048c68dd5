"""A job from its Snakemake description (lottery.jobs): plain values from the ``snakemake`` object,
its failure in its log, its outputs with the umask's permissions, and a job whose Snakemake is gone
stops and writes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from lottery import jobs, model
from lottery.desc import to_params
from lottery.fetch import MNIST_FILES
from lottery.jobs import Job

from .conftest import HUNG, ROOT, SAMPLE

# The committed sample's files and checksums (.test/config/config.yaml's data.files)
SAMPLE_FILES = {
    key: (spec["name"], spec["sha256"])
    for key, spec in yaml.safe_load((ROOT / ".test" / "config" / "config.yaml").read_text())["data"][
        "files"
    ].items()
}

TRAINING = {
    "iterations": 200,
    "eval_every": 50,
    "test_every": 50,
}  # lottery.desc.to_params: defaults left out
REPLICATE = {"init_seed": 1, "data_order_seed": 1, "split_seed": 0, "controls_offset": 10_000}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """θ0, the decoded MNIST sample and its split, as the workflow writes them."""
    folder = tmp_path_factory.mktemp("inputs")
    files = {k: str(folder / f"{k}.safetensors") for k in ("init", "dataset", "split")}
    architecture = to_params(model.Architecture())
    raw = {k: SAMPLE / name for k, (name, _) in MNIST_FILES.items()}
    jobs.decode_dataset(Job(input=raw, output={"dataset": files["dataset"]}))
    split = {"validation_size": 200, "seed": 0, "architecture": architecture, "batch_size": 60}
    jobs.split_dataset(
        Job(input={"dataset": files["dataset"]}, output={"split": files["split"]}, params=split)
    )
    jobs.initialise(
        Job(input={}, output={"init": files["init"]}, params={"architecture": architecture, "seed": 1})
    )
    return files


def dense_job(inputs: dict[str, str], out: Path, iterations: int = 200) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    return {
        "input": dict(inputs),
        "output": {k: str(out / f"{k}{ext}") for k, ext in
                   [("weights", ".safetensors"), ("mask", ".safetensors"), ("metrics", ".json"), ("curve", ".csv")]},
        "params": {"training": TRAINING | {"iterations": iterations}, "replicate": REPLICATE},
        "wildcards": {"replicate": "seed-1"},
        "log": [str(out / "job.log")],
        "threads": 1,
    }  # fmt: skip


def run_job(job: dict, umask: int | None = None, **kwargs) -> subprocess.CompletedProcess:
    """The job in a process of its own, as a rule's script runs it."""
    code = f"from lottery import jobs; jobs.run('train_dense', {job!r})"
    if umask is not None:
        code = f"import os; os.umask({umask}); {code}"
    return subprocess.run([sys.executable, "-c", code], **kwargs)


def test_a_failing_job_logs_its_error_and_writes_nothing(inputs, tmp_path):
    job = dense_job(inputs, tmp_path / "failing")
    job["input"]["init"] = str(tmp_path / "missing-init.safetensors")
    result = run_job(job, capture_output=True, text=True)
    assert result.returncode != 0 and "missing-init.safetensors" in result.stderr
    assert not any(Path(p).exists() for p in job["output"].values())
    text = Path(job["log"][0]).read_text()  # the log: file says why too, once
    assert text.count("job train_dense failed: ValueError") == 1 and "missing-init.safetensors" in text


def test_a_job_logs_what_it_cost(inputs, tmp_path):
    job = dense_job(inputs, tmp_path / "cost", iterations=20)
    run_job(job, check=True)
    assert "step train_dense finished" in Path(job["log"][0]).read_text()
    assert "job train_dense: wall " in Path(job["log"][0]).read_text()


def test_a_job_takes_its_values_from_the_snakemake_object():
    from types import SimpleNamespace

    from snakemake.iocontainers import InputFiles, Namedlist

    files = InputFiles(["round-1/mask.safetensors", "round-2/mask.safetensors", "init.safetensors"])
    files._set_name("ticket_masks", 0, 2)
    files._set_name("init", 2)
    job = SimpleNamespace(
        rule="train_random",
        input=files,
        output=Namedlist(fromdict={"weights": "final.safetensors"}),
        params=Namedlist(fromdict={"training": {"iterations": 10}}),
        wildcards=Namedlist(fromdict={"round": "2"}),
        log=Namedlist(["round-2.log"]),
        threads=1,
    )
    assert Job.of(job, variant="random") == Job(
        input={"ticket_masks": ["round-1/mask.safetensors", "round-2/mask.safetensors"],
               "init": "init.safetensors"},
        output={"weights": "final.safetensors"},
        params={"training": {"iterations": 10}, "variant": "random"},
        wildcards={"round": "2"},
        log=["round-2.log"],
        threads=1,
    )  # fmt: skip


@pytest.mark.faults
def test_a_job_whose_snakemake_is_gone_stops_and_writes_nothing(inputs, tmp_path):
    """kill -9 of Snakemake leaves its jobs running: they must stop, not overwrite a later rerun's files.
    A stand-in 'Snakemake' process is killed while a long job runs."""
    from lottery import owner

    fake = subprocess.Popen(["sleep", "60"])
    env = os.environ | {owner.ENVIRONMENT: owner.describe(fake.pid)}
    job = dense_job(inputs, tmp_path / "orphan", iterations=1_000_000)
    code = f"from lottery import jobs; jobs.run('train_dense', {job!r})"
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # the job is training
    assert process.poll() is None, process.stderr.read()
    fake.send_signal(signal.SIGKILL)
    fake.wait()
    assert process.wait(timeout=HUNG) != 0  # a million iterations would take hours: it stopped
    assert not any(Path(p).exists() for p in job["output"].values())
    assert "is gone: stopped, nothing written" in Path(job["log"][0]).read_text()


@pytest.mark.faults
@pytest.mark.faults
def test_a_job_writes_with_its_umask(inputs, tmp_path):
    modes = {}
    for mask in (0o077, 0o022):
        job = dense_job(inputs, tmp_path / f"umask-{mask:o}", iterations=50)
        run_job(job, umask=mask, check=True)
        modes[mask] = {Path(p).stat().st_mode & 0o777 for p in job["output"].values()}
    assert modes == {0o077: {0o600}, 0o022: {0o644}}


def test_the_fetch_and_the_runs_table_start_without_pytorch(tmp_path):
    """Jobs that need no PyTorch do not import it (a job's start is seconds shorter)."""
    fetch = {
        "input": {},
        "output": {key: str(tmp_path / name) for key, (name, _) in SAMPLE_FILES.items()},
        "params": {"files": {k: {"name": n, "sha256": s} for k, (n, s) in SAMPLE_FILES.items()},
                   "sources": [str(SAMPLE)], "retries": 1, "timeout": 5},
        "log": [str(tmp_path / "fetch.log")],
    }  # fmt: skip
    code = (
        "import sys; from lottery import jobs; "
        f"jobs.run('fetch_dataset', {fetch!r}); "
        f"jobs.run('collect_runs', {{'input': {{'metrics': []}}, 'output': {{'runs': {str(tmp_path / 'runs.csv')!r}}}, "
        "'params': {'experiment': 'x'}}); "
        f"jobs.run('concatenate_runs', {{'input': {{'runs': [{str(tmp_path / 'runs.csv')!r}]}}, "
        f"'output': {{'runs': {str(tmp_path / 'all.csv')!r}}}}}); "
        f"jobs.run('replicate_provenance', {{'input': {{'provenance': []}}, 'wildcards': {{'replicate': 'seed-1'}}, "
        f"'output': {{'provenance': {str(tmp_path / 'provenance.json')!r}}}}}); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert all(Path(p).is_file() for p in fetch["output"].values())
    assert (tmp_path / "runs.csv").is_file() and (tmp_path / "all.csv").is_file()
    assert (tmp_path / "provenance.json").is_file()
