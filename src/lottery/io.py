"""Artifact files written atomically: a failed or interrupted job never leaves a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lottery import owner

if TYPE_CHECKING:  # PyTorch is imported where tensors are read or written: arrays and tables need none
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


def _is_torch(value: object) -> bool:
    """Whether ``value`` is a PyTorch tensor (told without importing PyTorch)."""
    return type(value).__module__.startswith("torch")


def save_tensors(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray | torch.Tensor],
    metadata: dict[str, object] | None = None,
) -> None:
    """Save arrays or tensors as safetensors (no pickle: loading never runs code), with a digest of
    their content.

    ``metadata`` and the digest are stored as one JSON string under the header key ``lottery``:
    safetensors writes several metadata keys in hash order, which would make equal files differ byte
    for byte. The digest lets :func:`load_tensors` refuse a file altered after it was written. numpy
    arrays are written without PyTorch, to the same bytes as the equal tensors (tested).
    """
    if any(_is_torch(t) for t in tensors.values()):
        import torch
        from safetensors.torch import save_file

        contiguous = {
            name: (t.detach() if _is_torch(t) else torch.from_numpy(_array(t))).contiguous()
            for name, t in tensors.items()
        }
    else:
        from safetensors.numpy import save_file

        contiguous = {name: _array(t) for name, t in tensors.items()}
    header = {
        "lottery": json.dumps({**(metadata or {}), DIGEST_KEY: content_digest(contiguous)}, sort_keys=True)
    }
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata=header)


DIGEST_KEY = "content_sha256"


def _array(value: object) -> np.ndarray:
    """``value`` as a C-contiguous little-endian numpy array (safetensors' byte order)."""
    array = np.asarray(value, order="C")  # not ascontiguousarray: it makes a 0-d array 1-d
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return array


def _torch_dtype_name(dtype: np.dtype) -> str:
    """``str(t.dtype)`` of the PyTorch tensor equal to an array of ``dtype``: ``"torch.float32"``."""
    if dtype.kind not in "biufc":
        raise TypeError(f"arrays of dtype {dtype} have no PyTorch equivalent")
    return f"torch.{dtype.name}"


def content_digest(tensors: Mapping[str, np.ndarray | torch.Tensor]) -> str:
    """sha256 over each tensor's name, dtype, shape and bytes, in name order: any change to what a
    reader gets (a value, a shape, a dtype, a renamed or missing tensor) changes it. numpy arrays
    digest as the equal PyTorch tensors do (their dtypes by PyTorch's names), so either reads a file
    the other wrote."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        value = tensors[name]
        if _is_torch(value):
            import torch

            t = value.detach().contiguous()
            dtype, shape = str(t.dtype), list(t.shape)
            data = t.reshape(-1).view(torch.uint8).numpy()
        else:
            array = _array(value)
            dtype, shape = _torch_dtype_name(array.dtype), list(array.shape)
            data = array.reshape(-1).view(np.uint8)
        digest.update(json.dumps([name, dtype, shape]).encode())
        digest.update(data.data)
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
    return _load(path, "pt")


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """:func:`load_tensors` as numpy arrays, without PyTorch (the same checks, the same errors)."""
    return load_arrays_with_metadata(path)[0]


def load_arrays_with_metadata(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """:func:`load_tensors_with_metadata` as numpy arrays, without PyTorch."""
    return _load(path, "np")


def _load(path: str | os.PathLike, framework: str) -> tuple[dict, dict]:
    """A file's tensors (``framework`` "pt") or arrays ("np") and its metadata, its digest verified."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework) as f:  # the tensors and the header from one opening
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
