"""The compiled kernels' cache (`lottery.kernels`): a damaged, foreign or planted library is rebuilt or
refused with its reason, never loaded and never a signal. Every load runs in a child process (a SIGBUS
there fails the test instead of ending pytest), each on a cache folder of its own; the kernels are
built once for the file and copied."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lottery import kernels

from .conftest import HUNG, ROOT

pytestmark = pytest.mark.faults

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")

PROBE = """
import json, logging, os
logging.basicConfig()
os.umask({umask})
from lottery import kernels
lib = kernels.load()
print(json.dumps({{"loaded": lib is not None, "reason": kernels.unavailable_reason,
                  "kernels": lib is not None and hasattr(lib, "lt_forward")}}))
"""

PLANTED_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *marker = getenv("PLANTED_MARKER");
    if (marker) { FILE *f = fopen(marker, "w"); if (f) fclose(f); }
}
int unrelated(int x) { return x + 1; }
"""


def probe(cache: Path, umask: int = 0o022, **env: str) -> dict:
    """Load the kernels in a child process with ``cache`` as the cache: what it said, and its log."""
    environ = {k: v for k, v in os.environ.items() if k not in ("LOTTERY_CC", "LOTTERY_SPARSE_KERNELS")}
    environ.update(LOTTERY_KERNEL_CACHE=str(cache), PYTHONPATH=str(ROOT / "src"), **env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(umask=oct(umask))],
        capture_output=True,
        text=True,
        env=environ,
        timeout=HUNG,
    )
    if done.returncode < 0:
        pytest.fail(
            f"loading the kernels was killed by {signal.Signals(-done.returncode).name}: {done.stderr}"
        )
    assert done.returncode == 0, f"loading the kernels crashed:\n{done.stderr}"
    return {**json.loads(done.stdout.splitlines()[-1]), "log": done.stderr}


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """A cache folder holding one build (made under umask 027)."""
    cache = tmp_path_factory.mktemp("kernels") / "cache"
    result = probe(cache, umask=0o027)
    assert result["loaded"], result
    return cache


@pytest.fixture(scope="session")
def planted(tmp_path_factory) -> Path:
    """A valid shared library without the kernels, whose constructor creates ``$PLANTED_MARKER``."""
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted.c").write_text(PLANTED_C)
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(folder / "planted.so"), str(folder / "planted.c")], check=True
    )
    return folder / "planted.so"


def library_of(cache: Path) -> Path:
    (library,) = cache.glob("sparse_kernels-*.so")
    return library


