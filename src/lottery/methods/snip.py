"""``snip``: SNIP, single-shot network pruning by connection sensitivity (Lee, Ajanthan & Torr, ICLR
2019, "SNIP: Single-shot network pruning based on connection sensitivity").

Each prunable weight is scored by the sensitivity of the loss to a multiplicative gate on it,
``|∂L/∂c| = |g ⊙ θ0|`` at ``c = 1``, with ``g = ∂L/∂w`` the gradient of the cross-entropy at θ0 on
:data:`EXAMPLES_PER_CLASS` examples of each class of the training split (``examples.per_class(N,
seed)``, the step's seed). The highest scores are kept over all layers together (global), exactly
``budget.ticket_total`` of them: the iterative ticket's Pm at the same level, so that the method sits
beside the ticket at the same number of weights.

Reference protocol: ganguli-lab/Synaptic-Flow ``Pruners/pruners.py`` (class ``SNIP``: the gradient
with respect to the masks of the masked layers, ``|m.grad|``, normalised by the sum of all scores;
global threshold) and the open_lth strategy ``snip10`` of Frankle et al. (ICLR 2021, "Pruning neural
networks at initialization: why are we missing the mark?"), 10 examples per class.

Choices, and where they differ from the reference:

- the loss is the *mean* cross-entropy over the N·C examples in one batch (PyTorch's default, as the
  reference, whose pruning loader holds 10·C examples in one batch of 256). A sum would multiply every
  score by the same positive constant N·C and so keep the same weights (up to a tie that rounding
  might make or break);
- the scores are not divided by their sum (the reference's normalisation: again one positive
  constant, the same ranking);
- exactly ``ticket_total`` weights are kept, ties going to the lower position in network order (the
  project's rule, :func:`lottery.pruning.keep_top_jointly`); the reference keeps every score above the
  k-th smallest, so ties at the threshold all go;
- the gradient is taken at the masked network θ0 ⊙ m and only survivors are ranked (a pruned weight
  is never revived); the workflow prunes from dense masks, where this is the reference's protocol;
- the scores read θ0 (``inputs.init``, biases too), never the ``trained`` weights; float32, as the
  trainer and the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lottery.methods.base import GLOBAL, Budget, PruningInputs, Scorer, as_array, keep_ticket_total

if TYPE_CHECKING:
    import torch

NAME = "snip"
EXAMPLES_PER_CLASS = 10  # N of snip10 (Frankle et al. 2021) and of SynFlow's pruning loader (10·C)


def model_and_params(inputs: PruningInputs, method: str) -> tuple[Any, dict[str, torch.Tensor]]:
    """The model of ``inputs.architecture`` and θ0 (every parameter) as float32 tensors, each weight
    multiplied by its mask (``inputs.masks``)."""
    import torch

    from lottery import models

    arch = inputs.require("architecture", method)
    init = inputs.require("init", method)
    params = {name: torch.tensor(as_array(value), dtype=torch.float32) for name, value in init.items()}
    for name, mask in inputs.masks.items():
        params[name] = params[name] * torch.tensor(as_array(mask), dtype=torch.float32)
    return models.of(arch), params


def batch(inputs: PruningInputs, method: str, per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` training examples of each class, drawn with the step's seed."""
    import torch

    x, y = inputs.require("examples", method).per_class(per_class, inputs.seed)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.int64)


def sensitivities(
    model: Any, params: Mapping[str, torch.Tensor], names: list[str], x: torch.Tensor, y: torch.Tensor
) -> dict[str, np.ndarray]:
    """``|∂L/∂w ⊙ w|`` for each weight of ``names``, ``L`` the mean cross-entropy of ``x``, ``y``."""
    import torch
    import torch.nn.functional as F

    leaves = {name: t.detach().clone().requires_grad_(name in names) for name, t in params.items()}
    loss = F.cross_entropy(model.forward(leaves, x), y)
    grads = torch.autograd.grad(loss, [leaves[name] for name in names])
    return {name: (g * leaves[name]).abs().detach().numpy() for name, g in zip(names, grads, strict=True)}


def scores(inputs: PruningInputs) -> dict[str, np.ndarray]:
    """SNIP's connection sensitivity ``|g ⊙ θ0|`` of every prunable weight (see the module)."""
    model, params = model_and_params(inputs, NAME)
    x, y = batch(inputs, NAME, EXAMPLES_PER_CLASS)
    # at the masked point θ0 ⊙ m: a pruned weight scores 0 (and only survivors are ranked)
    return sensitivities(model, params, list(inputs.masks), x, y)


def choose(inputs: PruningInputs, budget: Budget) -> dict[str, Any]:
    return keep_ticket_total(scores(inputs), inputs, budget)


METHOD = Scorer(
    NAME, GLOBAL, scores,
    f"SNIP (Lee et al. 2019): |g ⊙ θ0| on {EXAMPLES_PER_CLASS} examples per class, global, the ticket's Pm",
    choose,
    uses_torch=True,  # its gradients: the job pins PyTorch to its threads
)  # fmt: skip
