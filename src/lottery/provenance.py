"""Which machine, code and time made a network (its ``provenance.json``, beside ``metrics.json``) and
a replicate (``seed-<s>/summary/provenance.json``, from its networks').

Kept apart from ``metrics.json`` and ``runs.csv``, which are reproducible to the byte: a provenance
file holds timings and names the machine. The commit is the workflow's own git checkout, which
``common.smk`` hands every job in ``$LOTTERY_CHECKOUT_COMMIT`` (an environment variable, not a
rule's params, so that a new commit does not make Snakemake rerun anything). ``$LOTTERY_COMMIT``,
set by the user (e.g. where the workflow runs from an archive, outside git), never replaces it: it
is recorded beside it as ``commit_override``. No PyTorch at import.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lottery.io import read_json, read_json_with_digest, write_json_with_digest
from lottery.text import markdown_cell

CHECKOUT_VARIABLE = "LOTTERY_CHECKOUT_COMMIT"  # set by common.smk from the workflow's checkout
COMMIT_VARIABLE = "LOTTERY_COMMIT"  # the user's own name for the code (recorded as an override)
MAX_OVERRIDE = 100  # characters of $LOTTERY_COMMIT kept
# The instruction-set extensions that decide which kernels a CPU runs (and so its float rounding).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "neon", "asimd", "sve")


def cpu() -> dict[str, Any]:
    """The CPU's model name, family and model numbers and instruction-set extensions (Linux), else
    the platform's processor string."""
    info: dict[str, Any] = {"model_name": platform.processor() or platform.machine(), "isa": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    info["model_name"] = fields.get("model name", info["model_name"])
    for key in ("cpu family", "model"):
        if key in fields:
            info[key.replace(" ", "_")] = fields[key]
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    info["isa"] = [flag for flag in ISA_FLAGS if flag in flags]
    return info


def machine_label(machine: Mapping[str, Any]) -> str:
    """One line naming a CPU: model name, family/model where known, and its extensions."""
    name = machine.get("model_name", "unknown")
    if "cpu_family" in machine:
        name += f" (family {machine['cpu_family']}, model {machine.get('model', '?')})"
    isa = machine.get("isa") or []
    return f"{name}, {'/'.join(isa)}" if isa else name


def git_commit(directory: str | os.PathLike) -> str:
    """The checkout's commit, ``-dirty`` when tracked files differ from it; "unknown" outside git."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30
        )
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def commit() -> dict[str, str]:
    """The commit that made a network: the checkout's, and ``commit_override`` where the user set
    ``$LOTTERY_COMMIT`` to something else (on one line, at most :data:`MAX_OVERRIDE` characters)."""
    checkout = os.environ.get(CHECKOUT_VARIABLE) or "unknown"
    override = " ".join(os.environ.get(COMMIT_VARIABLE, "").split())[:MAX_OVERRIDE]
    if override and override != checkout:
        return {"commit": checkout, "commit_override": override}
    return {"commit": checkout}


def commit_label(record: Mapping[str, Any]) -> str:
    """A network's commit as the summary names it: the checkout's, with the user's override beside it."""
    override = record.get("commit_override")
    return f"{record['commit']} (LOTTERY_COMMIT={override})" if override else record["commit"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def installed_torch_version() -> str | None:
    """PyTorch's ``__version__`` (e.g. ``2.14.1+cu130``) read from its ``version.py``, without
    importing it (seconds); None where it is not installed."""
    import re
    from importlib.util import find_spec

    spec = find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        version = Path(folder) / "version.py"
        if version.is_file():
            found = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", version.read_text(), re.MULTILINE)
            if found:
                return found[1]
    return None


def network_provenance(
    started: str,
    seconds: float,
    paths: Mapping[str, str],
    kernel_flavour: str | None = None,
    backend: str = "native",
) -> dict[str, Any]:
    """What made one network: the commit, PyTorch (installed; imported only by the torch backend),
    the CPU, the trainer (``backend``) and its path per layer, the build flavour of the compiled
    kernels (``$LOTTERY_MARCH``; None where none ran), when and how long its training (with its
    evaluations) ran."""
    import sys

    import numpy

    torch = sys.modules.get("torch")  # the native trainer runs on one thread, without PyTorch
    return {
        **commit(),
        "torch": torch.__version__ if torch else installed_torch_version(),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": cpu(),
        "threads": torch.get_num_threads() if backend == "torch" and torch else 1,
        "backend": backend,
        "paths": dict(paths),
        "kernel_flavour": kernel_flavour,
        "started": started,
        "finished": now(),
        "seconds": round(seconds, 3),
    }


class Stopwatch:
    """The start time and the seconds since, for :func:`network_provenance`."""

    def __init__(self) -> None:
        self.started, self._start = now(), time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start


def replicate_provenance(replicate: str, files: Sequence[str | os.PathLike]) -> dict[str, Any]:
    """A replicate's provenance from its networks' files: the machines, commits and PyTorch versions
    that trained them (with how many networks each), the trainer's paths per layer, the compiled
    kernels' build flavours (networks per flavour, of those that ran the kernels), the training
    time summed over networks (one core each) and the span from the first start to the last end."""
    records = [read_json(path) for path in files]
    machines: dict[str, int] = Counter(machine_label(r["machine"]) for r in records)
    paths: dict[str, Counter] = {}
    for r in records:
        for layer, path in r.get("paths", {}).items():
            paths.setdefault(layer.removesuffix(".weight"), Counter())[path] += 1
    flavours = Counter(r["kernel_flavour"] for r in records if r.get("kernel_flavour"))
    started = min((r["started"] for r in records), default=None)
    finished = max((r["finished"] for r in records), default=None)
    span = None
    if started and finished:
        span = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return {
        "replicate": replicate,
        "networks": len(records),
        "machines": dict(machines),
        "commits": dict(Counter(commit_label(r) for r in records)),
        "torch": dict(Counter(r["torch"] for r in records)),
        "paths": {layer: dict(sorted(c.items())) for layer, c in paths.items()},
        "kernel_flavours": dict(sorted(flavours.items())),
        "training_seconds": round(sum(r["seconds"] for r in records), 1),
        "started": started,
        "finished": finished,
        "span_seconds": span,
    }


def write_replicate_provenance(
    replicate: str, files: Sequence[str | os.PathLike], out: str | os.PathLike
) -> None:
    """A replicate's provenance.json, with a digest of its content (its times differ from run to run,
    so its record cannot keep a digest of its bytes: lottery.record)."""
    write_json_with_digest(out, replicate_provenance(replicate, files))


def read_replicate_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """A replicate's provenance.json as written; an altered one is refused, naming it."""
    return read_json_with_digest(path)


def provenance_markdown(summaries: Sequence[Mapping[str, Any]]) -> str:
    """The summary's table: which machines, commits and PyTorch made each replicate (with how many
    networks each, where there are several). Its times stay in the provenance files, so that the
    summary is the same for the same networks."""

    def cell(counts: Mapping[str, int]) -> str:
        return "; ".join(
            markdown_cell(name) if len(counts) == 1 else f"{markdown_cell(name)} ({int(n)})"
            for name, n in counts.items()
        )

    lines = ["| replicate | networks | machine | commit | torch |", "|---|---|---|---|---|"]
    for p in summaries:
        lines.append(
            f"| {markdown_cell(p['replicate'])} | {int(p['networks'])} | {cell(p['machines'])} | "
            f"{cell(p['commits'])} | {cell(p['torch'])} |"
        )
    return "\n".join(lines) + "\n"
