"""The warm worker (lottery.worker): a job run there gives bitwise what its own process gives, reports
its failures, stops when its script goes away, and the worker exits when idle."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from lottery import model, steps, worker
from lottery.data import MNIST_FILES
from lottery.worker import WorkerJobError, describe, run_in_worker, worker_address, worker_key

from .conftest import SAMPLE

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
    steps.decode_dataset({k: SAMPLE / name for k, (name, _) in MNIST_FILES.items()}, files["dataset"])
    steps.split_dataset(files["dataset"], 200, 0, files["split"], model.Architecture(), 60)
    steps.initialise(model.Architecture(), 1, files["init"])
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


@pytest.fixture
def address(tmp_path, monkeypatch) -> Path:
    """A worker of the test's own, which exits soon after its last job."""
    monkeypatch.setattr(worker, "IDLE_SECONDS", 3.0)
    return tmp_path / "worker.sock"


def test_a_job_in_the_worker_is_bitwise_the_job_in_its_own_process(inputs, address, tmp_path):
    in_worker = dense_job(inputs, tmp_path / "worker")
    assert run_in_worker(address, "train_dense", in_worker)
    # The job ran in a child of the worker (still up, idle), which logged it.
    assert re.search(r"job process \d+", address.with_suffix(".log").read_text())
    own = dense_job(inputs, tmp_path / "own")
    code = f"from lottery import jobs; jobs.run('train_dense', {own!r})"
    subprocess.run([sys.executable, "-c", code], check=True)
    for key, path in own["output"].items():
        assert Path(path).read_bytes() == Path(in_worker["output"][key]).read_bytes(), key
    assert "step train_dense finished" in Path(in_worker["log"][0]).read_text()


def test_a_failing_job_reports_its_error_and_traceback(inputs, address, tmp_path, capfd):
    job = dense_job(inputs, tmp_path / "failing")
    job["input"]["init"] = str(tmp_path / "missing-init.safetensors")
    with pytest.raises(WorkerJobError, match="train_dense failed in the warm worker"):
        run_in_worker(address, "train_dense", job)
    assert "missing-init.safetensors" in capfd.readouterr().err  # the job's stderr is the script's
    assert not any(Path(p).exists() for p in job["output"].values())
    # ... and its log: file says why too, once
    assert Path(job["log"][0]).read_text().count("job train_dense failed: ValueError") == 1
    own = dense_job(inputs, tmp_path / "failing-own")
    own["input"]["init"] = job["input"]["init"]
    code = f"from lottery import jobs; jobs.run('train_dense', {own!r})"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode != 0
    text = Path(own["log"][0]).read_text()
    assert text.count("job train_dense failed: ValueError") == 1 and "missing-init.safetensors" in text


def test_a_job_that_cannot_start_in_the_worker_says_so(inputs, address, tmp_path, monkeypatch):
    # the child cannot enter the script's working directory
    monkeypatch.setattr(worker.os, "getcwd", lambda: str(tmp_path / "gone"))
    with pytest.raises(WorkerJobError, match="could not start in the warm worker: FileNotFoundError"):
        run_in_worker(address, "train_dense", dense_job(inputs, tmp_path / "never"))


