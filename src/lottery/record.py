"""A replicate's record: ``seed-<s>/summary/record.json``, the description of the experiment its
networks were made with and a digest of every file of its summary.

A replicate's summary (its runs table, provenance, test curves, ticket-analysis tables and packed
masks) is committed; its checkpoints need not be. A replicate whose summary is here and whose
networks are not is a *record*: no rule makes it again, and the experiment's tables are built from
it. So that a record never stands for an experiment it was not made with, ``record.json`` holds

- ``description``: the typed pieces that decide its networks (:func:`description`: the experiment's
  name, seeds, data checksums and split, model, training hyperparameters, pruning method and
  schedules, control variants and draws, and the instability analysis's copies where it trains
  them), in the plain form of the rules' params with every field given, defaults too (so that a
  record says what it was made with even if a default changes);
- ``files``: the sha256 and size of every other file of the summary;
- ``runs``: the number of rows of its runs table.

Before any job runs, :func:`check_records` compares each record with the config: a record whose
description differs is refused with every differing key, the record's value and the config's; a
file changed, cut or missing since the record was made, rows of another experiment or seed, or a
row count other than the description implies are refused naming the file. Settings that change no
network (the statistics' and the report's options, the analysis switches that only read a
replicate's summary) are not part of the description; an analysis switched on whose summary file
the record lacks is refused, naming the switch. No PyTorch or pandas: the workflow reads this when
it builds its DAG.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lottery import layout, variants
from lottery.desc import plain
from lottery.io import DIGEST_KEY, json_problem, read_json, write_json, write_json_with_digest
from lottery.logs import Explained, log, step

if TYPE_CHECKING:
    from lottery.experiment import Experiment

PathLike = str | os.PathLike

RECORD = layout.RECORD
FORMAT = 1

# The files of a replicate's summary besides record.json, and what makes each (the config's switch
# named when a record lacks one).
RUNS, PROVENANCE, TEST_CURVES = layout.RUNS, layout.PROVENANCE, layout.TEST_CURVES
INSTABILITY, INSTABILITY_PATH = layout.INSTABILITY, layout.INSTABILITY_PATH
SUPERMASKS, MASKS = layout.SUPERMASKS, layout.MASKS
MADE_BY = {
    TEST_CURVES: "analysis.paper with training.test_every",
    INSTABILITY: "analysis.instability.enabled",
    INSTABILITY_PATH: "analysis.instability.enabled",
    SUPERMASKS: "analysis.supermasks.enabled",
    MASKS: "analysis.mask_overlap.enabled or analysis.pixel_map.enabled",
}


class RecordError(Explained, ValueError):
    """A replicate's record does not match the config, or its summary was changed since it was made."""


def summary_files(experiment: Experiment, paper: bool) -> list[str]:
    """The files of a replicate's summary that this config makes and reads (record.json aside)."""
    files = [RUNS, PROVENANCE]
    if paper and experiment.curve_rounds():
        files.append(TEST_CURVES)
    wanted = set(experiment.ticket_analyses) if experiment.reference_schedule is not None else set()
    if "instability" in wanted:
        files += [INSTABILITY, INSTABILITY_PATH]
    if "supermasks" in wanted:
        files.append(SUPERMASKS)
    if wanted & {"mask_overlap", "pixel_map"}:
        files.append(MASKS)
    return files


