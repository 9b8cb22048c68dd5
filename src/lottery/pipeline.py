"""The workflow's steps, one function per rule, from input files to output files.

``workflow/scripts/`` only unpack the ``snakemake`` object and call these (through :mod:`lottery.jobs`
for the jobs that need PyTorch).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from lottery import data, model, pruning
from lottery.experiment import Replicate
from lottery.io import load_tensors, read_json, save_tensors, write_json, write_text
from lottery.steps import log, step
from lottery.training import MaskedTrainer, TrainingHparams, train

PathLike = str | os.PathLike


@step
def fetch_dataset(
    outputs: Mapping[str, PathLike],
    files: Mapping[str, Mapping[str, str]],
    sources: Sequence[str],
    retries: int,
    timeout: float,
) -> None:
    """Fetch and verify each file; ``outputs`` and ``files`` are keyed by ``train_images`` etc."""
    for key, dest in outputs.items():
        spec = files[key]
        used = data.fetch_file(spec["name"], spec["sha256"], sources, dest, retries, timeout)
        log.info("%s: verified %s from %s", key, spec["name"], used)


@step
def decode_dataset(raw: Mapping[str, PathLike], out: PathLike) -> None:
    tensors = data.decode_dataset(dict(raw))
    save_tensors(out, tensors)
    log.info("decoded %s", {k: tuple(v.shape) for k, v in tensors.items()})


@step
def split_dataset(dataset: PathLike, validation_size: int, seed: int, out: PathLike) -> None:
    split = data.make_split(load_tensors(dataset), validation_size, seed)
    save_tensors(out, split, metadata={"seed": seed, "validation_size": validation_size})
    log.info(
        "split seed %d: %d train, %d validation; mean %.5f std %.5f",
        seed, len(split["train_indices"]), len(split["val_indices"]),
        float(split["mean"]), float(split["std"]),
    )  # fmt: skip


@step
def initialise(arch: model.Architecture, seed: int, out: PathLike) -> None:
    """Write θ0, the original initialisation every ticket is rewound to."""
    save_tensors(out, model.glorot_normal_init(arch, seed), metadata={"init_seed": seed})
    log.info("θ0 for %s with seed %d", arch.widths, seed)


def prune(
    weights: PathLike,
    previous_mask: PathLike,
    schedule: pruning.Schedule,
    round_: int,
    method: str,
    out: PathLike,
) -> dict[str, torch.Tensor]:
    """Round ``round_``'s mask from round ``round_ - 1``'s trained weights and mask."""
    trained = model.prunable(load_tensors(weights))
    masks = pruning.next_masks(trained, load_tensors(previous_mask), schedule, round_, method)
    save_tensors(out, masks, metadata={"schedule": schedule.name, "round": round_, "method": method})
    log.info(
        "%s round %d (%s): %.4f%% of weights remain",
        schedule.name, round_, method, 100 * pruning.weights_remaining(masks),
    )  # fmt: skip
    return masks


DENSE = {"variant": "dense", "schedule": "dense", "round": 0, "requested_ratio": 0.0}


def schedule_from_params(params: Mapping[str, Any], round_: int) -> pruning.Schedule:
    """The schedule a rule's ``schedule`` params describe (see ``schedule_params`` in common.smk)."""
    rounds = params["rounds"] or round_  # fixed-rate schedules: as many rounds as asked for
    return pruning.Schedule(params["rate"], rounds, params["output_rate_factor"], params["ratio"],
                            bool(params.get("oneshot", False)))  # fmt: skip


def ticket_identity(params: Mapping[str, Any], round_: int, method: str) -> dict[str, Any]:
    schedule = schedule_from_params(params, round_)
    return {
        "variant": "ticket",
        "method": method,
        "schedule": schedule.name,
        "rate": schedule.rate,
        "output_rate": schedule.layer_rate(is_output=True),
        "schedule_ratio": schedule.ratio,
        "schedule_rounds": params["rounds"],
        "round": round_,
        "requested_ratio": schedule.requested_ratio(round_),
    }


