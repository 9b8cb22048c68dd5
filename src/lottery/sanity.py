"""The sanity checks of pruning at initialisation (Frankle et al., ICLR 2021, "Pruning neural networks
at initialization: why are we missing the mark?"; Su et al., NeurIPS 2020, "Sanity-checking pruning
methods: random tickets can win the jackpot"): ablations of a mask that keep its per-layer densities
and destroy what else it found.

- :func:`shuffle_within_layers`: each layer's mask permuted at random (the same count per layer,
  positions anywhere in the layer);
- :func:`invert`: the *lowest* scores of a method kept, each layer at the count of the method's mask
  (for methods with scores);
- reinitialisation: the same mask on weights drawn with another seed - the project's reinit control
  (:mod:`lottery.variants`, θ0 of :meth:`lottery.desc.Replicate.reinit_draw_seed` by
  :meth:`lottery.models.Model.init`), whose seed :func:`reinit_seed` names.

Masks are numpy arrays (or CPU tensors, read as arrays) keyed by layer in network order; the results
are numpy arrays of the masks' dtypes. No PyTorch.

How these compare with the references: the open_lth fork of Frankle et al. shuffles each layer with
its own generator (seed + layer index, in sorted name order) and inverts by pruning the highest scores
over all layers together (``prune_highest``), so an inverted mask's per-layer counts are its own;
Synaptic-Flow inverts scores as 1 / score, also pruned globally. Here the inversion keeps the
method's per-layer counts (the issue's definition: only which weights, not how many per layer,
changes), and the shuffle draws every layer from one generator in network order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lottery.desc import Replicate, derived_seed
from lottery.methods.base import as_array

ABLATIONS = ("shuffled", "reinit", "inverted")  # the names of pai.checks


def shuffle_within_layers(masks: Mapping[str, Any], seed: int) -> dict[str, np.ndarray]:
    """Each layer's mask with its entries permuted uniformly at random: the same number of survivors
    per layer, at new positions. The permutations are drawn layer after layer in network order from
    one generator seeded with ``seed``: bitwise ``torch.randperm(n, generator=g)`` of ``g =
    torch.Generator().manual_seed(seed)`` (:func:`lottery.order.permutation`), so without PyTorch."""
    from lottery import order

    bit_generator = order.generator(seed)
    shuffled = {}
    for name, mask in masks.items():
        values = as_array(mask)
        flat = values.reshape(-1)
        shuffled[name] = flat[order.permutation(flat.size, bit_generator)].reshape(values.shape).copy()
    return shuffled


def invert(
    scores: Mapping[str, Any], counts: Mapping[str, int], masks: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """The inverted mask of a method: each layer keeps its ``counts[layer]`` *lowest*-scoring weights
    (``counts``: the per-layer counts of the method's own mask, :func:`lottery.pruning.kept_counts`).

    Exactly the complement of the method's ranking: among a layer's survivors (``masks``; all of its
    weights where ``masks`` is None, as at initialisation), the weights pruned are the
    ``alive - count`` highest-scoring ones as :func:`lottery.pruning.keep_top_per_layer` ranks them
    (ties to the lower position, NaN above every number), and every other survivor is kept. So
    ``invert(s, c) + keep_top_per_layer(s, dense, n - c)`` is the dense mask."""
    from lottery import pruning

    inverted = {}
    for name, count in counts.items():
        values = as_array(scores[name])
        alive = np.ones(values.shape, np.float32) if masks is None else as_array(masks[name])
        if alive.shape != values.shape:
            raise ValueError(f"{name}: scores of shape {values.shape}, mask of shape {alive.shape}")
        n_alive = int(np.count_nonzero(alive))
        if not 0 <= count <= n_alive:
            raise ValueError(f"{name}: cannot keep {count} of its {n_alive} surviving weights")
        highest = pruning.keep_top_per_layer({name: values}, {name: alive}, {name: n_alive - count})
        inverted[name] = ((alive != 0) & (as_array(highest[name]) == 0)).astype(alive.dtype)
    return inverted


def reinit_seed(replicate: Replicate, draw: int = 1) -> int:
    """The seed of θ0 for the reinitialisation ablation: the reinit control's seed of ``draw``
    (:meth:`lottery.desc.Replicate.reinit_draw_seed`; ``init_seed + controls_offset`` for the first),
    so a method's reinitialised network trains on the same weights as the ticket's reinit control of
    that replicate and draw (its θ0 file: :func:`lottery.variants.reinit_init_file`)."""
    return replicate.reinit_draw_seed(draw)


def shuffle_seed(replicate: Replicate, method: str, round_: int, draw: int = 1) -> int:
    """The seed of :func:`shuffle_within_layers` for ``method``'s mask at ``round_`` (the ticket's
    Pm level) of ``replicate``: a hash of the replicate's random-mask seed, the method, the level
    and the draw (:func:`lottery.desc.derived_seed`; no other seed of the experiment is hit, the
    random control's keys having no ``shuffle/``)."""
    if draw < 1:
        raise ValueError(f"draws are numbered from 1, got {draw}")
    suffix = "" if draw == 1 else f"/draw-{draw}"
    return derived_seed(f"{replicate.random_mask_seed}/shuffle/{method}/{round_}{suffix}")
