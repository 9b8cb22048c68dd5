"""The sparse path's compiled kernels (``sparse_kernels.c``): built with the system's C compiler at
first use into a per-user cache, loaded with ctypes.

Built with ``-O3 -march=native`` and without ``-ffast-math``: vectorised for this CPU, every sum in a
fixed order. The cache key covers the source, the compiler and its flags and the CPU (model and
instruction set), so a cache shared by the nodes of a cluster never hands one CPU another's build.
A build is written under a temporary name and renamed into place: jobs starting side by side build
it at most once each and never load a half-written file.

Where no build is possible (no compiler, a failed build), :func:`load` returns ``None`` with the
reason in :data:`unavailable_reason`; the trainer then trains every layer on the dense path and says
so in the job's log and in ``metrics.json``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from functools import cache
from pathlib import Path

SOURCE = Path(__file__).with_name("sparse_kernels.c")
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared", "-std=c11", "-Wno-psabi")

_P = ctypes.c_void_p
_I = ctypes.c_int64
SIGNATURES = {
    "lt_gather": ([_P, _I, _P, _I, _P, _I, _P], None),
    "lt_forward": ([_I, _I, _I, _P, _P, _P, _P, _P, _I, _P, ctypes.c_int32], None),
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
}

unavailable_reason: str | None = None


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


def cpu_identity() -> str:
    """What ``-march=native`` depends on: the CPU's model and flags (Linux), else the platform."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() + platform.machine()
    keep = [line for line in text.splitlines() if line.startswith(("model name", "flags", "Features"))]
    return "\n".join(sorted(set(keep)))


def _build(cc: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        done = subprocess.run(
            [cc, *FLAGS, "-o", tmp, str(SOURCE), "-lm"], capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"{cc} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@cache
def load() -> ctypes.CDLL | None:
    """The kernels' library, built if need be; ``None`` (reason in :data:`unavailable_reason`) if not."""
    global unavailable_reason
    if os.environ.get("LOTTERY_SPARSE_KERNELS", "1") == "0":
        unavailable_reason = "turned off by LOTTERY_SPARSE_KERNELS=0"
        return None
    cc = compiler()
    if cc is None:
        unavailable_reason = "no C compiler found (set LOTTERY_CC or CC, or install gcc)"
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
        key = hashlib.sha256(
            "\0".join([SOURCE.read_text(), cc, version, " ".join(FLAGS), cpu_identity()]).encode()
        ).hexdigest()[:16]
        target = cache_dir() / f"sparse_kernels-{key}.so"
        if not target.exists():
            _build(cc, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        unavailable_reason = f"the sparse kernels could not be built or loaded: {error}"
        return None
    for name, (argtypes, restype) in SIGNATURES.items():
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = argtypes, restype
    return lib
