"""The warm worker: training jobs forked from one process that has imported PyTorch already.

Every training job of a run is its own Snakemake job, and so its own Python process, and ``import
torch`` is seconds of each (BENCHMARKS.md: what the worker saves). A training job's script
therefore hands its job (:mod:`lottery.jobs`) to a worker that imported PyTorch and the package once:
the worker forks one child per job, and the child runs it exactly as the script would - the same
function, threads, files, log, working directory, environment, stdout and stderr (passed over the
socket) - while the script waits for its result. Results are bitwise those of a job run in its own
process (tested).

- The first job starts the worker (``python -m lottery.worker ADDRESS [IDLE_SECONDS]``, in its own
  session); it exits after :data:`IDLE_SECONDS` without jobs, removing its socket, lock and log. It
  listens on a Unix socket in a folder only its user can open (``$XDG_RUNTIME_DIR`` or
  ``$TMPDIR``, ``lottery-worker-<uid>/``; a symbolic link there is refused), named after the Python,
  the package's source files and the environment of imports: edited code gets a fresh worker. Both
  ends check that the other runs as the same user (``SO_PEERCRED``); a worker that does not take a
  job over within :data:`HANDSHAKE_TIMEOUT` is passed by (the job runs in its own process).
- The child runs the job with the script's umask, CPU affinity and niceness, not the worker's.
- A job whose script dies (Snakemake cancels it) is stopped: its child sees the socket close and
  exits through its ``finally`` blocks, so no half-written file stays.
- Jobs run in their own process, as before, where ``LOTTERY_WORKER=0``, inside a SLURM job (each
  has its own allocation; a worker would not outlive it), where fork or Unix sockets are missing, or
  where the worker cannot start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lottery.logs import Explained

IDLE_SECONDS = 30.0
START_TIMEOUT = 120.0
HANDSHAKE_TIMEOUT = 30.0  # seconds for a running worker to take a job over
ENVIRONMENT = "LOTTERY_WORKER"
# environment variables read when the worker imports Python modules and PyTorch's libraries: a
# worker serves only jobs that share them
IMPORT_ENVIRONMENT = ("PYTHONPATH", "LD_", "OMP_", "MKL_", "KMP_", "GOMP_", "TORCH_", "PYTORCH_", "CUDA_")
_HEADER = struct.Struct("!I")


class WorkerJobError(RuntimeError):
    """A job failed in the worker; its traceback went to the job's stderr."""


class ExplainedWorkerJobError(Explained, WorkerJobError):
    """A job failed in the worker with an :class:`~lottery.logs.Explained` error: its message alone."""


def describe(snakemake: Any, **params: Any) -> dict[str, Any]:
    """What a job needs from the ``snakemake`` object, as plain JSON values (see ``jobs.Job``);
    ``params`` adds to the rule's params (e.g. from the config)."""
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


def run_job(name: str, snakemake: Any, **params: Any) -> None:
    """Run the job ``name`` of :mod:`lottery.jobs` for a rule's script: in the warm worker where it
    can run, in this process otherwise. ``params`` adds to the rule's params (see :func:`describe`)."""
    description = describe(snakemake, **params)
    address = worker_address()
    try:
        if address is not None and run_in_worker(address, name, description):
            return
        from lottery import jobs

        jobs.run(name, description)
    except Explained as error:
        sys.exit(f"job {name} failed: {error}")  # its message says it all (and is in the log): no traceback