@step
def train_ticket_round(
    previous_weights: PathLike,
    previous_mask: PathLike,
    init: PathLike,
    dataset: PathLike,
    split: PathLike,
    schedule: Mapping[str, Any],
    round_: int,
    method: str,
    hparams: TrainingHparams,
    replicate: Replicate,
    outputs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """One pruning round: prune round k-1's network (the dense one for one-shot schedules), rewind
    to θ0, train."""
    masks = prune(previous_weights, previous_mask, schedule_from_params(schedule, round_), round_, method,
                  outputs["mask"])  # fmt: skip
    return train_and_save(
        load_tensors(init), masks, data.load_tensor_data(dataset, split), hparams, replicate,
        ticket_identity(schedule, round_, method), _without_mask(outputs),
    )  # fmt: skip


def _without_mask(outputs: Mapping[str, PathLike]) -> dict[str, PathLike]:
    """A job's outputs less the mask, which the job writes itself (with its provenance)."""
    return {key: path for key, path in outputs.items() if key != "mask"}


def _csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in columns})
    return buf.getvalue()


CURVE_COLUMNS = ("iteration", "train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


@step
def train_network(
    init: PathLike,
    mask: PathLike | None,
    dataset: PathLike,
    split: PathLike,
    hparams: TrainingHparams,
    replicate: Replicate,
    identity: Mapping[str, Any],
    outputs: Mapping[str, PathLike],
    start_iteration: int = 0,
) -> dict[str, Any]:
    """Train θ0 ⊙ mask from files; ``mask`` None means dense. See :func:`train_and_save`."""
    params = load_tensors(init)
    masks = load_tensors(mask) if mask is not None else pruning.dense_masks(model.prunable(params))
    return train_and_save(
        params, masks, data.load_tensor_data(dataset, split), hparams, replicate, identity, outputs,
        start_iteration,
    )  # fmt: skip


def train_and_save(
    params: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    tensor_data: data.TensorData,
    hparams: TrainingHparams,
    replicate: Replicate,
    identity: Mapping[str, Any],
    outputs: Mapping[str, PathLike],
    start_iteration: int = 0,
) -> dict[str, Any]:
    """Train ``params`` ⊙ ``masks``; write final weights, the mask (if ``outputs`` has one),
    ``metrics.json`` and the curve CSV. ``identity`` describes the network (variant, schedule, round,
    requested ratio...) and is copied into the metrics. Returns the metrics."""
    result = train(params, masks, tensor_data, hparams, replicate.data_order_seed, start_iteration)

    remaining = pruning.remaining_fractions(masks)
    kept = pruning.weights_remaining(masks)
    metrics = {
        **identity,
        "init_seed": replicate.init_seed,
        "data_order_seed": replicate.data_order_seed,
        "split_seed": replicate.split_seed,
        "actual_ratio": 1.0 - kept,
        "weights_remaining_pct": 100.0 * kept,
        "remaining": remaining,
        "training": {
            "learning_rate": hparams.learning_rate,
            "batch_size": hparams.batch_size,
            "eval_every": hparams.eval_every,
        },
        **result.metrics(),
    }
    save_tensors(outputs["weights"], result.params)
    if "mask" in outputs:
        save_tensors(outputs["mask"], masks)
    write_text(outputs["curve"], _csv(result.curve, CURVE_COLUMNS))
    write_json(outputs["metrics"], metrics)
    log.info(
        "%s %s round %s: Pm %.2f%%, early stop %d, val acc %.4f, test acc %.4f (final %.4f)",
        identity.get("variant"), identity.get("schedule"), identity.get("round"),
        100 * kept, result.early_stop_iteration, result.early_stop_val.accuracy,
        result.early_stop_test.accuracy, result.final_test.accuracy,
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
    since training is deterministic, so rewinding points can be added without retraining round 0."""
    params = load_tensors(init)
    trainer = MaskedTrainer(
        params, pruning.dense_masks(model.prunable(params)), data.load_tensor_data(dataset, split),
        hparams, replicate.data_order_seed,
    )  # fmt: skip
    trainer.run(iteration)
    save_tensors(out, trainer.state_dict(), metadata={"iteration": iteration})
    log.info("θ%d written", iteration)


def random_mask_seed(replicate: Replicate, schedule: str, round_: int) -> int:
    """A seed per (replicate, schedule, round), independent of Python's hash randomisation."""
    key = f"{replicate.random_mask_seed}/{schedule}/{round_}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") >> 1


def random_masks(
    ticket_masks: Sequence[PathLike], replicate: Replicate, schedule: str
) -> dict[str, torch.Tensor]:
    """Random pruning up to round k = ``len(ticket_masks)``: each round keeps as many weights per
    layer as the ticket's mask of that round, chosen at random among the previous random round's
    survivors. Random choices need no trained weights, so the rounds are replayed in one go (each
    round with its own seed) and no intermediate network is trained."""
    masks = pruning.dense_masks(load_tensors(ticket_masks[0]))
    for round_, path in enumerate(ticket_masks, start=1):
        generator = torch.Generator().manual_seed(random_mask_seed(replicate, schedule, round_))
        masks = pruning.prune_random(masks, pruning.kept_counts(load_tensors(path)), generator)
    return masks


@step
def train_random_round(
    ticket_masks: Sequence[PathLike],
    init: PathLike,
    dataset: PathLike,
    split: PathLike,
    schedule: Mapping[str, Any],
    method: str,
    hparams: TrainingHparams,
    replicate: Replicate,
    outputs: Mapping[str, PathLike],
) -> dict[str, Any]:
    """The random-pruning control of round k: its mask (written) trained from θ0."""
    round_ = len(ticket_masks)
    identity = variant_identity(schedule, round_, method, "random", replicate)
    masks = random_masks(ticket_masks, replicate, identity["schedule"])
    save_tensors(outputs["mask"], masks, metadata={"schedule": identity["schedule"], "round": round_,
                                                    "method": "random"})  # fmt: skip
    return train_and_save(load_tensors(init), masks, data.load_tensor_data(dataset, split), hparams,
                          replicate, identity, _without_mask(outputs))  # fmt: skip


CONTROL_VARIANTS = ("reinit", "random", "rewind")


def variant_identity(
    schedule: Mapping[str, Any], round_: int, method: str, variant: str, replicate: Replicate,
    rewind_iteration: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The identity of a control network trained with the ticket's round-``round_`` mask (or counts)."""
    if variant not in CONTROL_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {CONTROL_VARIANTS}")
    identity = ticket_identity(schedule, round_, method)
    identity["variant"] = variant
    if variant == "reinit":
        identity["reinit_seed"] = replicate.reinit_seed
    elif variant == "random":
        identity["method"] = "random"
        identity["mask_seed"] = random_mask_seed(replicate, identity["schedule"], round_)
    else:
        identity["rewind_iteration"] = rewind_iteration
    return identity


RUN_FIXED_COLUMNS = (
    "experiment", "seed", "init_seed", "data_order_seed", "split_seed", "variant", "method",
    "schedule", "rate", "output_rate", "schedule_ratio", "schedule_rounds", "round",
    "requested_ratio", "actual_ratio", "weights_remaining_pct", "rewind_iteration", "reinit_seed",
    "mask_seed",
)  # fmt: skip
RUN_RESULT_COLUMNS = (
    "early_stop_iteration", "val_loss", "val_acc", "test_loss", "test_acc",
    "val_loss_final", "val_acc_final", "test_loss_final", "test_acc_final", "iterations",
)  # fmt: skip


def runs_table(metrics_files: Sequence[PathLike], experiment: str) -> str:
    """``runs.csv``: one row per trained network, sorted, with no timings (reproducible to the byte)."""
    rows, layers = [], []
    for path in metrics_files:
        m = read_json(path)
        row = {**m, "experiment": experiment, "seed": m["init_seed"]}
        for name, fraction in m["remaining"].items():
            column = f"remaining_{name.removesuffix('.weight')}"
            row[column] = fraction
            if column not in layers:
                layers.append(column)
        rows.append(row)
    rows.sort(
        key=lambda r: (r["seed"], r["variant"] != "dense", r["schedule"], r["variant"],
                       r.get("rewind_iteration") or 0, r["round"])
    )  # fmt: skip
    return _csv(rows, [*RUN_FIXED_COLUMNS, *layers, *RUN_RESULT_COLUMNS])


@step
def collect_runs(metrics_files: Sequence[PathLike], experiment: str, out: PathLike) -> None:
    write_text(out, runs_table(metrics_files, experiment))
    log.info("%d runs collected into %s", len(metrics_files), Path(out))