def copy_cache(built: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the built cache (folder mode 0700): the folder and its library."""
    cache = tmp_path / "cache"
    os.mkdir(cache, 0o700)
    for path in built.iterdir():
        shutil.copy2(path, cache / path.name)
    return cache, library_of(cache)


def plant(planted: Path, library: Path) -> None:
    """Put the planted library at the key with a record that matches it, as its author would."""
    shutil.copy2(planted, library)
    data = planted.read_bytes()
    Path(f"{library}.sha256").write_text(f"{hashlib.sha256(data).hexdigest()} {len(data)}\n")


@pytest.mark.parametrize("kept", [2000, -4096], ids=["head", "all-but-the-tail"])
def test_a_truncated_library_is_rebuilt_not_loaded(built, tmp_path, kept):
    cache, library = copy_cache(built, tmp_path)
    whole = library.read_bytes()
    size = len(whole[:kept])
    library.write_bytes(whole[:kept])
    result = probe(cache)
    assert result["loaded"] and result["kernels"], result
    assert library.read_bytes() == whole
    assert f"do not match their build record ({size} bytes" in result["log"]
    assert "rebuilding them" in result["log"]


def test_a_foreign_library_at_the_key_is_rebuilt_never_loaded(built, planted, tmp_path):
    cache, library = copy_cache(built, tmp_path)
    whole = library.read_bytes()
    shutil.copy2(planted, library)  # the record is still the real build's
    marker = tmp_path / "planted-code-ran"
    result = probe(cache, PLANTED_MARKER=str(marker))
    assert result["loaded"] and result["kernels"], result
    assert not marker.exists()
    assert library.read_bytes() == whole
    assert "do not match their build record" in result["log"]


def test_a_library_without_the_kernels_falls_back_with_the_reason(built, planted, tmp_path):
    cache, library = copy_cache(built, tmp_path)
    plant(planted, library)  # a record that matches: the digest cannot tell, the symbols must
    marker = tmp_path / "planted-code-ran"
    result = probe(cache, PLANTED_MARKER=str(marker))
    assert marker.exists()  # it was loaded (so the marker shows where planted code would have run)
    assert not result["loaded"]
    assert f"the sparse kernels {library} have no function lt_gather" in result["reason"]
    assert f"delete {library} to rebuild" in result["reason"]


@pytest.mark.parametrize(
    ("mode", "writers"), [(0o777, "group and others"), (0o770, "group"), (0o703, "others")]
)
def test_a_cache_folder_writable_by_others_is_refused(built, planted, tmp_path, mode, writers):
    cache, library = copy_cache(built, tmp_path)
    plant(planted, library)  # what another user could do in such a folder
    cache.chmod(mode)
    marker = tmp_path / "planted-code-ran"
    result = probe(cache, PLANTED_MARKER=str(marker))
    assert not result["loaded"]
    assert not marker.exists()
    assert result["reason"].startswith(
        f"the kernel cache {cache} is writable by {writers} (mode {mode:04o}): refused, as any of them could "
        "plant code that this job would run; chmod go-w it"
    )


def test_a_cached_library_writable_by_group_is_refused(built, tmp_path):
    cache, library = copy_cache(built, tmp_path)
    library.chmod(0o775)
    result = probe(cache)
    assert not result["loaded"]
    assert f"the cached file {library} is writable by group (mode 0775)" in result["reason"]
    assert f"chmod go-w it, or delete {library} to rebuild" in result["reason"]


@as_root
def test_a_cache_folder_of_another_user_is_refused(built, tmp_path):
    cache, _ = copy_cache(built, tmp_path)
    cache.chmod(0o755)
    os.chown(cache, NOBODY, NOBODY)
    result = probe(cache)
    assert not result["loaded"]
    assert result["reason"].startswith(f"the kernel cache {cache} is owned by uid {NOBODY}")
    assert "not by uid 0 (root) who runs this job: refused" in result["reason"]


@as_root
@pytest.mark.parametrize("which", ["library", "record"])
def test_a_cached_file_of_another_user_is_refused(built, tmp_path, which):
    cache, library = copy_cache(built, tmp_path)
    path = library if which == "library" else Path(f"{library}.sha256")
    os.chown(path, NOBODY, NOBODY)
    result = probe(cache)
    assert not result["loaded"]
    assert result["reason"].startswith(f"the cached file {path} is owned by uid {NOBODY}")
    assert f"delete {path} to rebuild" in result["reason"]


def test_a_symbolic_link_at_the_key_is_refused(built, tmp_path):
    cache, library = copy_cache(built, tmp_path)
    elsewhere = tmp_path / "elsewhere.so"
    library.rename(elsewhere)
    library.symlink_to(elsewhere)
    result = probe(cache)
    assert not result["loaded"]
    assert result["reason"].startswith(f"the cached file {library} is a symbolic link: refused")


def test_a_symbolic_link_as_the_cache_folder_is_refused(built, tmp_path):
    real, _ = copy_cache(built, tmp_path)
    cache = tmp_path / "linked"
    cache.symlink_to(real)
    result = probe(cache)
    assert not result["loaded"]
    assert result["reason"].startswith(f"the kernel cache {cache} is a symbolic link: refused")


def test_the_built_library_takes_the_umasks_mode(built, monkeypatch):
    library = library_of(built)  # built under umask 027
    assert oct(library.stat().st_mode & 0o7777) == oct(0o750)
    assert oct(Path(f"{library}.sha256").stat().st_mode & 0o7777) == oct(0o640)
    assert oct(built.stat().st_mode & 0o7777) == oct(0o700)  # the folder, made by the build
    monkeypatch.setattr(kernels, "umask", lambda: 0o002)  # never writable by others: it would be refused
    assert (kernels.file_mode(executable=True), kernels.file_mode(executable=False)) == (0o755, 0o644)


def test_a_killed_builds_temporary_files_are_cleaned(built, tmp_path):
    cache, library = copy_cache(built, tmp_path)
    old = cache / f".{library.name}.k9dead.tmp"
    old_record = cache / f".{library.name}.sha256.k9dead.tmp"
    fresh = cache / f".{library.name}.running.tmp"  # a build still under way
    for path in (old, old_record, fresh):
        path.write_bytes(b"\x7fELF half")
    an_hour_ago = time.time() - 3600
    for path in (old, old_record):
        os.utime(path, (an_hour_ago, an_hour_ago))
    result = probe(cache)
    assert result["loaded"], result
    assert not old.exists() and not old_record.exists()
    assert fresh.exists()


def test_a_missing_lottery_cc_is_named(tmp_path):
    result = probe(tmp_path / "cache", LOTTERY_CC="/no/such/cc")
    assert not result["loaded"]
    assert result["reason"].startswith("no C compiler found: LOTTERY_CC is '/no/such/cc', which is neither")


def test_the_trainer_logs_a_refused_cache(tmp_path, monkeypatch, caplog):
    from lottery.model import Architecture, glorot_normal_init, prunable
    from lottery.training import DENSE, TrainingHparams, make_trainer

    from .conftest import synthetic_data

    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o777)
    monkeypatch.setenv("LOTTERY_KERNEL_CACHE", str(cache))
    init = glorot_normal_init(Architecture(input_size=20, hidden=(16, 8), num_classes=4), seed=3)
    masks = {name: (weights.abs() < 0.01).float() for name, weights in prunable(init).items()}
    kernels.load.cache_clear()
    try:
        _, paths = make_trainer(init, masks, synthetic_data(), TrainingHparams(iterations=10), 0)
    finally:
        kernels.load.cache_clear()
    assert set(paths.values()) == {DENSE}
    assert (
        f"native trainer unavailable (the kernel cache {cache} is writable by group and others" in caplog.text
    )
