"""The two paths' results side by side: early-stop test accuracy of whole trainings, dense trainer
against the default (sparse) path, on the same θ0, mask and data order.

    python benchmarks/sparse_agreement.py --data ../shared/data/mnist

For each round (default 3, 7, 12, 18: Pm 51.3, 21.1, 7.0, 1.9%) the mask is θ0's layer-wise magnitude
mask at the round's per-layer counts (as in ``sparse_speed.py``), trained for ``--iterations``
(5,000) with the paper's protocol otherwise (validation every 100 iterations, early stop at the
minimum validation loss) once by ``MaskedTrainer`` (``training.sparse_max_density`` 0) and once by
the default path. Prints each path's early-stop iteration and test accuracy and their difference.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sparse_speed import _masks, _pm, cpu_model
from train_speed import _tensor_data, add_data_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, nargs="+", default=[3, 7, 12, 18])
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1, help="θ0's and the data order's seed")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from lottery import model
    from lottery.desc import Architecture, TrainingHparams
    from lottery.training import train

    data, _ = _tensor_data(args.data, 5000)
    init = model.glorot_normal_init(Architecture(), seed=args.seed)
    sparse_hp = TrainingHparams(iterations=args.iterations)
    dense_hp = replace(sparse_hp, sparse_max_density=0.0)
    print(f"{date.today()}, {cpu_model()}, {args.iterations} iterations, seed {args.seed}")
    print("| round | Pm | paths (default) | early stop, dense / default | test acc, dense | default | "
          "difference, points |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    worst = 0.0
    for round_ in args.rounds:
        masks = _masks(init, round_)
        dense = train(init, masks, data, dense_hp, data_order_seed=args.seed)
        sparse = train(init, masks, data, sparse_hp, data_order_seed=args.seed)
        difference = 100 * (sparse.early_stop_test.accuracy - dense.early_stop_test.accuracy)
        worst = max(worst, abs(difference))
        paths = ", ".join(f"{n.removesuffix('.weight')} {p}" for n, p in sparse.paths.items())
        print(
            f"| {round_} | {_pm(round_):.1f}% | {paths} | {dense.early_stop_iteration} / "
            f"{sparse.early_stop_iteration} | {100 * dense.early_stop_test.accuracy:.2f}% | "
            f"{100 * sparse.early_stop_test.accuracy:.2f}% | {difference:+.2f} |"
        )
    print(f"\nLargest difference: {worst:.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
