"""Training throughput of the project's trainer against the machine's limit and a reference pipeline.

    python benchmarks/train_speed.py --data ../shared/data/mnist

Each measurement runs in a fresh worker process pinned to one thread (as a Snakemake training job is),
the kinds interleaved within each repetition; the table reports medians over the repetitions:

- gemm: the machine's fp32 GEMM peak, a large square ``torch.mm`` with 1 and with 2 threads.
  The limit of a training step is that peak divided by the FLOPs a step must do per sample:
  forward 2 x 266,200, weight gradients 2 x 266,200, input gradients of layers 2 and 3 2 x 31,000.
- floor: the arithmetic no dense step can skip, alone: the step's eight matrix products and one fused
  Adam call on fixed in-cache inputs (no data, loss, mask or ReLU): a trainer's ceiling here.
- fast: ``lottery.torch_trainer.MaskedTrainer`` (the reference trainer), 1 job alone and 2 jobs side by side.
- reference: what most reproductions do - torchvision's MNIST Dataset with ToTensor/Normalize, a
  DataLoader, an ``nn.Module``, ``torch.optim.Adam``, weights multiplied by the mask after each step.
- protocol: one whole paper-protocol training (validation every 100 iterations, test accuracy at the
  early-stop iteration and at the end, curve, metrics and weights written) against its pure training.

Both trainers train a LeNet-300-100 with 20% of its weights pruned (round 1), batch 60, Adam 1.2e-3.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / ".test" / "data" / "mnist-sample"
FLOPS_PER_SAMPLE = 2 * 266_200 + 2 * 266_200 + 2 * 31_000  # 1,126,800
BATCH = 60
TRAIN_EXAMPLES = 55_000
PAPER_ITERATIONS = 50_000


# ---------------------------------------------------------------- workers (one process each)


def _setup(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def _tensor_data(data_dir: Path, validation_size: int):
    from lottery import data, fetch

    files = {key: data_dir / name for key, (name, _) in fetch.MNIST_FILES.items()}
    dataset = data.decode_dataset(files)
    n = len(dataset["train_labels"])
    split = data.make_split(dataset, validation_size or (5000 if n >= 20_000 else n // 5), seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        from lottery.io import save_tensors

        save_tensors(f"{tmp}/d.safetensors", dataset)
        save_tensors(f"{tmp}/s.safetensors", split)
        return data.load_tensor_data(f"{tmp}/d.safetensors", f"{tmp}/s.safetensors"), split


def _round_one_masks(init):
    from lottery import model, pruning

    weights = model.prunable(init)
    return pruning.next_masks(weights, pruning.dense_masks(weights), pruning.Schedule(0.2, 1), 1)


def worker_gemm(args) -> dict:
    import torch

    n = 2048
    a, b, c = torch.randn(n, n), torch.randn(n, n), torch.empty(n, n)
    result = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.mm(a, b, out=c)
        best = 0.0
        for _ in range(5):
            start = time.perf_counter()
            torch.mm(a, b, out=c)
            best = max(best, 2 * n**3 / (time.perf_counter() - start))
        result[f"gflops_{threads}"] = best / 1e9
    return result


def worker_floor(args) -> dict:
    """The arithmetic no dense step can skip, alone: the eight matrix products and one fused Adam call.

    The same shapes as a training step (batch 60, LeNet-300-100, 266,610 parameters in one buffer),
    on fixed in-cache inputs: no data gather, no loss, no mask, no ReLU. Whatever a trainer adds to
    this is its own overhead; this is its ceiling on this machine.
    """
    import torch

    from lottery.native import ADAM_BETAS
    from lottery.torch_trainer import flushing_denormals

    g = torch.Generator().manual_seed(0)
    sizes = [(300, 784), (100, 300), (10, 100)]
    total = sum(o * i + o for o, i in sizes)
    flat, grad = torch.randn(total, generator=g) * 0.05, torch.zeros(total)
    exp_avg, exp_avg_sq, steps = torch.zeros(total), torch.zeros(total), torch.zeros(())
    views, offset = [], 0
    for o, i in sizes:
        views.append((flat[offset : offset + o * i].view(o, i), flat[offset + o * i : offset + o * i + o],
                      grad[offset : offset + o * i].view(o, i)))  # fmt: skip
        offset += o * i + o
    x = torch.randn(BATCH, 784, generator=g)
    (w1, b1, g1), (w2, b2, g2), (w3, b3, g3) = views

    def step() -> None:
        a1 = torch.addmm(b1, x, w1.t())
        a2 = torch.addmm(b2, a1, w2.t())
        d3 = torch.addmm(b3, a2, w3.t())  # stands in for the logits' gradient
        torch.mm(d3.t(), a2, out=g3)
        d2 = torch.mm(d3, w3)
        torch.mm(d2.t(), a1, out=g2)
        d1 = torch.mm(d2, w2)
        torch.mm(d1.t(), x, out=g1)
        steps.add_(1)
        torch._fused_adam_(
            [flat], [grad], [exp_avg], [exp_avg_sq], [], [steps], lr=1e-6, beta1=ADAM_BETAS[0],
            beta2=ADAM_BETAS[1], weight_decay=0.0, eps=1e-6, amsgrad=False, maximize=False,
        )  # fmt: skip

    with flushing_denormals():
        for _ in range(args.warmup):
            step()
        start = time.perf_counter()
        for _ in range(args.iterations):
            step()
        seconds = time.perf_counter() - start
    return {"samples_per_s": args.iterations * BATCH / seconds}


def worker_fast(args) -> dict:
    from lottery import model
    from lottery.torch_trainer import MaskedTrainer, TrainingHparams

    data, _ = _tensor_data(Path(args.data), args.validation_size)
    init = model.glorot_normal_init(model.Architecture(), seed=1)
    trainer = MaskedTrainer(init, _round_one_masks(init), data, TrainingHparams(), data_order_seed=1)
    trainer.run(args.warmup)
    start = time.perf_counter()
    trainer.run(args.iterations)
    seconds = time.perf_counter() - start
    digest = hashlib.sha256(trainer.flat.numpy().tobytes()).hexdigest()
    return {"samples_per_s": args.iterations * BATCH / seconds, "weights_sha256": digest}


def worker_reference(args) -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from lottery import model

    _, split = _tensor_data(Path(args.data), args.validation_size)
    with tempfile.TemporaryDirectory() as root:
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):  # fmt: skip
            source = Path(args.data) / f"{name}.gz"
            (raw / name).write_bytes(gzip.decompress(source.read_bytes()))
        transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((float(split["mean"]),), (float(split["std"]),))]
        )
        dataset = datasets.MNIST(root, train=True, download=False, transform=transform)
        train_set = torch.utils.data.Subset(dataset, split["train_indices"].tolist())
        loader = DataLoader(train_set, batch_size=BATCH, shuffle=True, drop_last=True,
                            generator=torch.Generator().manual_seed(1))  # fmt: skip

        net = nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                            nn.Linear(100, 10))  # fmt: skip
        init = model.glorot_normal_init(model.Architecture(), seed=1)
        masks = list(_round_one_masks(init).values())
        linears = [m for m in net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for i, (layer, mask) in enumerate(zip(linears, masks, strict=True)):
                layer.weight.copy_(init[f"fc{i + 1}.weight"] * mask)
                layer.bias.copy_(init[f"fc{i + 1}.bias"])
        optimizer = torch.optim.Adam(net.parameters(), lr=1.2e-3)
        loss_fn = nn.CrossEntropyLoss()

        def steps(n: int) -> None:
            done = 0
            while done < n:
                for x, y in loader:
                    loss = loss_fn(net(x), y)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    with torch.no_grad():
                        for layer, mask in zip(linears, masks, strict=True):
                            layer.weight.mul_(mask)
                    done += 1
                    if done == n:
                        return

        steps(max(1, args.warmup // 10))
        start = time.perf_counter()
        steps(args.iterations)
        seconds = time.perf_counter() - start
    return {"samples_per_s": args.iterations * BATCH / seconds}


def worker_protocol(args) -> dict:
    from lottery import model, provenance
    from lottery.desc import Network, Replicate
    from lottery.jobs import Started, train_and_save
    from lottery.torch_trainer import MaskedTrainer, TrainingHparams
    from lottery.training import make_trainer

    data, _ = _tensor_data(Path(args.data), args.validation_size)
    init = model.glorot_normal_init(model.Architecture(), seed=1)
    masks = _round_one_masks(init)
    hparams = TrainingHparams(iterations=args.protocol_iterations, eval_every=100)

    trainer = MaskedTrainer(init, masks, data, hparams, data_order_seed=1)
    start = time.perf_counter()
    trainer.run(args.protocol_iterations)
    pure = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        outputs = {k: f"{tmp}/{k}" for k in ("weights", "metrics", "curve")}
        start = time.perf_counter()
        stopwatch = provenance.Stopwatch()
        trainer, paths = make_trainer(init, masks, data, hparams, data_order_seed=1)
        started = Started(trainer, paths, data, hparams, Replicate(1, 1, 0), 0, stopwatch)
        train_and_save(started, masks, Network(), outputs)
        full = time.perf_counter() - start
    return {"pure_s": pure, "full_s": full}


WORKERS = {
    "gemm": worker_gemm,
    "floor": worker_floor,
    "fast": worker_fast,
    "reference": worker_reference,
    "protocol": worker_protocol,
}


# ---------------------------------------------------------------- orchestration


def _spawn(kind: str, args) -> subprocess.Popen:
    command = [sys.executable, __file__, "--worker", kind, "--data", str(args.data),
               "--iterations", str(args.iterations), "--warmup", str(args.warmup),
               "--validation-size", str(args.validation_size),
               "--protocol-iterations", str(args.protocol_iterations)]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def _collect(processes: list[subprocess.Popen]) -> list[dict]:
    results = []
    for p in processes:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"benchmark worker failed with exit code {p.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def run_side_by_side(kind: str, jobs: int, args) -> list[dict]:
    return _collect([_spawn(kind, args) for _ in range(jobs)])


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    """``--data``: the benchmarks' MNIST folder, ../shared/data/mnist where present."""
    default_data = ROOT.parent / "shared" / "data" / "mnist"
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data if default_data.exists() else SAMPLE,
        help="folder with the four MNIST IDX files, gzipped or not (default: ../shared/data/mnist "
        "if present, else the committed test sample)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (medians are reported)")
    parser.add_argument("--iterations", type=int, default=3000, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=300, help="untimed steps before timing")
    parser.add_argument("--protocol-iterations", type=int, default=10_000,
                        help="iterations of the whole-protocol run")  # fmt: skip
    parser.add_argument("--validation-size", type=int, default=0, help="default: 5000 (MNIST), else 1/5")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    args = parser.parse_args(argv)
    if args.worker:
        _setup(threads=1)
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    raw: dict[str, list] = {
        k: [] for k in ("gemm", "floor1", "floor2", "fast1", "fast2", "ref1", "ref2", "protocol")
    }
    for rep in range(args.repeats):
        print(f"repetition {rep + 1}/{args.repeats}", file=sys.stderr)
        raw["gemm"] += run_side_by_side("gemm", 1, args)
        raw["floor1"].append(run_side_by_side("floor", 1, args))
        raw["floor2"].append(run_side_by_side("floor", 2, args))
        raw["fast1"].append(run_side_by_side("fast", 1, args))
        raw["ref1"].append(run_side_by_side("reference", 1, args))
        raw["fast2"].append(run_side_by_side("fast", 2, args))
        raw["ref2"].append(run_side_by_side("reference", 2, args))
        raw["protocol"] += run_side_by_side("protocol", 1, args)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    print(report(raw, args))
    return 0