@pytest.mark.faults
def test_a_cancelled_job_stops_and_leaves_no_file(inputs, address, tmp_path):
    job = dense_job(inputs, tmp_path / "cancelled", iterations=1_000_000)
    code = (
        "from pathlib import Path; from lottery import worker; "
        f"worker.run_in_worker(Path({str(address)!r}), 'train_dense', {job!r})"
    )
    script = subprocess.Popen([sys.executable, "-c", code])
    log = Path(job["log"][0])
    deadline = time.monotonic() + 120
    while not (log.exists() and address.with_suffix(".log").exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # training
    pid = int(re.findall(r"job process (\d+)", address.with_suffix(".log").read_text())[-1])
    script.send_signal(signal.SIGKILL)  # as Snakemake cancels a job
    script.wait()
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)
    assert sorted(p.name for p in (tmp_path / "cancelled").iterdir()) == ["job.log"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_worker_exits_when_idle(tmp_path):
    address = tmp_path / "idle.sock"
    process = subprocess.Popen([sys.executable, "-m", "lottery.worker", str(address), "1"])
    assert process.wait(timeout=120) == 0
    assert not address.exists()
    # it leaves nothing behind: its socket, lock and log go with it
    assert not address.with_suffix(".lock").exists() and not address.with_suffix(".log").exists()


def test_jobs_run_in_their_own_process_where_the_worker_is_off(monkeypatch):
    temporary = Path(tempfile.mkdtemp())  # short: Unix socket paths are limited to ~100 characters
    monkeypatch.setattr("tempfile.tempdir", str(temporary))
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("LOTTERY_WORKER", raising=False)
    address = worker_address()
    assert address is not None and address.parent == temporary / f"lottery-worker-{os.getuid()}"
    assert address.parent.stat().st_mode & 0o777 == 0o700
    monkeypatch.setenv("LOTTERY_WORKER", "0")
    assert worker_address() is None
    monkeypatch.setenv("LOTTERY_WORKER", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "42")  # each SLURM job has its own allocation
    assert worker_address() is None
    monkeypatch.delenv("SLURM_JOB_ID")
    address.parent.chmod(0o777)  # a folder others could write to: its sockets are not trusted
    assert worker_address() is None
    shutil.rmtree(temporary)


def test_a_worker_serves_only_jobs_with_the_same_import_environment(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    key = worker_key()
    assert worker_key() == key
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert worker_key() != key
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert worker_key() != key
    monkeypatch.setenv("SNAKEMAKE_ANYTHING", "1")  # the rest of the environment is the job's own
    monkeypatch.delenv("PYTHONPATH")
    assert worker_key() == key


def test_describe_takes_plain_values_from_the_snakemake_object():
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
    assert describe(job) == {
        "input": {"ticket_masks": ["round-1/mask.safetensors", "round-2/mask.safetensors"],
                  "init": "init.safetensors"},
        "output": {"weights": "final.safetensors"},
        "params": {"training": {"iterations": 10}},
        "wildcards": {"round": "2"},
        "log": ["round-2.log"],
        "threads": 1,
    }  # fmt: skip
    job.params = Namedlist(fromdict={"training": object()})
    with pytest.raises(TypeError, match="rule train_random"):
        describe(job)


@pytest.mark.faults
def test_a_job_whose_snakemake_is_gone_stops_and_writes_nothing(inputs, address, tmp_path):
    """kill -9 of Snakemake leaves its jobs running: they must stop, not overwrite a later rerun's files.
    A stand-in 'Snakemake' process is killed while a long job runs, in its own process and in the worker."""

    from lottery import owner

    for where in ("own process", "worker"):
        fake = subprocess.Popen(["sleep", "60"])
        env = os.environ | {owner.ENVIRONMENT: owner.describe(fake.pid)}
        job = dense_job(inputs, tmp_path / where.replace(" ", "-"), iterations=1_000_000)
        code = (
            f"from lottery import jobs, worker; from pathlib import Path; job = {job!r}\n"
            f"if {where == 'worker'}: assert worker.run_in_worker(Path({str(address)!r}), 'train_dense', job)\n"
            "else: jobs.run('train_dense', job)"
        )
        process = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        time.sleep(8)  # the job is training
        assert process.poll() is None, process.stderr.read()
        fake.send_signal(signal.SIGKILL)
        fake.wait()
        assert process.wait(timeout=60) != 0  # a million iterations would take hours: it stopped
        assert not any(Path(p).exists() for p in job["output"].values()), where
        assert "is gone: stopped, nothing written" in Path(job["log"][0]).read_text(), where


@pytest.mark.faults
def test_nothing_is_put_in_place_for_a_snakemake_that_is_gone(tmp_path, monkeypatch):
    from lottery import io, owner

    assert owner.alive(owner.describe())
    pid, started = owner.describe().split(":")
    assert not owner.alive(f"{pid}:{int(started) + 1}")  # this pid, but another process's start: reused
    dead = subprocess.Popen(["true"])
    dead.wait()
    monkeypatch.setenv(owner.ENVIRONMENT, f"{dead.pid}:")
    with pytest.raises(owner.OwnerGone, match="is gone: not writing"):
        io.write_text(tmp_path / "out.txt", "stale")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.faults
def test_a_symlinked_worker_folder_is_refused(tmp_path, monkeypatch):
    """Another local user could own $TMPDIR/lottery-worker-<uid> as a link to a folder of theirs."""
    temporary = Path(tempfile.mkdtemp())
    monkeypatch.setattr("tempfile.tempdir", str(temporary))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("LOTTERY_WORKER", "1")
    target = temporary / "theirs"
    target.mkdir(mode=0o700)
    (temporary / f"lottery-worker-{os.getuid()}").symlink_to(target)
    assert worker_address() is None
    shutil.rmtree(temporary)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to serve a socket as another user")
@pytest.mark.faults
def test_a_worker_of_another_user_is_not_trusted():
    from lottery.worker import _connect

    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    os.chmod(folder, 0o777)
    address = folder / "other.sock"
    code = (
        "import os, socket, time; os.setgid(65534); os.setuid(65534); "
        f"s = socket.socket(socket.AF_UNIX); s.bind({str(address)!r}); s.listen(1); time.sleep(30)"
    )
    other = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(100):
            if address.exists():
                break
            time.sleep(0.05)
        assert address.exists()
        assert _connect(address) is None
    finally:
        other.kill()
        shutil.rmtree(folder)


@pytest.mark.faults
def test_a_job_in_the_worker_runs_with_its_own_umask(inputs, address, tmp_path):
    """The worker's child takes the script's umask (and CPUs and niceness), not the worker's."""
    modes = {}
    for mask in (0o077, 0o022):
        job = dense_job(inputs, tmp_path / f"umask-{mask:o}", iterations=50)
        code = (
            f"import os; os.umask({mask}); from pathlib import Path; from lottery import worker; "
            f"assert worker.run_in_worker(Path({str(address)!r}), 'train_dense', {job!r})"
        )
        subprocess.run([sys.executable, "-c", code], check=True)
        modes[mask] = {Path(p).stat().st_mode & 0o777 for p in job["output"].values()}
    assert modes == {0o077: {0o600}, 0o022: {0o644}}


@pytest.mark.faults
def test_process_state_travels_to_the_child():
    from lottery.worker import process_state

    code = (
        "import os; from lottery.worker import apply_process_state, process_state; "
        "apply_process_state({'umask': 0o027, 'cpus': [0], 'nice': os.getpriority(os.PRIO_PROCESS, 0) + 3}); "
        "s = process_state(); print(s['umask'], s['cpus'], s['nice'])"
    )
    before = process_state()
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == str(0o027) and out[1] == "[0]" and int(out[2]) == before["nice"] + 3


def test_an_edit_that_keeps_size_and_time_gets_a_fresh_worker(tmp_path, monkeypatch):
    import lottery

    package = tmp_path / "lottery"
    shutil.copytree(Path(lottery.__file__).parent, package)
    monkeypatch.setattr(worker, "__file__", str(package / "worker.py"))
    key = worker_key()
    target = package / "desc.py"
    status = target.stat()
    text = target.read_text()
    target.write_text(text.replace("1.2e-3", "1.3e-3", 1))  # same size
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))  # same time
    assert target.stat().st_size == status.st_size
    assert worker_key() != key
