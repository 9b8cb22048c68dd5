"""Where a training step's time goes: its operations one by one, and the step with parts left out.

    python benchmarks/step_breakdown.py --data ../shared/data/mnist

One process, one thread, subnormals flushed (as the trainer runs); medians of 5 timings each.

1. Operations at the step's shapes (batch 60, LeNet-300-100), each timed alone in a loop: the eight
   matrix products, the mask multiply, the fused Adam call - and the sparse alternatives for the
   first layer (MNIST's blank pixels), for the forward product and for the weight gradient.
2. Ablation: the trainer's step (``MaskedTrainer.step``, re-stated here with switches; with none off
   it must give bitwise the trainer's weights, checked) with the data gather, the loss, the mask
   multiply, or the ReLUs with their backward and the bias sums left out, interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_speed import BATCH, _round_one_masks, _tensor_data, add_data_argument


def _time_us(fn, repeats: int = 5, loops: int = 2000) -> float:
    for _ in range(loops // 10):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter() - start) / loops * 1e6)
    return statistics.median(times)


def operations(data) -> list[tuple[str, float]]:
    import torch
    import torch.nn.functional as F

    from lottery.native import ADAM_BETAS

    g = torch.Generator().manual_seed(0)
    x = data.train_x[:BATCH].contiguous()
    w1, w2, w3 = (torch.randn(o, i, generator=g) * 0.05 for o, i in ((300, 784), (100, 300), (10, 100)))
    b1, b2, b3 = torch.zeros(300), torch.zeros(100), torch.zeros(10)
    a1, a2 = torch.randn(BATCH, 300, generator=g).relu(), torch.randn(BATCH, 100, generator=g).relu()
    d1, d2, d3 = (torch.randn(BATCH, n, generator=g) for n in (300, 100, 10))
    g1 = torch.empty(300, 784)
    n = 266_610
    p, grad = torch.randn(n, generator=g), torch.randn(n, generator=g)
    m, v, steps = torch.zeros(n), torch.zeros(n), torch.ones(())
    mask = (torch.rand(n, generator=g) > 0.2).float()

    def adam() -> None:
        torch._fused_adam_(
            [p], [grad], [m], [v], [], [steps], lr=1e-6, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1],
            weight_decay=0.0, eps=1e-6, amsgrad=False, maximize=False,
        )  # fmt: skip

    ops = [
        ("forward, layer 1: addmm 60x784 @ 784x300", lambda: torch.addmm(b1, x, w1.t())),
        ("forward, layer 2: addmm 60x300 @ 300x100", lambda: torch.addmm(b2, a1, w2.t())),
        ("forward, layer 3: addmm 60x100 @ 100x10", lambda: torch.addmm(b3, a2, w3.t())),
        ("weight gradient, layer 1: mm 300x60 @ 60x784", lambda: torch.mm(d1.t(), x, out=g1)),
        ("weight gradient, layer 2: mm 100x60 @ 60x300", lambda: torch.mm(d2.t(), a1)),
        ("weight gradient, layer 3: mm 10x60 @ 60x100", lambda: torch.mm(d3.t(), a2)),
        ("input gradient, layer 3: mm 60x10 @ 10x100", lambda: torch.mm(d3, w3)),
        ("input gradient, layer 2: mm 60x100 @ 100x300", lambda: torch.mm(d2, w2)),
        ("mask multiply (266,610 floats)", lambda: grad.mul_(mask)),
        ("fused Adam (266,610 parameters)", adam),
    ]
    results = [(name, _time_us(fn)) for name, fn in ops]

    background = data.background if data.background is not None else 0.0
    deviation = x - background
    rows, cols = deviation.nonzero(as_tuple=True)
    values = deviation[rows, cols]
    counts = torch.bincount(rows, minlength=BATCH)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
    w1t, gw1t, scattered = w1.t().contiguous(), torch.zeros(784, 300), torch.empty(len(values), 300)
    with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        csr_t = deviation.t().contiguous().to_sparse_csr()

    def index_add() -> None:
        torch.mul(d1[rows], values[:, None], out=scattered)
        gw1t.zero_().index_add_(0, cols, scattered)

    per_sample = len(values) / BATCH
    results += [
        (f"sparse forward, layer 1: embedding_bag ({per_sample:.0f} non-blank pixels a sample)",
         _time_us(lambda: F.embedding_bag(cols, w1t, offsets, mode="sum", per_sample_weights=values))),
        ("sparse weight gradient, layer 1: index_add_", _time_us(index_add, loops=200)),
        ("sparse weight gradient, layer 1: CSR mm", _time_us(lambda: torch.mm(csr_t, d1))),
    ]  # fmt: skip
    return results


PARTS = {
    "gather": "the data gather (60 random rows, inputs and one-hot labels)",
    "loss": "the loss (log-softmax, its value, its gradient)",
    "mask": "the mask multiply",
    "relu": "the ReLUs, their backward and the bias sums",
}


class _AblatedTrainer:
    """``MaskedTrainer.step`` with switches; with every part on it is the trainer's step, op for op."""

    def __init__(self, trainer, off: frozenset[str]) -> None:
        self.t, self.off = trainer, off
        trainer.x.copy_(trainer.data.train_x[:BATCH])
        trainer.onehot.copy_(trainer.onehot_all[:BATCH])

    def step(self) -> None:
        import torch

        from lottery.native import ADAM_BETAS, ADAM_EPS

        t, off = self.t, self.off
        x, onehot = t.x, t.onehot
        if "gather" not in off:
            idx = t.order.next()
            torch.index_select(t.data.train_x, 0, idx, out=x)
            torch.index_select(t.onehot_all, 0, idx, out=onehot)
        inputs, a, last = [x], x, len(t.weights) - 1
        for layer, (w, b) in enumerate(zip(t.weights, t.biases, strict=True)):
            a = torch.addmm(b, a, w.t())
            if layer < last:
                if "relu" not in off:
                    a = a.relu_()
                inputs.append(a)
        if "loss" in off:
            grad = a
        else:
            log_probs = torch.log_softmax(a, dim=1)
            t.loss_sum -= torch.dot(log_probs.view(-1), onehot.view(-1))
            t.steps_since_loss += 1
            grad = log_probs.exp_().sub_(onehot)
        for layer in range(last, -1, -1):
            torch.mm(grad.t(), inputs[layer], out=t.weight_grads[layer])
            if "relu" not in off:
                torch.sum(grad, dim=0, out=t.bias_grads[layer])
            if layer > 0:
                grad = torch.mm(grad, t.weights[layer])
                if "relu" not in off:
                    grad = torch.ops.aten.threshold_backward(grad, inputs[layer], 0.0)
        if "mask" not in off and t.pruned:
            t.grad.mul_(t.mask)
        t.steps += 1
        torch._fused_adam_(
            [t.flat], [t.grad], [t.exp_avg], [t.exp_avg_sq], [], [t.steps],
            lr=t.lr, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], weight_decay=0.0,
            eps=ADAM_EPS * t.batch_size, amsgrad=False, maximize=False,
        )  # fmt: skip

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()


