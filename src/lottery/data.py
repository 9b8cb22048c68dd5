"""MNIST-format data: IDX decoding, split and normalisation (fetching, with checksum verification:
:mod:`lottery.fetch`).

Decoding and splitting work on numpy arrays and import no PyTorch: the split's permutation is PyTorch's
generator's (:mod:`lottery.order`), its statistics PyTorch's float64 reductions (:mod:`lottery.reductions`),
bit for bit, so that the files are those PyTorch made.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lottery import reductions
from lottery.desc import Architecture
from lottery.io import load_arrays, load_tensors, remake_hint, write_bytes
from lottery.order import randperm

if TYPE_CHECKING:  # PyTorch is imported where tensors are made: the jobs read and write arrays
    import torch

# lottery.fetch (its errors, the file names) is imported where data are decoded or checked: reading
# arrays (load_array_data) needs neither it nor its imports (urllib, the config schema).

IDX_UBYTE = 0x08


def parse_idx(content: bytes, name: str, ndim: int) -> np.ndarray:
    """Decode an IDX file of unsigned bytes with ``ndim`` dimensions into a uint8 array (its own copy)."""
    from lottery.fetch import DataError

    if len(content) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(content)} bytes)")
    zero0, zero1, dtype, dims = content[:4]
    magic = int.from_bytes(content[:4], "big")
    expected = (IDX_UBYTE << 8) | ndim
    if zero0 != 0 or zero1 != 0 or dtype != IDX_UBYTE or dims != ndim:
        raise DataError(
            f"{name}: wrong IDX magic number 0x{magic:08x}, expected 0x{expected:08x} "
            f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})"
        )
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{name}: IDX header truncated")
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    count = 1
    for s in shape:
        count *= s
    if count == 0:
        raise DataError(f"{name}: IDX header announces shape {shape}, with a zero dimension: no data")
    if len(content) - header != count:
        raise DataError(
            f"{name}: IDX header announces shape {shape} ({count} bytes) "
            f"but the file holds {len(content) - header} data bytes"
        )
    return np.frombuffer(content, dtype=np.uint8, count=count, offset=header).reshape(shape).copy()


def read_idx_file(path: str | os.PathLike, ndim: int, expected_sha256: str | None = None) -> np.ndarray:
    """The IDX file's array; with ``expected_sha256``, the decompressed content is verified first (a
    cached download replaced since it was fetched is refused)."""
    from lottery.fetch import DataError, inflate

    path = Path(path)
    content, digest = inflate(path.read_bytes(), str(path))
    if expected_sha256 is not None and digest != expected_sha256:
        raise DataError(
            f"{path}: sha256 of decompressed content is {digest}, expected {expected_sha256} "
            f"(the file changed since it was fetched): {remake_hint(path)}"
        )
    return parse_idx(content, str(path), ndim)


def decode_dataset(
    files: dict[str, str | os.PathLike], sha256s: dict[str, str] | None = None
) -> dict[str, np.ndarray]:
    """Decode the four IDX files (keys as in :data:`lottery.fetch.MNIST_FILES`) into uint8 images,
    int64 labels, each verified against ``sha256s[key]`` where given."""
    from lottery.fetch import DataError

    sums = sha256s or {}
    tensors = {
        key: read_idx_file(files[key], 3 if key.endswith("images") else 1, sums.get(key))
        for key in ("train_images", "train_labels", "test_images", "test_labels")
    }
    for key in ("train_labels", "test_labels"):
        tensors[key] = tensors[key].astype(np.int64)
    for part in ("train", "test"):
        n_images, n_labels = len(tensors[f"{part}_images"]), len(tensors[f"{part}_labels"])
        if n_images != n_labels:
            raise DataError(
                f"{files[part + '_images']} has {n_images} images but "
                f"{files[part + '_labels']} has {n_labels} labels"
            )
    if tensors["train_images"].shape[1:] != tensors["test_images"].shape[1:]:
        raise DataError(
            f"{files['train_images']} has images of {tuple(tensors['train_images'].shape[1:])} pixels but "
            f"{files['test_images']} of {tuple(tensors['test_images'].shape[1:])}"
        )
    check_labels(tensors, files)
    return tensors


def check_labels(tensors: dict[str, np.ndarray], files: dict[str, str | os.PathLike]) -> None:
    """The classes are 0..K-1, each with training examples, and the test set has no other label."""
    from lottery.fetch import DataError

    train, test = tensors["train_labels"], tensors["test_labels"]
    if len(train) == 0:
        raise DataError(f"{files['train_labels']} holds no labels")
    present = np.bincount(train)
    if (present == 0).any():
        missing = [int(c) for c in np.flatnonzero(present == 0)]
        top = int(train.max())
        index = int(np.flatnonzero(train == top)[0])
        raise DataError(
            f"{files['train_labels']}: label {top} (example {index}) but no example of class(es) "
            f"{missing[:10]}: labels must be the classes 0..K-1"
        )
    if len(test) and int(test.max()) >= len(present):
        bad = int(test.max())
        index = int(np.flatnonzero(test == bad)[0])
        raise DataError(
            f"{files['test_labels']}: label {bad} (example {index}) is not a class of the training set "
            f"(0..{len(present) - 1})"
        )


def check_fits(
    dataset: dict[str, np.ndarray], source: str | os.PathLike, arch: Architecture, validation_size: int,
    batch_size: int,
) -> None:  # fmt: skip
    """Raise a DataError naming the config key if the experiment does not fit the decoded ``dataset``."""
    from lottery.fetch import DataError

    pixels = math.prod(dataset["train_images"].shape[1:])
    if pixels != arch.input_size:
        raise DataError(
            f"model.input_size is {arch.input_size} but the images of {source} have {pixels} pixels"
        )
    classes = int(dataset["train_labels"].max()) + 1
    if classes > arch.num_classes:
        raise DataError(f"model.num_classes is {arch.num_classes} but {source} has {classes} classes")
    n = len(dataset["train_labels"])
    if not 0 < validation_size < n:
        raise DataError(
            f"data.validation_size is {validation_size}, not below the {n} training images of {source}"
        )
    if batch_size > n - validation_size:
        raise DataError(
            f"training.batch_size is {batch_size}, above the {n - validation_size} training examples of "
            f"{source} (data.validation_size {validation_size} held out)"
        )


def split_indices(n: int, validation_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of ``range(n)`` into (train, validation) int64 indices, each sorted: those
    of ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` (:mod:`lottery.order`)."""
    from lottery.fetch import DataError

    if not 0 < validation_size < n:
        raise DataError(f"data.validation_size is {validation_size}, not below the {n} training images")
    perm = randperm(n, seed)
    return np.sort(perm[validation_size:]), np.sort(perm[:validation_size])


def pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the pixels scaled to [0, 1] (in float64): those of
    ``x = images.double().div_(255.0); float(x.mean()), float(x.std())`` in PyTorch on one thread,
    bit for bit (:mod:`lottery.reductions`)."""
    x = np.asarray(images).astype(np.float64)
    np.divide(x, 255.0, out=x)
    mean = reductions.mean(x)
    return mean, reductions.std(x, mean)


def make_split(dataset: dict[str, np.ndarray], validation_size: int, seed: int) -> dict[str, np.ndarray]:
    """Split indices (int64) and the training split's normalisation statistics (0-d float64)."""
    train, val = split_indices(len(dataset["train_labels"]), validation_size, seed)
    mean, std = pixel_stats(np.asarray(dataset["train_images"])[train])
    return {
        "train_indices": train,
        "val_indices": val,
        "mean": np.array(mean, dtype=np.float64),
        "std": np.array(std, dtype=np.float64),
    }


# The arrays of TensorData and ArrayData: inputs and labels of each set.
ARRAYS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


@dataclass(frozen=True)
class TensorData:
    """Normalised, flattened float32 inputs and int64 labels, held in memory."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    # The normalised value of a blank (0) pixel, 81% of MNIST's pixels; None where inputs have none.
    background: float | None = None

    @property
    def input_size(self) -> int:
        return self.train_x.shape[1]


def _normalise(images: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    x = images.reshape(len(images), -1).float().div_(255.0)
    return x.sub_(mean).div_(std).contiguous()


def load_tensor_data(dataset_path: str | os.PathLike, split_path: str | os.PathLike) -> TensorData:
    import torch

    dataset, split = load_tensors(dataset_path), load_tensors(split_path)
    mean, std = float(split["mean"]), float(split["std"])
    train, val = split["train_indices"], split["val_indices"]
    return TensorData(
        train_x=_normalise(dataset["train_images"][train], mean, std),
        train_y=dataset["train_labels"][train].contiguous(),
        val_x=_normalise(dataset["train_images"][val], mean, std),
        val_y=dataset["train_labels"][val].contiguous(),
        test_x=_normalise(dataset["test_images"], mean, std),
        test_y=dataset["test_labels"].contiguous(),
        background=float(_normalise(torch.zeros(1, 1, dtype=torch.uint8), mean, std)),
    )


@dataclass(frozen=True)
class ArrayData:
    """:class:`TensorData` as numpy arrays, read without PyTorch: float32 inputs ``[n, features]``
    (C-contiguous), int64 labels; bitwise the same values."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    # The normalised value of a blank (0) pixel, 81% of MNIST's pixels; None where inputs have none.
    background: float | None = None

    @property
    def input_size(self) -> int:
        return self.train_x.shape[1]


