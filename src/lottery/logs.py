"""The package's log and the timing of workflow steps; no PyTorch, so jobs that need none start fast."""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from pathlib import Path

log = logging.getLogger("lottery")


class Explained(Exception):
    """A failure whose message says what is wrong and what to do (a dataset that cannot be fetched, a
    bad config value, a gone Snakemake): a job logs and shows it without a traceback."""


def setup_logging(path: str | os.PathLike | None) -> None:
    """Send the package's log to ``path`` (a rule's ``log:`` file)."""
    handler: logging.Handler = logging.FileHandler(path, mode="w") if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    if path and sys.excepthook is sys.__excepthook__:  # a script's uncaught error goes to its log too

        def excepthook(kind, error, traceback):
            if not getattr(error, "logged", False):
                log.error("%s: %s", kind.__name__, error, exc_info=(kind, error, traceback))
            sys.__excepthook__(kind, error, traceback)

        sys.excepthook = excepthook


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process started (Linux: ``/proc``, to 10 ms), None elsewhere: what a
    job spends before its work (interpreter start, imports)."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])  # field 22
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))


def step(function):
    """Log how long a workflow step's own work took (``benchmarks/workflow_overhead.py`` reads it):
    whatever else a job's wall time holds is process start, imports and scheduling."""

    @functools.wraps(function)
    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        log.info("step %s finished in %.3f s", function.__name__, time.perf_counter() - start)
        return result

    return timed