def ablation(data, steps: int) -> list[tuple[str, float]]:
    import torch

    from lottery import model
    from lottery.torch_trainer import MaskedTrainer, TrainingHparams, flushing_denormals

    init = model.glorot_normal_init(model.Architecture(), seed=1)
    masks = _round_one_masks(init)

    def trainer() -> MaskedTrainer:
        return MaskedTrainer(init, masks, data, TrainingHparams(), data_order_seed=1)

    # The re-stated step is the trainer's: the same weights after 200 steps, bit for bit.
    reference, restated = trainer(), _AblatedTrainer(trainer(), frozenset())
    reference.run(200)
    with flushing_denormals():
        restated.run(200)
    if not torch.equal(reference.flat, restated.t.flat):
        raise SystemExit("the re-stated step no longer matches MaskedTrainer.step: update this benchmark")

    variants = {"whole step": frozenset(), **{f"without {text}": frozenset({p}) for p, text in PARTS.items()}}
    variants["without all four"] = frozenset(PARTS)
    trainers = {name: _AblatedTrainer(trainer(), off) for name, off in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    with flushing_denormals():
        for t in trainers.values():
            t.run(300)
        for _ in range(5):
            for name, t in trainers.items():
                start = time.perf_counter()
                t.run(steps)
                times[name].append((time.perf_counter() - start) / steps * 1e6)
    return [(name, statistics.median(ts)) for name, ts in times.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(parser)
    parser.add_argument("--steps", type=int, default=2000, help="steps per ablation timing")
    args = parser.parse_args(argv)

    import torch

    from lottery.torch_trainer import flushing_denormals

    torch.set_num_threads(1)
    data, _ = _tensor_data(args.data, 0)
    with flushing_denormals():
        ops = operations(data)
    parts = ablation(data, args.steps)

    print(f"Step breakdown, LeNet-300-100 (round 1: 20% pruned), batch {BATCH}, 1 thread, subnormals "
          f"flushed; {date.today()}; medians of 5; data {args.data}.\n")  # fmt: skip
    print("| operation, alone | µs |\n|---|---|")
    for name, us in ops:
        print(f"| {name} | {us:.1f} |")
    whole = parts[0][1]
    print("\n| the trainer's step | µs per step | saved |\n|---|---|---|")
    for name, us in parts:
        saved = "" if name == "whole step" else f"{whole - us:.0f}"
        print(f"| {name} | {us:.0f} | {saved} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
