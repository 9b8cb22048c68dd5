"""``grasp``: GraSP, gradient signal preservation (Wang, Zhang & Grosse, ICLR 2020, "Picking winning
tickets before training by preserving gradient flow").

GraSP prunes the weights whose removal least reduces (or most increases) the gradient norm
``‖g‖²``: to first order, removing weights δ = −θ changes it by ``2 δᵀ H g``, so the paper scores
each weight by ``S(−θ) = −θ ⊙ Hg`` and *removes the highest* S. ``Hg`` is the Hessian-gradient
product at θ0, by double backprop as the reference does: ``g`` the gradient of the mean cross-entropy
of the logits divided by the temperature :data:`TEMPERATURE` (200) on :data:`EXAMPLES_PER_CLASS`
examples of each class, then ``Hg = ∂(g_detached · g)/∂θ``, both over the prunable weights only
(biases stay at θ0 and are not differentiated).

Sign convention: this interface keeps the highest scores, so the score of ``grasp`` is
``θ0 ⊙ Hg = −S``; keeping its highest ``ticket_total`` is removing the highest ``S = −θ0 ⊙ Hg``,
the paper's rule and both references': Wang et al.'s code scores ``-θ ⊙ Hg`` and keeps the scores
at or below the threshold of the top ones to remove; ganguli-lab/Synaptic-Flow scores ``Hg ⊙ θ``
and keeps those above its global threshold. Equivalently: the weights removed first are those with
the most negative ``θ0 ⊙ Hg``, whose removal raises the gradient norm the most (to first order).

Reference protocol: ganguli-lab/Synaptic-Flow ``Pruners/pruners.py`` (class ``GraSP``: ``temp =
200``, the stopped gradient summed over the pruning loader, then the gradient of ``stopped · g``;
global) and the open_lth strategy ``grasp10`` of Frankle et al. (ICLR 2021), 10 examples per class.

Choices, and where they differ from the reference:

- one batch of N·C examples, the mean cross-entropy (the reference's loader: 10·C examples in one
  batch of 256; Wang et al.'s own code splits its batch in two halves and sums the halves' gradients,
  which doubles g and so quadruples Hg: one positive constant, the same ranking);
- the scores are not divided by ``|Σ scores| + 1e-10`` (the reference's normalisation, a positive
  constant: the same ranking);
- exactly ``ticket_total`` weights are kept, ties to the lower position in network order
  (:func:`lottery.pruning.keep_top_jointly`); the reference keeps every score above its threshold;
- Wang et al.'s code redraws the fully connected weights (Xavier normal) before scoring; we score
  θ0 as the Synaptic-Flow reference does (θ0 is Glorot normal here);
- the gradients are taken at the masked network θ0 ⊙ m and only survivors are ranked (the workflow
  prunes from dense masks, the reference's case); float32, as the reference and the trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lottery.methods import snip
from lottery.methods.base import GLOBAL, Budget, PruningInputs, Scorer, keep_ticket_total

if TYPE_CHECKING:
    import torch

NAME = "grasp"
EXAMPLES_PER_CLASS = 10  # grasp10 (Frankle et al. 2021); Synaptic-Flow's pruning loader holds 10·C
TEMPERATURE = 200.0  # the logits are divided by it (both references)


def hessian_gradient(
    model: Any,
    params: Mapping[str, torch.Tensor],
    names: list[str],
    x: torch.Tensor,
    y: torch.Tensor,
    temperature: float = TEMPERATURE,
) -> dict[str, torch.Tensor]:
    """``Hg`` over the weights ``names``: ``H`` and ``g`` the Hessian and gradient of the mean
    cross-entropy of ``forward(params, x) / temperature`` (the other parameters held fixed)."""
    import torch
    import torch.nn.functional as F

    leaves = {name: t.detach().clone().requires_grad_(name in names) for name, t in params.items()}
    weights = [leaves[name] for name in names]
    loss = F.cross_entropy(model.forward(leaves, x) / temperature, y)
    grads = torch.autograd.grad(loss, weights, create_graph=True)
    flow = sum((g.detach() * g).sum() for g in grads)  # g_detached · g: its gradient is H g
    products = torch.autograd.grad(flow, weights)
    return {name: hg.detach() for name, hg in zip(names, products, strict=True)}


def scores(inputs: PruningInputs) -> dict[str, np.ndarray]:
    """``θ0 ⊙ Hg`` of every prunable weight: the highest are kept (GraSP's ``−θ0 ⊙ Hg`` lowest; see
    the module for the sign)."""
    model, params = snip.model_and_params(inputs, NAME)
    names = list(inputs.masks)
    x, y = snip.batch(inputs, NAME, EXAMPLES_PER_CLASS)
    products = hessian_gradient(model, params, names, x, y)
    return {name: (params[name] * products[name]).numpy() for name in names}


def choose(inputs: PruningInputs, budget: Budget) -> dict[str, Any]:
    return keep_ticket_total(scores(inputs), inputs, budget)


METHOD = Scorer(
    NAME, GLOBAL, scores,
    f"GraSP (Wang et al. 2020): removes the highest −θ0 ⊙ Hg (T = {TEMPERATURE:g}, {EXAMPLES_PER_CLASS} "
    "examples per class), global, the ticket's Pm",
    choose,
    uses_torch=True,  # its gradients: the job pins PyTorch to its threads
)  # fmt: skip
