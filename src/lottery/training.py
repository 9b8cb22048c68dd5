"""Training of a masked fully connected network with Adam: the paper's protocol, fast on a CPU.

Why hand-written: for a 266K-weight MLP at batch 60, autograd's and the optimiser's bookkeeping cost
about as much as the arithmetic. Here every parameter is a view into one flat buffer (and so are the
gradients, the mask and Adam's moments), so that a step is the data gather, three ``addmm`` forward,
five ``mm`` backward, one mask multiply (none for a dense network) and one fused Adam call on a
single tensor: no allocation of parameter-sized tensors, no Python loop over parameters. The data
are one in-memory tensor.

Gradients are of the *summed* (not averaged) batch loss and Adam's epsilon is multiplied by the batch
size to match: Adam's update m/(sqrt(v)+eps) is then exactly the same in real arithmetic, and the
division by the batch size disappears from the step.

Pruned weights stay exactly zero: they start at zero and their gradients are multiplied by the mask, so
Adam's moments for them stay zero and so does their update.

Training steps run with subnormal floats flushed to zero (:func:`flushing_denormals`). A weight whose
gradient becomes zero (its unit silent for a whole batch) keeps a first moment that decays by 0.9 a
step into the subnormal range, where x86 arithmetic takes a slow microcode path: such moments pile
up as training goes on and slow the steps down (measured by ``benchmarks/denormals.py``, figures in
BENCHMARKS.md). The update such a moment gives is far below the weight's rounding, so the weights
are bitwise those of IEEE arithmetic (tested; over whole runs by that benchmark); only the moments
differ.

Early stopping follows the paper: training always runs the full number of iterations; the early-stop
iteration is the one of minimum validation loss (the first, on ties), and the test accuracy reported
is that of the weights at that iteration (kept in memory when the validation loss improves), so the
test set need not be evaluated every ``eval_every`` iterations.

This is the dense path. Pruned networks train on the sparse path (:mod:`lottery.sparse_training`,
chosen per layer by :func:`make_trainer`), at the cost of their surviving weights.

Evaluation reads the validation and test sets as :class:`SparseInputs`: 81% of MNIST's pixels are
blank, so the first layer (88% of a forward pass's arithmetic) adds up only the weight rows of the
other pixels, which makes validating 5,000 images every 100 iterations much cheaper
(``benchmarks/train_speed.py``: a whole protocol run over its pure training). The losses agree with a
dense pass to float rounding; training itself does not change.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lottery import kernels
from lottery.data import TensorData
from lottery.desc import TrainingHparams
from lottery.logs import log
from lottery.pruning import rewind
from lottery.sparse_training import DENSE, SparseTrainer, choose_paths

PROGRESS_SECONDS = 10.0  # a 50,000-iteration job's log moves under `tail -f`; a short job's stays short


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
    paths: dict[str, str]  # each weight matrix's path: "sparse" or "dense"
    # the compiled kernels' build flavour ($LOTTERY_MARCH) where they ran, else None: for the
    # provenance only (the results are the same bits from every flavour), never in the metrics
    kernel_flavour: str | None = None

    def metrics(self) -> dict[str, float | int | dict[str, str]]:
        return {
            "paths": self.paths,
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


@dataclass(frozen=True)
class SparseInputs:
    """Inputs as their deviations from a background value (MNIST's blank pixel), non-zero ones only.

    ``x @ w.t() = background * w.sum(1) + (x - background) @ w.t()``, and the second term only needs
    the weight rows of the pixels that are not background: an ``embedding_bag`` over them.
    """

    background: float
    offsets: torch.Tensor  # where each example's entries start in ``columns``/``values``
    columns: torch.Tensor
    values: torch.Tensor  # x - background at those columns
    shape: tuple[int, int]

    @classmethod
    def from_dense(cls, x: torch.Tensor, background: float) -> SparseInputs:
        deviation = x - background
        rows, columns = deviation.nonzero(as_tuple=True)
        counts = torch.bincount(rows, minlength=len(x))
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
        values = deviation[rows, columns]
        # int32 indices: half the memory of int64, and embedding_bag accepts them.
        return cls(background, offsets.int(), columns.int(), values, (len(x), x.shape[1]))

    def first_layer(self, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """``self @ w.t() + b`` for the dense inputs this stands for."""
        base = torch.addmv(b, w, torch.full((self.shape[1],), self.background))
        out = F.embedding_bag(self.columns, w.t().contiguous(), self.offsets, mode="sum",
                              per_sample_weights=self.values)  # fmt: skip
        return out.add_(base)


def as_evaluation_inputs(x: torch.Tensor, background: float | None) -> torch.Tensor | SparseInputs:
    """The sparse form where the inputs have a background value, else the dense tensor."""
    return x if background is None else SparseInputs.from_dense(x, background)


def forward(
    weights: list[torch.Tensor], biases: list[torch.Tensor], x: torch.Tensor | SparseInputs
) -> torch.Tensor:
    """Logits of the ReLU network."""
    last = len(weights) - 1
    a = x
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        a = a.first_layer(w, b) if isinstance(a, SparseInputs) else torch.addmm(b, a, w.t())
        if layer < last:
            a = a.relu_()
    return a


def evaluate(
    weights: list[torch.Tensor],
    biases: list[torch.Tensor],
    x: torch.Tensor | SparseInputs,
    y: torch.Tensor,
) -> Evaluation:
    logits = forward(weights, biases, x)
    loss = F.cross_entropy(logits, y)
    correct = (logits.argmax(dim=1) == y).sum()
    return Evaluation(loss=float(loss), accuracy=int(correct) / len(y))


@contextmanager
def flushing_denormals() -> Iterator[None]:
    """Subnormal floats read and computed as zero on this thread, IEEE arithmetic again after.

    Only the calling thread: with one thread per job (the workflow's default) that is all of the
    training's arithmetic. With more, PyTorch's pool threads keep whatever mode they started with;
    the weights are the same either way, only the speed-up is partial.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class MaskedTrainer:
    """The training state of one masked network: flat parameter, gradient, mask and moment buffers."""

    def __init__(
        self,
        init: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        data: TensorData,
        hparams: TrainingHparams,
        data_order_seed: int,
        start_iteration: int = 0,
        flush_denormals: bool = True,
    ) -> None:
        self.flush_denormals = flush_denormals
        self.layers = [name.removesuffix(".weight") for name in init if name.endswith(".weight")]
        missing = [f"{layer}.weight" for layer in self.layers if f"{layer}.weight" not in masks]
        if missing:
            raise ValueError(f"no mask for {missing}")
        start = rewind(init, masks)
        names = [f"{layer}.{kind}" for layer in self.layers for kind in ("weight", "bias")]
        shapes = [tuple(start[name].shape) for name in names]
        if shapes[0][1] != data.input_size:
            raise ValueError(f"the network expects {shapes[0][1]} inputs but the data have {data.input_size}")
        sizes = [math.prod(shape) for shape in shapes]
        total = sum(sizes)

        def views(flat: torch.Tensor) -> list[torch.Tensor]:
            return [v.view(shape) for v, shape in zip(flat.split(sizes), shapes, strict=True)]

        self.flat = torch.empty(total)
        self.grad = torch.zeros(total)
        self.mask = torch.ones(total)
        self.exp_avg = torch.zeros(total)
        self.exp_avg_sq = torch.zeros(total)
        self.steps = torch.zeros((), dtype=torch.float32)
        for name, param, mask in zip(names, views(self.flat), views(self.mask), strict=True):
            param.copy_(start[name])
            if name in masks:
                mask.copy_(masks[name])
        # A dense network (round 0, rewinding points) skips the mask multiply: x * 1 is x exactly.
        self.pruned = not bool(self.mask.all())
        params, grads = views(self.flat), views(self.grad)
        self.names = names
        self.weights, self.biases = params[0::2], params[1::2]
        self.weight_grads, self.bias_grads = grads[0::2], grads[1::2]
        self.views = views

        self.lr = hparams.learning_rate
        self.batch_size = hparams.batch_size
        self.data = data
        self.order = BatchOrder(len(data.train_y), hparams.batch_size, data_order_seed)
        for _ in range(start_iteration):  # rewinding to θk: the data order resumes at iteration k
            self.order.next()
        n_classes = shapes[-1][0]
        self.onehot_all = F.one_hot(data.train_y, n_classes).to(torch.float32)
        self.x = torch.empty(hparams.batch_size, data.input_size)
        self.onehot = torch.empty(hparams.batch_size, n_classes)
        self.loss_sum = torch.zeros((), dtype=torch.float64)
        self.steps_since_loss = 0

    def step(self) -> None:
        """One minibatch step of Adam on the masked network."""
        idx = self.order.next()
        x, onehot = self.x, self.onehot
        torch.index_select(self.data.train_x, 0, idx, out=x)
        torch.index_select(self.onehot_all, 0, idx, out=onehot)

        inputs = [x]
        a = x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            a = torch.addmm(b, a, w.t())
            if layer < last:
                a = a.relu_()
                inputs.append(a)

        # Summed softmax cross-entropy: its value for the curve, its gradient w.r.t. the logits.
        log_probs = torch.log_softmax(a, dim=1)
        self.loss_sum -= torch.dot(log_probs.view(-1), onehot.view(-1))
        self.steps_since_loss += 1
        grad = log_probs.exp_().sub_(onehot)

        for layer in range(last, -1, -1):
            torch.mm(grad.t(), inputs[layer], out=self.weight_grads[layer])
            torch.sum(grad, dim=0, out=self.bias_grads[layer])
            if layer > 0:
                grad = torch.ops.aten.threshold_backward(
                    torch.mm(grad, self.weights[layer]), inputs[layer], 0.0
                )

        if self.pruned:
            self.grad.mul_(self.mask)
        self.steps += 1
        torch._fused_adam_(
            [self.flat], [self.grad], [self.exp_avg], [self.exp_avg_sq], [], [self.steps],
            lr=self.lr, beta1=ADAM_BETAS[0], beta2=ADAM_BETAS[1], weight_decay=0.0,
            eps=ADAM_EPS * self.batch_size, amsgrad=False, maximize=False,
        )  # fmt: skip

    def run(self, steps: int) -> None:
        with flushing_denormals() if self.flush_denormals else nullcontext():
            for _ in range(steps):
                self.step()

    def take_train_loss(self) -> float:
        """Mean training loss per example since the last call."""
        mean = float(self.loss_sum) / max(1, self.steps_since_loss * self.batch_size)
        self.loss_sum.zero_()
        self.steps_since_loss = 0
        return mean

    def evaluate(
        self, x: torch.Tensor | SparseInputs, y: torch.Tensor, flat: torch.Tensor | None = None
    ) -> Evaluation:
        params = self.views(self.flat if flat is None else flat)
        return evaluate(params[0::2], params[1::2], x, y)

    def evaluation_inputs(self, x: torch.Tensor) -> torch.Tensor | SparseInputs:
        return as_evaluation_inputs(x, self.data.background)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.clone() for name, p in zip(self.names, self.views(self.flat), strict=True)}


def make_trainer(
    init: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    data: TensorData,
    hparams: TrainingHparams,
    data_order_seed: int,
    start_iteration: int = 0,
    flush_denormals: bool = True,
) -> tuple[MaskedTrainer | SparseTrainer, dict[str, str]]:
    """The trainer for ``masks`` and each layer's path (:func:`lottery.sparse_training.choose_paths`):
    :class:`SparseTrainer` where some layer is at most ``hparams.sparse_max_density`` dense or the
    inputs have a blank value (a dense first layer then reads only the non-blank inputs), and the
    kernels could be built; else :class:`MaskedTrainer`. Without the kernels every layer trains
    dense, and the log says why. ``sparse_max_density`` 0 is today's dense trainer throughout."""
    lib = kernels.load() if hparams.sparse_max_density > 0 else None
    nonblank = data.background is not None and hparams.sparse_max_density > 0
    wanted = choose_paths(masks, hparams.sparse_max_density, True, nonblank)
    paths = choose_paths(masks, hparams.sparse_max_density, lib is not None, nonblank)
    if wanted != paths and hparams.sparse_max_density > 0:
        log.warning(
            "sparse path unavailable (%s): every layer trains on the dense path", kernels.unavailable_reason
        )
    if set(paths.values()) != {DENSE}:
        assert lib is not None
        trainer = SparseTrainer(init, masks, data, hparams, data_order_seed, paths, lib, start_iteration)
        return trainer, paths
    return MaskedTrainer(init, masks, data, hparams, data_order_seed, start_iteration, flush_denormals), paths


def train(
    init: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    data: TensorData,
    hparams: TrainingHparams,
    data_order_seed: int,
    start_iteration: int = 0,
    flush_denormals: bool = True,
    progress_seconds: float = PROGRESS_SECONDS,
) -> TrainingResult:
    """Train ``rewind(init, masks)`` with Adam up to iteration ``hparams.iterations``.

    ``start_iteration`` k > 0 trains from θk (weights after k iterations of dense training) for the
    remaining iterations, the data order resuming where iteration k left it; Adam starts afresh.
    A progress line goes to the log at the first evaluation ``progress_seconds`` after the last one.
    """
    if not 0 <= start_iteration < hparams.iterations:
        raise ValueError(f"start iteration {start_iteration} must be in [0, {hparams.iterations})")
    trainer, paths = make_trainer(
        init, masks, data, hparams, data_order_seed, start_iteration, flush_denormals
    )
    val_x = trainer.evaluation_inputs(data.val_x)
    test_x = trainer.evaluation_inputs(data.test_x)
    best_flat = trainer.flat.clone()
    best_loss, best_iteration = math.inf, 0
    best_val = Evaluation(math.nan, math.nan)
    curve: list[dict[str, float | int | None]] = []
    done = start_iteration
    started = last_progress = time.perf_counter()
    for iteration in hparams.eval_iterations(start_iteration):
        trainer.run(iteration - done)
        done = iteration
        val = trainer.evaluate(val_x, data.val_y)
        if not math.isfinite(val.loss):
            raise FloatingPointError(
                f"training diverged: validation loss {val.loss} at iteration {iteration} "
                f"(training.learning_rate {hparams.learning_rate})"
            )
        row: dict[str, float | int | None] = {
            "iteration": iteration,
            "train_loss": trainer.take_train_loss(),
            "val_loss": val.loss,
            "val_acc": val.accuracy,
            "test_loss": None,
            "test_acc": None,
        }
        if hparams.test_every and iteration % hparams.test_every == 0:
            test = trainer.evaluate(test_x, data.test_y)
            row["test_loss"], row["test_acc"] = test.loss, test.accuracy
        curve.append(row)
        if val.loss < best_loss:
            best_loss, best_iteration, best_val = val.loss, iteration, val
            best_flat.copy_(trainer.flat)
        if (now := time.perf_counter()) - last_progress >= progress_seconds:
            last_progress = now
            log.info(
                "iteration %d/%d: val loss %.4f, val acc %.4f, %.0f s elapsed",
                iteration, hparams.iterations, val.loss, val.accuracy, now - started,
            )  # fmt: skip

    final_val = Evaluation(curve[-1]["val_loss"], curve[-1]["val_acc"])  # type: ignore[arg-type]
    final_test = trainer.evaluate(test_x, data.test_y)
    early_test = trainer.evaluate(test_x, data.test_y, flat=best_flat)
    for row in curve:
        if row["iteration"] == best_iteration:
            row["test_loss"], row["test_acc"] = early_test.loss, early_test.accuracy
    curve[-1]["test_loss"], curve[-1]["test_acc"] = final_test.loss, final_test.accuracy
    return TrainingResult(
        params=trainer.state_dict(),
        curve=curve,
        early_stop_iteration=best_iteration,
        early_stop_val=best_val,
        early_stop_test=early_test,
        final_val=final_val,
        final_test=final_test,
        iterations=hparams.iterations,
        paths=paths,
        kernel_flavour=kernels.flavour_of(trainer.lib) if isinstance(trainer, SparseTrainer) else None,
    )