def worker_address() -> Path | None:
    """The worker's socket for this Python, package source and environment; None where jobs run in
    their own process (see the module's docstring)."""
    if os.environ.get(ENVIRONMENT, "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    if "SLURM_JOB_ID" in os.environ or not hasattr(os, "fork") or not hasattr(socket, "SO_PEERCRED"):
        return None
    folder = (
        Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"lottery-worker-{os.getuid()}"
    )
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        status = os.lstat(folder)  # the folder itself: a symbolic link put there by someone is refused
    except OSError:
        return None
    if not stat.S_ISDIR(status.st_mode) or status.st_uid != os.getuid() or status.st_mode & 0o077:
        return None  # a link, someone else's folder, or open to others: do not trust its sockets
    address = folder / f"{worker_key()}.sock"
    return address if len(str(address)) < 100 else None  # Unix socket paths are short


def worker_key() -> str:
    """A digest of what a worker's imported code depends on: the Python, this package's files (their
    names and contents: an edit that keeps a file's size and time still gets a fresh worker) and the
    environment read at import (module paths, PyTorch's and its libraries' settings)."""
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{sys.executable}\n{sys.version}\n{package}\n".encode())
    for path in sorted(package.glob("*.py")):
        digest.update(f"{path.name}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    for key in sorted(k for k in os.environ if k.startswith(IMPORT_ENVIRONMENT)):
        digest.update(f"{key}={os.environ[key]}\n".encode())
    return digest.hexdigest()[:20]


def run_in_worker(address: Path, name: str, description: Mapping[str, Any]) -> bool:
    """Run a job in the worker at ``address`` (started if need be). False if the job could not be
    handed over - nothing ran, run it here; raises WorkerJobError if it failed there."""
    connection = _connect(address) or _start_and_connect(address)
    if connection is None:
        return False
    request = {
        "job": name,
        "description": description,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "process": process_state(),
    }
    with connection:
        try:
            body = json.dumps(request).encode()
            sys.stdout.flush()
            sys.stderr.flush()
            connection.settimeout(HANDSHAKE_TIMEOUT)  # a hung worker: run the job here instead
            socket.send_fds(connection, [_HEADER.pack(len(body))], [1, 2])  # our stdout, stderr
            connection.sendall(body)
            started = _receive(connection)
            connection.settimeout(None)
        except (OSError, ConnectionError):
            return False  # the worker was closing or did not answer: the job never started
        if "error" in started:  # the child could not take the job over (e.g. no working directory)
            raise WorkerJobError(f"job {name} could not start in the warm worker: {started['error']}")
        try:
            result = _receive(connection)
        except ConnectionError:
            raise WorkerJobError(
                f"job {name} died in the warm worker (process {started.get('started')}) without a result"
            ) from None
    if "error" in result:
        if result.get("explained"):
            raise ExplainedWorkerJobError(result["error"])
        raise WorkerJobError(f"job {name} failed in the warm worker: {result['error']} (traceback above)")
    return True


_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


def peer_uid(connection: socket.socket) -> int:
    """The user id of the process at the other end of a Unix socket (SO_PEERCRED)."""
    raw = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size)
    return _CREDENTIALS.unpack(raw)[1]


def process_state() -> dict[str, Any]:
    """What a process inherits besides its environment and that a job must run with: its umask, its
    CPUs and its niceness (the worker's child takes these from the job's script, not the worker)."""
    mask = os.umask(0)
    os.umask(mask)
    return {
        "umask": mask,
        "cpus": sorted(os.sched_getaffinity(0)),
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
    }


def apply_process_state(state: Mapping[str, Any]) -> None:
    os.umask(state["umask"])
    os.sched_setaffinity(0, state["cpus"])
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if state["nice"] != current:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, state["nice"])
        except PermissionError:  # only root may lower it: the job runs no less nice than asked
            os.setpriority(os.PRIO_PROCESS, 0, max(current, state["nice"]))


def _connect(address: Path) -> socket.socket | None:
    """A connection to the worker at ``address``, if one listens there and runs as this user."""
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(str(address))
        if peer_uid(connection) != os.getuid():
            raise PermissionError(f"{address} is served by another user")
    except OSError:
        connection.close()
        return None
    return connection


