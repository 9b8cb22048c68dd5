"""Fetching a dataset's files with checksum verification - no PyTorch, so that the fetch job
starts without it.

A file's spec gives its name and one or more checksums (:data:`lottery.datasets.CHECKSUMS`), each of
which must hold: ``sha256``, of the *decompressed* IDX content (mirrors recompress the files: other
gzip headers, so only the content's hash holds for every mirror; MNIST's and Fashion-MNIST's), and
``md5`` or ``sha256_file``, of the file's own bytes, as some datasets' authors publish them (KMNIST's,
CIFAR-10's archive).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lottery.datasets import mnist
from lottery.io import remake_hint, write_bytes
from lottery.logs import Explained, log, step

# MNIST's official files and the sha256 of their decompressed content (lottery.datasets.mnist).
MNIST_FILES = {key: (spec["name"], spec["sha256"]) for key, spec in mnist.FILES.items()}
# The checksums of a file's own bytes, by the name a file spec gives them, and how they are named.
FILE_HASHES = {"md5": hashlib.md5, "sha256_file": hashlib.sha256}
FILE_HASH_NAMES = {"md5": "md5 of the file", "sha256_file": "sha256 of the file"}


class DataError(Explained, ValueError):
    """A dataset file could not be obtained, verified or decoded."""


GZIP_MAGIC = b"\x1f\x8b"
# The most decompressed content one file may hold: 2 GiB (MNIST's largest file holds 47 MB). A gzip
# file inflates only to the size its IDX header announces, and never beyond this.
MAX_CONTENT = 2**31
MAX_DOWNLOAD = MAX_CONTENT + 2**24  # bytes read from a mirror: the content and gzip's overhead
# Bytes per element of each IDX data type (the third byte of the magic number).
IDX_ELEMENT_SIZES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}
INFLATE_CHUNK = 1 << 20  # bytes of input, and at most of output, per step of the inflater
MAX_IDX_HEADER = 4 + 4 * 255  # bytes: the magic number and 255 dimensions
MAX_BACKOFF = 60.0  # seconds: the longest pause between two attempts at a mirror


def idx_size(header: bytes, name: str, limit: int = MAX_CONTENT) -> int | None:
    """The size in bytes of the IDX content whose header begins ``header``, or None while ``header``
    is too short to tell (4 bytes of magic number, then 4 bytes per dimension, big-endian). Content
    that does not start as IDX, or announces more than ``limit`` bytes, is a DataError."""
    if len(header) < 4:
        return None
    dtype, ndim = header[2], header[3]
    if header[:2] != b"\0\0" or dtype not in IDX_ELEMENT_SIZES or ndim == 0:
        magic = int.from_bytes(header[:4], "big")
        raise DataError(f"{name}: not IDX content (it starts with 0x{magic:08x}, not an IDX magic number)")
    length = 4 + 4 * ndim
    if len(header) < length:
        return None
    shape = [int.from_bytes(header[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = length + IDX_ELEMENT_SIZES[dtype] * math.prod(shape)
    if size > limit:
        raise DataError(
            f"{name}: IDX header announces shape {shape} ({size} bytes), above the maximum of {limit} "
            "bytes a file may hold"
        )
    return size


def inflate(raw: bytes, name: str, limit: int = MAX_CONTENT) -> tuple[bytes, str]:
    """The decompressed content of ``raw`` and its sha256, computed as it inflates; plain (already
    decompressed) IDX content is returned unchanged.

    Gzip content inflates step by step, never beyond the size its IDX header announces (nor
    ``limit``): a small file that would inflate to gigabytes (a gzip bomb) is refused after reading
    at most that many bytes. Several gzip members are read one after the other, as gzip does.
    """
    if raw[:2] != GZIP_MAGIC:
        return raw, sha256(raw)
    digest = hashlib.sha256()
    parts: list[bytes] = []
    head = b""  # the content's first bytes, until they hold the IDX header
    size, allowed = 0, None  # allowed: the content's size as its IDX header announces it, once read
    data, offset = memoryview(raw), 0
    try:
        while True:  # one gzip member at a time
            inflater, tail = zlib.decompressobj(16 + zlib.MAX_WBITS), b""
            while not inflater.eof:
                if not tail and offset < len(data):
                    tail = data[offset : offset + INFLATE_CHUNK]
                    offset += len(tail)
                # never more than one byte past what the header allows (before it is read: its
                # longest, 4 + 4 x 255 bytes)
                room = (MAX_IDX_HEADER if allowed is None else allowed) - size + 1
                out = inflater.decompress(tail, min(INFLATE_CHUNK, room))
                tail = inflater.unconsumed_tail
                if not out:
                    if not tail and offset >= len(data) and not inflater.eof:
                        raise EOFError("compressed file ended before the end-of-stream marker was reached")
                    continue
                size += len(out)
                if allowed is None:
                    head += out
                    allowed = idx_size(head, name, limit)
                if allowed is not None and size > allowed:
                    raise DataError(
                        f"{name}: the decompressed content holds more than the {allowed} bytes its IDX "
                        f"header announces (a gzip bomb?): refused after inflating {size} bytes"
                    )
                digest.update(out)
                parts.append(out)
            rest = (inflater.unused_data + data[offset:]).lstrip(b"\0")
            if not rest:
                break
            if rest[:2] != GZIP_MAGIC:
                raise OSError(f"{len(rest)} bytes after the gzip data that are not another gzip member")
            data, offset = memoryview(rest), 0
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{name}: truncated or corrupt gzip data ({e})") from e
    return b"".join(parts), digest.hexdigest()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def checksums_of(spec: str | Mapping[str, str]) -> dict[str, str]:
    """A file spec's checksums by kind (a plain string: the content's sha256, as before specs had
    kinds); a spec without any is a DataError."""
    if isinstance(spec, str):
        return {"sha256": spec}
    given = {kind: spec[kind] for kind in ("sha256", *FILE_HASHES) if kind in spec}
    if not given:
        raise DataError(f"{spec.get('name', 'a file')}: its spec gives no checksum ({dict(spec)})")
    return given


def mismatches(raw: bytes, spec: str | Mapping[str, str], name: str) -> list[str]:
    """What of the spec's checksums ``raw`` (a file's bytes) does not match, each as "<what> is
    <actual>, expected <expected>": the file's own hashes first, then (only where the spec gives it)
    the decompressed content's sha256, inflated under :func:`inflate`'s bounds (its format errors
    are raised as DataErrors)."""
    expected = checksums_of(spec)
    problems = []
    for kind, make in FILE_HASHES.items():
        if kind in expected and (actual := make(raw).hexdigest()) != expected[kind]:
            problems.append(f"{FILE_HASH_NAMES[kind]} is {actual}, expected {expected[kind]}")
    if "sha256" in expected and not problems:
        _, actual = inflate(raw, name)
        if actual != expected["sha256"]:
            problems.append(f"sha256 of decompressed content is {actual}, expected {expected['sha256']}")
    return problems


def read_verified(path: str | os.PathLike, spec: str | Mapping[str, str] | None) -> bytes:
    """A cached file's bytes, verified against its spec's checksums (a file replaced since it was
    fetched is refused, with how to fetch it again; no spec: unverified); at most
    :data:`MAX_DOWNLOAD` bytes."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_DOWNLOAD:
        raise DataError(f"{path}: {size} bytes, more than the {MAX_DOWNLOAD} a dataset file may hold")
    raw = path.read_bytes()
    problems = [] if spec is None else mismatches(raw, spec, str(path))
    if problems:
        raise DataError(
            f"{path}: {'; '.join(problems)} (the file changed since it was fetched): {remake_hint(path)}"
        )
    return raw


