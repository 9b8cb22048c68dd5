"""The workflow's jobs, one function per rule, from input files to output files.

A rule's script is one line, :func:`run_script`: it hands the ``snakemake`` object's file names, params,
wildcards, log files and threads to the rule's function here as a :class:`Job` (plain values, as
Snakemake has them), in the script's own process, so that the rule's ``benchmark:`` file measures the
work. That function reads the rule's params itself: the experiment's typed pieces travel in the params
as :func:`lottery.desc.to_params` of them and come back whole from the job (:attr:`Job.hparams`,
:attr:`Job.replicate`, :attr:`Job.network`, :attr:`Job.architecture`), handed whole to the package.

Training jobs read their files as numpy arrays and import no PyTorch (a job starts at once):
:mod:`lottery.training` hands the arrays to the backend ``training.backend`` names, which imports
PyTorch only for the ``torch`` reference trainer (:func:`uses_torch`). Decoding the data and splitting
it import no PyTorch either (the split's permutation and statistics are PyTorch's, bit for bit:
:mod:`lottery.data`); drawing θ0 imports PyTorch, whose generator it uses. The control variants' own
parts are in :mod:`lottery.variants`, the runs table in :mod:`lottery.runs`.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from lottery import data, model, owner, provenance, pruning, record, runs, variants
from lottery.desc import (
    Architecture,
    Network,
    Replicate,
    TrainingHparams,
    derived_seed,
    from_params,
    network_from_params,
    recorded,
)
from lottery.io import load_arrays, save_tensors, write_json, write_text
from lottery.logs import Explained, log, setup_logging, step
from lottery.methods import Examples, PruningInputs
from lottery.runs import csv_text

PathLike = str | os.PathLike
CURVE_COLUMNS = ("iteration", "train_loss", "val_loss", "val_acc", "test_loss", "test_acc")


@dataclass(frozen=True)
class Job:
    """One Snakemake job: its named inputs and outputs, params, wildcards, log files and threads."""

    input: Mapping[str, Any]
    output: Mapping[str, str]
    params: Mapping[str, Any] = field(default_factory=dict)
    wildcards: Mapping[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    threads: int = 1

    def start(self, uses_torch: bool = True) -> None:
        """Before any job (:func:`run`): log to the rule's ``log:`` file; pin PyTorch to the job's
        threads so that ``--cores N`` runs N jobs side by side without oversubscribing the CPU (a job
        that needs no PyTorch does not import it: its start is seconds shorter)."""
        setup_logging(self.log[0] if self.log else None)
        if uses_torch:
            import torch

            torch.set_num_threads(self.threads)

    @property
    def hparams(self) -> TrainingHparams:
        return from_params(TrainingHparams, self.params["training"])

    @property
    def replicate(self) -> Replicate:
        return from_params(Replicate, self.params["replicate"])

    @property
    def network(self) -> Network:
        return network_from_params(self.params["network"])

    @property
    def architecture(self) -> Architecture:
        """The model (``params["architecture"]``; a training rule has it only for a model other
        than the default ``mlp``, so that the default's params are as they were)."""
        return from_params(Architecture, self.params.get("architecture", {}))

    @classmethod
    def of(cls, snakemake: Any, **params: Any) -> Job:
        """The job that the ``snakemake`` object describes (``params`` add to the rule's params)."""
        return cls(
            input=dict(snakemake.input.items()),
            output=dict(snakemake.output.items()),
            params=dict(snakemake.params.items()) | params,
            wildcards=dict(snakemake.wildcards.items()),
            log=list(snakemake.log),
            threads=int(snakemake.threads),
        )

    def array_data(self) -> data.ArrayData:
        """What every training takes besides its weights: the data as its split normalises them
        (read once per job)."""
        return self._array_data

    @cached_property
    def _array_data(self) -> data.ArrayData:
        return data.load_array_data(self.input["dataset"], self.input["split"])


def fetch_dataset(job: Job) -> None:
    """Fetch and verify the dataset's files (``params["files"]``, their specs; ``params["sources"]``:
    the offline folder or the mirrors, set by the script from the config)."""
    from lottery import fetch

    p = job.params
    fetch.fetch_dataset(job.output, p["files"], p["sources"], p["retries"], p["timeout"])


@step
def decode_dataset(job: Job) -> None:
    """The dataset's files as one tensor file, each file checked against its spec's checksums
    (``params["files"]``); ``params["dataset"]``: its ``data.name`` (mnist where not given)."""
    from lottery import datasets

    name = job.params.get("dataset", datasets.DEFAULT)
    arrays = datasets.decode(name, dict(job.input), job.params.get("files", {}))
    save_tensors(job.output["dataset"], arrays)
    log.info("decoded %s", {k: tuple(v.shape) for k, v in arrays.items()})


@step
def split_dataset(job: Job) -> None:
    """The experiment's training/validation split, once the data are known to fit the experiment: the
    network's input and output sizes, the batch size - before any network is trained."""
    dataset, p = job.input["dataset"], job.params
    validation_size, seed = p["validation_size"], p["seed"]
    arrays = load_arrays(dataset)
    data.check_fits(arrays, dataset, job.architecture, validation_size, p["batch_size"])
    split = data.make_split(arrays, validation_size, seed)
    save_tensors(job.output["split"], split, metadata={"seed": seed, "validation_size": validation_size})
    train_n, val_n = len(split["train_indices"]), len(split["val_indices"])
    mean, std = (np.array2string(split[k], precision=5) for k in ("mean", "std"))
    log.info("split seed %d: %d train, %d validation; mean %s std %s", seed, train_n, val_n, mean, std)


@step
def initialise(job: Job) -> None:
    """θ0 (or the reinit control's weights), the initialisation every ticket is rewound to, from the
    architecture and a seed."""
    arch, seed = job.architecture, job.params["seed"]
    save_tensors(job.output["init"], model.glorot_normal_init(arch, seed), metadata={"init_seed": seed})
    log.info("θ0 of %s %s with seed %d", arch.name, list(arch.weight_shapes().values()), seed)


def collect_runs(job: Job) -> None:
    """One replicate's runs table (its summary's ``runs.csv``)."""
    runs.collect_runs(job.input["metrics"], job.params["experiment"], job.output["runs"])


@step
def train_dense(job: Job) -> dict[str, Any]:
    """Round 0: the dense network trained from θ0 (its all-ones mask written for round 1)."""
    params = load_arrays(job.input["init"])
    masks = pruning.dense_masks(model.prunable(params))
    return train_and_save(start_training(job, params, masks), masks, Network(), job.output)


@step
def train_ticket(job: Job) -> dict[str, Any]:
    """One pruning round: prune round k-1's network (the dense one for one-shot schedules), rewind to
    θ0, train."""
    ticket, init, array_data = job.network, load_arrays(job.input["init"]), job.array_data()
    trained = model.prunable(load_arrays(job.input["previous_weights"]))
    previous = load_arrays(job.input["previous_mask"])
    inputs = PruningInputs(
        trained, previous, init, job.architecture, Examples(array_data.train_x, array_data.train_y),
        seed=job.replicate.init_seed,
    )  # fmt: skip
    masks = prune(inputs, ticket, job.output["mask"])
    return train_and_save(start_training(job, init, masks), masks, ticket, _without_mask(job.output))


def prune(inputs: PruningInputs, ticket: Network, out: PathLike) -> dict[str, np.ndarray]:
    """The ticket round's mask from what the previous round left (its trained weights and mask in
    ``inputs``), by the ticket's pruning method (:data:`lottery.methods.REGISTRY`)."""
    masks = pruning.next_masks(
        inputs.trained, inputs.masks, ticket.schedule, ticket.round, ticket.method, inputs
    )
    metadata = {"schedule": ticket.schedule.name, "round": ticket.round, "method": ticket.method}
    save_tensors(out, masks, metadata=metadata)
    kept = 100 * pruning.weights_remaining(masks)
    log.info(
        "%s round %d (%s): %.4f%% of weights remain", ticket.schedule.name, ticket.round, ticket.method, kept
    )
    return masks


def _without_mask(outputs: Mapping[str, PathLike]) -> dict[str, PathLike]:
    """A job's outputs less the mask, which the job writes itself (with its provenance)."""
    return {key: path for key, path in outputs.items() if key != "mask"}


@step
def train_control(job: Job) -> dict[str, Any]:
    """A control variant (``params["variant"]``, :data:`lottery.variants.REGISTRY`) of ticket round
    ``ticket.round``, with what the round left."""
    ticket, replicate = job.network, job.replicate
    entry = variants.REGISTRY[job.params["variant"]]
    prepared = entry.prepare(job.input, ticket, replicate, job.wildcards)
    if entry.writes_mask:
        metadata = {
            "schedule": ticket.schedule.name,
            "round": ticket.round,
            "method": prepared.network.method,
        }
        save_tensors(job.output["mask"], prepared.masks, metadata=metadata)
    started = start_training(
        job, load_arrays(prepared.init), prepared.masks, replicate, prepared.start_iteration
    )
    return train_and_save(started, prepared.masks, prepared.network, _without_mask(job.output))


@step
def train_instability_copy(job: Job) -> dict[str, Any]:
    """One copy of the instability analysis (:class:`lottery.desc.Instability`): the
    ``params["variant"]`` network of ``params["network"]``'s round (none: the dense network) started at
    θ``params["iteration"]`` under its mask and trained to the end; copy ``params["twin"]`` "a" with the
    replicate's data order (the order the network itself was trained with), copy "b" with
    :attr:`Replicate.second_copy_data_order_seed`."""
    variant, copy, iteration = job.params["variant"], job.params["twin"], int(job.params["iteration"])
    network_params = job.params.get("network")
    ticket = None if network_params is None else network_from_params(network_params)
    replicate = job.replicate
    if variant == "ticket":
        init, masks = job.input["init"], load_arrays(job.input["mask"])
        network = ticket or Network()
    else:
        assert ticket is not None, "a control of the dense network"
        prepared = variants.REGISTRY[variant].prepare(job.input, ticket, replicate, {})
        init, masks, network = prepared.init, prepared.masks, prepared.network
    if iteration:
        network = replace(network, rewind_iteration=iteration)
    if copy == "b":
        replicate = replace(replicate, data_order_seed=replicate.second_copy_data_order_seed)
    elif copy != "a":
        raise ValueError(f"copy must be 'a' or 'b', got {copy!r}")
    started = start_training(job, load_arrays(init), masks, replicate, iteration)
    return train_and_save(started, masks, network, job.output)


@step
def train_pai(job: Job) -> dict[str, Any]:
    """A network of pruning at initialisation (:class:`lottery.desc.Pai`): ``params["method"]``
    prunes θ0 once to the Pm of the ticket of ``params["network"]``'s round (as many weights in all),
    or, for the method ``ticket``, the iterative ticket's own mask of that round; then its sanity
    check ``params["check"]``: ``found`` (none), ``shuffled`` (each layer's mask permuted),
    ``reinit`` (the reinit control's θ0) or ``inverted`` (the lowest scores kept at the mask's
    per-layer counts; the ticket's: the lowest-magnitude survivors of the round before it). Its
    metrics record each layer's density, the layers left empty and whether any path joins the
    inputs to the outputs (:mod:`lottery.collapse`)."""
    from lottery import collapse, methods, sanity
    from lottery.desc import FOUND, TICKET

    method, check, ticket, replicate = job.params["method"], job.params["check"], job.network, job.replicate
    init, array_data = load_arrays(job.input["init"]), job.array_data()
    level = ticket.round
    if method == TICKET:
        masks = load_arrays(job.input["mask"])
        scores = None
        if check == "inverted":  # the last pruning step's criterion: the previous round's magnitudes
            previous = load_arrays(job.input["previous_mask"])
            trained = model.prunable(load_arrays(job.input["previous_weights"]))
            scores = {name: np.abs(w) * (previous[name] != 0) for name, w in trained.items()}
            masks = sanity.invert(scores, pruning.kept_counts(masks), previous)
    else:
        weights = model.prunable(init)
        dense = pruning.dense_masks(weights)
        inputs = PruningInputs(
            weights, dense, init, job.architecture, Examples(array_data.train_x, array_data.train_y),
            seed=derived_seed(f"{replicate.init_seed}/pai/{method}/level-{level}"),
        )  # fmt: skip
        masks = pruning.next_masks(weights, dense, ticket.schedule, level, method, inputs)
        if check == "inverted":
            masks = sanity.invert(methods.get(method).scores(inputs), pruning.kept_counts(masks))
    network = replace(ticket, variant=method if check == FOUND else f"{method}-{check}")
    if method != TICKET:
        network = replace(network, method=method)
    start = init
    if check == "shuffled":
        seed = sanity.shuffle_seed(replicate, method, level)
        masks = sanity.shuffle_within_layers(masks, seed)
        network = replace(network, mask_seed=seed)
    elif check == "reinit":
        start = load_arrays(job.input["reinit"])
        network = replace(network, reinit_seed=replicate.reinit_seed)
    elif check not in (FOUND, "inverted"):
        raise ValueError(f"check must be {FOUND!r}, 'shuffled', 'reinit' or 'inverted', got {check!r}")
    save_tensors(job.output["mask"], masks, metadata={"method": method, "check": check, "level": level})
    made = collapse.collapse(masks)
    extra = {"collapsed_layers": made["collapsed_layers"], "disconnected": made["disconnected"]}
    return train_and_save(start_training(job, start, masks), masks, network, _without_mask(job.output), extra)


@step
def train_rewind_point(job: Job) -> None:
    """θk: the dense network after k (``wildcards["iteration"]``) iterations - bitwise the dense run's
    weights then, since training is deterministic (the same trainer and paths as the dense run's), so
    rewinding points can be added without retraining round 0."""
    iteration = int(job.wildcards["iteration"])
    params = load_arrays(job.input["init"])
    trainer = start_training(job, params, pruning.dense_masks(model.prunable(params))).trainer
    trainer.run(iteration)
    save_tensors(job.output["theta"], trainer.state_dict(), metadata={"iteration": iteration})
    log.info("θ%d written", iteration)


@dataclass(frozen=True)
class Started:
    """A network's training as its job set it up: the trainer (holding the optimiser, made from the
    job's hyperparameters), each layer's path, what the loop reads (the data, the evaluation grid,
    the replicate, the first iteration), and the stopwatch started before the trainer was made."""

    trainer: Any
    paths: dict[str, str]
    array_data: data.ArrayData
    hparams: TrainingHparams
    replicate: Replicate
    start_iteration: int
    stopwatch: provenance.Stopwatch


def start_training(
    job: Job,
    init: dict[str, np.ndarray],
    masks: dict[str, np.ndarray],
    replicate: Replicate | None = None,
    start_iteration: int = 0,
) -> Started:
    """The trainer of the job's network (:func:`lottery.training.make_trainer`): ``rewind(init,
    masks)`` of the job's model, its hyperparameters read from the rule's params here and handed to
    the trainer whole (the learning rate's trip: config, :class:`lottery.desc.TrainingHparams`, the
    rule's params, this job, the trainer); ``replicate`` (the job's by default) sets the data order."""
    from lottery.training import make_trainer

    stopwatch = provenance.Stopwatch()
    replicate = replicate or job.replicate
    array_data, hparams = job.array_data(), job.hparams
    trainer, paths = make_trainer(
        init, masks, array_data, hparams, replicate.data_order_seed, start_iteration,
        model=job.architecture.name,
    )  # fmt: skip
    return Started(trainer, paths, array_data, hparams, replicate, start_iteration, stopwatch)


def train_and_save(
    started: Started,
    masks: dict[str, np.ndarray],
    network: Network,
    outputs: Mapping[str, PathLike],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train the network ``started`` set up (:func:`lottery.training.run_training`); write final
    weights, the mask (if ``outputs`` has one), ``metrics.json``, the curve CSV and ``provenance.json``
    (if ``outputs`` has one: which machine, code and time made it, :mod:`lottery.provenance`). The
    metrics hold the network's identity, the replicate's seeds and the recorded hyperparameters
    (:func:`lottery.desc.recorded`). Returns the metrics."""
    from lottery.training import run_training

    hparams, replicate, stopwatch = started.hparams, started.replicate, started.stopwatch
    result = run_training(
        started.trainer, started.paths, started.array_data, hparams, started.start_iteration
    )
    kept = pruning.weights_remaining(masks)
    metrics = {
        **network.identity(),
        **recorded(replicate),
        "actual_ratio": 1.0 - kept,
        "weights_remaining_pct": 100.0 * kept,
        "remaining": pruning.remaining_fractions(masks),
        "training": recorded(hparams),
        **result.metrics(),
        **(extra or {}),
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


def replicate_instability(job: Job) -> None:
    """A replicate's part of the instability analysis: its tested networks' paths."""
    from lottery import ticket_analyses

    pairs = [
        ids | {"a": a, "b": b}
        for ids, a, b in zip(job.params["pairs"], job.input["a"], job.input["b"], strict=True)
    ]
    ticket_analyses.write_replicate_instability(
        pairs, job.input["dataset"], job.input["split"], job.params["points"], job.output
    )


def instability(job: Job) -> None:
    from lottery import ticket_analyses

    ticket_analyses.write_instability(job.input["tables"], job.input["paths"], job.output)


def replicate_supermasks(job: Job) -> None:
    from lottery import ticket_analyses

    ticket_analyses.write_replicate_supermasks(
        job.replicate, job.input["init"], job.input["masks"], job.input["dataset"], job.input["split"],
        job.output["table"],
    )  # fmt: skip


def supermasks(job: Job) -> None:
    from lottery import ticket_analyses

    ticket_analyses.write_supermasks(job.input["tables"], job.output)


def replicate_masks(job: Job) -> None:
    from lottery import ticket_analyses

    keys = job.params["mask_keys"]
    ticket_analyses.write_replicate_masks(
        dict(zip(keys, job.input["masks"], strict=True)), job.output["masks"]
    )


def _bundles(job: Job) -> dict[str, str]:
    return dict(zip(job.params["replicates"], job.input["bundles"], strict=True))


def mask_overlap(job: Job) -> None:
    from lottery import ticket_analyses

    p = job.params
    ticket_analyses.write_mask_overlap(
        _bundles(job), p["reference"], p["oneshot"], p["rounds"], p["oneshot_rounds"], job.output
    )


def pixel_map(job: Job) -> None:
    from lottery import ticket_analyses

    p = job.params
    ticket_analyses.write_pixel_map(
        _bundles(job), p["reference"], p["rounds"], job.input["dataset"], job.input["split"], job.output
    )


def replicate_record(job: Job) -> None:
    """A replicate's record.json: the description its networks were made with, its files' digests."""
    p = job.params
    record.write_record(
        job.output["record"], p["replicate"], p["description"], job.input["files"], p["networks"]
    )


def concatenate_runs(job: Job) -> None:
    runs.concatenate_runs(job.input["runs"], job.output["runs"])


def replicate_provenance(job: Job) -> None:
    provenance.write_replicate_provenance(
        job.wildcards["replicate"], job.input["provenance"], job.output["provenance"]
    )


def replicate_test_curves(job: Job) -> None:
    from lottery import paper

    networks = list(zip(job.input["metrics"], job.input["curves"], strict=True))
    paper.write_replicate_curves(networks, job.output["curves"])


JOBS: dict[str, Callable[[Job], object]] = {
    "fetch_dataset": fetch_dataset,
    "decode_dataset": decode_dataset,
    "split_dataset": split_dataset,
    "initialise": initialise,
    "collect_runs": collect_runs,
    "train_dense": train_dense,
    "train_ticket": train_ticket,
    "train_control": train_control,
    "rewind_point": train_rewind_point,
    "train_instability_copy": train_instability_copy,
    "train_pai": train_pai,
    "replicate_instability": replicate_instability,
    "instability": instability,
    "replicate_supermasks": replicate_supermasks,
    "supermasks": supermasks,
    "replicate_masks": replicate_masks,
    "mask_overlap": mask_overlap,
    "pixel_map": pixel_map,
    "concatenate_runs": concatenate_runs,
    "replicate_record": replicate_record,
    "replicate_provenance": replicate_provenance,
    "replicate_test_curves": replicate_test_curves,
}


def run_script(name: str, snakemake: Any, **params: Any) -> None:
    """A rule's script: run the job ``name`` in this process (``params`` add to the rule's params).
    An :class:`~lottery.logs.Explained` failure exits with its message alone (it is in the log too)."""
    try:
        run(name, Job.of(snakemake, **params))
    except Explained as error:
        sys.exit(f"job {name} failed: {error}")


# Jobs that import no PyTorch (nor the package's modules that need it).
WITHOUT_TORCH = frozenset(
    {
        "fetch_dataset",
        "decode_dataset",
        "split_dataset",
        "collect_runs",
        "concatenate_runs",
        "replicate_provenance",
        "replicate_test_curves",
        "replicate_record",
    }
)
# Jobs that train a network: they import PyTorch only for its backend (``training.backend: torch``).
TRAINING = frozenset(
    {"train_dense", "train_ticket", "train_control", "rewind_point", "train_instability_copy", "train_pai"}
)


def uses_torch(name: str, job: Job) -> bool:
    """Whether the job ``name`` imports PyTorch (then :meth:`Job.start` pins its threads)."""
    if name in WITHOUT_TORCH:
        return False
    if name not in TRAINING:
        return True
    from lottery import models

    try:
        hparams, native_model = job.hparams, models.get(job.architecture.name).native
        network = job.params.get("network")  # a ticket round's, a control's, a copy's (or none)
        method = job.params.get("method") if name == "train_pai" else network and job.network.method
    except (KeyError, TypeError, ValueError):  # the job itself says what is wrong, in its log
        return True
    if method is not None and method != "ticket":  # a scorer that takes gradients imports PyTorch
        from lottery import methods

        if getattr(methods.REGISTRY.get(method), "uses_torch", False):
            return True
    # the native kernels train mlp on the CPU; anything else trains on PyTorch (lottery.training)
    return hparams.backend != "native" or not native_model or hparams.device != "cpu"


def run(name: str, job: Job | Mapping[str, Any]) -> None:
    """Run the job ``name`` (a key of :data:`JOBS`): a :class:`Job`, or its fields as a mapping."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}: expected one of {sorted(JOBS)}")
    if not isinstance(job, Job):
        job = Job(**job)
    job.start(uses_torch=uses_torch(name, job))
    started, cpu_started = time.perf_counter(), time.process_time()
    watching = owner.watch()
    try:
        record.verify_inputs(job.input)  # replicates' summaries as their records made them
        JOBS[name](job)
    except BaseException as error:  # the rule's log: file says why, not only stderr
        if isinstance(error, KeyboardInterrupt) and not owner.alive():
            error = owner.OwnerGone(
                f"the Snakemake that started job {name} is gone: stopped, nothing written"
            )
        explained = isinstance(error, Explained)  # its message says it all: no traceback
        log.error("job %s failed: %s: %s", name, type(error).__name__, error, exc_info=not explained)
        error.logged = True  # type: ignore[attr-defined]  (not again by logs.setup_logging's hook)
        raise error from None
    finally:
        watching.set()
    log_resources(name, time.perf_counter() - started, time.process_time() - cpu_started)


def log_resources(name: str, wall: float, cpu: float) -> None:
    """The job's own wall time and CPU time (its imports left out) and the process's peak memory, in
    its log: what the step cost, beside the ``benchmark:`` file's figures for the whole process."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    log.info("job %s: wall %.3f s, cpu %.3f s, peak rss %.1f MB", name, wall, cpu, peak)
