"""The PyTorch reference trainer (``training.backend: torch``): a masked fully connected network
trained with Adam, the paper's protocol, dense matrices times their masks through PyTorch's BLAS.

It is the reference the native trainer (:mod:`lottery.native`) is tested against, and the fallback
where the native kernels cannot be built (no compiler). Its results depend on PyTorch's BLAS, which
chooses its code by CPU vendor and instruction set: the same bits on every machine are the native
trainer's promise, not this one's.

Why hand-written: for a 266K-weight MLP at batch 60, autograd's and the optimiser's bookkeeping cost
about as much as the arithmetic. Here every parameter is a view into one flat buffer (and so are the
gradients, the mask and Adam's moments), so that a step is the data gather, three ``addmm`` forward,
five ``mm`` backward, one mask multiply (none for a dense network) and one fused Adam call on a
single tensor.

Gradients are of the *summed* (not averaged) batch loss and Adam's epsilon is multiplied by the batch
size to match: Adam's update m/(sqrt(v)+eps) is then exactly the same in real arithmetic, and the
division by the batch size disappears from the step. Pruned weights stay exactly zero: they start at
zero and their gradients are multiplied by the mask, so Adam's moments for them stay zero and so does
their update. Steps run with subnormal floats flushed to zero (see :mod:`lottery.training`).

Evaluation reads the validation and test sets as :class:`SparseInputs`: 81% of MNIST's pixels are
blank, so the first layer adds up only the weight rows of the other pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lottery.data import TensorData
from lottery.desc import TrainingHparams
from lottery.order import BatchOrder
from lottery.pruning import rewind
from lottery.trainer_parts import ADAM_BETAS, ADAM_EPS, Evaluation


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


class Steps:
    """What the PyTorch trainers share around their own ``step``: running steps with subnormals
    flushed (``flush_denormals``), and the mean training loss since the last call (``loss_sum`` over
    ``steps_since_loss`` steps of ``batch_size`` examples)."""

    flush_denormals: bool
    loss_sum: torch.Tensor
    steps_since_loss: int
    batch_size: int

    def step(self) -> None:
        raise NotImplementedError

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


class MaskedTrainer(Steps):
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
        idx = torch.from_numpy(self.order.next())
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

    def evaluate(
        self, x: torch.Tensor | SparseInputs, y: torch.Tensor, flat: torch.Tensor | None = None
    ) -> Evaluation:
        params = self.views(self.flat if flat is None else flat)
        return evaluate(params[0::2], params[1::2], x, y)

    def evaluation_inputs(self, x: torch.Tensor) -> torch.Tensor | SparseInputs:
        return as_evaluation_inputs(x, self.data.background)

    def flat_copy(self, into: torch.Tensor | None = None) -> torch.Tensor:
        """The flat parameter buffer's values, copied (into ``into`` where given)."""
        return self.flat.clone() if into is None else into.copy_(self.flat)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: p.clone() for name, p in zip(self.names, self.views(self.flat), strict=True)}