_NORMALISE_ROWS = 128  # rows normalised at a time: ~400 KB of MNIST inputs, kept in cache across passes


def _normalise_array(images: np.ndarray, mean: float, std: float) -> np.ndarray:
    """:func:`_normalise` in numpy: the same float32 operations in the same order (PyTorch rounds a
    Python float to the tensor's float32 before it divides or subtracts, and so does this), a block
    of rows at a time; a C-contiguous float32 ``[n, features]`` array."""
    flat = images.reshape(len(images), -1)
    x = np.empty(flat.shape, dtype=np.float32)
    scale, shift, spread = np.float32(255.0), np.float32(mean), np.float32(std)
    for start in range(0, len(x), _NORMALISE_ROWS):
        block = x[start : start + _NORMALISE_ROWS]
        np.copyto(block, flat[start : start + _NORMALISE_ROWS], casting="unsafe")
        np.divide(block, scale, out=block)
        np.subtract(block, shift, out=block)
        np.divide(block, spread, out=block)
    return x


def load_array_data(dataset_path: str | os.PathLike, split_path: str | os.PathLike) -> ArrayData:
    """:func:`load_tensor_data` as numpy arrays, without PyTorch (tested bitwise equal)."""
    dataset, split = load_arrays(dataset_path), load_arrays(split_path)
    mean, std = float(split["mean"]), float(split["std"])
    train, val = split["train_indices"], split["val_indices"]
    images, labels = dataset["train_images"], dataset["train_labels"]
    return ArrayData(
        train_x=_normalise_array(images[train], mean, std),
        train_y=np.ascontiguousarray(labels[train], dtype=np.int64),
        val_x=_normalise_array(images[val], mean, std),
        val_y=np.ascontiguousarray(labels[val], dtype=np.int64),
        test_x=_normalise_array(dataset["test_images"], mean, std),
        test_y=np.ascontiguousarray(dataset["test_labels"], dtype=np.int64),
        background=float(_normalise_array(np.zeros((1, 1), dtype=np.uint8), mean, std)[0, 0]),
    )


def encode_idx(array: np.ndarray | torch.Tensor) -> bytes:
    """IDX bytes of a uint8 array or tensor (the inverse of :func:`parse_idx`)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"IDX encoding here is for uint8 arrays, got {array.dtype}")
    header = bytes([0, 0, IDX_UBYTE, array.ndim])
    header += b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def write_sample(
    dataset: dict[str, np.ndarray], out_dir: str | os.PathLike, n_train: int, n_test: int
) -> dict[str, str]:
    """Write the first ``n_train``/``n_test`` examples as gzipped IDX files named like MNIST's.

    Returns the sha256 of each file's decompressed content, keyed like :data:`lottery.fetch.MNIST_FILES`.
    """
    from lottery.fetch import MNIST_FILES, sha256

    parts = {
        "train_images": dataset["train_images"][:n_train],
        "train_labels": dataset["train_labels"][:n_train].astype(np.uint8),
        "test_images": dataset["test_images"][:n_test],
        "test_labels": dataset["test_labels"][:n_test].astype(np.uint8),
    }
    sums = {}
    for key, tensor in parts.items():
        content = encode_idx(tensor)
        # mtime=0 keeps the gzip bytes reproducible.
        write_bytes(Path(out_dir) / MNIST_FILES[key][0], gzip.compress(content, mtime=0))
        sums[key] = sha256(content)
    return sums
