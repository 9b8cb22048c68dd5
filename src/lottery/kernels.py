"""The sparse path's compiled kernels (``sparse_kernels.c``): built with the system's C compiler at
first use into a per-user cache, loaded with ctypes.

Built with ``-O3 -march=<flavour> -ffp-contract=off`` and without ``-ffast-math``: vectorised for the
flavour's instruction set, every sum in a fixed order, no fused multiply-add, exp and log of the
kernels' own: the same bits from every flavour on every x86-64 CPU (``sparse_kernels.c`` says how).
The flavour is ``$LOTTERY_MARCH`` (:data:`FLAVOURS`; default ``native``, this CPU's own instruction
set); one this CPU cannot run, or an unknown one, is refused (the trainer then trains dense and
says why). The cache key covers the source, the compiler and its flags (the flavour with them) and
the CPU (model and instruction set), so a cache shared by the nodes of a cluster never hands one CPU
another's build.

Nothing is loaded that could be another user's code, or a damaged file:

- The cache folder (``$LOTTERY_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/lottery`` or ``~/.cache/lottery``)
  is created with mode 0700. It, and each file of it that is read, must be owned by the user running
  the job and not writable by group or others, and must not be a symbolic link (checked with
  ``lstat``, never followed): else it is refused. Whoever can write a loaded library runs code in
  the job (a constructor runs at ``dlopen``), so a cache shared by a cluster's nodes must be the
  job-running user's own (in a shared home or scratch, e.g. ``LOTTERY_KERNEL_CACHE=/scratch/$USER/
  lottery``): one user's cache, however well kept, is refused to every other user.
- A build is written under a temporary name and renamed into place, then its record (``<library>.sha256``:
  the sha256 and size of the library) the same way. Before loading, the library is read and checked
  against its record; a library without a record, or one that does not match it (cut short by a full
  disk or a crash, overwritten by another file), is rebuilt, and the log says why. So a damaged file
  is never mapped (which would end the job with SIGBUS), and with nothing but renames, no ``fsync``
  is needed. The digest guards against accidents: the owner-and-mode checks are what keep others' code
  out, since whoever can write a library can write its record too.
- Jobs starting side by side take a lock on the folder (``flock``) to build: one builds, the others
  wait for it and load its build. Where the file system has no locks, each builds (the builds are
  identical, and each is renamed into place whole).
- A build killed midway (``kill -9``, a node gone) leaves its temporary file behind; every load
  deletes the user's own temporary files older than :data:`STALE_SECONDS` (15 minutes, three times a
  build's time limit, so a build still running is never touched, even with the clocks of a cluster's
  nodes a few minutes apart). Process ids are not used: on a shared cache the writer may have run on
  another node.

Where no build can be used (no compiler, an unknown flavour or one this CPU cannot run, a failed
build, a refused cache, a library without a kernel), :func:`load` returns ``None`` with the reason
in :data:`unavailable_reason`; the trainer then trains every layer on the dense path and says why
in the job's log (and records the paths, all dense, in ``metrics.json``). A wrong
``$LOTTERY_MARCH`` is handled like the other settings of the environment (``$LOTTERY_CC``,
``$LOTTERY_SPARSE_KERNELS``): the job still gives the right numbers, on the dense path, and says so;
a flavour the CPU lacks is refused before it is built, so it can never end a job with SIGILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import platform
import pwd
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from lottery.io import umask
from lottery.logs import log

SOURCE = Path(__file__).with_name("sparse_kernels.c")
FLAGS = ("-O3", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared", "-std=c11", "-Wno-psabi")
MARCH_VARIABLE = "LOTTERY_MARCH"
DEFAULT_FLAVOUR = "native"
# Each build flavour (gcc's -march) and the /proc/cpuinfo flags a CPU needs to run it (each level
# needs the levels below it too, see flavour_needs): x86-64-v2 is SSE4.2 and POPCNT, v3 AVX2, FMA,
# BMI1/2, F16C, MOVBE, LZCNT ("abm"), v4 AVX-512 F, BW, CD, DQ and VL.
FLAVOURS: dict[str, tuple[str, ...]] = {
    "native": (),
    "x86-64": (),
    "x86-64-v2": ("cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"),
    "x86-64-v3": ("avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}
BUILD_TIMEOUT = 300  # seconds
STALE_SECONDS = 15 * 60  # a temporary file this old is a dead build's (builds time out at 5 minutes)
PREFIX = "sparse_kernels-"

_P = ctypes.c_void_p
_I = ctypes.c_int64
SIGNATURES = {
    "lt_gather": ([_P, _I, _P, _I, _P, _I, _P], None),
    "lt_forward": ([_I, _I, _I, _P, _P, _P, _P, _P, _I, _P, ctypes.c_int32, _P, _I], None),
    "lt_softmax_xent": ([_I, _P, _I, _P, _P, _P], ctypes.c_double),
    "lt_evaluate": ([_I, _P, _I, _P, _P], _I),
    "lt_weight_grad": ([_I, _I, _I, _P, _P, _P, _P, _I, _P, _P], None),
    "lt_input_grad": ([_I, _I, _P, _P, _P, _P, _P, _P, _I, _P], None),
    "lt_nonblank_forward": (
        [_I, _I, _I, _I, _P, _P, _P, _P, ctypes.c_float, _P, _P, _P, ctypes.c_int32, _P, _P],
        None,
    ),
    "lt_nonblank_weight_grad": (
        [_I, _I, _I, _I, _P, _P, _P, _P, ctypes.c_float, _P, _P, _P, _P, _P, _P],
        None,
    ),
    "lt_adam": ([_I, _P, _P, _P, _P] + [ctypes.c_double] * 4 + [_I], None),
    "lt_expf_array": ([_I, _P, _P], None),
    "lt_logf_array": ([_I, _P, _P], None),
    "lt_pow_test": ([ctypes.c_double, _I], ctypes.c_double),
    "lt_set_flush": ([ctypes.c_int32], ctypes.c_int32),
}

unavailable_reason: str | None = None


class Refused(Exception):
    """A cache folder or file that must not be used: its message says why and what to do."""


class Unusable(Exception):
    """A build flavour that cannot be built or run here: its message says why and what to do."""


def compiler() -> str | None:
    """The C compiler: ``$LOTTERY_CC`` if set (None if it is not found), else ``$CC``, ``cc``, ``gcc``."""
    if os.environ.get("LOTTERY_CC"):
        return shutil.which(os.environ["LOTTERY_CC"])
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    """``$LOTTERY_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/lottery``, else ``~/.cache/lottery``."""
    if os.environ.get("LOTTERY_KERNEL_CACHE"):
        return Path(os.environ["LOTTERY_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lottery"


def flavour_needs(flavour: str) -> tuple[str, ...]:
    """The CPU flags ``flavour`` needs: its own and its lower levels' (``native``: none)."""
    if flavour in ("native", "x86-64"):
        return ()
    levels = ["x86-64-v2", "x86-64-v3", "x86-64-v4"]
    return tuple(flag for level in levels[: levels.index(flavour) + 1] for flag in FLAVOURS[level])


