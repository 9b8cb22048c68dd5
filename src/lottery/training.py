"""Training of a masked fully connected network with Adam: the paper's protocol, fast on a CPU.

Why hand-written backward passes: for a 266K-weight MLP at batch 60, autograd's bookkeeping costs more
than the arithmetic. The forward and backward passes here are a few ``addmm``/``mm`` calls into
preallocated buffers, the data are one in-memory tensor, and the optimiser is PyTorch's fused Adam.

Pruned weights stay exactly zero: they start at zero and their gradients are multiplied by the mask, so
Adam's moments for them stay zero and so does their update.

Early stopping follows the paper: training always runs the full number of iterations; the early-stop
iteration is the one of minimum validation loss (the first, on ties), and the test accuracy reported
is that of the weights at that iteration (kept in memory when the validation loss improves), so the
test set need not be evaluated every ``eval_every`` iterations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lottery.data import TensorData
from lottery.pruning import rewind


@dataclass(frozen=True)
class TrainingHparams:
    """The paper's LeNet-300-100 protocol by default."""

    learning_rate: float = 1.2e-3
    batch_size: int = 60
    iterations: int = 50_000
    eval_every: int = 100
    test_every: int = 0  # 0: test accuracy only at the early-stop iteration and at the end

    def __post_init__(self) -> None:
        for key in ("batch_size", "iterations", "eval_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"training.{key} must be at least 1, got {getattr(self, key)}")
        if self.test_every < 0:
            raise ValueError(f"training.test_every must be >= 0, got {self.test_every}")
        if not self.learning_rate > 0:
            raise ValueError(f"training.learning_rate must be positive, got {self.learning_rate}")

    def eval_iterations(self) -> list[int]:
        """Iterations after which the validation set is evaluated (always including the last)."""
        points = list(range(self.eval_every, self.iterations + 1, self.eval_every))
        if not points or points[-1] != self.iterations:
            points.append(self.iterations)
        return points


@dataclass
class Evaluation:
    loss: float
    accuracy: float


@dataclass
class TrainingResult:
    params: dict[str, torch.Tensor]
    curve: list[dict[str, float | int | None]]
    early_stop_iteration: int
    early_stop_val: Evaluation
    early_stop_test: Evaluation
    final_val: Evaluation
    final_test: Evaluation
    iterations: int

    def metrics(self) -> dict[str, float | int]:
        return {
            "iterations": self.iterations,
            "early_stop_iteration": self.early_stop_iteration,
            "val_loss": self.early_stop_val.loss,
            "val_acc": self.early_stop_val.accuracy,
            "test_loss": self.early_stop_test.loss,
            "test_acc": self.early_stop_test.accuracy,
            "val_loss_final": self.final_val.loss,
            "val_acc_final": self.final_val.accuracy,
            "test_loss_final": self.final_test.loss,
            "test_acc_final": self.final_test.accuracy,
        }


class BatchOrder:
    """Minibatch indices: a fresh seeded permutation each epoch, batches running across epoch ends."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.order):
            fresh = torch.randperm(self.n, generator=self.generator)
            self.order = torch.cat([self.order[self.pos :], fresh])
            self.pos = 0
        batch = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return batch


def forward(weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of the ReLU network."""
    a = x
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        a = torch.addmm(b, a, w.t())
        if layer < len(weights) - 1:
            a = a.relu_()
    return a


def evaluate(
    weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor
) -> Evaluation:
    logits = forward(weights, biases, x)
    loss = F.cross_entropy(logits, y)
    correct = (logits.argmax(dim=1) == y).sum()
    return Evaluation(loss=float(loss), accuracy=int(correct) / len(y))


def _split_params(
    params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]
) -> tuple[list[str], list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    layers = [name.removesuffix(".weight") for name in params if name.endswith(".weight")]
    missing = [f"{layer}.weight" for layer in layers if f"{layer}.weight" not in masks]
    if missing:
        raise ValueError(f"no mask for {missing}")
    start = rewind(params, masks)
    masks_f = [masks[f"{layer}.weight"].to(torch.float32).contiguous() for layer in layers]
    weights = [start[f"{layer}.weight"].to(torch.float32).contiguous() for layer in layers]
    biases = [start[f"{layer}.bias"].to(torch.float32).contiguous() for layer in layers]
    return layers, weights, biases, masks_f


def _make_adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a build without the fused CPU kernel
        return torch.optim.Adam(params, lr=lr, foreach=True)


def train(
    init: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    data: TensorData,
    hparams: TrainingHparams,
    data_order_seed: int,
) -> TrainingResult:
    """Train ``rewind(init, masks)`` with Adam for ``hparams.iterations`` minibatch steps."""
    layers, weights, biases, masks_f = _split_params(init, masks)
    if weights[0].shape[1] != data.input_size:
        raise ValueError(
            f"the network expects {weights[0].shape[1]} inputs but the data have {data.input_size}"
        )
    n_layers = len(layers)
    params = [p for pair in zip(weights, biases, strict=True) for p in pair]
    for p in params:
        p.grad = torch.zeros_like(p)
    optimizer = _make_adam(params, hparams.learning_rate)

    bsz = hparams.batch_size
    order = BatchOrder(len(data.train_y), bsz, data_order_seed)
    rows = torch.arange(bsz)
    x = torch.empty(bsz, data.input_size)
    y = torch.empty(bsz, dtype=torch.long)
    best_w = [w.clone() for w in weights]
    best_b = [b.clone() for b in biases]
    best_loss, best_iteration = math.inf, 0
    best_val = Evaluation(math.nan, math.nan)
    curve: list[dict[str, float | int | None]] = []
    loss_sum = torch.zeros((), dtype=torch.float64)
    window = 0
    eval_points = set(hparams.eval_iterations())

    for iteration in range(1, hparams.iterations + 1):
        idx = order.next()
        torch.index_select(data.train_x, 0, idx, out=x)
        torch.index_select(data.train_y, 0, idx, out=y)

        # Forward, keeping each layer's input for the weight gradients.
        inputs = [x]
        a = x
        for layer in range(n_layers):
            a = torch.addmm(biases[layer], a, weights[layer].t())
            if layer < n_layers - 1:
                a = a.relu_()
                inputs.append(a)

        # Softmax cross-entropy: loss for the curve, gradient w.r.t. the logits.
        log_probs = torch.log_softmax(a, dim=1)
        loss_sum -= log_probs[rows, y].sum()
        window += 1
        grad = log_probs.exp_()
        grad[rows, y] -= 1.0
        grad.div_(bsz)

        # Backward.
        for layer in range(n_layers - 1, -1, -1):
            w_grad, b_grad = weights[layer].grad, biases[layer].grad
            torch.mm(grad.t(), inputs[layer], out=w_grad)
            w_grad.mul_(masks_f[layer])
            torch.sum(grad, dim=0, out=b_grad)
            if layer > 0:
                grad = torch.mm(grad, weights[layer])
                grad.masked_fill_(inputs[layer] <= 0, 0.0)

        optimizer.step()

        if iteration in eval_points:
            val = evaluate(weights, biases, data.val_x, data.val_y)
            row: dict[str, float | int | None] = {
                "iteration": iteration,
                "train_loss": float(loss_sum) / (window * bsz),
                "val_loss": val.loss,
                "val_acc": val.accuracy,
                "test_loss": None,
                "test_acc": None,
            }
            loss_sum.zero_()
            window = 0
            if hparams.test_every and iteration % hparams.test_every == 0:
                test = evaluate(weights, biases, data.test_x, data.test_y)
                row["test_loss"], row["test_acc"] = test.loss, test.accuracy
            curve.append(row)
            if val.loss < best_loss:
                best_loss, best_iteration, best_val = val.loss, iteration, val
                for dst, src in zip(best_w + best_b, weights + biases, strict=True):
                    dst.copy_(src)

    final_val = Evaluation(curve[-1]["val_loss"], curve[-1]["val_acc"])  # type: ignore[arg-type]
    final_test = evaluate(weights, biases, data.test_x, data.test_y)
    early_test = evaluate(best_w, best_b, data.test_x, data.test_y)
    for row in curve:
        if row["iteration"] == best_iteration:
            row["test_loss"], row["test_acc"] = early_test.loss, early_test.accuracy
    curve[-1]["test_loss"], curve[-1]["test_acc"] = final_test.loss, final_test.accuracy

    final = {}
    for layer, w, b in zip(layers, weights, biases, strict=True):
        final[f"{layer}.weight"] = w.detach().clone()
        final[f"{layer}.bias"] = b.detach().clone()
    return TrainingResult(
        params=final,
        curve=curve,
        early_stop_iteration=best_iteration,
        early_stop_val=best_val,
        early_stop_test=early_test,
        final_val=final_val,
        final_test=final_test,
        iterations=hparams.iterations,
    )
