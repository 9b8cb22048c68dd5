"""Fetching MNIST-format files with checksum verification - no PyTorch, so that the fetch job
starts without it.

Checksums are of the *decompressed* IDX content: mirrors recompress the files (other gzip headers),
so only the content's hash holds for every mirror.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from lottery import schema
from lottery.io import write_bytes
from lottery.logs import Explained, log, step

# The official files and the sha256 of their decompressed content: the schema's default data.files.
MNIST_FILES = {key: (spec["name"], spec["sha256"]) for key, spec in schema.default("data.files").items()}


class DataError(Explained, ValueError):
    """A dataset file could not be obtained, verified or decoded."""


def decompress(raw: bytes, name: str) -> bytes:
    """Gunzip ``raw``; plain (already decompressed) IDX content is returned unchanged."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(f"{name}: truncated or corrupt gzip data ({e})") from e


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_source(source: str, name: str, timeout: float) -> bytes:
    if "://" in source and not source.startswith("file://"):
        url = source.rstrip("/") + "/" + name
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read()
    folder = Path(source.removeprefix("file://"))
    return (folder / name).read_bytes()


def fetch_file(
    name: str,
    expected_sha256: str,
    sources: Sequence[str],
    dest: str | os.PathLike,
    retries: int = 3,
    timeout: float = 60.0,
    backoff: float = 2.0,
    read: Callable[[str, str, float], bytes] = _read_source,
) -> str:
    """Fetch ``name`` from the first source whose copy verifies; write it to ``dest`` atomically.

    A source is a folder, a ``file://`` folder, or an http(s) base URL. Network errors are retried
    ``retries`` times with exponential backoff; a checksum or format failure moves to the next source
    at once. Returns the source used. Raises :class:`DataError` naming the file and every source tried.
    """
    if not sources:
        raise DataError(f"{name}: no source to fetch it from")
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
                    time.sleep(backoff ** (attempt - 1))
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                failures.append(f"{source} (attempt {attempt}/{attempts}): {e}")
                if attempt < attempts:
                    time.sleep(backoff ** (attempt - 1))
                continue
            except OSError as e:
                failures.append(f"{source}: {e}")
                break
            try:
                content = decompress(raw, name)
            except DataError as e:
                failures.append(f"{source}: {e}")
                break
            actual = sha256(content)
            if actual != expected_sha256:
                failures.append(
                    f"{source}: sha256 of decompressed content is {actual}, expected {expected_sha256}"
                )
                break
            write_bytes(dest, raw)
            return source
    raise DataError(
        f"could not fetch {name}; sources tried:\n  " + "\n  ".join(failures) + "\n"
        f"Without a network, use a local copy: a folder holding the {len(MNIST_FILES)} files, given as "
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
    """Fetch and verify each file; ``outputs`` and ``files`` are keyed by ``train_images`` etc."""
    for key, dest in outputs.items():
        spec = files[key]
        used = fetch_file(spec["name"], spec["sha256"], sources, dest, retries, timeout)
        log.info("%s: verified %s from %s", key, spec["name"], used)
