"""Where a step of the native trainer goes, call by call (its kernels).

    python benchmarks/sparse_step_profile.py --data ../shared/data/mnist --rounds 0 7 12 18

One process, one thread, subnormals flushed (as the trainer runs). For each round (the same masks as
``sparse_speed.py``: θ0's layer-wise magnitude mask at that round's per-layer counts) the trainer
that ``train`` builds by default runs 50 steps of warm-up, then ``--steps`` steps in which every
call of the step (``NativeTrainer.calls``, then Adam) is timed on its own; medians over
``--repeats`` repetitions of the per-step mean. Their sum is a little above an untimed step (the
timer's own cost, about 0.1 µs a call). Prints the build flavour (``LOTTERY_MARCH``) it ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sparse_speed import _masks
from train_speed import _tensor_data, add_data_argument


def _name(call) -> str:
    """A step call's name: the kernel's or the Python function's."""
    fn = getattr(call, "func", call)
    return getattr(fn, "__name__", None) or getattr(fn, "_name", None) or repr(fn)


def profile(trainer, steps: int) -> dict[str, float]:
    """µs a step of each call of the trainer's step, over ``steps`` steps."""
    totals: dict[str, float] = {}
    clock = time.perf_counter
    names = [f"{i:02d} {_name(call)}" for i, call in enumerate(trainer.calls)]
    for _ in range(steps):
        trainer.idx[:] = trainer.order.next()
        for name, call in zip(names, trainer.calls, strict=True):
            start = clock()
            call()
            totals[name] = totals.get(name, 0.0) + clock() - start
        trainer.step_count += 1
        start = clock()
        trainer.lib.lt_adam(*trainer.adam_args, trainer.step_count)
        totals["99 lt_adam"] = totals.get("99 lt_adam", 0.0) + clock() - start
    return {name: seconds / steps * 1e6 for name, seconds in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--rounds", type=int, nargs="+", default=[0, 7, 12, 18])
    parser.add_argument("--steps", type=int, default=300, help="timed steps per repetition")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (medians over them)")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from lottery import kernels, model
    from lottery.desc import Architecture, TrainingHparams
    from lottery.native import NativeTrainer, flushing_denormals
    from lottery.training import make_trainer

    data, _ = _tensor_data(args.data, 5000)
    init = model.glorot_normal_init(Architecture(), seed=1)
    hparams = TrainingHparams()
    flavour = os.environ.get("LOTTERY_MARCH", "native")
    print(f"{date.today()}, LOTTERY_MARCH={flavour}, {args.steps} steps x {args.repeats} repetitions")
    for round_ in args.rounds:
        trainer, paths = make_trainer(init, _masks(init, round_), data, hparams, data_order_seed=1)
        if not isinstance(trainer, NativeTrainer):
            print(f"round {round_}: no layer on a compiled path ({kernels.unavailable_reason or paths})")
            continue
        with flushing_denormals(trainer.lib):
            trainer.run(50)
            runs = [profile(trainer, args.steps) for _ in range(args.repeats)]
        medians = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
        total = sum(medians.values())
        shown = ", ".join(f"{k.removesuffix('.weight')} {v}" for k, v in paths.items())
        print(f"\nround {round_}, paths {shown}")
        print("| call | µs | share |\n|---|---|---|")
        for name, us in medians.items():
            print(f"| {name} | {us:.1f} | {us / total:.0%} |")
        print(f"| sum | {total:.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
