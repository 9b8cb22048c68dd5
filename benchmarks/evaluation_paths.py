"""A validation pass of a sparse first layer on its CSR path against the same layer evaluated as a
dense-nonblank one (``lottery.native.EVALUATION_NONBLANK_DENSITY``), round by round.

    python benchmarks/evaluation_paths.py --data ../shared/data/mnist --rounds 4 5 6 7 8

One process, one thread (run two side by side to see them as two jobs of ``--cores 2`` do). For
each round (the masks of ``sparse_speed.py``: θ0's layer-wise magnitude mask at that round's
per-layer counts) it builds the native trainer twice, its first layer evaluated on each path, and
times one validation pass (5,000 images) of each, interleaved, medians of ``--repeats``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sparse_speed import _masks, cpu_model
from train_speed import _tensor_data, add_data_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)

    from lottery import model, native
    from lottery.desc import Architecture, TrainingHparams
    from lottery.training import make_trainer

    data, _ = _tensor_data(args.data, 5000)
    init = model.glorot_normal_init(Architecture(), seed=1)
    print(f"{cpu_model()}, one process, validation pass ms, medians of {args.repeats}")
    print("| round | CSR | as dense-nonblank | ratio |\n|---|---|---|---|")
    for round_ in args.rounds:
        trainers = []
        for threshold in (1.0, 0.0):  # never, always
            native.EVALUATION_NONBLANK_DENSITY = threshold
            trainer, _ = make_trainer(init, _masks(init, round_), data, TrainingHparams(), data_order_seed=1)
            x = trainer.evaluation_inputs(data.val_x)
            trainer.evaluate(x, data.val_y)
            trainers.append((trainer, x))
        times: list[list[float]] = [[], []]
        for _ in range(args.repeats):
            for k, (trainer, x) in enumerate(trainers):
                start = time.perf_counter()
                trainer.evaluate(x, data.val_y)
                times[k].append(time.perf_counter() - start)
        csr, nonblank = (statistics.median(t) * 1e3 for t in times)
        print(f"| {round_} | {csr:.2f} | {nonblank:.2f} | {nonblank / csr:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
