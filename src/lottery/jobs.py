"""The workflow's jobs that need PyTorch, each from a plain description of its Snakemake job.

A :class:`Job` holds what a rule's script gets from the ``snakemake`` object (file names, params,
wildcards, threads) as plain JSON values, so that a job can run in its own process or be handed to
the warm worker (:mod:`lottery.worker`) that keeps PyTorch imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lottery import pipeline
from lottery.experiment import Replicate, architecture, training_hparams
from lottery.pipeline import (
    DENSE,
    rewind_point,
    train_network,
    train_random_round,
    train_ticket_round,
    variant_identity,
)
from lottery.steps import setup_logging


@dataclass(frozen=True)
class Job:
    """One Snakemake job: its named inputs and outputs, params, wildcards, log files and threads."""

    input: Mapping[str, Any]
    output: Mapping[str, str]
    params: Mapping[str, Any] = field(default_factory=dict)
    wildcards: Mapping[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    threads: int = 1

    def start(self) -> None:
        """Before any job (:func:`run`): log to the rule's ``log:`` file; pin PyTorch to the job's
        threads so that ``--cores N`` runs N jobs side by side without oversubscribing the CPU."""
        setup_logging(self.log[0] if self.log else None)
        torch.set_num_threads(self.threads)

    def training(self) -> dict[str, Any]:
        """What every training takes: the weights it starts from, the data and its split, the
        training settings and the replicate's seeds."""
        return {
            "init": self.input["init"],
            "dataset": self.input["dataset"],
            "split": self.input["split"],
            "hparams": training_hparams({"training": self.params["training"]}),
            "replicate": Replicate(**self.params["replicate"]),
        }


def fetch_dataset(job: Job) -> None:
    """Fetch and verify the dataset's IDX files (``params["sources"]``: the offline folder or the
    mirrors, set by the script from the config)."""
    pipeline.fetch_dataset(
        outputs=job.output,
        files=job.params["files"],
        sources=job.params["sources"],
        retries=job.params["retries"],
        timeout=job.params["timeout"],
    )


def decode_dataset(job: Job) -> None:
    pipeline.decode_dataset(job.input, job.output["dataset"])


def split_dataset(job: Job) -> None:
    pipeline.split_dataset(
        job.input["dataset"],
        validation_size=job.params["validation_size"],
        seed=job.params["seed"],
        out=job.output["split"],
    )


def initialise(job: Job) -> None:
    """θ0 (or the reinit control's weights) from the architecture and a seed."""
    pipeline.initialise(
        architecture({"model": job.params["architecture"]}), seed=job.params["seed"], out=job.output["init"]
    )


def collect_runs(job: Job) -> None:
    pipeline.collect_runs(job.input["metrics"], job.params["experiment"], job.output["runs"])


def train_dense(job: Job) -> None:
    """Round 0: the dense network trained from θ0."""
    train_network(
        mask=None,
        identity=DENSE,
        outputs=job.output,
        **job.training(),
    )


def train_ticket(job: Job) -> None:
    """One pruning round: prune round k-1's network, rewind to θ0, train."""
    train_ticket_round(
        previous_weights=job.input["previous_weights"],
        previous_mask=job.input["previous_mask"],
        schedule=job.params["schedule"],
        round_=int(job.wildcards["round"]),
        method=job.params["method"],
        outputs=job.output,
        **job.training(),
    )


def train_control(job: Job) -> None:
    """A control variant of a ticket round - reinit or rewind - with the ticket's mask."""
    training = job.training()
    rewind_iteration = int(job.wildcards.get("iteration", 0))
    train_network(
        mask=job.input["mask"],
        identity=variant_identity(
            job.params["schedule"],
            int(job.wildcards["round"]),
            job.params["method"],
            job.params["variant"],
            training["replicate"],
            rewind_iteration or None,
        ),
        outputs=job.output,
        start_iteration=rewind_iteration,
        **training,
    )


def train_random(job: Job) -> None:
    """The random-pruning control of a ticket round."""
    train_random_round(
        ticket_masks=list(job.input["ticket_masks"]),
        schedule=job.params["schedule"],
        method=job.params["method"],
        outputs=job.output,
        **job.training(),
    )


def train_rewind_point(job: Job) -> None:
    """θk: the dense network after k iterations."""
    rewind_point(
        iteration=int(job.wildcards["iteration"]),
        out=job.output["theta"],
        **job.training(),
    )


JOBS: dict[str, Callable[[Job], None]] = {
    "fetch_dataset": fetch_dataset,
    "decode_dataset": decode_dataset,
    "split_dataset": split_dataset,
    "initialise": initialise,
    "collect_runs": collect_runs,
    "train_dense": train_dense,
    "train_ticket": train_ticket,
    "train_control": train_control,
    "train_random": train_random,
    "rewind_point": train_rewind_point,
}


def run(name: str, description: Mapping[str, Any]) -> None:
    """Run the job ``name`` (a key of :data:`JOBS`) from its description (see ``worker.describe``)."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}: expected one of {sorted(JOBS)}")
    job = Job(**description)
    job.start()
    JOBS[name](job)
