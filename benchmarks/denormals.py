"""Whole training runs with subnormal floats flushed to zero (the trainer's default) and in IEEE arithmetic.

    python benchmarks/denormals.py --data ../shared/data/mnist [--iterations 50000]

For networks at several pruning levels (masks from the magnitudes of θ0, 20% of the hidden weights
and 10% of the output layer a round), each run trains the same network both ways, one after the
other in one process (the levels two at a time, one per core), and prints the time of each, their
ratio, and whether the two runs agree bitwise: final weights, the learning curve (every loss and
accuracy), the early-stop iteration and the test accuracies. It exits non-zero if any disagree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_speed import _tensor_data, add_data_argument


def _digest(result) -> str:
    h = hashlib.sha256()
    for name, tensor in result.params.items():
        h.update(name.encode())
        h.update(tensor.numpy().tobytes())
    h.update(json.dumps(result.curve, sort_keys=True).encode())
    h.update(json.dumps(result.metrics(), sort_keys=True).encode())
    return h.hexdigest()


def worker(args) -> dict:
    import torch

    from lottery import model, pruning
    from lottery.training import TrainingHparams, train

    torch.set_num_threads(1)
    data, _ = _tensor_data(Path(args.data), 0)
    init = model.glorot_normal_init(model.Architecture(), seed=1)
    weights = model.prunable(init)
    masks = pruning.dense_masks(weights)
    for round_ in range(1, args.round + 1):
        masks = pruning.next_masks(weights, masks, pruning.Schedule(0.2, args.round), round_)
    hparams = TrainingHparams(iterations=args.iterations, eval_every=100)
    out: dict = {"round": args.round, "weights_remaining": pruning.weights_remaining(masks)}
    for flush in (True, False):
        start = time.perf_counter()
        result = train(init, masks, data, hparams, data_order_seed=1, flush_denormals=flush)
        key = "flushed" if flush else "ieee"
        out[f"{key}_s"] = time.perf_counter() - start
        out[f"{key}_digest"] = _digest(result)
        out[f"{key}_test_acc"] = result.early_stop_test.accuracy
    return out


def _run_pair(rounds: list[int], args) -> list[dict]:
    """The given pruning levels side by side, one process (one core) each."""
    procs = []
    for round_ in rounds:
        command = [sys.executable, __file__, "--data", str(args.data), "--iterations", str(args.iterations),
                   "--worker-round", str(round_)]  # fmt: skip
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    results = []
    for proc in procs:
        stdout, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"worker failed with exit status {proc.returncode}")
        results.append(json.loads(stdout))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--iterations", type=int, default=50_000, help="iterations a run (paper: 50,000)")
    parser.add_argument("--rounds", type=int, nargs="+", default=[0, 3, 7, 12], help="pruning levels")
    parser.add_argument("--worker-round", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker_round is not None:
        args.round = args.worker_round
        print(json.dumps(worker(args)))
        return 0

    results = []
    for i in range(0, len(args.rounds), 2):
        results += _run_pair(args.rounds[i : i + 2], args)

    print(
        f"Subnormals flushed vs IEEE arithmetic, LeNet-300-100, {args.iterations:,} iterations per run, "
        f"validation every 100, 1 thread, 2 runs side by side; {date.today()}; data {args.data}.\n"
    )
    print("| round | weights remaining | flushed (s) | IEEE (s) | IEEE / flushed | bitwise identical |")
    print("|---|---|---|---|---|---|")
    identical = True
    for r in results:
        same = r["flushed_digest"] == r["ieee_digest"]
        identical &= same
        print(
            f"| {r['round']} | {r['weights_remaining']:.1%} | {r['flushed_s']:.1f} | {r['ieee_s']:.1f} | "
            f"{r['ieee_s'] / r['flushed_s']:.3f} | {'yes' if same else 'NO'} |"
        )
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