def _start_and_connect(address: Path) -> socket.socket | None:
    """Start a worker and wait until it listens; None if it exits first (another worker holds the
    address, or it failed) or takes longer than START_TIMEOUT."""
    process = subprocess.Popen(
        [sys.executable, "-m", "lottery.worker", str(address), str(IDLE_SECONDS)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not a child of this job: it serves the jobs after it
        cwd="/",  # "-m" puts the working directory on sys.path: import the package, not a folder here
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        connection = _connect(address)
        if connection is not None:
            return connection
        if process.poll() is not None:
            return _connect(address)
        time.sleep(0.02)
    return None


def _send(connection: socket.socket, message: Mapping[str, Any]) -> None:
    body = json.dumps(message).encode()
    connection.sendall(_HEADER.pack(len(body)) + body)


def _receive_exactly(connection: socket.socket, size: int, start: bytes = b"") -> bytes:
    data = bytearray(start)
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the other end closed the connection")
        data += chunk
    return bytes(data)


def _receive(connection: socket.socket) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_receive_exactly(connection, _HEADER.size))
    return json.loads(_receive_exactly(connection, size))


def serve(address: Path, idle_seconds: float = IDLE_SECONDS) -> None:
    """The worker: import the jobs (and so PyTorch) once, then fork a child for every connection;
    exit after ``idle_seconds`` with neither connections nor children."""
    lock = address.with_suffix(".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another worker serves this address
    log_file = address.with_suffix(".log").open("w")  # this worker's life only
    logging.basicConfig(stream=log_file, level=logging.INFO, format="%(asctime)s worker %(message)s")
    from lottery import jobs  # noqa: F401  (the point of the worker: imported before the first fork)

    address.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(address))
    listener.listen(64)
    logging.info("pid %d listening on %s", os.getpid(), address)
    children: set[int] = set()
    idle_since = time.monotonic()
    try:
        while True:
            ready, _, _ = select.select([listener], [], [], 1.0)
            children = {pid for pid in children if os.waitpid(pid, os.WNOHANG) == (0, 0)}
            if ready:
                connection, _ = listener.accept()
                if peer_uid(connection) != os.getuid():  # only this user's jobs
                    connection.close()
                    continue
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    lock.close()
                    log_file.close()
                    os._exit(_run_child(connection))
                connection.close()
                children.add(pid)
                logging.info("job process %d", pid)
            if ready or children:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_seconds:
                break
    finally:
        address.unlink(missing_ok=True)
        listener.close()
        logging.info("pid %d idle for %.0f s: exiting", os.getpid(), idle_seconds)
        logging.shutdown()
        for leftover in (address.with_suffix(".log"), address.with_suffix(".lock")):
            leftover.unlink(missing_ok=True)  # held until now: the next worker makes its own


def _run_child(connection: socket.socket) -> int:
    """One job, in a forked child: take over the job's stdout/stderr, directory and environment,
    run it, report. Stopped (through its ``finally`` blocks) if the job's script goes away."""
    logging.getLogger().handlers.clear()  # the worker's own log is not the job's
    finished = threading.Event()

    def terminate(signum, frame):
        if not finished.is_set():
            raise SystemExit(128 + signum)

    def exit_with_client():
        with contextlib.suppress(OSError):
            connection.recv(1)  # returns when the script closes its end (or dies)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    code, explained = 1, False
    try:
        header, fds, _, _ = socket.recv_fds(connection, _HEADER.size, 2)
        (size,) = _HEADER.unpack(_receive_exactly(connection, _HEADER.size, header))
        request = json.loads(_receive_exactly(connection, size))
        for target, fd in zip((1, 2), fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        apply_process_state(request["process"])
        signal.signal(signal.SIGTERM, terminate)
        _send(connection, {"started": os.getpid()})
        threading.Thread(target=exit_with_client, daemon=True).start()
        from lottery import jobs

        jobs.run(request["job"], request["description"])
        code = 0
    except BaseException as error:  # report everything, as the job's own process would
        explained = isinstance(error, Explained)
        if not explained:  # an explained failure's message is printed by the script
            traceback.print_exc()
        message = f"{type(error).__name__}: {error}"
    finally:
        finished.set()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    with contextlib.suppress(OSError):  # the script may be gone
        _send(connection, {"ok": True} if code == 0 else {"error": message, "explained": explained})
    return code


if __name__ == "__main__":
    serve(Path(sys.argv[1]), *map(float, sys.argv[2:3]))
