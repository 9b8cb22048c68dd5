"""The native trainer against the PyTorch reference trainer, at every pruning level of the paper,
for each build flavour of the kernels.

    python benchmarks/sparse_speed.py --data ../shared/data/mnist --flavours x86-64-v3 native

Two worker processes, one thread each, run every measurement side by side (as two training jobs of
``snakemake --cores 2`` do). For each round 0..20 of the paper's schedule (20% of the hidden layers'
weights a round, 10% of the output layer's) the mask is the layer-wise magnitude mask of θ0 at that
round's per-layer counts - a mask with no pixel structure, so the first layer's reading only the
pixels its weights read helps less than on a real ticket. Each measurement builds a trainer:

- dense: ``training.backend: torch``, the PyTorch reference trainer (dense matrices times the mask);
- native: what ``train`` builds by default (``training.backend: native``, ``lottery.native``), with the
  kernels of the flavour measured (``LOTTERY_MARCH``, set for both workers);

then times ``--steps`` training steps after 50 of warm-up, one validation-set evaluation (5,000
images) and one test-set evaluation (10,000), medians over the two workers and ``--repeats``
repetitions, the rounds and paths interleaved within each repetition. Each flavour is a run of its
own, with its own reference measurements, one after the other.

The projected seed is the 81 trainings of one seed of ``config/paper.yaml`` (the dense network, 20
iterative and 20 one-shot tickets, 20 reinitialised and 20 randomly pruned controls), each 50,000
steps at its round's step time plus its evaluations: the validation set every 100 iterations, the
test set every 100 iterations at the test-curve rounds (0, 3, 7, 12, 15, 18) and twice elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_speed import ROOT, _tensor_data, add_data_argument

ROUNDS = list(range(21))
SHOWN = (0, 3, 7, 12, 15, 18, 20)
TEST_CURVE_ROUNDS = (0, 3, 7, 12, 15, 18)
ITERATIONS, EVAL_EVERY = 50_000, 100
TARGETS = {0: 0.8, 1: 0.8, 2: 0.8, 3: 0.8, 7: 0.5, 12: 0.3, 18: 0.2}  # round: step ratio at most
SEED_TARGET = 2.5  # the projected seed's speed-up at least


# ---------------------------------------------------------------- worker (one process each)


def _masks(init, round_):
    from lottery import model, pruning
    from lottery.desc import Schedule

    weights = model.prunable(init)
    sizes = {n: w.numel() for n, w in weights.items()}
    counts = pruning.layer_keep_counts(sizes, Schedule(0.2, 20), round_)
    return pruning.prune_layerwise(weights, pruning.dense_masks(weights), counts)


def _time(fn, repeats: int = 1) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def worker(args) -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)
    from lottery import kernels, model
    from lottery.desc import Architecture, TrainingHparams
    from lottery.training import make_trainer

    data, _ = _tensor_data(args.data, 5000)
    init = model.glorot_normal_init(Architecture(), seed=1)
    native = TrainingHparams(sparse_max_density=args.max_density)
    reference = TrainingHparams(sparse_max_density=args.max_density, backend="torch")
    if kernels.load() is None:
        raise SystemExit(f"no native kernels: {kernels.unavailable_reason}")
    print(json.dumps({"ready": True, "flavour": kernels.flavour_of(kernels.load())}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        masks = _masks(init, command["round"])
        hparams = reference if command["path"] == "dense" else native
        trainer, paths = make_trainer(init, masks, data, hparams, data_order_seed=1)
        trainer.run(50)
        step_s = _time(lambda t=trainer: t.run(args.steps)) / args.steps
        val_x, test_x = trainer.evaluation_inputs(data.val_x), trainer.evaluation_inputs(data.test_x)
        val_s = _time(lambda t=trainer, x=val_x: t.evaluate(x, data.val_y), 2)
        test_s = _time(lambda t=trainer, x=test_x: t.evaluate(x, data.test_y), 2)
        out = {"step_us": step_s * 1e6, "val_ms": val_s * 1e3, "test_ms": test_s * 1e3, "paths": paths}
        print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- driver


def measure(args, flavour: str) -> dict:
    """{(round, path): [result, ...]}: both workers' results of every repetition, the kernels built
    as ``flavour``."""
    command = [sys.executable, __file__, "--worker", "--data", str(args.data), "--steps", str(args.steps),
               "--max-density", str(args.max_density)]  # fmt: skip
    env = {**os.environ, "LOTTERY_MARCH": flavour}
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        for _ in range(2)
    ]
    for w in workers:
        json.loads(w.stdout.readline())
    raw: dict = {}
    try:
        for repeat in range(args.repeats):
            for round_ in args.rounds:
                for path in ("dense", "native"):
                    for w in workers:  # both start the same measurement together
                        w.stdin.write(json.dumps({"round": round_, "path": path}) + "\n")
                        w.stdin.flush()
                    results = [json.loads(w.stdout.readline()) for w in workers]
                    raw.setdefault(f"{round_}/{path}", []).extend(results)
            print(f"repetition {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    finally:
        for w in workers:
            w.stdin.close()
            w.wait()
    return raw


def _seed_seconds(step_us: float, val_ms: float, test_ms: float, round_: int) -> float:
    """One training of the paper's protocol at this round."""
    evaluations = ITERATIONS // EVAL_EVERY
    tests = evaluations if round_ in TEST_CURVE_ROUNDS else 2
    return ITERATIONS * step_us / 1e6 + evaluations * val_ms / 1e3 + tests * test_ms / 1e3


