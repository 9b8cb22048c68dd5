"""The results layout, one owner: every folder and file of an experiment under ``results/<experiment>/``
is named here, and the workflow (``common.smk``), the experiment (:mod:`lottery.experiment`), the
control variants (:mod:`lottery.variants`), the replicates' records and the analyses ask it::

    <replicate>/init.safetensors                     θ0
    <replicate>/theta-<k>.safetensors                the dense network after k iterations (rewinding)
    <replicate>/reinit-init[-draw-<d>].safetensors   the reinit control's weights, per draw
    <replicate>/dense/                               round 0: a network's files and its mask
    <replicate>/<schedule>/<folder>/round-<k>/       round k: ``ticket`` or a control's folder
    <replicate>/<schedule>/instability/<variant>/k-<k>/round-<r>/copy-<a|b>/   the instability copies
    <replicate>/pai/<method>/<check>/level-<k>/      pruning at initialisation and its sanity checks
    <replicate>/summary/                             the replicate in small committed files
    data/, analysis/, figures/, benchmarks/          the split, the report's tables and figures, timings

A network's folder holds :data:`NETWORK_FILES` (and :data:`MASK`). Every function returns a path
relative to the experiment's folder (``results/<experiment>``; give ``root`` to prefix it) and takes
strings or numbers, so that the rules build their patterns with wildcards (``"{replicate}"``).
No PyTorch or pandas: the workflow reads this when it builds the DAG.
"""

from __future__ import annotations

# A network's files: its final weights, metrics.json (reproducible to the byte), the curve and
# provenance.json (which machine, code and time made it), by the training rules' output names.
WEIGHTS, METRICS, CURVE, PROVENANCE = "final.safetensors", "metrics.json", "curve.csv", "provenance.json"
NETWORK_FILES = {"weights": WEIGHTS, "metrics": METRICS, "curve": CURVE, "provenance": PROVENANCE}
MASK = "mask.safetensors"
# The experiment's folders besides its replicates'
DATA, ANALYSIS, FIGURES, BENCHMARKS = "data", "analysis", "figures", "benchmarks"
SPLIT = f"{DATA}/split.safetensors"
RUNS_TABLE, SUMMARY_MARKDOWN = "runs.csv", "summary.md"
# A replicate's summary: its record.json and the files it describes (lottery.record)
SUMMARY, RECORD = "summary", "record.json"
RUNS, TEST_CURVES = "runs.csv", "test_curves.csv"
INSTABILITY, INSTABILITY_PATH = "instability.csv", "instability_path.csv"
SUPERMASKS, MASKS = "supermasks.csv", "masks.safetensors"
DENSE, TICKET = "dense", "ticket"  # the folders of round 0 and of the tickets


def _at(root: str | None, path: str) -> str:
    return path if root is None else f"{root}/{path}"


def init_file(replicate: str, root: str | None = None) -> str:
    """θ0 of a replicate."""
    return _at(root, f"{replicate}/init.safetensors")


def theta_file(replicate: str, k: int | str, root: str | None = None) -> str:
    """The dense network's weights after ``k`` iterations (θk, the rewind point)."""
    return _at(root, f"{replicate}/theta-{k}.safetensors")


def draw_folder(folder: str, draw: int | str) -> str:
    """The folder of a drawn variant's ``draw``-th network: ``<folder>`` for the first,
    ``<folder>-draw-<d>`` for the others (``draw`` may be the rules' ``"{draw}"`` wildcard)."""
    return folder if draw == 1 else f"{folder}-draw-{draw}"


def reinit_init_file(replicate: str, draw: int | str = 1, root: str | None = None) -> str:
    """The reinit control's weights of a draw (one per replicate and draw, for every round)."""
    return _at(root, f"{replicate}/{draw_folder('reinit-init', draw)}.safetensors")


def dense_dir(replicate: str, root: str | None = None) -> str:
    """Round 0: the dense network."""
    return _at(root, f"{replicate}/{DENSE}")


def round_dir(replicate: str, schedule: str, folder: str, round_: int | str, root: str | None = None) -> str:
    """Round ``round_`` of a schedule: the ticket (``folder`` ``ticket``) or a control's network."""
    return _at(root, f"{replicate}/{schedule}/{folder}/round-{round_}")


def ticket_dir(replicate: str, schedule: str, round_: int | str, root: str | None = None) -> str:
    return round_dir(replicate, schedule, TICKET, round_, root)


def instability_dir(
    replicate: str,
    schedule: str,
    variant: str,
    round_: int | str,
    k: int | str,
    copy: str,
    root: str | None = None,
) -> str:
    """A copy the instability analysis trains of a network of ``schedule`` (the reference schedule)."""
    return _at(root, f"{replicate}/{schedule}/instability/{variant}/k-{k}/round-{round_}/copy-{copy}")


def pai_dir(replicate: str, method: str, check: str, level: int | str, root: str | None = None) -> str:
    """A network of pruning at initialisation: ``method``'s mask of θ0 at the Pm of the reference
    schedule's round ``level`` (``check`` ``found``), or one of its sanity checks (``shuffled``,
    ``reinit``, ``inverted``; method ``ticket``: the iterative ticket's)."""
    return _at(root, f"{replicate}/pai/{method}/{check}/level-{level}")


def summary_dir(replicate: str, root: str | None = None) -> str:
    """A replicate's summary: the small files that are committed, from which the experiment's tables
    are built (its checkpoints need not be kept)."""
    return _at(root, f"{replicate}/{SUMMARY}")


def file(folder: str, name: str) -> str:
    """A file of a folder: ``file(dense_dir(r), METRICS)``."""
    return f"{folder}/{name}"


def network_files(folder: str) -> dict[str, str]:
    """The files every training job writes into its network's folder, by output name."""
    return {key: file(folder, name) for key, name in NETWORK_FILES.items()}


def mask_file(folder: str) -> str:
    return file(folder, MASK)


def mask_key(schedule: str, round_: int | str) -> str:
    """A ticket mask's key in a replicate's packed masks (``summary/masks.safetensors``)."""
    return f"{schedule}/round-{round_}"


def is_instability_copy(folder: str) -> bool:
    """Whether a network's folder is a copy of :func:`instability_dir` (not a network of the runs table)."""
    return "/instability/" in folder