def pause(backoff: float, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): ``backoff`` to the power
    ``attempt - 1``, at most :data:`MAX_BACKOFF`."""
    return min(MAX_BACKOFF, backoff ** min(attempt - 1, 16))


def _read_source(source: str, name: str, timeout: float) -> bytes:
    if "://" in source and not source.startswith("file://"):
        url = source.rstrip("/") + "/" + name
        with urllib.request.urlopen(url, timeout=timeout) as response:
            raw = response.read(MAX_DOWNLOAD + 1)
        if len(raw) > MAX_DOWNLOAD:
            raise DataError(f"{url}: more than {MAX_DOWNLOAD} bytes, refused")
        return raw
    folder = Path(source.removeprefix("file://"))
    return (folder / name).read_bytes()


def fetch_file(
    name: str,
    checksums: str | Mapping[str, str],
    sources: Sequence[str],
    dest: str | os.PathLike,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 2.0,
    read: Callable[[str, str, float], bytes] = _read_source,
) -> str:
    """Fetch ``name`` from the first source whose copy verifies against ``checksums`` (a file spec's
    checksums by kind, or the content's sha256 alone); write it to ``dest`` atomically.

    A source is a folder, a ``file://`` folder, or an http(s) base URL. Network errors are retried
    ``retries`` times with exponential backoff (each pause at most :data:`MAX_BACKOFF`); a checksum
    or format failure moves to the next source at once. Returns the source used. Raises
    :class:`DataError` naming the file and every source tried.
    """
    if not sources:
        raise DataError(f"{name}: no source to fetch it from")
    checksums = checksums_of(checksums)
    failures = []
    for source in sources:
        is_remote = "://" in source and not source.startswith("file://")
        attempts = retries if is_remote else 1
        for attempt in range(1, attempts + 1):
            try:
                raw = read(source, name, timeout)
            except urllib.error.HTTPError as e:
                failures.append(f"{source} (attempt {attempt}/{attempts}): {e}")
                if e.code < 500:  # 404 and the like: asking again gives the same answer
                    break
                if attempt < attempts:
                    time.sleep(pause(backoff, attempt))
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                failures.append(f"{source} (attempt {attempt}/{attempts}): {e}")
                if attempt < attempts:
                    time.sleep(pause(backoff, attempt))
                continue
            except (OSError, DataError) as e:
                failures.append(f"{source}: {e}")
                break
            try:
                problems = mismatches(raw, checksums, name)
            except DataError as e:
                failures.append(f"{source}: {e}")
                break
            if problems:
                failures.append(f"{source}: {'; '.join(problems)}")
                break
            write_bytes(dest, raw)
            return source
    raise DataError(
        f"could not fetch {name}; sources tried:\n  " + "\n  ".join(failures) + "\n"
        "Without a network, use a local copy: a folder holding the dataset's files, given as "
        '--config \'data={"source": "/path/to/folder"}\' (data.source in config/README.md)'
    )


@step
def fetch_dataset(
    outputs: Mapping[str, str | os.PathLike],
    files: Mapping[str, Mapping[str, str]],
    sources: Sequence[str],
    retries: int,
    timeout: float,
) -> None:
    """Fetch and verify each file; ``outputs`` and ``files`` (specs) are keyed like ``data.files``."""
    for key, dest in outputs.items():
        spec = files[key]
        used = fetch_file(spec["name"], spec, sources, dest, retries, timeout)
        log.info("%s: verified %s from %s", key, spec["name"], used)
