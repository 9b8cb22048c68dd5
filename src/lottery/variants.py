"""The control variants, one registry entry each: what the rules and the package both read.

An entry says which directories a config enables (its switch under ``variants:``), which files its
training needs besides the data (the rules generate one ``train_<name>`` rule per entry from it, in
``workflow/rules/variants.smk``), where it stands in figures, and how its network is made from
those files (:meth:`Variant.prepare`, run in the training job). Adding a variant is one entry here,
its switch in the config schema, and the regenerated key table of ``config/README.md``.

Importing this module imports no PyTorch (the workflow reads it when it builds the DAG), and nor
does preparing a variant (its files are read as numpy arrays; random pruning draws PyTorch's
numbers with numpy, :func:`lottery.order.uniform`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lottery import layout
from lottery.desc import Network, Replicate, derived_seed

if TYPE_CHECKING:
    import numpy as np

PathLike = str | os.PathLike


@dataclass(frozen=True)
class ControlInputs:
    """Where a control of ticket round k of one replicate finds what it needs."""

    replicate: str  # the replicate's folder, results/<experiment>/seed-<s>
    ticket_rounds: list[str]  # the ticket's round folders 1..k of the same schedule
    wildcards: Mapping[str, str]

    @property
    def draw(self) -> int:
        return draw_of(self.wildcards)


@dataclass(frozen=True)
class Prepared:
    """What a control trains: weights to rewind to, the mask, and where training starts."""

    init: PathLike
    masks: dict[str, np.ndarray]
    network: Network
    start_iteration: int = 0


@dataclass(frozen=True)
class Variant:
    """One control variant."""

    name: str  # the ``variant`` column of runs.csv, the figures' label and the rule ``train_<name>``
    directory: str  # its folder beside ``ticket/``; may hold the ``{iteration}`` wildcard
    order: int  # position in figures and tables, after the ticket (0)
    enabled: Callable[[Mapping[str, Any]], list[str]]  # the config's ``variants:`` -> its folders
    inputs: Callable[[ControlInputs], dict[str, Any]]  # files it needs besides the dataset and split
    prepare: Callable[[Mapping[str, Any], Network, Replicate, Mapping[str, str]], Prepared]
    writes_mask: bool = False  # the mask is the variant's own (not the ticket's): it is an output
    # Random (reinit, random pruning): ``variants.draws.<name>`` networks per ticket, each its own
    # folder (:func:`draw_directory`), seeds and row; the analyses average them within a seed.
    drawn: bool = False


def draw_directory(directory: str, draw: int | str) -> str:
    """The folder of a drawn variant's ``draw``-th network: ``<directory>`` for the first,
    ``<directory>-draw-<d>`` for the others (``draw`` may be the rules' ``"{draw}"`` wildcard)."""
    return layout.draw_folder(directory, draw)


def draw_of(wildcards: Mapping[str, str]) -> int:
    """The draw a control job trains: its ``{draw}`` wildcard, 1 where it has none."""
    return int(wildcards.get("draw", 1))


def reinit_init_file(replicate_dir: str, draw: int | str) -> str:
    """The reinit control's weights of a draw (one per replicate and draw, for every round; ``draw``
    may be the rules' ``"{draw}"`` wildcard)."""
    return layout.reinit_init_file(replicate_dir, draw)


def _ticket_mask(paths: ControlInputs) -> str:
    return layout.mask_file(paths.ticket_rounds[-1])


def _prepare_reinit(inputs, ticket: Network, replicate: Replicate, wildcards) -> Prepared:
    """The ticket's mask on weights drawn afresh (:meth:`Replicate.reinit_draw_seed`: seed init +
    controls_offset for the first draw)."""
    from lottery.io import load_arrays

    draw = draw_of(wildcards)
    network = replace(ticket, variant="reinit", reinit_seed=replicate.reinit_draw_seed(draw), draw=draw)
    return Prepared(inputs["init"], load_arrays(inputs["mask"]), network)


def random_mask_seed(replicate: Replicate, schedule: str, round_: int, draw: int = 1) -> int:
    """A seed per (replicate, schedule, round, draw), independent of Python's hash randomisation."""
    suffix = "" if draw == 1 else f"/draw-{draw}"
    return derived_seed(f"{replicate.random_mask_seed}/{schedule}/{round_}{suffix}")


def random_masks(
    ticket_masks: Sequence[PathLike], replicate: Replicate, schedule: str, draw: int = 1
) -> dict[str, np.ndarray]:
    """Random pruning up to round k = ``len(ticket_masks)``: each round keeps as many weights per
    layer as the ticket's mask of that round, chosen at random among the previous random round's
    survivors. Random choices need no trained weights, so the rounds are replayed in one go (each
    round with its own seed, each draw its own chain) and no intermediate network is trained."""
    from lottery import pruning
    from lottery.io import load_arrays

    masks = pruning.dense_masks(load_arrays(ticket_masks[0]))
    for round_, path in enumerate(ticket_masks, start=1):
        seed = random_mask_seed(replicate, schedule, round_, draw)
        masks = pruning.prune_random(masks, pruning.kept_counts(load_arrays(path)), seed)
    return masks


def _prepare_random(inputs, ticket: Network, replicate: Replicate, wildcards) -> Prepared:
    """As many weights per layer as the ticket, chosen at random, on θ0."""
    name, draw = ticket.schedule.name, draw_of(wildcards)
    seed = random_mask_seed(replicate, name, ticket.round, draw)
    network = replace(ticket, variant="random", method="random", mask_seed=seed, draw=draw)
    masks = random_masks(list(inputs["ticket_masks"]), replicate, name, draw)
    return Prepared(inputs["init"], masks, network)


def _prepare_rewind(inputs, ticket: Network, replicate: Replicate, wildcards) -> Prepared:
    """The ticket's mask, survivors reset to θk (the dense network after k iterations)."""
    from lottery.io import load_arrays

    k = int(wildcards["iteration"])
    network = replace(ticket, variant="rewind", rewind_iteration=k)
    return Prepared(inputs["init"], load_arrays(inputs["mask"]), network, start_iteration=k)


def _drawn_folders(name: str) -> Callable[[Mapping[str, Any]], list[str]]:
    """A drawn variant's folders from its switch ``variants.<name>`` and ``variants.draws.<name>``."""

    def enabled(switches: Mapping[str, Any]) -> list[str]:
        if not switches[name]:
            return []
        draws = int((switches.get("draws") or {}).get(name, 1))
        return [draw_directory(name, d) for d in range(1, draws + 1)]

    return enabled


REGISTRY: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            name="reinit",
            directory="reinit",
            order=1,
            enabled=_drawn_folders("reinit"),
            inputs=lambda paths: {
                "init": reinit_init_file(paths.replicate, paths.draw),
                "mask": _ticket_mask(paths),
            },
            prepare=_prepare_reinit,
            drawn=True,
        ),
        Variant(
            name="random",
            directory="random",
            order=2,
            enabled=_drawn_folders("random"),
            inputs=lambda paths: {
                "init": layout.init_file(paths.replicate),
                "ticket_masks": [layout.mask_file(d) for d in paths.ticket_rounds],
            },
            prepare=_prepare_random,
            writes_mask=True,
            drawn=True,
        ),
        Variant(
            name="rewind",
            directory="rewind-{iteration}",
            order=3,
            enabled=lambda switches: [f"rewind-{k}" for k in switches["rewind_iterations"]],
            inputs=lambda paths: {
                "init": layout.theta_file(paths.replicate, paths.wildcards["iteration"]),
                "mask": _ticket_mask(paths),
            },
            prepare=_prepare_rewind,
        ),
    )
}

# The order of variants in figures and tables: the ticket, then the controls.
FIGURE_ORDER = ["ticket", *sorted(REGISTRY, key=lambda name: REGISTRY[name].order)]


def enabled_directories(switches: Mapping[str, Any]) -> list[str]:
    """The control folders a config's ``variants:`` section enables, in registry order."""
    return [d for v in REGISTRY.values() for d in v.enabled(switches)]
