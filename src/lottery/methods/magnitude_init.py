"""``magnitude_init``: pruning at initialisation by |θ0| over all layers together - the network keeps
the ``budget.ticket_total`` weights of largest magnitude at initialisation, wherever they are (the
baseline "magnitude at initialisation" of Frankle et al., ICLR 2021: the open_lth fork's
``magnitude`` strategy on the step-0 weights, and Synaptic-Flow's ``Mag`` with global scope, both
scoring |w| and pruning globally).

Ties go to the lower position in network order (:func:`lottery.pruning.keep_top_jointly`); pruned
weights are never revived (only the survivors of ``inputs.masks`` compete). Global magnitude at
initialisation favours the layers whose Glorot scale is largest (the small ones: the output layer of
LeNet-300-100), so its per-layer densities differ from the ticket's.
"""

from __future__ import annotations

import numpy as np

from lottery.methods.base import GLOBAL, Budget, PruningInputs, Scorer, as_array, keep_ticket_total

NAME = "magnitude_init"


def scores(inputs: PruningInputs) -> dict[str, np.ndarray]:
    """|θ0| of each prunable weight (``inputs.init``, read for the layers of ``inputs.masks``)."""
    theta0 = inputs.require("init", NAME)
    out = {}
    for name, mask in inputs.masks.items():
        if name not in theta0:
            raise ValueError(f"pruning method {NAME!r}: θ0 (init) has no {name}")
        values = as_array(theta0[name])
        if values.shape != as_array(mask).shape:
            raise ValueError(f"pruning method {NAME!r}: θ0's {name} has shape {values.shape}, its mask "
                             f"{as_array(mask).shape}")  # fmt: skip
        out[name] = np.abs(values)
    return out


def choose(inputs: PruningInputs, budget: Budget) -> dict:
    """The ``budget.ticket_total`` largest |θ0| among the survivors, over all layers together."""
    return keep_ticket_total(scores(inputs), inputs, budget)


METHOD = Scorer(
    NAME, GLOBAL, scores,
    "the largest |θ0| over all layers together, to the ticket's Pm (pruning at init)",
    choose=choose,
)  # fmt: skip
