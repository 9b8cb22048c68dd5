"""Artifact files written atomically: a failed or interrupted job never leaves a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lottery import owner

if TYPE_CHECKING:  # PyTorch is imported where tensors are read or written: the tables need none
    import pandas as pd
    import torch


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        owner.check(path)  # a job whose Snakemake is gone writes nothing
        # mkstemp makes 0600 files, and so does a writer that replaces the file (safetensors): give
        # the permissions the umask says, as any other written file gets
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def umask() -> int:
    """The process's umask: from /proc/self/status where Linux has it (reading it does not change
    it, so no other thread ever sees a changed one), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: object) -> None:
    """Strict JSON with sorted keys, so that equal content gives equal bytes; NaN or infinity (which JSON
    cannot hold) is an error naming the file."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"{path}: {e} (a NaN or infinite value)") from e
    write_text(path, text + "\n")


def json_digest(obj: object) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_json_with_digest(path: str | os.PathLike, obj: dict) -> None:
    """:func:`write_json` of ``obj`` with the digest of its content under ``content_sha256``: for a
    file whose bytes differ from run to run (times), so that no digest of its bytes can be kept, and
    that must still be refused once altered (:func:`read_json_with_digest`)."""
    write_json(path, {**obj, DIGEST_KEY: json_digest(obj)})


def _digested_json(path: str | os.PathLike) -> tuple[dict | None, str | None]:
    """The content :func:`write_json_with_digest` wrote (its digest left out), or None and why the
    file is not as it was written."""
    try:
        obj = read_json(path)
    except (OSError, ValueError) as e:
        return None, f"{path} cannot be read ({e})"
    if not isinstance(obj, dict) or DIGEST_KEY not in obj:
        return None, f"{path} has no {DIGEST_KEY} (not as this workflow wrote it)"
    recorded = obj.pop(DIGEST_KEY)
    if json_digest(obj) != recorded:
        changed = f"{path} was changed since it was written"
        return None, f"{changed} (its content no longer matches its {DIGEST_KEY})"
    return obj, None


def json_problem(path: str | os.PathLike) -> str | None:
    """Why the JSON file written by :func:`write_json_with_digest` is not as it was written, or None."""
    return _digested_json(path)[1]


def read_json_with_digest(path: str | os.PathLike) -> dict:
    """The content :func:`write_json_with_digest` wrote (its digest left out); an altered file is
    refused, naming it."""
    obj, problem = _digested_json(path)
    if problem:
        raise ValueError(f"{problem}; {remake_hint(path)}")
    return obj


def write_table(path: str | os.PathLike, table: pd.DataFrame, float_format: str | None = None) -> None:
    """A table as CSV without its index, with newline line ends; ``float_format`` rounds (None: every
    digit)."""
    write_text(path, table.to_csv(index=False, float_format=float_format, lineterminator="\n"))


def read_json(path: str | os.PathLike) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, object] | None = None
) -> None:
    """Save tensors as safetensors (no pickle: loading never runs code), with a digest of their content.

    ``metadata`` and the digest are stored as one JSON string under the header key ``lottery``:
    safetensors writes several metadata keys in hash order, which would make equal files differ byte
    for byte. The digest lets :func:`load_tensors` refuse a file altered after it was written.
    """
    from safetensors.torch import save_file

    contiguous = {name: t.detach().contiguous() for name, t in tensors.items()}
    header = {
        "lottery": json.dumps({**(metadata or {}), DIGEST_KEY: content_digest(contiguous)}, sort_keys=True)
    }
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=header)


DIGEST_KEY = "content_sha256"


def content_digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over each tensor's name, dtype, shape and bytes, in name order: any change to what a
    reader gets (a value, a shape, a dtype, a renamed or missing tensor) changes it."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        digest.update(json.dumps([name, str(t.dtype), list(t.shape)]).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().data)
    return digest.hexdigest()


def remake_hint(path: str | os.PathLike) -> str:
    """How to make an artifact again: deleting it alone is not enough, as Snakemake does not rerun a
    missing intermediate file's job when the files made from it are up to date."""
    return f"make it again, with what was made from it, by `snakemake --forcerun {path}`"


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a file written by :func:`save_tensors`; a file whose content no longer matches its
    digest (altered in place, truncated, written by something else) is refused, naming it."""
    return load_tensors_with_metadata(path)[0]


def load_tensors_with_metadata(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """:func:`load_tensors`, and the ``metadata`` :func:`save_tensors` stored with them."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:  # the tensors and the header from one opening
            tensors = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (safe_open is no dict)
            header = (f.metadata() or {}).get("lottery")
        metadata = json.loads(header) if header else {}
        recorded = metadata.pop(DIGEST_KEY, None)
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path}: cannot read tensors ({e}); {remake_hint(path)}") from e
    if recorded is None:
        raise ValueError(f"{path}: has no content digest (not written by this workflow); {remake_hint(path)}")
    if content_digest(tensors) != recorded:
        raise ValueError(
            f"{path}: its tensors do not match the digest recorded when it was written (the file was "
            f"altered since); {remake_hint(path)}"
        )
    return tensors, metadata