def cpu_flags() -> set[str] | None:
    """The CPU's flags from ``/proc/cpuinfo`` (None where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def flavour(asked: str | None = None) -> str:
    """The build flavour ``asked``, else the one ``$LOTTERY_MARCH`` asks for (default ``native``),
    checked: :class:`Unusable` (saying why) if it is unknown, or if this CPU cannot run it."""
    if asked is None:
        asked = os.environ.get(MARCH_VARIABLE, "").strip() or DEFAULT_FLAVOUR
    if asked not in FLAVOURS:
        raise Unusable(
            f"{MARCH_VARIABLE}={asked!r} is not a build flavour of the sparse kernels: use one of "
            f"{', '.join(FLAVOURS)} (default {DEFAULT_FLAVOUR})"
        )
    if asked == "native":
        return asked
    if platform.machine().lower() not in ("x86_64", "amd64"):
        raise Unusable(
            f"{MARCH_VARIABLE}={asked} is an x86-64 flavour, and this machine is {platform.machine()}: "
            f"use {MARCH_VARIABLE}=native, or unset it"
        )
    flags = cpu_flags()
    missing = [flag for flag in flavour_needs(asked) if flags is not None and flag not in flags]
    if missing:
        raise Unusable(
            f"{MARCH_VARIABLE}={asked}: this CPU cannot run that flavour (its flags lack "
            f"{', '.join(missing)}); use a lower one or native"
        )
    return asked


def build_flags(march: str) -> tuple[str, ...]:
    """The compiler's flags for the build flavour ``march``."""
    return (FLAGS[0], f"-march={march}", *FLAGS[1:])


def cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags (Linux), else the platform."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() + platform.machine()
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(keep)))


def record_path(library: Path) -> Path:
    """Where a build's record is kept: its sha256 and size, one line (``<hex> <bytes>``)."""
    return library.with_name(library.name + ".sha256")


def file_mode(executable: bool) -> int:
    """A new cache file's mode: the umask's, as a compiler gives it (0755 and 0644 under umask 022),
    never writable by group or others (such a file would be refused)."""
    return (0o777 if executable else 0o666) & ~umask() & ~0o022


def _user(uid: int) -> str:
    try:
        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid {uid}"


def _refuse_unsafe(what: str, st: os.stat_result, regular: bool, fix: str) -> None:
    """Raise :class:`Refused` unless ``st`` (an ``lstat``) is the job's user's own folder
    (``regular`` False) or file, not a link, and not writable by group or others."""
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"{what} is a symbolic link: refused (a link is never followed); {fix}")
    if regular and not stat.S_ISREG(st.st_mode):
        raise Refused(f"{what} is not a regular file: refused; {fix}")
    if not regular and not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{what} is not a folder: refused; {fix}")
    if st.st_uid != os.geteuid():
        raise Refused(
            f"{what} is owned by {_user(st.st_uid)}, not by {_user(os.geteuid())} who runs this job: "
            f"refused, as whoever owns it could run code in this job; {fix}"
        )
    writers = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if st.st_mode & bit]
    if writers:
        raise Refused(
            f"{what} is writable by {' and '.join(writers)} (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"refused, as any of them could plant code that this job would run; chmod go-w it, or {fix}"
        )


def prepare_cache(folder: Path) -> None:
    """Create ``folder`` (mode 0700) if it is missing; refuse it (:class:`Refused`) if it is not the
    job's user's own folder, not writable by group or others, and not a symbolic link."""
    fix = "use a cache folder of your own (set LOTTERY_KERNEL_CACHE)"
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        folder.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another job made it meanwhile: checked below
            os.mkdir(folder, 0o700)
        st = os.lstat(folder)
    what = f"the kernel cache {folder}"
    _refuse_unsafe(what, st, False, fix)


def _read_checked(path: Path) -> bytes | None:
    """``path``'s bytes, None if it is missing; :class:`Refused` if it is not the job's user's own
    regular file, or writable by group or others. Opened without following a link, the checks made
    on the open file too."""
    fix = f"delete {path} to rebuild"
    try:
        seen = os.lstat(path)
    except FileNotFoundError:
        return None
    _refuse_unsafe(f"the cached file {path}", seen, True, fix)
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        _refuse_unsafe(f"the cached file {path}", st, True, fix)
        if (st.st_dev, st.st_ino) != (seen.st_dev, seen.st_ino):
            raise OSError(f"{path} was replaced while it was being checked")
        with os.fdopen(os.dup(fd), "rb") as file:
            return file.read()
    finally:
        os.close(fd)


