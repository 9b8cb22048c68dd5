"""The sparse training path against today's dense trainer, at every pruning level of the paper.

    python benchmarks/sparse_speed.py --data ../shared/data/mnist

Two worker processes, one thread each, run every measurement side by side (as two training jobs of
``snakemake --cores 2`` do). For each round 0..20 of the paper's schedule (20% of the hidden layers'
weights a round, 10% of the output layer's) the mask is the layer-wise magnitude mask of θ0 at that
round's per-layer counts - a mask with no pixel structure, so the first layer's reading only the
pixels its weights read helps less than on a real ticket. Each measurement builds a trainer:

- dense: ``lottery.training.MaskedTrainer``, today's trainer (dense matrices times the mask);
- sparse: what ``train`` builds by default (``lottery.training.make_trainer``): the sparse path for
  each layer at most ``training.sparse_max_density`` dense, the dense trainer where none is;

then times ``--steps`` training steps after 50 of warm-up, one validation-set evaluation (5,000
images) and one test-set evaluation (10,000), medians over the two workers and ``--repeats``
repetitions, the rounds and paths interleaved within each repetition.

The projected seed is the 81 trainings of one seed of ``config/paper.yaml`` (the dense network, 20
iterative and 20 one-shot tickets, 20 reinitialised and 20 randomly pruned controls), each 50,000
steps at its round's step time plus its evaluations: the validation set every 100 iterations, the
test set every 100 iterations at the test-curve rounds (0, 3, 7, 12, 15, 18) and twice elsewhere.
"""

from __future__ import annotations

import argparse
import json
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
TARGETS = {7: (0.6, 0.8), 12: (0.35, 0.5), 18: (0.2, 0.35)}  # round: (target, floor)


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
    from lottery import model
    from lottery.desc import Architecture, TrainingHparams
    from lottery.training import MaskedTrainer, make_trainer

    data, _ = _tensor_data(args.data, 5000)
    init = model.glorot_normal_init(Architecture(), seed=1)
    hparams = TrainingHparams(sparse_max_density=args.max_density)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        masks = _masks(init, command["round"])
        if command["path"] == "dense":
            trainer = MaskedTrainer(init, masks, data, hparams, data_order_seed=1)
            paths = dict.fromkeys(masks, "dense")
        else:
            trainer, paths = make_trainer(init, masks, data, hparams, data_order_seed=1)
        trainer.run(50)
        step_s = _time(lambda t=trainer: t.run(args.steps)) / args.steps
        val_x, test_x = trainer.evaluation_inputs(data.val_x), trainer.evaluation_inputs(data.test_x)
        val_s = _time(lambda t=trainer, x=val_x: t.evaluate(x, data.val_y), 2)
        test_s = _time(lambda t=trainer, x=test_x: t.evaluate(x, data.test_y), 2)
        out = {"step_us": step_s * 1e6, "val_ms": val_s * 1e3, "test_ms": test_s * 1e3, "paths": paths}
        print(json.dumps(out), flush=True)


# ---------------------------------------------------------------- driver


def measure(args) -> dict:
    """{(round, path): [result, ...]}: both workers' results of every repetition."""
    command = [sys.executable, __file__, "--worker", "--data", str(args.data), "--steps", str(args.steps),
               "--max-density", str(args.max_density)]  # fmt: skip
    workers = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(2)
    ]
    for w in workers:
        json.loads(w.stdout.readline())
    raw: dict = {}
    try:
        for repeat in range(args.repeats):
            for round_ in args.rounds:
                for path in ("dense", "sparse"):
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
    rows, seed = [], {"dense": 0.0, "sparse": 0.0}
    lines = [
        "| round | Pm | layers (sparse path) | dense step µs | sparse step µs | ratio | target | "
        "validation pass ms, dense / sparse | run / pure training (sparse) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for round_ in args.rounds:
        med = {}
        for path in ("dense", "sparse"):
            results = raw[f"{round_}/{path}"]
            med[path] = {
                k: statistics.median(r[k] for r in results) for k in ("step_us", "val_ms", "test_ms")
            }
            seed[path] += trainings_per_seed(round_) * _seed_seconds(**med[path], round_=round_)
        ratio = med["sparse"]["step_us"] / med["dense"]["step_us"]
        paths = raw[f"{round_}/sparse"][0]["paths"]
        sparse_layers = (
            ", ".join(n.removesuffix(".weight") for n, p in paths.items() if p == "sparse") or "none"
        )
        pure = ITERATIONS * med["sparse"]["step_us"] / 1e6
        protocol = _seed_seconds(**med["sparse"], round_=-1) / pure  # no test curve
        target = TARGETS.get(round_)
        target_text = f"≤ {target[0]} (floor {target[1]})" if target else ""
        rows.append((round_, ratio, sparse_layers != "none", protocol))
        if round_ in SHOWN or args.all_rows:
            lines.append(
                f"| {round_} | {_pm(round_):.1f}% | {sparse_layers} | {med['dense']['step_us']:.0f} | "
                f"{med['sparse']['step_us']:.0f} | {ratio:.3f} | {target_text} | "
                f"{med['dense']['val_ms']:.1f} / {med['sparse']['val_ms']:.1f} | {protocol:.3f} |"
            )
    worst = max((r[1] for r in rows if r[2]), default=float("nan"))
    worst_protocol = max((r[3] for r in rows if r[2]), default=float("nan"))
    lines += [
        "",
        f"Largest ratio where a layer is on the sparse path: {worst:.3f}; largest whole run over pure "
        f"training on the sparse path (validation every 100 iterations, two test evaluations): "
        f"{worst_protocol:.3f}.",
        "",
        "Projected seed of config/paper.yaml (81 trainings of 50,000 iterations with their evaluations, "
        "one job at a time per core, two cores):",
        "",
        f"- dense trainer: {seed['dense'] / 3600:.2f} h of one core ({seed['dense'] / 7200:.2f} h on two)",
        f"- sparse path: {seed['sparse'] / 3600:.2f} h of one core ({seed['sparse'] / 7200:.2f} h on two)",
        f"- speed-up: {seed['dense'] / seed['sparse']:.2f}x",
    ]
    return "\n".join(lines)


def default_max_density() -> float:
    from lottery.desc import TrainingHparams

    return TrainingHparams().sparse_max_density


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


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
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    raw = measure(args)
    print(
        f"{date.today()}, {cpu_model()}, 2 workers side by side, 1 thread each, {args.repeats} repetitions, "
        f"sparse_max_density {args.max_density}"
    )
    print(report(raw, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
