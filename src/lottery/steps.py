"""The workflow's steps that read and write networks, one function per rule, from input files to
output files.

Training steps read their files as numpy arrays and import no PyTorch (a job starts at once):
:mod:`lottery.training` hands the arrays to the backend ``training.backend`` names, which imports
PyTorch only for the ``torch`` reference trainer. Decoding the data and splitting it import no PyTorch
either (the split's permutation and statistics are PyTorch's, bit for bit: :mod:`lottery.data`);
drawing θ0 imports PyTorch, whose generator it uses.

Each takes the experiment's typed pieces (:mod:`lottery.desc`) whole, as the rule's job hands them
over (:mod:`lottery.jobs`); the control variants' own parts are in :mod:`lottery.variants`, the runs
table in :mod:`lottery.runs`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from lottery import data, model, provenance, pruning, variants
from lottery.desc import Architecture, Network, Replicate, TrainingHparams, recorded
from lottery.io import load_arrays, save_tensors, write_json, write_text
from lottery.logs import log, step
from lottery.runs import csv_text

PathLike = str | os.PathLike
CURVE_COLUMNS = ("iteration", "train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


@step
def decode_dataset(
    raw: Mapping[str, PathLike], out: PathLike, sha256s: Mapping[str, str] | None = None
) -> None:
    arrays = data.decode_dataset(dict(raw), dict(sha256s or {}))
    save_tensors(out, arrays)
    log.info("decoded %s", {k: tuple(v.shape) for k, v in arrays.items()})


@step
def split_dataset(
    dataset: PathLike, validation_size: int, seed: int, out: PathLike, arch: Architecture, batch_size: int
) -> None:
    """The experiment's training/validation split, once the data are known to fit the experiment: the
    network's input and output sizes, the batch size - before any network is trained."""
    arrays = load_arrays(dataset)
    data.check_fits(arrays, dataset, arch, validation_size, batch_size)
    split = data.make_split(arrays, validation_size, seed)
    save_tensors(out, split, metadata={"seed": seed, "validation_size": validation_size})
    train_n, val_n = len(split["train_indices"]), len(split["val_indices"])
    mean, std = float(split["mean"]), float(split["std"])
    log.info("split seed %d: %d train, %d validation; mean %.5f std %.5f", seed, train_n, val_n, mean, std)


@step
def initialise(arch: Architecture, seed: int, out: PathLike) -> None:
    """Write θ0, the original initialisation every ticket is rewound to."""
    save_tensors(out, model.glorot_normal_init(arch, seed), metadata={"init_seed": seed})
    log.info("θ0 for %s with seed %d", arch.widths, seed)


def prune(
    weights: PathLike, previous_mask: PathLike, ticket: Network, out: PathLike
) -> dict[str, np.ndarray]:
    """The ticket round's mask from the previous round's trained weights and mask."""
    trained = model.prunable(load_arrays(weights))
    masks = pruning.next_masks(
        trained, load_arrays(previous_mask), ticket.schedule, ticket.round, ticket.method
    )
    metadata = {"schedule": ticket.schedule.name, "round": ticket.round, "method": ticket.method}
    save_tensors(out, masks, metadata=metadata)
    kept = 100 * pruning.weights_remaining(masks)
    log.info(
        "%s round %d (%s): %.4f%% of weights remain", ticket.schedule.name, ticket.round, ticket.method, kept
    )
    return masks