def verify(library: Path) -> str | None:
    """None if ``library`` is a build that matches its record; else why it is to be (re)built.
    :class:`Refused` if it or its record is not safe to read (owner, mode, a link)."""
    data = _read_checked(library)
    if data is None:
        return "missing"
    record = record_path(library)
    text = _read_checked(record)
    if text is None:
        return f"the cached kernels {library} have no build record ({record.name} is missing)"
    try:
        digest, size = text.decode().split()
        size_n = int(size)
    except (UnicodeDecodeError, ValueError):
        return f"the cached kernels {library} have an unreadable build record ({record.name})"
    actual = hashlib.sha256(data).hexdigest()
    if (actual, len(data)) != (digest, size_n):
        return (
            f"the cached kernels {library} do not match their build record ({len(data)} bytes, sha256 "
            f"{actual[:12]}…; built as {size_n} bytes, sha256 {digest[:12]}…)"
        )
    return None


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            os.fchmod(file.fileno(), mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _build(cc: str, target: Path, flags: tuple[str, ...]) -> None:
    """Compile into a temporary file, give it the umask's mode, rename it into place, then write its
    record (sha256 and size) the same way: a library is never seen without being whole."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *flags, "-o", tmp, str(SOURCE)],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{cc} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        os.chmod(tmp, file_mode(executable=True))
        data = Path(tmp).read_bytes()
        os.replace(tmp, target)
        record = f"{hashlib.sha256(data).hexdigest()} {len(data)}\n".encode()
        _write_atomically(record_path(target), record, file_mode(executable=False))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def clean_stale(folder: Path) -> list[str]:
    """Delete this user's temporary files of dead builds in ``folder`` (older than
    :data:`STALE_SECONDS`); the names deleted."""
    gone = []
    now = time.time()
    with os.scandir(folder) as entries:
        for entry in entries:
            if not (entry.name.startswith("." + PREFIX) and entry.name.endswith(".tmp")):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                if st.st_uid == os.geteuid() and now - st.st_mtime > STALE_SECONDS:
                    os.unlink(entry.path)
                    gone.append(entry.name)
            except OSError:
                continue  # another job deleted it first
    return gone


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (no lock where the file system has none)."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _no_compiler() -> str:
    asked = os.environ.get("LOTTERY_CC")
    if asked:
        return (
            f"no C compiler found: LOTTERY_CC is {asked!r}, which is neither an executable file nor a "
            "program on PATH (correct LOTTERY_CC, or unset it to use $CC, cc or gcc)"
        )
    return "no C compiler found (set LOTTERY_CC or CC, or install gcc)"


@cache
def load() -> ctypes.CDLL | None:
    """The kernels' library, built if need be; ``None`` (reason in :data:`unavailable_reason`) if not."""
    global unavailable_reason
    unavailable_reason = None
    if os.environ.get("LOTTERY_SPARSE_KERNELS", "1") == "0":
        unavailable_reason = "turned off by LOTTERY_SPARSE_KERNELS=0"
        return None
    cc = compiler()
    if cc is None:
        unavailable_reason = _no_compiler()
        return None
    try:
        march = flavour()
        flags = build_flags(march)
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
        key = hashlib.sha256(
            "\0".join([SOURCE.read_text(), cc, version, " ".join(flags), cpu_identity()]).encode()
        ).hexdigest()[:16]
        folder = cache_dir()
        prepare_cache(folder)
        gone = clean_stale(folder)
        if gone:
            log.info("deleted dead builds' temporary files from %s: %s", folder, ", ".join(gone))
        target = folder / f"{PREFIX}{key}.so"
        if verify(target) is not None:
            with _locked(folder):
                problem = verify(target)  # another job may have built it while this one waited
                if problem is not None:
                    if problem != "missing":
                        log.warning("%s: rebuilding them", problem)
                    _build(cc, target, flags)
                    problem = verify(target)
                    if problem is not None:
                        raise RuntimeError(f"{problem}, right after the build")
        lib = ctypes.CDLL(str(target))
    except (Refused, Unusable) as refused:
        unavailable_reason = str(refused)
        return None
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        unavailable_reason = f"the sparse kernels could not be built or loaded: {error}"
        return None
    for name, (argtypes, restype) in SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as error:
            unavailable_reason = (
                f"the sparse kernels {target} have no function {name} ({error}): not the kernels this "
                f"version expects; delete {target} to rebuild"
            )
            return None
        fn.argtypes, fn.restype = argtypes, restype
    lib.lottery_march = march  # what the trainer records (lottery.provenance)
    return lib


def flavour_of(lib: ctypes.CDLL) -> str | None:
    """The build flavour of kernels :func:`load` returned (None for any other library)."""
    return lib.__dict__.get("lottery_march")
