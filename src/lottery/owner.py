"""The Snakemake process a job works for, so that a job whose Snakemake is gone stops and writes
nothing: after a ``kill -9`` of Snakemake its running jobs would otherwise finish later and replace
what a rerun wrote, and Snakemake would then trust those stale files.

``common.smk`` names the Snakemake process in the environment (:data:`ENVIRONMENT`: ``<pid>:<start
time>``), which every job inherits on the machine where that Snakemake runs (on a SLURM node, the
Snakemake that runs the job there). :func:`check` is called before every output file is put in place
(``lottery.io``) and :func:`watch` stops a job as soon as its Snakemake is gone. No PyTorch.
"""

from __future__ import annotations

import _thread
import os
import signal
import threading
from pathlib import Path

from lottery.logs import Explained

ENVIRONMENT = "LOTTERY_SNAKEMAKE"


class OwnerGone(Explained, RuntimeError):
    """The Snakemake that started this job is no longer running."""


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks after boot; /proc/<pid>/stat field 22), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # fields after the command name, which may hold spaces


def describe(pid: int | None = None) -> str:
    """``<pid>:<start time>`` of a process (this one by default), for :data:`ENVIRONMENT`."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_time(pid) or ''}"


def alive(owner: str | None = None) -> bool:
    """Whether the process named by ``owner`` (default: the environment's) still runs; True where none
    is named (a job run by hand, or by a test)."""
    owner = os.environ.get(ENVIRONMENT) if owner is None else owner
    if not owner:
        return True
    pid_text, _, started = owner.partition(":")
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (ValueError, PermissionError):
        return True  # not ours to judge
    return not started or _start_time(pid) in (None, started)  # a new process under a reused pid: gone


def check(path: str | os.PathLike) -> None:
    """Raise :class:`OwnerGone` instead of writing ``path`` for a Snakemake that is gone."""
    if not alive():
        raise OwnerGone(
            f"the Snakemake that started this job ({os.environ[ENVIRONMENT]}) is gone: not writing {path}"
        )


def watch(interval: float = 1.0) -> threading.Event:
    """Interrupt the main thread (so the job unwinds through its ``finally`` blocks, writing nothing)
    once the job's Snakemake is gone; set the returned event to stop watching."""
    done = threading.Event()

    def run() -> None:
        while not done.wait(interval):
            if not alive():
                _thread.interrupt_main()
                return

    if os.environ.get(ENVIRONMENT):
        # interrupt_main raises only where Python handles SIGINT; a job started from a background
        # shell inherits it ignored (and the interrupt would be lost), so take it back. watch() runs
        # on the main thread, the only one that may set a handler.
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=run, daemon=True, name="lottery-owner").start()
    return done