def report(raw: dict, args) -> str:
    med = statistics.median
    peak1 = med(r["gflops_1"] for r in raw["gemm"])
    peak2 = med(r["gflops_2"] for r in raw["gemm"])
    limit1, limit2 = peak1 * 1e9 / FLOPS_PER_SAMPLE, peak2 * 1e9 / FLOPS_PER_SAMPLE

    def total(runs):  # samples/s of all jobs of one measurement, median over repetitions
        return med(sum(job["samples_per_s"] for job in jobs) for jobs in runs)

    fast, ref = "fast (project trainer)", "reference (DataLoader, nn.Module)"
    floor = "floor: matrix products + Adam only"
    rows = [
        (fast, 1, total(raw["fast1"]), limit1, total(raw["ref1"])),
        (fast, 2, total(raw["fast2"]), limit2, total(raw["ref2"])),
        (ref, 1, total(raw["ref1"]), limit1, total(raw["ref1"])),
        (ref, 2, total(raw["ref2"]), limit2, total(raw["ref2"])),
    ]
    if raw.get("floor1"):  # (absent from runs saved before it was measured)
        rows[2:2] = [
            (floor, 1, total(raw["floor1"]), limit1, total(raw["ref1"])),
            (floor, 2, total(raw["floor2"]), limit2, total(raw["ref2"])),
        ]
    digests = {job["weights_sha256"] for jobs in raw["fast1"] + raw["fast2"] for job in jobs}
    overhead = med(r["full_s"] / r["pure_s"] for r in raw["protocol"])
    lines = [
        f"Training speed, LeNet-300-100 (round 1: 20% pruned), batch {BATCH}, Adam, 1 thread per job; "
        f"{date.today().isoformat()}; medians of {args.repeats} interleaved repetitions, "
        f"{args.iterations} timed steps each; data {args.data}.",
        "",
        f"fp32 GEMM peak (2048x2048 torch.mm): {peak1:.1f} GFLOP/s on 1 thread, {peak2:.1f} GFLOP/s on 2 "
        f"threads; {FLOPS_PER_SAMPLE:,} FLOPs per sample -> limit {limit1:,.0f} samples/s (1 core), "
        f"{limit2:,.0f} samples/s (2 cores).",
        "",
        "| pipeline | jobs side by side | samples/s (all jobs) | s per epoch (per job) "
        "| s per 50,000-iteration run (per job) | x reference | % of limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, jobs, rate, limit, reference in rows:
        per_job = rate / jobs
        lines.append(
            f"| {name} | {jobs} | {rate:,.0f} | {TRAIN_EXAMPLES / per_job:.2f} | "
            f"{PAPER_ITERATIONS * BATCH / per_job:.1f} | {rate / reference:.2f} | {100 * rate / limit:.1f}% |"
        )
    lines += [
        "",
        "The floor rows time what no dense step can skip - the step's three forward and five backward "
        "matrix products and one fused Adam call, on fixed in-cache inputs, nothing else: "
        "a trainer doing this dense arithmetic with PyTorch's kernels cannot go faster on this machine.",
        "",
        f"Whole paper-protocol run ({args.protocol_iterations:,} iterations, validation every 100, test at "
        f"early stop and end, curve and checkpoint written) / pure training: {overhead:.3f}x "
        f"(median of {len(raw['protocol'])}).",
        f"Bitwise determinism: {len(digests)} distinct final-weight digest(s) over "
        f"{sum(len(j) for j in raw['fast1'] + raw['fast2'])} fast runs "
        f"({'identical' if len(digests) == 1 else 'NOT identical'}).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
