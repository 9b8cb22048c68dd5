"""The autograd trainer (``training.backend: autograd``, and ``native`` for a model the compiled kernels
do not train): any model of :mod:`lottery.models` trained under its masks with the paper's protocol,
by PyTorch's autograd, on ``training.device`` (``cpu``, or ``cuda`` where PyTorch sees a GPU).

The protocol is the other trainers' (:mod:`lottery.torch_trainer`, :mod:`lottery.native`): minibatches
in :class:`lottery.order.BatchOrder`'s order, the gradient of the *summed* batch cross-entropy and
Adam (:data:`lottery.trainer_parts.ADAM_BETAS`) with epsilon :data:`~lottery.trainer_parts.ADAM_EPS`
times the batch size, which is the paper's update (mean loss, epsilon 1e-8) in real arithmetic.
Pruned weights stay exactly zero: they start at zero (:func:`lottery.pruning.rewind`) and their
gradients are multiplied by the mask, so Adam's moments and updates for them stay zero. Steps run with
subnormal floats flushed to zero on the CPU (see :mod:`lottery.training`); a GPU keeps its own mode.

Every parameter is a view into one flat buffer, as in the reference trainer, so that the mask
multiply, Adam and the copies of the weights at the early-stop point are one tensor operation each.

On LeNet-300-100 it trains what the native trainer trains up to float rounding (its sums run in
another order): ``tests/test_autograd_trainer.py`` measures the difference. On the CPU its results
are the same bits run after run on one machine; on a GPU cuDNN is asked for deterministic algorithms,
but the bits may differ from the CPU's and between GPU kinds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from lottery import models
from lottery.data import ARRAYS, TensorData
from lottery.desc import TrainingHparams
from lottery.order import BatchOrder
from lottery.pruning import rewind
from lottery.torch_trainer import Steps
from lottery.trainer_parts import ADAM_BETAS, ADAM_EPS, Evaluation

EVALUATION_ROWS = 500  # examples evaluated at a time: a conv net's activations of 10,000 would not fit


def device_of(hparams: TrainingHparams) -> torch.device:
    """``training.device`` as a PyTorch device; ``cuda`` without a GPU is a clear error."""
    if hparams.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("training.device is 'cuda' but PyTorch sees no CUDA GPU here: use 'cpu'")
    return torch.device(hparams.device)


class AutogradTrainer(Steps):
    """The training state of one masked network of a registered model (the interface of
    :class:`lottery.torch_trainer.MaskedTrainer`, which :func:`lottery.training.train` drives)."""

    def __init__(
        self,
        init: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        data: TensorData,
        hparams: TrainingHparams,
        data_order_seed: int,
        start_iteration: int = 0,
        flush_denormals: bool = True,
        model: str = "mlp",
    ) -> None:
        self.model = models.get(model)
        self.device = device_of(hparams)
        self.flush_denormals = flush_denormals and self.device.type == "cpu"
        if self.device.type == "cuda":  # the same bits run after run, where cuDNN can
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        weights = [name for name in init if name.endswith(".weight")]
        missing = [name for name in weights if name not in masks]
        if missing:
            raise ValueError(f"no mask for {missing}")
        start = rewind(init, masks)
        self.names = list(init)
        shapes = [tuple(start[name].shape) for name in self.names]
        first = start[weights[0]]
        if first.dim() == 2 and first.shape[1] != data.input_size:
            raise ValueError(
                f"the network expects {first.shape[1]} inputs but the data have {data.input_size}"
            )
        self.sizes = [math.prod(shape) for shape in shapes]
        self.shapes = shapes

        self.flat = torch.empty(sum(self.sizes), device=self.device)
        self.mask = torch.ones(sum(self.sizes), device=self.device)
        for name, param, mask in zip(self.names, self.views(self.flat), self.views(self.mask), strict=True):
            param.copy_(start[name])
            if name in masks:
                mask.copy_(torch.as_tensor(masks[name]))
        self.flat.requires_grad_(True)
        self.flat.grad = torch.zeros_like(self.flat)
        # A dense network (round 0, rewinding points) skips the mask multiply: x * 1 is x exactly.
        self.pruned = not bool(self.mask.all())
        self.optimiser = torch.optim.Adam(
            [self.flat], lr=hparams.learning_rate, betas=ADAM_BETAS, eps=ADAM_EPS * hparams.batch_size,
            weight_decay=0.0, foreach=False,
        )  # fmt: skip

        self.batch_size = hparams.batch_size
        self.data = TensorData(
            **{f: getattr(data, f).to(self.device) for f in ARRAYS}, background=data.background
        )
        self.order = BatchOrder(len(data.train_y), hparams.batch_size, data_order_seed)
        for _ in range(start_iteration):  # rewinding to θk: the data order resumes at iteration k
            self.order.next()
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.steps_since_loss = 0
        self._check_fits()

    def _check_fits(self) -> None:
        """A clear error now where the parameters do not fit the model on these inputs (a conv net's
        image size): its forward pass on one example."""
        try:
            with torch.no_grad():
                self.model.forward(self.params(self.flat), self.data.train_x[:1])
        except RuntimeError as error:
            shapes = dict(zip(self.names, self.shapes, strict=True))
            raise ValueError(
                f"model.name {self.model.name}: parameters {shapes} do not fit inputs of "
                f"{self.data.train_x.shape[1]} features ({error})"
            ) from None

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Each parameter as a view into ``flat``, in network order."""
        return [v.view(shape) for v, shape in zip(flat.split(self.sizes), self.shapes, strict=True)]

    def params(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, self.views(flat), strict=True))

    def step(self) -> None:
        """One minibatch step of Adam on the masked network."""
        idx = torch.from_numpy(self.order.next()).to(self.device)
        x = torch.index_select(self.data.train_x, 0, idx)
        y = torch.index_select(self.data.train_y, 0, idx)
        loss = F.cross_entropy(self.model.forward(self.params(self.flat), x), y, reduction="sum")
        self.flat.grad.zero_()
        loss.backward()
        if self.pruned:
            self.flat.grad.mul_(self.mask)
        self.optimiser.step()
        self.loss_sum += loss.detach()
        self.steps_since_loss += 1

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, flat: torch.Tensor | None = None) -> Evaluation:
        """Mean cross-entropy and accuracy on ``x``, ``y`` (:meth:`evaluation_inputs`), with the
        current weights or those of ``flat`` (:meth:`flat_copy`)."""
        params = self.params(self.flat if flat is None else flat)
        y = y.to(self.device)
        if len(x) <= EVALUATION_ROWS:  # one pass: PyTorch's mean, as the reference trainer's
            logits = self.model.forward(params, x)
            loss = float(F.cross_entropy(logits, y))
            correct = int((logits.argmax(dim=1) == y).sum())
        else:
            total = torch.zeros((), dtype=torch.float64, device=self.device)
            hits = torch.zeros((), dtype=torch.int64, device=self.device)
            for start in range(0, len(x), EVALUATION_ROWS):
                logits = self.model.forward(params, x[start : start + EVALUATION_ROWS])
                part = y[start : start + EVALUATION_ROWS]
                total += F.cross_entropy(logits, part, reduction="sum").double()
                hits += (logits.argmax(dim=1) == part).sum()
            loss, correct = float(total) / len(y), int(hits)
        return Evaluation(loss=loss, accuracy=correct / len(y))

    def evaluation_inputs(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``x`` on the trainer's device (dense: the models read whole images)."""
        return torch.as_tensor(x).to(self.device)

    def flat_copy(self, into: torch.Tensor | None = None) -> torch.Tensor:
        """The flat parameter buffer's values, copied (into ``into`` where given)."""
        with torch.no_grad():
            return self.flat.detach().clone() if into is None else into.copy_(self.flat)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The parameters, on the CPU."""
        return {name: p.detach().cpu().clone() for name, p in self.params(self.flat).items()}
