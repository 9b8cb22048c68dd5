"""The workflow's jobs, each from a plain description of its Snakemake job.

A rule's script is one line, :func:`run_script`: :func:`describe` takes what the job gets from the
``snakemake`` object (file names, params, wildcards, threads) as plain values, a :class:`Job`, and
:func:`run` runs it in the script's own process, so that the rule's ``benchmark:`` file measures the
work. The experiment's typed pieces travel in the params as :func:`lottery.desc.to_params` of them
and come back whole here (:meth:`Job.hparams`, :meth:`Job.replicate`, :meth:`Job.network`,
:meth:`Job.architecture`).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lottery import owner, record, runs
from lottery.desc import Architecture, Network, Replicate, TrainingHparams, from_params, network_from_params
from lottery.logs import Explained, log, setup_logging


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
        return from_params(Architecture, self.params["architecture"])

    def data(self) -> dict[str, Any]:
        """What every training takes besides its weights: the data, its split, the hyperparameters
        and the replicate's seeds."""
        return {
            "dataset": self.input["dataset"],
            "split": self.input["split"],
            "hparams": self.hparams,
            "replicate": self.replicate,
        }


def fetch_dataset(job: Job) -> None:
    """Fetch and verify the dataset's IDX files (``params["sources"]``: the offline folder or the
    mirrors, set by the script from the config)."""
    from lottery import fetch

    p = job.params
    fetch.fetch_dataset(job.output, p["files"], p["sources"], p["retries"], p["timeout"])


def decode_dataset(job: Job) -> None:
    from lottery import steps

    files = job.params.get("files", {})
    steps.decode_dataset(
        job.input, job.output["dataset"], {key: spec["sha256"] for key, spec in files.items()}
    )


def split_dataset(job: Job) -> None:
    from lottery import steps

    p = job.params
    steps.split_dataset(
        job.input["dataset"],
        p["validation_size"],
        p["seed"],
        job.output["split"],
        job.architecture,
        p["batch_size"],
    )


def initialise(job: Job) -> None:
    """θ0 (or the reinit control's weights) from the architecture and a seed."""
    from lottery import steps

    steps.initialise(job.architecture, seed=job.params["seed"], out=job.output["init"])


def collect_runs(job: Job) -> None:
    """One replicate's runs table (its summary's ``runs.csv``)."""
    runs.collect_runs(job.input["metrics"], job.params["experiment"], job.output["runs"])


def train_dense(job: Job) -> None:
    """Round 0: the dense network trained from θ0."""
    from lottery import steps

    steps.train_dense(init=job.input["init"], outputs=job.output, **job.data())


def train_ticket(job: Job) -> None:
    """One pruning round: prune round k-1's network, rewind to θ0, train."""
    from lottery import steps

    steps.train_ticket_round(
        previous_weights=job.input["previous_weights"],
        previous_mask=job.input["previous_mask"],
        init=job.input["init"],
        ticket=job.network,
        outputs=job.output,
        **job.data(),
    )


def train_control(job: Job) -> None:
    """A control variant (``params["variant"]``) of a ticket round, with what the round left."""
    from lottery import steps

    steps.train_control(
        variant=job.params["variant"],
        inputs=job.input,
        ticket=job.network,
        wildcards=job.wildcards,
        outputs=job.output,
        **job.data(),
    )


def train_instability_copy(job: Job) -> None:
    """A copy of a network for the instability analysis (``params["variant"]``, ``params["copy"]``)."""
    from lottery import steps

    network = job.params.get("network")
    steps.train_instability_copy(
        variant=job.params["variant"],
        inputs=job.input,
        ticket=None if network is None else network_from_params(network),
        iteration=int(job.params["iteration"]),
        copy=job.params["twin"],
        outputs=job.output,
        **job.data(),
    )


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
    from lottery import provenance

    provenance.write_replicate_provenance(
        job.wildcards["replicate"], job.input["provenance"], job.output["provenance"]
    )


def replicate_test_curves(job: Job) -> None:
    from lottery import paper

    networks = list(zip(job.input["metrics"], job.input["curves"], strict=True))
    paper.write_replicate_curves(networks, job.output["curves"])


def train_rewind_point(job: Job) -> None:
    """θk: the dense network after k iterations."""
    from lottery import steps

    steps.rewind_point(
        init=job.input["init"],
        iteration=int(job.wildcards["iteration"]),
        out=job.output["theta"],
        **job.data(),
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
    "rewind_point": train_rewind_point,
    "train_instability_copy": train_instability_copy,
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


def describe(snakemake: Any, **params: Any) -> dict[str, Any]:
    """What a job needs from the ``snakemake`` object, as plain JSON values (the fields of
    :class:`Job`); ``params`` adds to the rule's params."""
    description = {
        "input": dict(snakemake.input.items()),
        "output": dict(snakemake.output.items()),
        "params": dict(snakemake.params.items()) | params,
        "wildcards": dict(snakemake.wildcards.items()),
        "log": list(snakemake.log),
        "threads": int(snakemake.threads),
    }
    try:
        return json.loads(json.dumps(description))
    except TypeError as error:
        message = f"rule {snakemake.rule}: a job's files and params must be plain values: {error}"
        raise TypeError(message) from None


def run_script(name: str, snakemake: Any, **params: Any) -> None:
    """A rule's script: run the job ``name`` in this process (``params`` add to the rule's params).
    An :class:`~lottery.logs.Explained` failure exits with its message alone (it is in the log too)."""
    description = describe(snakemake, **params)
    try:
        run(name, description)
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
    {"train_dense", "train_ticket", "train_control", "rewind_point", "train_instability_copy"}
)


def uses_torch(name: str, job: Job) -> bool:
    """Whether the job ``name`` imports PyTorch (then :meth:`Job.start` pins its threads)."""
    if name in WITHOUT_TORCH:
        return False
    if name not in TRAINING:
        return True
    try:
        backend = job.hparams.backend
    except (KeyError, TypeError, ValueError):  # the job itself says what is wrong, in its log
        return True
    return backend != "native"


def run(name: str, description: Mapping[str, Any]) -> None:
    """Run the job ``name`` (a key of :data:`JOBS`) from its description (see :func:`describe`)."""
    if name not in JOBS:
        raise ValueError(f"unknown job {name!r}: expected one of {sorted(JOBS)}")
    job = Job(**description)
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
