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
from dataclasses import dataclass

import torch

LAYERWISE = "layerwise"
GLOBAL = "global"
RANDOM = "random"


@dataclass(frozen=True)
class Schedule:
    """A pruning schedule: ``rounds`` rounds, each pruning ``rate`` of the surviving hidden weights.

    Built either from a fixed per-round rate (the paper: 20% a round) or from a requested total ratio p
    over n rounds, in which case the per-round rate is the compound rate r = 1 - (1 - p) ** (1 / n).
    The output layer is pruned at ``rate * output_rate_factor`` (the paper: half the rate).

    A ``oneshot`` schedule has the levels of the fixed-rate one but reaches each level k in one step
    from the dense network (train, prune to level k, rewind, train): the paper's one-shot tickets at the
    iterative tickets' Pm, layer by layer.
    """

    rate: float
    rounds: int
    output_rate_factor: float = 0.5
    ratio: float | None = None
    oneshot: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"pruning rate must be in [0, 1), got {self.rate}")
        if self.rounds < 1:
            raise ValueError(f"a schedule needs at least one round, got rounds={self.rounds}")
        if not 0.0 <= self.output_rate_factor <= 1.0:
            raise ValueError(f"output_rate_factor must be in [0, 1], got {self.output_rate_factor}")
        if self.oneshot and self.ratio is not None:
            raise ValueError("oneshot goes with a fixed rate: {ratio, rounds: 1} is one-shot already")

    @classmethod
    def from_ratio(cls, ratio: float, rounds: int, output_rate_factor: float = 0.5) -> Schedule:
        """The schedule that prunes a total ``ratio`` of the hidden weights in ``rounds`` rounds."""
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"prune ratio must be in [0, 1), got {ratio}")
        if rounds < 1:
            raise ValueError(f"a schedule needs at least one round, got rounds={rounds}")
        return cls(compound_rate(ratio, rounds), rounds, output_rate_factor, ratio)

    @property
    def name(self) -> str:
        """Directory name of the schedule: ``rate-0.2``, ``oneshot-rate-0.2`` or ``ratio-0.9-rounds-5``."""
        if self.ratio is None:
            return f"oneshot-rate-{self.rate:g}" if self.oneshot else f"rate-{self.rate:g}"
        return f"ratio-{self.ratio:g}-rounds-{self.rounds}"

    def layer_rate(self, is_output: bool) -> float:
        return self.rate * self.output_rate_factor if is_output else self.rate

    def requested_ratio(self, round_: int) -> float:
        """Fraction of the hidden weights requested to be pruned after ``round_`` rounds."""
        return round(1.0 - (1.0 - self.rate) ** round_, 12)  # no float noise such as 0.19999999999999996


def compound_rate(ratio: float, rounds: int) -> float:
    """Per-round rate r with 1 - (1 - r) ** rounds == ratio."""
    return 1.0 - (1.0 - ratio) ** (1.0 / rounds)


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
