"""``erk``: pruning at initialisation to Erdős–Rényi-Kernel per-layer densities (Evci et al., ICML
2020, "Rigging the lottery"), positions uniformly at random within each layer.

Densities: layer l's density is ``ε * s_l / n_l``, s_l the sum of its weight's dimensions and n_l
their product - ``(out + in) / (out * in)`` for a fully connected layer, ``(c_out + c_in + k_h + k_w)
/ (c_out * c_in * k_h * k_w)`` for a convolution - with ε such that the network keeps T =
``budget.ticket_total`` weights. A layer whose density would exceed 1 is kept dense and ε is solved
again over the others, until none exceeds 1: the loop of the reference,
``get_sparsities_erdos_renyi`` in google-research/rigl ``rigl/sparse_utils.py``
(``erdos_renyi_kernel``, ``erk_power_scale`` 1), which on each pass makes dense every layer with the
largest raw density ``s_l / n_l`` while ε times it exceeds 1 (whenever any layer exceeds 1, the
largest does). As ``(s_l / n_l) * n_l = s_l``, ε over the free layers F is
``(T - Σ_dense n_l) / Σ_F s_l``: layer l's ideal count is ``(T - Σ_dense n_l) * s_l / Σ_F s_l``, a
ratio of integers, so the loop is exact integer arithmetic here.

Counts: the ideal counts of the free layers rounded by largest remainder to sum to T exactly
(:func:`lottery.methods.densities.apportion`), dense layers at n_l; the reference instead sets each
layer's zeros to ``floor(sparsity * n_l)`` from its real density (a total that may miss the target by
up to a weight per layer). Positions: each layer's highest uniform scores seeded with ``inputs.seed``
(:func:`lottery.methods.densities.uniform_scores`; the reference shuffles each layer's ones with
numpy). With the same seed, ``random`` and ``erk`` draw the same scores (common random numbers): in
each layer the sparser of the two masks lies within the other, so their difference is their densities
alone.

Synaptic-Flow (ganguli-lab) and the open_lth fork of Frankle et al. (ICLR 2021) have no ERK; RigL is
the reference. On LeNet-300-100 (fc 784-300, 300-100, 100-10; raw densities 0.0046, 0.0133, 0.11)
at the paper's levels: the output layer is dense down to Pm 5.6% (round 13) and fc2 down to Pm 51.3%
(round 3); at Pm 21.1% fc1, fc2, output keep 17.1%, 49.5%, 100%, at 1.9% 1.4%, 4.1%, 34.0% (the ticket:
20/20/10% per round).
"""

from __future__ import annotations

from fractions import Fraction

from lottery.methods.base import LAYER, Budget, PruningInputs, Scorer, as_array
from lottery.methods.densities import apportion, random_positions, uniform_scores

NAME = "erk"


def _dims(shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, int], dict[str, int]]:
    """Each layer's sum of dimensions ``s_l`` and number of weights ``n_l``."""
    sums, sizes = {}, {}
    for name, shape in shapes.items():
        if not shape or any(int(d) < 1 for d in shape):
            raise ValueError(f"pruning method {NAME!r}: layer {name} has shape {tuple(shape)}")
        sums[name] = sum(int(d) for d in shape)
        size = 1
        for d in shape:
            size *= int(d)
        sizes[name] = size
    return sums, sizes


def dense_layers(shapes: dict[str, tuple[int, ...]], total: int) -> set[str]:
    """The layers ERK keeps dense to keep ``total`` weights (the reference's loop)."""
    sums, sizes = _dims(shapes)
    if not 0 <= total <= sum(sizes.values()):
        raise ValueError(f"pruning method {NAME!r}: cannot keep {total} of {sum(sizes.values())} weights")
    dense: set[str] = set()
    while len(dense) < len(shapes):
        free = [n for n in shapes if n not in dense]
        rest = total - sum(sizes[n] for n in dense)  # what the free layers keep
        sum_free = sum(sums[n] for n in free)
        raw = {n: Fraction(sums[n], sizes[n]) for n in free}
        top = max(raw.values())
        # ε * top > 1, with ε = rest / sum_free
        if rest * top <= sum_free:
            break
        dense |= {n for n in free if raw[n] == top}
    return dense


def densities(shapes: dict[str, tuple[int, ...]], total: int) -> dict[str, Fraction]:
    """Each layer's ERK density (exact) for ``total`` kept weights: 1 for :func:`dense_layers`, ``ε *
    s_l / n_l`` for the others."""
    sums, sizes = _dims(shapes)
    dense = dense_layers(shapes, total)
    rest = total - sum(sizes[n] for n in dense)
    sum_free = sum(sums[n] for n in shapes if n not in dense)
    return {n: Fraction(1) if n in dense else Fraction(rest * sums[n], sum_free * sizes[n]) for n in shapes}


def counts(shapes: dict[str, tuple[int, ...]], total: int) -> dict[str, int]:
    """Each layer's kept weights: dense layers whole, the others their ERK ideal ``density * n_l``
    rounded by largest remainder, summing to ``total``."""
    sums, sizes = _dims(shapes)
    dense = dense_layers(shapes, total)
    rest = total - sum(sizes[n] for n in dense)
    free = apportion({n: sums[n] for n in shapes if n not in dense}, rest)
    return {n: sizes[n] if n in dense else free[n] for n in shapes}


def choose(inputs: PruningInputs, budget: Budget) -> dict:
    """The masks: ERK :func:`counts` of the ticket's total, at random positions."""
    shapes = {name: tuple(as_array(m).shape) for name, m in inputs.masks.items()}
    return random_positions(inputs, counts(shapes, budget.ticket_total), NAME)


METHOD = Scorer(
    NAME, LAYER, uniform_scores,
    "Erdős–Rényi-Kernel per-layer densities (RigL), positions uniformly at random (pruning at init)",
    choose=choose,
    invertible=False,  # its scores are random draws: no ranking to invert
)  # fmt: skip
