"""Per-layer weight counts for the methods that fix each layer's density before choosing positions
(``random``: the same density everywhere; ``erk``: Erdős–Rényi-Kernel densities), in integer
arithmetic so that the counts sum to the budget exactly and no float noise moves a weight from one
layer to another.

Rounding (largest remainder, Hamilton's apportionment): a layer's ideal count is ``total * w / W``
(``w`` its weight in the split, ``W`` the weights' sum), a rational number; each layer gets its floor,
and the weights still missing (fewer than the number of layers) go one each to the layers with the
largest remainders ``total * w mod W``, ties to the earlier layer in network order. Every count is
the floor or the ceiling of its ideal, and the counts sum to ``total``.

This module defines no ``METHOD``: :mod:`lottery.methods` skips it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lottery.methods.base import PruningInputs, as_array


def apportion(weights: Mapping[str, int], total: int) -> dict[str, int]:
    """``total`` split over the layers in proportion to their non-negative integer ``weights``,
    by largest remainder (ties to the earlier layer in ``weights``' order)."""
    names = list(weights)
    if total < 0:
        raise ValueError(f"cannot keep a negative number of weights ({total})")
    if any(int(w) < 0 for w in weights.values()):
        raise ValueError(f"apportionment weights must be non-negative, got {dict(weights)}")
    whole = sum(int(w) for w in weights.values())
    if whole == 0:
        if total:
            raise ValueError(f"cannot split {total} weights over layers of zero weight")
        return dict.fromkeys(names, 0)
    counts = {n: int(weights[n]) * total // whole for n in names}
    remainders = {n: int(weights[n]) * total % whole for n in names}
    missing = total - sum(counts.values())
    # stable sort: equal remainders keep network order
    for name in sorted(names, key=lambda n: -remainders[n])[:missing]:
        counts[name] += 1
    return counts


def sizes(masks: Mapping[str, Any]) -> dict[str, int]:
    """Each layer's number of weights (pruned or not), in network order."""
    return {name: int(as_array(m).size) for name, m in masks.items()}


def check_budget(masks: Mapping[str, Any], counts: Mapping[str, int], method: str) -> None:
    """An error naming ``method`` where a layer would keep more weights than survive in it (a method
    never revives a pruned weight)."""
    for name, mask in masks.items():
        alive = int(np.count_nonzero(as_array(mask)))
        if counts[name] > alive:
            raise ValueError(
                f"pruning method {method!r}: layer {name} would keep {counts[name]} weights, "
                f"but only {alive} survive in it"
            )


def uniform_scores(inputs: PruningInputs) -> dict[str, np.ndarray]:
    """A float32 uniform score per weight, drawn layer after layer in network order from one generator
    seeded with ``inputs.seed``: bitwise ``torch.rand`` of ``torch.Generator().manual_seed(seed)``
    (:func:`lottery.order.uniform`), the draws of :func:`lottery.pruning.prune_random`. Keeping each
    layer's highest scores places its survivors uniformly at random."""
    from lottery import order

    bit_generator = order.generator(inputs.seed)
    return {name: order.uniform(as_array(m).shape, bit_generator) for name, m in inputs.masks.items()}


def random_positions(inputs: PruningInputs, counts: Mapping[str, int], method: str) -> dict[str, Any]:
    """``counts[layer]`` survivors of each layer at random positions among its survivors: the highest
    :func:`uniform_scores` (the same masks as :func:`lottery.pruning.prune_random` with this seed)."""
    from lottery import pruning

    check_budget(inputs.masks, counts, method)
    return pruning.keep_top_per_layer(uniform_scores(inputs), inputs.masks, counts)
