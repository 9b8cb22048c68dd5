"""``random``: pruning at initialisation to a uniform density - every layer keeps the same fraction of
its weights, ``budget.ticket_total / (all prunable weights)``, at positions drawn uniformly at random
(Frankle et al., ICLR 2021, and Su et al., NeurIPS 2020: the baseline every method at initialisation
must beat).

Counts: layer l of n_l weights ideally keeps ``T * n_l / N`` (T the ticket's total at this level, N
all prunable weights); the counts are those ideals rounded by largest remainder so that they sum to T
exactly (:func:`lottery.methods.densities.apportion`: each the floor or the ceiling of its ideal, the
weights left over to the largest remainders, ties to the earlier layer). Positions: each layer's
highest uniform scores (:func:`lottery.methods.densities.uniform_scores`, seeded with
``inputs.seed``: PyTorch's generator's numbers drawn in numpy, :mod:`lottery.order`; the masks of
:func:`lottery.pruning.prune_random` with that seed and these counts). The scores are the method's
``scores``, so its inversion (:func:`lottery.sanity.invert`) is another random mask.

Not the variants' ``random`` control (:mod:`lottery.variants`, ``variants.random``), which keeps the
*ticket's* per-layer counts at random positions: that control lives in the variants' registry, not
in this one, and its networks are recorded as variant ``random``; this method's networks are
recorded with method ``random`` under the variant that trains them. The references choose random
scores and prune them over all layers together (the open_lth fork's ``random``: uniform scores,
global; Synaptic-Flow's ``Rand``: Gaussian scores, global by default), which gives each layer the
uniform density only in expectation; here every layer has it exactly, up to one weight.
"""

from __future__ import annotations

from lottery.methods.base import LAYER, Budget, PruningInputs, Scorer
from lottery.methods.densities import apportion, random_positions, sizes, uniform_scores

NAME = "random"


def uniform_counts(layer_sizes: dict[str, int], total: int) -> dict[str, int]:
    """Each layer's count at the same density ``total / sum(layer_sizes)``, summing to ``total``."""
    if total > sum(layer_sizes.values()):
        raise ValueError(f"cannot keep {total} of {sum(layer_sizes.values())} weights")
    return apportion(layer_sizes, total)


def choose(inputs: PruningInputs, budget: Budget) -> dict:
    """The masks: :func:`uniform_counts` of the ticket's total, at random positions."""
    return random_positions(inputs, uniform_counts(sizes(inputs.masks), budget.ticket_total), NAME)


METHOD = Scorer(
    NAME, LAYER, uniform_scores,
    "every layer at the same density (the ticket's Pm), positions uniformly at random (pruning at init)",
    choose=choose,
    invertible=False,  # its scores are random draws: no ranking to invert
)  # fmt: skip