def description(experiment: Experiment, replicate: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """What decides a replicate's networks, keyed like the config (``data`` is its ``data:``
    section): two replicates with equal descriptions are the same networks."""
    from lottery import datasets

    r = experiment.replicates[replicate]
    seeds = {
        "init": r.init_seed,
        "data_order": r.data_order_seed,
        "split": r.split_seed,
        "controls_offset": r.controls_offset,
    }
    training = plain(experiment.training)
    rounds = experiment.test_curve_rounds
    training["test_curve_rounds"] = None if rounds is None else list(rounds)
    drawn = {v.name for v in variants.REGISTRY.values() if v.drawn}
    out: dict[str, Any] = {
        "experiment": experiment.name,
        "seeds": seeds,
        "data": datasets.describe(data),  # MNIST's: the validation size and the content sha256s
        "model": plain(experiment.architecture),
        "training": training,
        "pruning": {
            "method": experiment.method,
            "schedules": {name: plain(s) for name, s in sorted(experiment.schedules.items())},
        },
        "variants": {
            "controls": list(experiment.controls),
            "rounds": experiment.control_rounds_mode,
            "draws": {
                name: n
                for name, n in sorted(experiment.draws.items())
                if name in drawn and name in experiment.controls
            },
        },
    }
    if "instability" in experiment.ticket_analyses:  # the only analysis that trains networks
        out["analysis"] = {"instability": plain(experiment.instability)}
    if experiment.pai.methods:  # pruning at initialisation: its networks
        out["pai"] = plain(experiment.pai)
    return out


# Files whose bytes differ from run to run (times): they carry a digest of their own content
# (lottery.io.write_json_with_digest), which their record names instead of a digest of their bytes.
EMBEDDED = frozenset({PROVENANCE})


def file_digest(path: PathLike) -> dict[str, Any]:
    """The sha256 and size of a summary file's bytes, or ``{"digest": "embedded"}`` for one of
    :data:`EMBEDDED` (checked against its own digest)."""
    if Path(path).name in EMBEDDED:
        problem = json_problem(path)
        if problem:
            raise RecordError(problem)
        return {"digest": "embedded"}
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size}