def trainings_per_seed(round_: int) -> int:
    """config/paper.yaml: the dense network at round 0; a ticket, a one-shot ticket, a reinit and
    a random control at each of rounds 1..20."""
    return 1 if round_ == 0 else 4


def _pm(round_: int) -> float:
    from lottery import pruning

    sizes = {"fc1": 235_200, "fc2": 30_000, "fc3": 1_000}
    kept = sum(pruning.kept_count(n, 0.1 if name == "fc3" else 0.2, round_) for name, n in sizes.items())
    return 100 * kept / sum(sizes.values())


def report(raw: dict, args) -> str:
    rows, seed = [], {"dense": 0.0, "native": 0.0}
    lines = [
        "| round | Pm | native paths | dense step µs | native step µs | ratio | target | "
        "validation pass ms, dense / native | run / pure training (native) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for round_ in args.rounds:
        med = {}
        for path in ("dense", "native"):
            results = raw[f"{round_}/{path}"]
            med[path] = {
                k: statistics.median(r[k] for r in results) for k in ("step_us", "val_ms", "test_ms")
            }
            seed[path] += trainings_per_seed(round_) * _seed_seconds(**med[path], round_=round_)
        ratio = med["native"]["step_us"] / med["dense"]["step_us"]
        paths = raw[f"{round_}/native"][0]["paths"]
        shown = ", ".join(f"{n.removesuffix('.weight')} {p}" for n, p in paths.items())
        pure = ITERATIONS * med["native"]["step_us"] / 1e6
        protocol = _seed_seconds(**med["native"], round_=-1) / pure  # no test curve
        target = TARGETS.get(round_)
        met = target is None or ratio <= target
        val_met = med["native"]["val_ms"] <= med["dense"]["val_ms"]
        rows.append((round_, ratio, met, val_met, protocol))
        if round_ in SHOWN or round_ in TARGETS or args.all_rows:
            lines.append(
                f"| {round_} | {_pm(round_):.1f}% | {shown} | {med['dense']['step_us']:.0f} | "
                f"{med['native']['step_us']:.0f} | {ratio:.3f} | {f'≤ {target}' if target else ''}"
                f"{'' if met else ' (not met)'} | {med['dense']['val_ms']:.1f} / "
                f"{med['native']['val_ms']:.1f}{'' if val_met else ' (slower)'} | {protocol:.3f} |"
            )
    speedup = seed["dense"] / seed["native"]
    lines += [
        "",
        f"Step targets met at {sum(r[2] for r in rows)} of {len(rows)} rounds; validation pass no slower "
        f"than the reference's at {sum(r[3] for r in rows)} of {len(rows)}"
        + (
            f" (slower at round {', '.join(str(r[0]) for r in rows if not r[3])})"
            if not all(r[3] for r in rows)
            else ""
        )
        + "; largest whole run over pure "
        f"training (validation every 100 iterations, two test evaluations): {max(r[4] for r in rows):.3f}"
        f" (above 1.2 at {sum(r[4] > 1.2 for r in rows)} of {len(rows)} rounds).",
        "",
        "Projected seed of config/paper.yaml (81 trainings of 50,000 iterations with their evaluations, "
        "one job at a time per core, two cores)"
        + (
            ":"
            if sorted(args.rounds) == ROUNDS
            else f", over the rounds measured only ({len(args.rounds)} of 21):"
        ),
        "",
        f"- dense (torch) trainer: {seed['dense'] / 3600:.2f} h of one core "
        f"({seed['dense'] / 7200:.2f} h on two)",
        f"- native trainer: {seed['native'] / 3600:.2f} h of one core ({seed['native'] / 7200:.2f} h on two)",
        f"- speed-up: {speedup:.2f}x (target ≥ {SEED_TARGET}{'' if speedup >= SEED_TARGET else ': not met'})",
    ]
    return "\n".join(lines)


def default_max_density() -> float:
    from lottery.desc import TrainingHparams

    return TrainingHparams().sparse_max_density


def cpu_model() -> str:
    """The CPU's model name and its vector flags (avx2, avx512f) as lscpu shows them."""
    text = Path("/proc/cpuinfo").read_text()
    model, flags = "unknown", set()
    for line in text.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    vector = [f for f in ("avx2", "fma", "avx512f") if f in flags]
    return f"{model} ({' '.join(vector) or 'no avx2'}{'' if 'avx512f' in flags else ', no avx512f'})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (medians over them; default 5)")
    parser.add_argument("--steps", type=int, default=400, help="timed training steps per measurement")
    parser.add_argument("--rounds", type=int, nargs="+", default=ROUNDS, help="pruning rounds to measure")
    parser.add_argument("--all-rows", action="store_true", help="print every measured round")
    parser.add_argument(
        "--max-density", type=float, default=default_max_density(),
        help="the sparse path's threshold (training.sparse_max_density; default: the schema's)",
    )  # fmt: skip
    parser.add_argument(
        "--flavours", nargs="+", default=["native"],
        help="the kernels' build flavours (LOTTERY_MARCH) to measure, one run each (default: native)",
    )  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    for flavour in args.flavours:
        raw = measure(args, flavour)
        print(
            f"{date.today()}, {cpu_model()}, LOTTERY_MARCH={flavour}, 2 workers side by side, 1 thread "
            f"each, {args.repeats} repetitions, {args.steps} steps, sparse_max_density {args.max_density}"
        )
        print(report(raw, args))
        print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
