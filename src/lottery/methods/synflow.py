"""``synflow``: SynFlow, iterative synaptic flow pruning (Tanaka, Kunin, Yamins & Ganguli, NeurIPS
2020, "Pruning neural networks without any data by iteratively conserving synaptic flow").

Data-free: every parameter is replaced by its absolute value ``|θ0|`` (biases too, as the reference's
``linearize`` does to the whole state dict; the project's biases are zero at θ0), the all-ones input
(one example, the data's ``features``) goes through the masked network, ``R`` is the sum of its
outputs, and each weight scores ``|∂R/∂w ⊙ w|`` (``w = |θ0| ⊙ m``, so a pruned weight scores 0).
With positive parameters and a positive input every ReLU passes its input, so the scores of a layer
sum to ``R`` whatever the layer (conservation of synaptic flow, for a bias-free fully connected net),
and global selection cannot empty one layer before the others: no layer collapse.

The pruning is iterative, :data:`ITERATIONS` (100) rounds on the exponential schedule: at round
``i = 1 … 100`` the network keeps ``round(alive · (keep / alive) ** (i / 100))`` weights - ``alive``
the survivors of ``inputs.masks`` (all weights, from dense masks: the density ``(kept / total) **
(i / 100)``), ``keep = budget.ticket_total``, the iterative ticket's Pm at the same level - each round
re-scoring under the current masks and keeping the highest scores over all layers together. The last
round keeps exactly ``ticket_total``. A pruned weight is never revived.

Reference protocol: ganguli-lab/Synaptic-Flow ``Pruners/pruners.py`` (class ``SynFlow``: ``linearize``
takes ``sign`` of every state-dict entry and ``abs_()``s it, ``nonlinearize`` multiplies the signs
back; input ``torch.ones([1] + input_dim)``; ``torch.sum(output).backward()``; score ``|p.grad ⊙
p|``), its ``prune.py`` (``prune_loop``: the model in ``eval`` mode, ``sparse = sparsity ** ((epoch +
1) / epochs)``, global mask each epoch) and ``Utils/generator.py`` (``masked_parameters``: the
weights of ``Linear`` and ``Conv2d``, biases not pruned), and the open_lth strategy ``synflow
--prune_iterations=100`` of Frankle et al. (ICLR 2021). Max pooling is run as it is (the reference
runs its networks unchanged; with positive activations a pool passes its largest input, which breaks
exact conservation across a pool but not the method). There is no batch norm or dropout here, so
``eval`` mode changes nothing.

Choices, and where they differ from the reference:

- float64 throughout (the reference has ``model.double()`` and a float64 input commented out, so it
  runs float32). ``R`` is a product of one sum per layer, and the scores of a deep network, or of a
  network pruned to 1%, span many orders of magnitude: float32 underflows or ties them where float64
  ranks them. We work on a copy of θ0; nothing has to be ``nonlinearize``d back;
- each round keeps ``round_half_up`` of its target exactly, ties to the lower position in network
  order (:func:`lottery.pruning.keep_top_jointly`), and ranks only the survivors; the reference keeps
  the scores above the k-th smallest of all (pruned weights score 0), ``k = int((1 - density) ·
  total)``, so ties at its threshold all go and its final count may be off by a few (it checks ±5);
- a round whose target equals the survivors (early rounds of a mild level) keeps them all without
  scoring: the same masks the reference's scoring would keep;
- :attr:`METHOD`'s ``scores`` (what a sanity check such as inversion reads) is one round's scores
  under ``inputs.masks``; the masks themselves come from ``choose``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from lottery.methods.base import GLOBAL, Budget, PruningInputs, Scorer, as_array

if TYPE_CHECKING:
    import torch

NAME = "synflow"
ITERATIONS = 100  # prune_iterations of Frankle et al.'s open_lth runs, Synaptic-Flow's default for SynFlow


def positive_params(inputs: PruningInputs) -> tuple[Any, dict[str, torch.Tensor], int]:
    """The model, ``|θ0|`` of every parameter (float64) and the number of input features."""
    import torch

    from lottery import models

    arch = inputs.require("architecture", NAME)
    init = inputs.require("init", NAME)
    params = {name: torch.tensor(np.abs(as_array(v)), dtype=torch.float64) for name, v in init.items()}
    return models.of(arch), params, arch.input_size


def flow_scores(
    model: Any, params: Mapping[str, torch.Tensor], masks: Mapping[str, Any], features: int
) -> dict[str, np.ndarray]:
    """``|∂R/∂w ⊙ w|`` of each masked weight ``w = params ⊙ mask`` (``masks``' names), ``R`` the sum of
    the outputs of the all-ones input (one example of ``features``)."""
    import torch

    leaves = {name: t.detach().clone() for name, t in params.items()}
    for name, mask in masks.items():
        leaves[name] = (leaves[name] * torch.tensor(as_array(mask), dtype=torch.float64)).requires_grad_()
    weights = [leaves[name] for name in masks]
    flow = model.forward(leaves, torch.ones(1, features, dtype=torch.float64)).sum()
    grads = torch.autograd.grad(flow, weights)
    return {name: (g * w).abs().detach().numpy() for name, g, w in zip(masks, grads, weights, strict=True)}


def scores(inputs: PruningInputs) -> dict[str, np.ndarray]:
    """One round's SynFlow scores under ``inputs.masks`` (the masks come from :func:`choose`)."""
    model, params, features = positive_params(inputs)
    return flow_scores(model, params, inputs.masks, features)


def targets(alive: int, keep: int, iterations: int | None = None) -> list[int]:
    """The survivors after each round of the exponential schedule (:data:`ITERATIONS` rounds unless
    ``iterations``), from ``alive`` to exactly ``keep``."""
    from lottery import pruning

    iterations = ITERATIONS if iterations is None else iterations
    if not 0 <= keep <= alive:
        raise ValueError(f"synflow cannot keep {keep} weights when {alive} survive")
    if keep == 0:
        return [0] * iterations
    ratio = keep / alive
    counts = [pruning.round_half_up(alive * ratio ** (i / iterations)) for i in range(1, iterations)]
    return [*counts, keep]


def choose(inputs: PruningInputs, budget: Budget) -> dict[str, Any]:
    """SynFlow's masks: :data:`ITERATIONS` rounds of scoring and global selection (see the module)."""
    model, params, features = positive_params(inputs)
    masks = {name: np.array(as_array(m), copy=True) for name, m in inputs.masks.items()}
    alive = sum(int(np.count_nonzero(m)) for m in masks.values())
    for count in targets(alive, budget.ticket_total):
        if count == alive:
            continue  # keeps every survivor, whatever their scores
        masks = keep_top_alive(flow_scores(model, params, masks, features), masks, count)
        alive = count
    return {name: _like(masks[name], inputs.masks[name]) for name in masks}


def keep_top_alive(
    scored: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray], count: int
) -> dict[str, np.ndarray]:
    """:func:`lottery.pruning.keep_top_jointly` of ``scored`` and numpy ``masks`` - the same masks -
    ranking the survivors alone: a round's selection then costs the survivors, not the whole network
    (the pruned weights' ``-inf`` made NumPy's partition of all 3.4M weights of conv2 slow)."""
    from lottery import pruning

    names = list(masks)
    alive = [np.flatnonzero(masks[name].reshape(-1)) for name in names]
    flat = np.concatenate([scored[name].reshape(-1)[where] for name, where in zip(names, alive, strict=True)])
    kept = pruning.keep_top_jointly({"all": flat}, {"all": np.ones(flat.size, np.int8)}, count)["all"]
    out = {}
    for name, part, where in zip(
        names, np.split(kept, np.cumsum([len(a) for a in alive])[:-1]), alive, strict=True
    ):
        mask = np.zeros(masks[name].size, dtype=masks[name].dtype)
        mask[where[part != 0]] = 1
        out[name] = mask.reshape(masks[name].shape)
    return out


def _like(mask: np.ndarray, template: Any) -> Any:
    """``mask`` as a tensor where the step's mask was one."""
    if type(template).__module__.startswith("torch"):
        import torch

        return torch.from_numpy(mask)
    return mask


METHOD = Scorer(
    NAME, GLOBAL, scores,
    f"SynFlow (Tanaka et al. 2020): data-free |∂R/∂θ ⊙ θ| through |θ0|, {ITERATIONS} rounds on an "
    "exponential schedule, global, the ticket's Pm",
    choose,
    uses_torch=True,  # its gradients: the job pins PyTorch to its threads
)  # fmt: skip
