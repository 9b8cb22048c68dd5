"""Artifact files written atomically: a failed or interrupted job never leaves a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from lottery import owner

if TYPE_CHECKING:  # PyTorch is imported where tensors are read or written: the tables need none
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
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
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


def read_json(path: str | os.PathLike) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


def save_tensors(
    path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, object] | None = None
) -> None:
    """Save tensors as safetensors (no pickle: loading never runs code).

    ``metadata`` is stored as one JSON string under the header key ``lottery``: safetensors writes
    several metadata keys in hash order, which would make equal files differ byte for byte.
    """
    from safetensors.torch import save_file

    contiguous = {name: t.detach().contiguous() for name, t in tensors.items()}
    header = {"lottery": json.dumps(metadata, sort_keys=True)} if metadata else None
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=header)


def load_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path}: cannot read tensors ({e})") from e