@step
def train_ticket_round(
    previous_weights: PathLike,
    previous_mask: PathLike,
    init: PathLike,
    dataset: PathLike,
    split: PathLike,
    ticket: Network,
    hparams: TrainingHparams,
    replicate: Replicate,
    outputs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """One pruning round: prune the previous round's network (the dense one for one-shot schedules),
    rewind to θ0, train."""
    masks = prune(previous_weights, previous_mask, ticket, outputs["mask"])
    array_data = data.load_array_data(dataset, split)
    return train_and_save(
        load_arrays(init), masks, array_data, hparams, replicate, ticket, _without_mask(outputs)
    )


def _without_mask(outputs: Mapping[str, PathLike]) -> dict[str, PathLike]:
    """A job's outputs less the mask, which the job writes itself (with its provenance)."""
    return {key: path for key, path in outputs.items() if key != "mask"}


@step
def train_dense(
    init: PathLike,
    dataset: PathLike,
    split: PathLike,
    hparams: TrainingHparams,
    replicate: Replicate,
    outputs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """Round 0: the dense network trained from θ0 (its all-ones mask written for round 1)."""
    params = load_arrays(init)
    masks = pruning.dense_masks(model.prunable(params))
    array_data = data.load_array_data(dataset, split)
    return train_and_save(params, masks, array_data, hparams, replicate, Network(), outputs)


@step
def train_control(
    variant: str,
    inputs: Mapping[str, Any],
    dataset: PathLike,
    split: PathLike,
    ticket: Network,
    hparams: TrainingHparams,
    replicate: Replicate,
    wildcards: Mapping[str, str],
    outputs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """A control variant of ticket round ``ticket.round`` (:data:`lottery.variants.REGISTRY`)."""
    entry = variants.REGISTRY[variant]
    prepared = entry.prepare(inputs, ticket, replicate, wildcards)
    if entry.writes_mask:
        metadata = {
            "schedule": ticket.schedule.name,
            "round": ticket.round,
            "method": prepared.network.method,
        }
        save_tensors(outputs["mask"], prepared.masks, metadata=metadata)
    return train_and_save(
        load_arrays(prepared.init), prepared.masks, data.load_array_data(dataset, split), hparams,
        replicate, prepared.network, _without_mask(outputs), prepared.start_iteration,
    )  # fmt: skip


@step
def train_instability_copy(
    variant: str,
    inputs: Mapping[str, Any],
    dataset: PathLike,
    split: PathLike,
    ticket: Network | None,
    hparams: TrainingHparams,
    replicate: Replicate,
    iteration: int,
    copy: str,
    outputs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """One copy of the instability analysis (:class:`lottery.desc.Instability`): the ``variant``
    network of ``ticket``'s round (None: the dense network) started at θ``iteration`` under its mask
    and trained to the end; copy "a" with the replicate's data order (the order the network itself was
    trained with), copy "b" with :attr:`Replicate.second_copy_data_order_seed`."""
    if variant == "ticket":
        init, masks = inputs["init"], load_arrays(inputs["mask"])
        network = ticket or Network()
    else:
        assert ticket is not None, "a control of the dense network"
        prepared = variants.REGISTRY[variant].prepare(inputs, ticket, replicate, {})
        init, masks, network = prepared.init, prepared.masks, prepared.network
    if iteration:
        network = replace(network, rewind_iteration=iteration)
    if copy == "b":
        replicate = replace(replicate, data_order_seed=replicate.second_copy_data_order_seed)
    elif copy != "a":
        raise ValueError(f"copy must be 'a' or 'b', got {copy!r}")
    array_data = data.load_array_data(dataset, split)
    return train_and_save(
        load_arrays(init), masks, array_data, hparams, replicate, network, outputs, iteration
    )


def train_and_save(
    params: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    array_data: data.ArrayData,
    hparams: TrainingHparams,
    replicate: Replicate,
    network: Network,
    outputs: Mapping[str, PathLike],
    start_iteration: int = 0,
) -> dict[str, Any]:
    """Train ``params`` ⊙ ``masks``; write final weights, the mask (if ``outputs`` has one),
    ``metrics.json``, the curve CSV and ``provenance.json`` (if ``outputs`` has one: which machine,
    code and time made it, :mod:`lottery.provenance`). The metrics hold the network's identity, the
    replicate's seeds and the recorded hyperparameters (:func:`lottery.desc.recorded`). Returns the
    metrics."""
    from lottery.training import train

    stopwatch = provenance.Stopwatch()
    result = train(params, masks, array_data, hparams, replicate.data_order_seed, start_iteration)
    kept = pruning.weights_remaining(masks)
    metrics = {
        **network.identity(),
        **recorded(replicate),
        "actual_ratio": 1.0 - kept,
        "weights_remaining_pct": 100.0 * kept,
        "remaining": pruning.remaining_fractions(masks),
        "training": recorded(hparams),
        **result.metrics(),
    }
    save_tensors(outputs["weights"], result.params)
    if "mask" in outputs:
        save_tensors(outputs["mask"], masks)
    write_text(outputs["curve"], csv_text(result.curve, CURVE_COLUMNS))
    write_json(outputs["metrics"], metrics)
    if "provenance" in outputs:
        made = provenance.network_provenance(
            stopwatch.started, stopwatch.seconds, result.paths, result.kernel_flavour, result.backend
        )
        write_json(outputs["provenance"], made)
    log.info(
        "%s %s round %s: Pm %.2f%%, early stop %d, val acc %.4f, test acc %.4f (final %.4f); paths %s",
        network.variant, metrics["schedule"], network.round,
        100 * kept, result.early_stop_iteration, result.early_stop_val.accuracy,
        result.early_stop_test.accuracy, result.final_test.accuracy,
        ", ".join(f"{name.removesuffix('.weight')} {path}" for name, path in result.paths.items()),
    )  # fmt: skip
    return metrics


@step
def rewind_point(
    init: PathLike,
    dataset: PathLike,
    split: PathLike,
    hparams: TrainingHparams,
    replicate: Replicate,
    iteration: int,
    out: PathLike,
) -> None:
    """θk: the dense network after ``iteration`` iterations - bitwise the dense run's weights then,
    since training is deterministic (the same trainer and paths as the dense run's), so rewinding
    points can be added without retraining round 0."""
    from lottery.training import make_trainer

    params = load_arrays(init)
    masks = pruning.dense_masks(model.prunable(params))
    trainer, _ = make_trainer(
        params, masks, data.load_array_data(dataset, split), hparams, replicate.data_order_seed
    )
    trainer.run(iteration)
    save_tensors(out, trainer.state_dict(), metadata={"iteration": iteration})
    log.info("θ%d written", iteration)
