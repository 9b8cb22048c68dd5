"""A training job starts at once: it imports no PyTorch (seconds of a job's start) where its backend
is the native trainer and it draws nothing with PyTorch's generators (lottery.jobs.uses_torch); nor do
the jobs that decode and split the data (PyTorch's permutation and statistics, by numpy)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lottery import jobs, kernels, model
from lottery.desc import Network, Replicate, Schedule, to_params
from lottery.fetch import MNIST_FILES

from .conftest import SAMPLE
from .test_data import SAMPLE_SUMS

MODULES = ("jobs", "data", "io", "pruning", "order", "model", "variants", "reductions", "fetch")


def test_the_training_jobs_modules_import_no_pytorch():
    imports = "; ".join(f"import lottery.{name}" for name in MODULES)
    code = f"import sys; {imports}; assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    subprocess.run([sys.executable, "-c", code], check=True)


def _job(params: dict, variant: str | None = None) -> jobs.Job:
    return jobs.Job(input={}, output={}, params=params | ({"variant": variant} if variant else {}))


def test_which_jobs_import_pytorch():
    native, reference = {"training": {}}, {"training": {"backend": "torch"}}
    for name in jobs.TRAINING:
        assert not jobs.uses_torch(name, _job(native))
        assert jobs.uses_torch(name, _job(reference))
    for variant in ("reinit", "rewind", "ticket", "random"):
        assert not jobs.uses_torch("train_control", _job(native, variant))
        assert not jobs.uses_torch("train_instability_copy", _job(native, variant))
    assert not jobs.uses_torch("train_control", _job(native, "random"))  # PyTorch's draws, by numpy
    assert not jobs.uses_torch("train_instability_copy", _job(native, "random"))
    # a pruning method that takes gradients (SNIP, GraSP, SynFlow) imports PyTorch; the others do not
    for method, imports in (("snip", True), ("synflow", True), ("magnitude_init", False), ("erk", False)):
        assert jobs.uses_torch("train_pai", _job(native | {"method": method})) == imports, method
    ticket = {"schedule": {"rate": 0.2, "rounds": 1}, "round": 1, "variant": "ticket"}
    assert jobs.uses_torch("train_ticket", _job(native | {"network": ticket | {"method": "snip"}}))
    assert not jobs.uses_torch("train_ticket", _job(native | {"network": ticket | {"method": "layerwise"}}))
    for name in ("initialise", "replicate_supermasks"):
        assert jobs.uses_torch(name, _job(native))  # PyTorch's generator, the analyses' tensors
    for name in ("fetch_dataset", "decode_dataset", "split_dataset"):
        assert not jobs.uses_torch(name, _job(native))
    # params the job cannot read: PyTorch's threads pinned all the same; the job says what is wrong
    assert jobs.uses_torch("train_dense", _job({"training": {"no_such_key": 1}}))


TRAINING = {"iterations": 40, "eval_every": 20, "test_every": 20}
REPLICATE = Replicate(1, 1, 0)
EXTENSIONS = {"weights": ".safetensors", "mask": ".safetensors", "metrics": ".json", "curve": ".csv"}
TICKET = Network.ticket(Schedule(rate=0.2, rounds=2), 1, "layerwise")


def test_data_and_training_jobs_run_without_pytorch(tmp_path):
    """The data decoded and split, the dense network, a ticket round, a rewinding point, the controls
    (random pruning too) and an instability copy, one after the other in one process as their rules
    run them: no PyTorch."""
    if kernels.load() is None:
        pytest.skip(f"the native trainer's kernels cannot be built here ({kernels.unavailable_reason})")
    inputs = {k: str(tmp_path / f"{k}.safetensors") for k in ("init", "dataset", "split", "reinit")}
    sample_files = {key: {"name": name, "sha256": SAMPLE_SUMS[key]} for key, (name, _) in MNIST_FILES.items()}
    for seed, init in ((1, inputs["init"]), (REPLICATE.reinit_seed, inputs["reinit"])):
        architecture = to_params(model.Architecture())
        jobs.initialise(
            jobs.Job(input={}, output={"init": init}, params={"architecture": architecture, "seed": seed})
        )
    data = {"dataset": inputs["dataset"], "split": inputs["split"]}
    params = {"training": TRAINING, "replicate": to_params(REPLICATE)}
    outputs = ("weights", "mask", "metrics", "curve")

    def out(name: str, keys: tuple[str, ...] = outputs) -> dict[str, str]:
        folder = tmp_path / name
        folder.mkdir()
        return {key: str(folder / f"{key}{EXTENSIONS[key]}") for key in keys}

    dense, ticket = out("dense"), out("ticket")
    ticket_mask = ticket["mask"]
    runs = [
        ("decode_dataset", {
            "input": {k: str(SAMPLE / name) for k, (name, _) in MNIST_FILES.items()},
            "output": {"dataset": inputs["dataset"]},
            "params": {"files": sample_files},  # their checksums verified
        }),
        ("split_dataset", {
            "input": {"dataset": inputs["dataset"]}, "output": {"split": inputs["split"]},
            "params": {"validation_size": 200, "seed": 0, "architecture": to_params(model.Architecture()),
                       "batch_size": 60},
        }),
        ("train_dense", {"input": {"init": inputs["init"], **data}, "output": dense, "params": params}),
        ("train_ticket", {
            "input": {"init": inputs["init"], "previous_weights": dense["weights"],
                      "previous_mask": dense["mask"], **data},
            "output": ticket, "params": params | {"network": to_params(TICKET)},
        }),
        ("rewind_point", {
            "input": {"init": inputs["init"], **data}, "output": {"theta": str(tmp_path / "theta-20.safetensors")},
            "params": params, "wildcards": {"iteration": "20"},
        }),
        ("train_control", {
            "input": {"init": inputs["reinit"], "mask": ticket_mask, **data},
            "output": out("reinit", ("weights", "metrics", "curve")),
            "params": params | {"network": to_params(TICKET), "variant": "reinit"},
        }),
        ("train_control", {
            "input": {"init": str(tmp_path / "theta-20.safetensors"), "mask": ticket_mask, **data},
            "output": out("rewind", ("weights", "metrics", "curve")),
            "params": params | {"network": to_params(TICKET), "variant": "rewind"},
            "wildcards": {"iteration": "20"},
        }),
        ("train_control", {
            "input": {"init": inputs["init"], "ticket_masks": [ticket_mask], **data},
            "output": out("random", ("weights", "mask", "metrics", "curve")),
            "params": params | {"network": to_params(TICKET), "variant": "random"},
            "wildcards": {"draw": "2"},
        }),
        ("train_instability_copy", {
            "input": {"init": inputs["init"], "mask": ticket_mask, **data},
            "output": out("copy", ("weights", "metrics", "curve")),
            "params": params | {"network": to_params(TICKET), "variant": "ticket", "iteration": 20, "twin": "b"},
        }),
    ]  # fmt: skip
    code = "; ".join(
        ["import sys", "from lottery import jobs"]
        + [f"jobs.run({name!r}, {description!r})" for name, description in runs]
        + ["assert 'torch' not in sys.modules, 'torch imported'"]
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    written = [path for _, description in runs for path in description["output"].values()]
    assert all(Path(path).is_file() for path in written)


def test_a_process_knows_how_long_ago_it_started():
    code = (
        "import time; time.sleep(0.3); from lottery.logs import seconds_since_process_start as s; print(s())"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert 0.3 <= float(done.stdout) < 3600  # the clock's tick is 10 ms; no upper bound on a slow day


def test_training_logs_when_its_first_step_came(tiny_data, caplog):
    from lottery.desc import TrainingHparams
    from lottery.training import train

    init = model.glorot_normal_init(model.Architecture(input_size=20, hidden=(16, 8), num_classes=4), 1)
    masks = {n: (w != 0).float() for n, w in model.prunable(init).items()}
    with caplog.at_level("INFO", logger="lottery"):
        train(init, masks, tiny_data, TrainingHparams(iterations=2, eval_every=1, batch_size=20), 0)
    assert re.search(
        r"first training step \d+\.\d\d s after the process started \((native|torch) trainer\)", caplog.text
    )
