"""The benchmark scripts' arithmetic (their measurements need the real data and minutes: not run here)."""

import importlib.util
import sys
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_workflow_overhead_splits_job_start_from_work(tmp_path):
    overhead = _load("workflow_overhead")
    log = tmp_path / "logs" / "default" / "seed-1" / "rate-0.2" / "ticket" / "round-1.log"
    tsv = tmp_path / "results" / "default" / "benchmarks" / "seed-1" / "rate-0.2" / "ticket" / "round-1.tsv"
    log.parent.mkdir(parents=True)
    tsv.parent.mkdir(parents=True)
    # Steps nest: the outermost one is the job's own work.
    log.write_text("x INFO step prune finished in 0.250 s\nx INFO step train_ticket finished in 12.500 s\n")
    tsv.write_text("s\th:m:s\tmax_rss\n15.75\t0:00:15\t800\n")
    assert overhead.job_work(log) == 12.5
    assert overhead.start_costs(tmp_path) == [pytest.approx(3.25)]


def test_train_speed_report_ratios_and_determinism():
    speed = _load("train_speed")
    limit1 = 100e9 / speed.FLOPS_PER_SAMPLE  # samples/s at a 100 GFLOP/s peak

    def jobs(rate, n, digest="a"):
        return [{"samples_per_s": rate, "weights_sha256": digest} for _ in range(n)]

    raw = {
        "gemm": [{"gflops_1": 100.0, "gflops_2": 200.0}] * 5,
        "floor1": [[{"samples_per_s": 0.6 * limit1}]] * 5,
        "floor2": [[{"samples_per_s": 0.6 * limit1}] * 2] * 5,
        "fast1": [jobs(0.5 * limit1, 1)] * 5,
        "fast2": [jobs(0.5 * limit1, 2)] * 4 + [jobs(0.5 * limit1, 2, digest="b")],
        "ref1": [[{"samples_per_s": 0.05 * limit1}]] * 5,
        "ref2": [[{"samples_per_s": 0.05 * limit1}] * 2] * 5,
        "protocol": [{"pure_s": 10.0, "full_s": 12.0}] * 5,
    }
    args = Namespace(repeats=5, iterations=3000, protocol_iterations=10_000, data=Path("mnist"))
    text = speed.report(raw, args)
    assert "| fast (project trainer) | 1 |" in text and "| 10.00 | 50.0% |" in text
    assert "| floor: matrix products + Adam only | 2 | " in text and "| 12.00 | 60.0% |" in text
    assert "1.200x" in text
    assert "2 distinct final-weight digest(s)" in text and "NOT identical" in text


def test_sparse_speed_report_ratios_targets_and_projected_seed():
    speed = _load("sparse_speed")

    def result(step_us, val_ms, paths):
        return [{"step_us": step_us, "val_ms": val_ms, "test_ms": 2 * val_ms, "paths": paths}] * 2

    native = {"fc1.weight": "dense-nonblank", "fc2.weight": "sparse", "fc3.weight": "sparse"}
    raw = {}
    for r in range(21):
        raw[f"{r}/dense"] = result(1000.0, 10.0, dict.fromkeys(native, "dense"))
        raw[f"{r}/native"] = result(250.0 if r else 900.0, 5.0 if r else 12.0, native)
    text = speed.report(raw, Namespace(rounds=list(range(21)), all_rows=False))
    shown = "fc1 dense-nonblank, fc2 sparse, fc3 sparse"
    assert f"| 7 | 21.1% | {shown} | 1000 | 250 | 0.250 | ≤ 0.5 | 10.0 / 5.0 |" in text
    assert f"| 0 | 100.0% | {shown} | 1000 | 900 | 0.900 | ≤ 0.8 (not met) | 10.0 / 12.0 (slower) |" in text
    assert "| 0.250 | ≤ 0.2 (not met) |" in text  # round 18
    assert "| 4 | " not in text  # only the rounds shown
    assert (
        "Step targets met at 19 of 21 rounds; validation pass no slower than the reference's at 20 of 21 "
        "(slower at round 0)" in text
    )
    # run / pure: 1 + (500 x 5 ms + 2 x 10 ms) / (50,000 x 0.25 ms) = 1.2016 at rounds 1-20, 1.134 at 0
    assert (
        "(validation every 100 iterations, two test evaluations): 1.202 (above 1.2 at 20 of 21 rounds)"
        in text
    )
    # A training: 50,000 steps, 500 validation passes, 500 test passes at the test-curve rounds
    # (0, 3, 7, 12, 15, 18), else 2; rounds 1-20 four trainings each (5 of them test-curve rounds).
    dense = (50 + 5 + 10) + 4 * (15 * (50 + 5 + 0.04) + 5 * (50 + 5 + 10))
    fast = (45 + 6 + 12) + 4 * (15 * (12.5 + 2.5 + 0.02) + 5 * (12.5 + 2.5 + 5))
    assert f"speed-up: {dense / fast:.2f}x (target ≥ 2.5)" in text
    assert "two cores):" in text
    partial = speed.report(raw, Namespace(rounds=[0, 7], all_rows=False))
    assert "over the rounds measured only (2 of 21):" in partial  # not a seed


def test_sparse_step_profile_times_every_call_of_a_step(tiny_data):
    """The profiler times each of the step's calls and Adam, and runs the step as the trainer does:
    the weights after its steps are the trainer's own after as many steps."""
    import torch

    from lottery import kernels, model
    from lottery.desc import Architecture, TrainingHparams
    from lottery.native import NativeTrainer
    from lottery.training import make_trainer

    profiler = _load("sparse_step_profile")
    init = model.glorot_normal_init(Architecture(input_size=20, hidden=(16, 8), num_classes=4), seed=1)
    g = torch.Generator().manual_seed(0)
    masks = {
        n: (torch.rand(w.shape, generator=g) < 0.3).float() for n, w in init.items() if n.endswith(".weight")
    }
    hparams = TrainingHparams(batch_size=60)

    def trainer():
        made, _ = make_trainer(init, masks, tiny_data, hparams, data_order_seed=1)
        return made

    profiled = trainer()
    if not isinstance(profiled, NativeTrainer):
        pytest.skip(f"no compiled kernels here: {kernels.unavailable_reason}")
    times = profiler.profile(profiled, 3)
    assert len(times) == len(profiled.calls) + 1 and "99 lt_adam" in times
    assert all(us > 0 for us in times.values())
    reference = trainer()
    reference.run(3)
    assert np.array_equal(profiled.flat, reference.flat)
