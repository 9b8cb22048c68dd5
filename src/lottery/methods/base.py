"""The pruning-method interface: what a method is given and what it gives back.

A method scores the prunable weights; :func:`lottery.pruning.next_masks` keeps the highest-scoring
survivors, per layer or over all layers together as the method's ``scope`` says, to the counts the
schedule sets. A method gets everything a criterion of the literature reads - the model, θ0, the
weights the previous round trained, the current masks, and examples of the training split - so that
one needing gradients at θ0 (SNIP, GraSP) or a data-free one (SynFlow) is one module. Weights, masks
and scores are numpy arrays keyed by weight name, in network order; a method that needs PyTorch
imports it itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lottery.desc import Architecture

LAYER = "layer"  # each layer keeps its own count (the schedule's per-kind rates)
GLOBAL = "global"  # one count over all prunable weights (the schedule's rate)
SCOPES = (LAYER, GLOBAL)


@dataclass(frozen=True)
class Examples:
    """Examples of the training split, normalised as the trainer sees them: inputs ``x`` float32
    ``[n, features]``, labels ``y`` int64."""

    x: np.ndarray
    y: np.ndarray

    def per_class(self, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``count`` examples of each class, drawn without replacement by a generator seeded with
        ``seed`` (SNIP's and GraSP's protocol: N examples per class), classes in order."""
        if count < 1:
            raise ValueError(f"examples per class must be at least 1, got {count}")
        rng = np.random.default_rng(seed)
        picked = []
        for label in np.unique(self.y):
            where = np.flatnonzero(self.y == label)
            if len(where) < count:
                raise ValueError(f"class {int(label)} has {len(where)} training examples, not {count}")
            picked.append(np.sort(rng.choice(where, size=count, replace=False)))
        index = np.concatenate(picked)
        return self.x[index], self.y[index]


@dataclass(frozen=True)
class PruningInputs:
    """What a method may read to score the weights of one pruning step."""

    trained: Mapping[str, Any]  # the prunable weights the previous round trained (round 0: dense)
    masks: Mapping[str, Any]  # their current masks, 1 where a weight survives
    init: Mapping[str, Any] | None = None  # θ0: every parameter, biases too
    architecture: Architecture | None = None  # the model (lottery.models) the weights belong to
    examples: Examples | None = None  # the training split, for methods that read data
    seed: int = 0  # for methods that draw (a random scorer, the examples a criterion reads)

    def require(self, what: str, method: str) -> Any:
        """The field ``what``, or an error naming the method that needs it."""
        value = getattr(self, what)
        if value is None:
            raise ValueError(f"pruning method {method!r} needs {what}, which this pruning step was not given")
        return value


@dataclass(frozen=True)
class Budget:
    """How many weights survive a pruning step: ``per_layer``, each layer at its kind's rate of the
    schedule (:func:`lottery.pruning.layer_keep_counts`: the paper's layer-wise ticket), and
    ``total``, all layers together at the schedule's rate (global magnitude pruning). A method that
    prunes to the ticket's Pm with its own per-layer split keeps :attr:`ticket_total`."""

    per_layer: Mapping[str, int]
    total: int

    @property
    def ticket_total(self) -> int:
        return sum(self.per_layer.values())


class Method(Protocol):
    """A pruning method of :data:`lottery.methods.REGISTRY`: its name (``pruning.method``), its
    scope (:data:`LAYER` or :data:`GLOBAL`) and its scorer. Higher scores are kept; the scores of
    pruned weights are ignored. A method whose masks are more than one selection of its scores
    (SynFlow's iterations, ERK's per-layer densities) sets ``choose``, which gets the budget and
    returns the masks itself."""

    name: str
    scope: str
    choose: Any  # Callable[[PruningInputs, Budget], dict[str, np.ndarray]] | None

    def scores(self, inputs: PruningInputs) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class Scorer:
    """A :class:`Method` from a name, a scope and a scoring function (and, where the method chooses
    its masks itself, ``choose``)."""

    name: str
    scope: str
    score: Any  # Callable[[PruningInputs], dict[str, np.ndarray]]
    description: str = ""
    choose: Any = None  # Callable[[PruningInputs, Budget], dict[str, np.ndarray]] | None
    # Whether its scores rank the weights (its mask can be inverted: the sanity check keeps the
    # lowest); not for a method that draws its positions at random (random, erk)
    invertible: bool = True
    uses_torch: bool = False  # its scorer imports PyTorch (gradients): its job pins PyTorch's threads

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"method {self.name}: scope must be one of {SCOPES}, not {self.scope!r}")

    def scores(self, inputs: PruningInputs) -> dict[str, np.ndarray]:
        return self.score(inputs)


def as_array(value: Any) -> np.ndarray:
    """A numpy view of an array or a CPU tensor."""
    if type(value).__module__.startswith("torch"):
        return value.detach().numpy()
    return np.asarray(value)


def magnitudes(inputs: PruningInputs) -> dict[str, np.ndarray]:
    """|w| of the trained weights (the paper's criterion)."""
    return {name: np.abs(as_array(w)) for name, w in inputs.trained.items()}


def keep_ticket_total(scored: Mapping[str, Any], inputs: PruningInputs, budget: Budget) -> dict[str, Any]:
    """The masks keeping the ``budget.ticket_total`` highest scores among the survivors, over all
    layers together: a method at initialisation pruned to the iterative ticket's Pm."""
    from lottery import pruning

    return pruning.keep_top_jointly(scored, inputs.masks, budget.ticket_total)
