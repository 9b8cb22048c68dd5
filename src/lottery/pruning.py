"""Pruning schedules and magnitude pruning of the prunable weights.

Weights and masks are dictionaries ``{layer name: tensor}`` in network order (input to output); only
weight matrices are ever pruned, never biases.

Rounding (documented in ``config/README.md`` and tested): the number of weights a layer keeps after
round k is ``round_half_up(n * (1 - r) ** k)``, where n is the layer's size and r its per-round rate.
Counting from the layer's original size rather than from the previous round keeps rounding errors from
accumulating over rounds; each round still removes only weights that survived the previous one.

The arithmetic is numpy's, so a training job prunes without PyTorch; the functions take numpy arrays
or PyTorch tensors and return the kind they were given (the masks as their dtype), the same values
either way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from lottery.desc import Schedule
from lottery.methods.base import Budget, PruningInputs

Array = Any  # a numpy array or a PyTorch tensor

LAYERWISE = "layerwise"
GLOBAL = "global"
RANDOM = "random"


def round_half_up(x: float) -> int:
    # Guard against 0.5 landing a hair below after floating-point products.
    return math.floor(x + 0.5 + 1e-9)


def kept_count(size: int, rate: float, round_: int) -> int:
    """Weights a layer of ``size`` keeps after ``round_`` rounds at ``rate`` per round."""
    return round_half_up(size * (1.0 - rate) ** round_)


def layer_kind(name: str, is_last: bool) -> str:
    """A prunable layer's kind, for its rate: ``output`` (the last), ``conv`` (the models of
    :mod:`lottery.models` name their convolutions ``conv<i>``) or ``fc``."""
    if is_last:
        return "output"
    return "conv" if name.startswith("conv") else "fc"


def layer_kinds(names: list[str]) -> dict[str, str]:
    """:func:`layer_kind` of each prunable layer, in network order."""
    return {name: layer_kind(name, i == len(names) - 1) for i, name in enumerate(names)}


def layer_keep_counts(sizes: dict[str, int], schedule: Schedule, round_: int) -> dict[str, int]:
    """Per-layer number of surviving weights after ``round_`` rounds, each at its kind's rate
    (:meth:`lottery.desc.Schedule.rate_of`; the last layer is the output)."""
    kinds = layer_kinds(list(sizes))
    return {name: kept_count(size, schedule.rate_of(kinds[name]), round_) for name, size in sizes.items()}


def _is_torch(value: object) -> bool:
    return type(value).__module__.startswith("torch")


def _numpy(value: Array) -> np.ndarray:
    """A numpy view of an array or a (CPU) tensor."""
    return value.detach().numpy() if _is_torch(value) else np.asarray(value)


def _like(result: np.ndarray, template: Array) -> Array:
    """``result`` as the kind of ``template``: a tensor for a tensor, else the array."""
    if _is_torch(template):
        import torch

        return torch.from_numpy(result)
    return result


def _top_positions(flat: np.ndarray, keep: int) -> np.ndarray:
    """The flat positions of the ``keep`` largest values, ties to the lower position, NaN above every
    number: the first ``keep`` of ``torch.sort(flat, descending=True, stable=True)``, as a set."""
    if keep <= 0:
        return np.zeros(0, dtype=np.int64)
    nan = np.isnan(flat)
    if nan.any():  # PyTorch sorts NaN first, in position order
        nan_positions = np.flatnonzero(nan)
        if keep <= len(nan_positions):
            return nan_positions[:keep]
        numbers = np.where(nan, -np.inf, flat)
        rest = _top_positions_of_numbers(numbers, keep - len(nan_positions), exclude=nan)
        return np.concatenate([nan_positions, rest])
    return _top_positions_of_numbers(flat, keep)


def _top_positions_of_numbers(flat: np.ndarray, keep: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """:func:`_top_positions` of NaN-free ``flat`` (``exclude``: positions never taken): every value
    above the ``keep``-th largest, then the lowest positions of those equal to it."""
    candidates = flat if exclude is None else flat[~exclude]
    threshold = np.partition(candidates, len(candidates) - keep)[len(candidates) - keep]
    above = flat > threshold
    tied = flat == threshold
    if exclude is not None:
        above &= ~exclude
        tied &= ~exclude
    wanted_ties = keep - int(np.count_nonzero(above))
    return np.concatenate([np.flatnonzero(above), np.flatnonzero(tied)[:wanted_ties]])


def _keep_top(scores: Array, mask: Array, keep: int) -> Array:
    """Mask keeping the ``keep`` highest-scoring survivors; ties go to the lower flat index."""
    scores_np, mask_np = _numpy(scores), _numpy(mask)
    alive = int(mask_np.sum())
    if keep > alive:
        raise ValueError(f"cannot keep {keep} weights when only {alive} survive")
    flat = np.where(mask_np.reshape(-1) > 0, scores_np.reshape(-1), np.array(-np.inf, scores_np.dtype))
    new_mask = np.zeros(flat.size, dtype=mask_np.dtype)
    new_mask[_top_positions(flat, keep)] = 1
    return _like(new_mask.reshape(mask_np.shape), mask)


def prune_layerwise(
    weights: Mapping[str, Array], masks: Mapping[str, Array], keep_counts: Mapping[str, int]
) -> dict[str, Array]:
    """Keep the ``keep_counts[layer]`` largest-magnitude surviving weights of each layer."""
    return {
        name: _keep_top(np.abs(_numpy(weights[name])), masks[name], keep_counts[name]) for name in weights
    }


def prune_global(
    weights: Mapping[str, Array], masks: Mapping[str, Array], keep_total: int
) -> dict[str, Array]:
    """Keep the ``keep_total`` largest-magnitude surviving weights over all layers together."""
    return keep_top_jointly({n: np.abs(_numpy(w)) for n, w in weights.items()}, masks, keep_total)


def keep_top_jointly(
    scores: Mapping[str, Array], masks: Mapping[str, Array], keep_total: int
) -> dict[str, Array]:
    """Keep the ``keep_total`` highest-scoring survivors over all layers together."""
    names = list(masks)
    flat_scores = np.concatenate([_numpy(scores[n]).reshape(-1) for n in names])
    joint = _keep_top(flat_scores, np.concatenate([_numpy(masks[n]).reshape(-1) for n in names]), keep_total)
    parts = np.split(joint, np.cumsum([_numpy(masks[n]).size for n in names])[:-1])
    return {
        n: _like(part.reshape(_numpy(masks[n]).shape), masks[n]) for n, part in zip(names, parts, strict=True)
    }


def prune_random(masks: Mapping[str, Array], keep_counts: Mapping[str, int], seed: int) -> dict[str, Array]:
    """Keep ``keep_counts[layer]`` survivors of each layer chosen uniformly at random: scores drawn
    layer after layer from one generator seeded by ``seed``, bitwise ``torch.rand`` of
    ``torch.Generator().manual_seed(seed)`` (:func:`lottery.order.uniform`), so without PyTorch."""
    from lottery import order

    bit_generator = order.generator(seed)
    return {
        name: _keep_top(order.uniform(tuple(mask.shape), bit_generator), mask, keep_counts[name])
        for name, mask in masks.items()
    }


def next_masks(
    weights: Mapping[str, Array],
    masks: Mapping[str, Array],
    schedule: Schedule,
    round_: int,
    method: str = LAYERWISE,
    inputs: PruningInputs | None = None,
) -> dict[str, Array]:
    """The masks of round ``round_`` from round ``round_ - 1``'s trained ``weights`` and ``masks``:
    the method ``method`` (:data:`lottery.methods.REGISTRY`) scores the weights, and the highest
    scores among the survivors are kept - per layer at each kind's rate, or over all layers at the
    schedule's rate, as the method's scope says. ``inputs`` gives a method what else it reads (θ0,
    the model, examples); by default only the weights and masks."""
    from lottery import methods

    chosen = methods.get(method)
    if inputs is None:
        inputs = PruningInputs(trained=weights, masks=masks)
    sizes = {name: _numpy(w).size for name, w in weights.items()}
    budget = Budget(
        layer_keep_counts(sizes, schedule, round_), kept_count(sum(sizes.values()), schedule.rate, round_)
    )
    if getattr(chosen, "choose", None) is not None:
        return chosen.choose(inputs, budget)
    scores = chosen.scores(inputs)
    if chosen.scope == methods.LAYER:
        return keep_top_per_layer(scores, masks, budget.per_layer)
    return keep_top_jointly(scores, masks, budget.total)


def keep_top_per_layer(
    scores: Mapping[str, Array], masks: Mapping[str, Array], counts: Mapping[str, int]
) -> dict[str, Array]:
    """Keep the ``counts[layer]`` highest-scoring survivors of each layer (ties: the lower index)."""
    return {name: _keep_top(scores[name], masks[name], counts[name]) for name in masks}


def rewind(params: Mapping[str, Array], masks: Mapping[str, Array]) -> dict[str, Array]:
    """Reset to ``params`` (θ0 or θk) on the surviving weights, zero on the pruned ones; biases kept."""
    rewound = {}
    for name, tensor in params.items():
        values = _numpy(tensor)
        mask = masks.get(name)
        if mask is None:
            rewound[name] = _like(values.copy(), tensor)
        elif tuple(mask.shape) != values.shape:
            raise ValueError(f"mask of {name} has shape {tuple(mask.shape)}, weights {values.shape}")
        else:
            kept = np.where(_numpy(mask) != 0, values, np.zeros((), dtype=values.dtype))
            rewound[name] = _like(kept, tensor)
    return rewound


def dense_masks(weights: Mapping[str, Array]) -> dict[str, Array]:
    return {name: _like(np.ones_like(_numpy(w)), w) for name, w in weights.items()}


def kept_counts(masks: Mapping[str, Array]) -> dict[str, int]:
    """Per-layer number of surviving weights."""
    return {name: int(_numpy(m).sum()) for name, m in masks.items()}


def remaining_fractions(masks: Mapping[str, Array]) -> dict[str, float]:
    """Per-layer fraction of weights that survive."""
    return {name: float(_numpy(m).sum()) / _numpy(m).size for name, m in masks.items()}


def weights_remaining(masks: Mapping[str, Array]) -> float:
    """Fraction of all prunable weights that survive (the paper's Pm, as a fraction)."""
    arrays = [_numpy(m) for m in masks.values()]
    return sum(float(m.sum()) for m in arrays) / sum(m.size for m in arrays)