def runs_rows(path: PathLike) -> list[dict[str, str]]:
    """The rows of a replicate's runs table; a cut or malformed table is a RecordError naming it."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        rows = list(reader)
    if not {"experiment", "seed"} <= set(header):
        raise RecordError(f"{path}: not a runs table (no experiment and seed columns)")
    for i, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise RecordError(f"{path}: line {i} has {len(row) - (None in row)} cells, not {len(header)}")
    return rows


def rows_problems(path: PathLike, experiment: str, seed: int, networks: int) -> list[str]:
    """How a replicate's runs table departs from its folder and description: rows of another
    experiment or seed, or another number of rows than the networks the description implies."""
    problems = []
    rows = runs_rows(path)
    foreign = sorted({(r["experiment"], r["seed"]) for r in rows} - {(experiment, str(seed))})
    if foreign:
        shown = ", ".join(f"experiment {e} seed {s}" for e, s in foreign[:3])
        problems.append(f"{path} has rows of {shown}, not of experiment {experiment} seed {seed}")
    if len(rows) != networks:
        problems.append(f"{path} has {len(rows)} rows, but the experiment trains {networks} networks a seed")
    return problems


@step
def write_record(
    out: PathLike,
    replicate: str,
    described: Mapping[str, Any],
    files: Sequence[PathLike],
    networks: int,
    adopted: Mapping[str, str] | None = None,
) -> None:
    """``record.json`` of a replicate's summary: its description and the digest of each of ``files``
    (the summary's other files, in that folder), after checking its runs table's rows; ``adopted``
    says how a summary made before records was described after the fact (:func:`adopt`)."""
    folder = Path(out).parent
    paths = [Path(p) for p in files]
    outside = [str(p) for p in paths if p.parent != folder]
    if outside:
        raise ValueError(f"a record describes files of its own folder {folder}, not {outside}")
    runs = folder / RUNS
    problems = rows_problems(runs, described["experiment"], described["seeds"]["init"], networks)
    if problems:
        raise RecordError("; ".join(problems))
    record = {
        "format": FORMAT,
        "replicate": replicate,
        "description": described,
        "files": {p.name: file_digest(p) for p in sorted(paths)},
        "runs": networks,
    }
    if adopted is not None:
        record["adopted"] = dict(adopted)
    write_json(out, record)
    log.info("%s: described, %d files digested", out, len(paths))


def read_record(path: PathLike) -> dict[str, Any]:
    try:
        record = read_json(path)
    except (OSError, ValueError) as e:
        raise RecordError(f"{path}: cannot be read ({e})") from e
    if not isinstance(record, dict) or not {"description", "files"} <= set(record):
        raise RecordError(f"{path}: not a replicate's record (no description and files)")
    return record


def file_problem(record: Mapping[str, Any], folder: Path, name: str) -> str | None:
    """Why a summary file does not match its record, or None."""
    path = folder / name
    expected = record["files"].get(name)
    if expected is None:
        return f"{path} is not one of the files its record describes"
    if not path.is_file():
        return f"{path} is missing (its record describes it)"
    if name in EMBEDDED:
        return json_problem(path)
    actual = file_digest(path)
    if actual != expected:
        return (
            f"{path} was changed since its record was made (sha256 {actual['sha256'][:12]}..., "
            f"{actual['bytes']} bytes; the record's {expected['sha256'][:12]}..., {expected['bytes']} bytes)"
        )
    return None


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def differences(recorded: Mapping[str, Any], configured: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(key, the record's value, the config's) of each key where the two descriptions differ (a
    schedule or control of one side only is "(absent)" on the other). The instability analysis
    counts only where the config runs it (a record made with more analyses serves a config with
    fewer)."""
    r, c = _flat(recorded), _flat(configured)
    missing = "(absent)"
    keys = sorted(set(r) | set(c))
    if not any(k.startswith("analysis.") for k in c):
        keys = [k for k in keys if not k.startswith("analysis.")]
    return [(k, r.get(k, missing), c.get(k, missing)) for k in keys if r.get(k, missing) != c.get(k, missing)]


def _shown(value: Any) -> str:
    return value if isinstance(value, str) and value.startswith("(") else json.dumps(value)


def record_problems(
    folder: Path, configured: Mapping[str, Any], wanted: Sequence[str], networks: int
) -> tuple[list[str], list[str]]:
    """(differences from the config, damaged or missing files) of the record in ``folder``."""
    path = folder / RECORD
    if not path.exists():
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        return [], [
            f"{folder}/ holds {', '.join(present) or 'nothing'} but no {RECORD}: it is not a whole "
            "record (made before records described their experiment, or cut)"
        ]
    try:
        record = read_record(path)
    except RecordError as e:
        return [], [str(e)]
    diffs = [
        f"{key}: the record's {_shown(rec)}, the config's {_shown(conf)}"
        for key, rec, conf in differences(record["description"], configured)
    ]
    diffs += [
        f"{MADE_BY.get(name, name)}: the record has no {name} (it was made without), the config reads it"
        for name in wanted
        if name not in record["files"]
    ]
    damaged = [p for name in sorted(record["files"]) if (p := file_problem(record, folder, name))]
    if not diffs and not damaged:
        seed = configured["seeds"]["init"]
        damaged += rows_problems(folder / RUNS, configured["experiment"], seed, networks)
    return diffs, damaged


def check_records(
    records: Mapping[str, PathLike],
    descriptions: Mapping[str, Mapping[str, Any]],
    wanted: Sequence[str],
    networks: Mapping[str, int],
) -> None:
    """Refuse, in one message, every record (summary folder by replicate) that differs from its
    description in the config or whose files changed since it was made; say what to do."""
    differ: dict[tuple[str, ...], list[str]] = {}
    damaged: list[str] = []
    for replicate, folder in records.items():
        diffs, broken = record_problems(Path(folder), descriptions[replicate], wanted, networks[replicate])
        if diffs:
            differ.setdefault(tuple(diffs), []).append(str(folder))
        damaged += broken
    if not differ and not damaged:
        return
    lines = []
    for diffs, folders in differ.items():
        lines.append(
            f"the record{'s' if len(folders) > 1 else ''} {', '.join(f'{f}/' for f in folders)} "
            f"{'were' if len(folders) > 1 else 'was'} made with another experiment than this config's:"
        )
        lines += [f"  {d}" for d in diffs]
    if differ:
        lines.append(
            "Restore the config's values to the record's, give this config another experiment name "
            "(experiment: ...), or delete the record's summary folder to train that replicate again "
            "with this config."
        )
    if damaged:
        lines.append("records whose summary is damaged, edited or incomplete:")
        lines += [f"  {d}" for d in damaged]
        lines.append(
            "Restore the summary's files as they were made (e.g. `git checkout -- <folder>` for a "
            "committed one), or delete the summary folder to train that replicate again."
        )
    raise RecordError("\n".join(lines))


def verify_inputs(inputs: Mapping[str, Any]) -> None:
    """Before a job reads replicates' summaries: each input file in a folder whose ``record.json``
    is among the inputs (``records``) must match that record's digest."""
    inputs = dict(inputs.items())  # also Snakemake's InputFiles
    records = inputs.get("records") or []
    if isinstance(records, (str, os.PathLike)):
        records = [records]
    by_folder = {Path(r).parent: read_record(r) for r in records}
    problems = []
    for path in _paths(inputs.values()):
        record = by_folder.get(path.parent)
        if record is not None and path.name != RECORD:
            problem = file_problem(record, path.parent, path.name)
            if problem:
                problems.append(problem)
    if problems:
        raise RecordError(
            "; ".join(problems)
            + ": restore the file as it was made, or delete its summary folder to train that replicate again"
        )


def _paths(values: Iterable[Any]) -> list[Path]:
    out = []
    for value in values:
        if isinstance(value, (str, os.PathLike)):
            out.append(Path(value))
        elif isinstance(value, Iterable):
            out += _paths(value)
    return out


def adopt(folder: PathLike, experiment: Experiment, data: Mapping[str, Any], paper: bool, commit: str) -> str:
    """Write ``record.json`` for a summary made before records described their experiment, from the
    config it was made with - after checking all that the summary itself says of it: its runs
    table's experiment, seed, row count, schedules and iteration count; its files are those the
    config reads. The record says it was adopted, at which commit, and what could not be checked.
    Returns what was written."""
    folder = Path(folder)
    replicate = folder.parent.name
    if replicate not in experiment.replicates:
        raise RecordError(f"{folder}: {replicate} is not a replicate of this config (seeds.init)")
    if (folder / RECORD).exists():
        raise RecordError(f"{folder / RECORD} exists already: a record is adopted once")
    described = description(experiment, replicate, data)
    wanted = summary_files(experiment, paper)
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        raise RecordError(f"{folder}/ lacks {missing}: it was not made with this config")
    networks = len(experiment.network_dirs(replicate))
    problems = rows_problems(folder / RUNS, experiment.name, described["seeds"]["init"], networks)
    rows = runs_rows(folder / RUNS)
    iterations = {r.get("iterations") for r in rows}
    if iterations != {str(experiment.training.iterations)}:
        problems.append(
            f"{folder / RUNS} has iterations {sorted(iterations)}, "
            f"the config {experiment.training.iterations}"
        )
    schedules = {r["schedule"] for r in rows} - {"dense"}
    if schedules != set(experiment.schedules):
        problems.append(
            f"{folder / RUNS} has schedules {sorted(schedules)}, the config {sorted(experiment.schedules)}"
        )
    if problems:
        raise RecordError("; ".join(problems))
    provenance = read_json(folder / PROVENANCE)  # older summaries' had no digest of their own
    if DIGEST_KEY not in provenance:
        write_json_with_digest(folder / PROVENANCE, provenance)
    adopted = {
        "at_commit": commit,
        "checked": "from its runs table: experiment, seed, row count, schedules, iterations; its files",
        "unchecked": "what its runs table does not hold (e.g. training.learning_rate): taken from the config",
    }
    paths = [folder / name for name in wanted]
    write_record(folder / RECORD, replicate, described, paths, networks, adopted=adopted)
    return str(folder / RECORD)
