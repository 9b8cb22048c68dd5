"""Pruning schedules and magnitude pruning of the prunable weights.

Weights and masks are dictionaries ``{layer name: tensor}`` in network order (input to output); only
weight matrices are ever pruned, never biases.

Rounding (documented in ``config/README.md`` and tested): the number of weights a layer keeps after
round k is ``round_half_up(n * (1 - r) ** k)``, where n is the layer's size and r its per-round rate.
Counting from the layer's original size rather than from the previous round keeps rounding errors from
accumulating over rounds; each round still removes only weights that survived the previous one.
"""

from __future__ import annotations

import math

import torch

from lottery.desc import Schedule

LAYERWISE = "layerwise"
GLOBAL = "global"
RANDOM = "random"


def round_half_up(x: float) -> int:
    # Guard against 0.5 landing a hair below after floating-point products.
    return math.floor(x + 0.5 + 1e-9)


def kept_count(size: int, rate: float, round_: int) -> int:
    """Weights a layer of ``size`` keeps after ``round_`` rounds at ``rate`` per round."""
    return round_half_up(size * (1.0 - rate) ** round_)


def layer_keep_counts(sizes: dict[str, int], schedule: Schedule, round_: int) -> dict[str, int]:
    """Per-layer number of surviving weights after ``round_`` rounds (the last layer is the output)."""
    names = list(sizes)
    return {name: kept_count(sizes[name], schedule.layer_rate(name == names[-1]), round_) for name in names}


def _keep_top(scores: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """Mask keeping the ``keep`` highest-scoring survivors; ties go to the lower flat index."""
    alive = int(mask.sum())
    if keep > alive:
        raise ValueError(f"cannot keep {keep} weights when only {alive} survive")
    flat = torch.where(mask.flatten() > 0, scores.flatten(), torch.tensor(-math.inf))
    order = torch.sort(flat, descending=True, stable=True).indices[:keep]
    new_mask = torch.zeros(flat.numel(), dtype=mask.dtype)
    new_mask[order] = 1
    return new_mask.view_as(mask)


def prune_layerwise(
    weights: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    keep_counts: dict[str, int],
) -> dict[str, torch.Tensor]:
    """Keep the ``keep_counts[layer]`` largest-magnitude surviving weights of each layer."""
    return {name: _keep_top(weights[name].abs(), masks[name], keep_counts[name]) for name in weights}


def prune_global(
    weights: dict[str, torch.Tensor], masks: dict[str, torch.Tensor], keep_total: int
) -> dict[str, torch.Tensor]:
    """Keep the ``keep_total`` largest-magnitude surviving weights over all layers together."""
    names = list(weights)
    scores = torch.cat([weights[n].abs().flatten() for n in names])
    joint = _keep_top(scores, torch.cat([masks[n].flatten() for n in names]), keep_total)
    parts = joint.split([masks[n].numel() for n in names])
    return {n: part.view_as(masks[n]) for n, part in zip(names, parts, strict=True)}


def prune_random(
    masks: dict[str, torch.Tensor], keep_counts: dict[str, int], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Keep ``keep_counts[layer]`` survivors of each layer chosen uniformly at random."""
    return {
        name: _keep_top(torch.rand(mask.shape, generator=generator), mask, keep_counts[name])
        for name, mask in masks.items()
    }


def next_masks(
    weights: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    schedule: Schedule,
    round_: int,
    method: str = LAYERWISE,
) -> dict[str, torch.Tensor]:
    """The masks of round ``round_`` from round ``round_ - 1``'s trained weights and masks."""
    sizes = {name: w.numel() for name, w in weights.items()}
    if method == LAYERWISE:
        return prune_layerwise(weights, masks, layer_keep_counts(sizes, schedule, round_))
    if method == GLOBAL:
        return prune_global(weights, masks, kept_count(sum(sizes.values()), schedule.rate, round_))
    raise ValueError(f"unknown pruning method {method!r}: expected {LAYERWISE!r} or {GLOBAL!r}")


def rewind(params: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Reset to ``params`` (θ0 or θk) on the surviving weights, zero on the pruned ones; biases kept."""
    rewound = {}
    for name, tensor in params.items():
        mask = masks.get(name)
        if mask is None:
            rewound[name] = tensor.clone()
        elif mask.shape != tensor.shape:
            raise ValueError(f"mask of {name} has shape {tuple(mask.shape)}, weights {tuple(tensor.shape)}")
        else:
            rewound[name] = torch.where(mask.bool(), tensor, torch.zeros((), dtype=tensor.dtype))
    return rewound


def dense_masks(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: torch.ones_like(w) for name, w in weights.items()}


def kept_counts(masks: dict[str, torch.Tensor]) -> dict[str, int]:
    """Per-layer number of surviving weights."""
    return {name: int(m.sum()) for name, m in masks.items()}


def remaining_fractions(masks: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-layer fraction of weights that survive."""
    return {name: float(m.sum()) / m.numel() for name, m in masks.items()}


def weights_remaining(masks: dict[str, torch.Tensor]) -> float:
    """Fraction of all prunable weights that survive (the paper's Pm, as a fraction)."""
    return sum(float(m.sum()) for m in masks.values()) / sum(m.numel() for m in masks.values())
