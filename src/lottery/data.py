"""The data: IDX decoding (MNIST-format datasets; each dataset's own decoding: :mod:`lottery.datasets`),
split and normalisation (per channel where images have several), fetching with checksum verification:
:mod:`lottery.fetch`.

Images are stored as uint8 N x H x W (one channel: MNIST's files as they always were) or N x C x H x W;
training reads them as flat float32 rows of C*H*W values, channel by channel (models reshape them).

Decoding and splitting work on numpy arrays and import no PyTorch: the split's permutation is PyTorch's
generator's (:mod:`lottery.order`), its statistics PyTorch's float64 reductions (:mod:`lottery.reductions`),
bit for bit, so that the files are those PyTorch made.
"""

from __future__ import annotations

import gzip
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


def read_idx_file(
    path: str | os.PathLike, ndim: int, expected: str | Mapping[str, str] | None = None
) -> np.ndarray:
    """The IDX file's array; with ``expected`` (the decompressed content's sha256, or a file spec's
    checksums: :func:`lottery.fetch.checksums_of`), the file is verified first (a cached download
    replaced since it was fetched is refused)."""
    from lottery.fetch import FILE_HASH_NAMES, DataError, checksums_of, inflate, mismatches

    path = Path(path)
    raw = path.read_bytes()
    sums = {} if expected is None else checksums_of(expected)
    file_sums = {kind: digest for kind, digest in sums.items() if kind in FILE_HASH_NAMES}
    problems = mismatches(raw, file_sums, str(path)) if file_sums else []
    content, digest = inflate(raw, str(path)) if not problems else (b"", "")
    if not problems and "sha256" in sums and digest != sums["sha256"]:
        problems.append(f"sha256 of decompressed content is {digest}, expected {sums['sha256']}")
    if problems:
        raise DataError(
            f"{path}: {'; '.join(problems)} (the file changed since it was fetched): {remake_hint(path)}"
        )
    return parse_idx(content, str(path), ndim)


def decode_dataset(
    files: Mapping[str, str | os.PathLike],
    checksums: Mapping[str, str | Mapping[str, str]] | None = None,
) -> dict[str, np.ndarray]:
    """Decode the four IDX files (keys as in :data:`lottery.fetch.MNIST_FILES`) into uint8 images,
    int64 labels, each verified against ``checksums[key]`` where given (the content's sha256, or a
    file spec)."""
    from lottery.fetch import DataError

    sums = checksums or {}
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


def check_labels(tensors: Mapping[str, np.ndarray], files: Mapping[str, str | os.PathLike]) -> None:
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

    shape = image_shape(dataset["train_images"])
    values = math.prod(shape)
    if values != arch.input_size:
        what = f"{values} pixels" if shape[0] == 1 else f"{values} values ({' x '.join(map(str, shape))})"
        raise DataError(f"model.input_size is {arch.input_size} but the images of {source} have {what}")
    if shape[0] != arch.channels:
        raise DataError(
            f"the model takes images of {arch.channels} channel(s) but those of {source} have {shape[0]}"
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


def image_shape(images: np.ndarray) -> tuple[int, int, int]:
    """(channels, height, width) of stored images: N x H x W (one channel) or N x C x H x W."""
    shape = tuple(int(s) for s in images.shape[1:])
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) != 3:
        raise ValueError(f"images of shape {images.shape}: expected N x H x W or N x C x H x W")
    return shape  # type: ignore[return-value]


def pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the pixels scaled to [0, 1] (in float64): those of
    ``x = images.double().div_(255.0); float(x.mean()), float(x.std())`` in PyTorch on one thread,
    bit for bit (:mod:`lottery.reductions`)."""
    x = np.asarray(images).astype(np.float64)
    np.divide(x, 255.0, out=x)
    mean = reductions.mean(x)
    return mean, reductions.std(x, mean)


def make_split(dataset: dict[str, np.ndarray], validation_size: int, seed: int) -> dict[str, np.ndarray]:
    """Split indices (int64) and the training split's normalisation statistics: 0-d float64 for
    images of one channel (stored N x H x W), one per channel (shape (C,)) for N x C x H x W."""
    train, val = split_indices(len(dataset["train_labels"]), validation_size, seed)
    images = np.asarray(dataset["train_images"])[train]
    if images.ndim == 3:
        mean, std = pixel_stats(images)
        means, stds = np.array(mean, dtype=np.float64), np.array(std, dtype=np.float64)
    else:
        stats = [pixel_stats(images[:, c]) for c in range(images.shape[1])]
        means = np.array([m for m, _ in stats], dtype=np.float64)
        stds = np.array([s for _, s in stats], dtype=np.float64)
    return {"train_indices": train, "val_indices": val, "mean": means, "std": stds}


# The arrays of TensorData and ArrayData: inputs and labels of each set.
ARRAYS = ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y")


@dataclass(frozen=True)
class TensorData:
    """Normalised, flattened float32 inputs (``[n, C*H*W]``, channel by channel) and int64 labels,
    held in memory."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    # The normalised value of a blank (0) pixel, 81% of MNIST's pixels; None where inputs have none
    # (images of several channels: each channel has its own).
    background: float | None = None

    @property
    def input_size(self) -> int:
        return self.train_x.shape[1]


def _normalise(images: torch.Tensor, mean: float | torch.Tensor, std: float | torch.Tensor) -> torch.Tensor:
    """Flat float32 rows of ``images`` scaled to [0, 1] and normalised: by Python floats (one
    channel), or by float32 vectors of one value per input (:func:`_per_input`)."""
    x = images.reshape(len(images), -1).float().div_(255.0)
    return x.sub_(mean).div_(std).contiguous()


def _per_input(stat: np.ndarray, pixels: int) -> np.ndarray:
    """A per-channel statistic as float32, repeated for each of a channel's ``pixels`` inputs."""
    return np.repeat(np.asarray(stat, dtype=np.float64).astype(np.float32), pixels)


def _stats(split: Mapping[str, Any], images_shape: tuple[int, ...]) -> tuple[Any, Any, bool]:
    """The split's mean and std as :func:`_normalise` takes them, and whether the images have one
    channel (0-d statistics: Python floats, as always; per channel: float32 per-input vectors)."""
    mean, std = np.asarray(split["mean"]), np.asarray(split["std"])
    if mean.ndim == 0:
        return float(mean), float(std), True
    channels = int(images_shape[1]) if len(images_shape) == 4 else 1
    if mean.shape != (channels,) or std.shape != (channels,):
        raise ValueError(
            f"the split's statistics have shapes {mean.shape} and {std.shape}, the images "
            f"{tuple(images_shape[1:])}: remake the split (delete it and rerun)"
        )
    pixels = math.prod(images_shape[1:]) // channels
    return _per_input(mean, pixels), _per_input(std, pixels), False


def load_tensor_data(dataset_path: str | os.PathLike, split_path: str | os.PathLike) -> TensorData:
    import torch

    dataset, split = load_tensors(dataset_path), load_tensors(split_path)
    stats = {key: split[key].numpy() for key in ("mean", "std")}
    mean, std, single = _stats(stats, tuple(dataset["train_images"].shape))
    if not single:
        mean, std = torch.from_numpy(mean), torch.from_numpy(std)
    train, val = split["train_indices"], split["val_indices"]
    return TensorData(
        train_x=_normalise(dataset["train_images"][train], mean, std),
        train_y=dataset["train_labels"][train].contiguous(),
        val_x=_normalise(dataset["train_images"][val], mean, std),
        val_y=dataset["train_labels"][val].contiguous(),
        test_x=_normalise(dataset["test_images"], mean, std),
        test_y=dataset["test_labels"].contiguous(),
        background=float(_normalise(torch.zeros(1, 1, dtype=torch.uint8), mean, std)) if single else None,
    )


@dataclass(frozen=True)
class ArrayData:
    """:class:`TensorData` as numpy arrays, read without PyTorch: float32 inputs ``[n, C*H*W]``
    (C-contiguous, channel by channel), int64 labels; bitwise the same values."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    # The normalised value of a blank (0) pixel, 81% of MNIST's pixels; None where inputs have none
    # (images of several channels: each channel has its own).
    background: float | None = None

    @property
    def input_size(self) -> int:
        return self.train_x.shape[1]


_NORMALISE_ROWS = 128  # rows normalised at a time: ~400 KB of MNIST inputs, kept in cache across passes


def _normalise_array(images: np.ndarray, mean: float | np.ndarray, std: float | np.ndarray) -> np.ndarray:
    """:func:`_normalise` in numpy: the same float32 operations in the same order (PyTorch rounds a
    Python float to the tensor's float32 before it divides or subtracts, and so does this; per-input
    vectors are float32 already), a block of rows at a time; a C-contiguous float32 ``[n, features]``
    array."""
    flat = images.reshape(len(images), -1)
    x = np.empty(flat.shape, dtype=np.float32)
    scale = np.float32(255.0)
    shift = np.float32(mean) if np.ndim(mean) == 0 else mean
    spread = np.float32(std) if np.ndim(std) == 0 else std
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
    images, labels = dataset["train_images"], dataset["train_labels"]
    mean, std, single = _stats(split, images.shape)
    train, val = split["train_indices"], split["val_indices"]
    return ArrayData(
        train_x=_normalise_array(images[train], mean, std),
        train_y=np.ascontiguousarray(labels[train], dtype=np.int64),
        val_x=_normalise_array(images[val], mean, std),
        val_y=np.ascontiguousarray(labels[val], dtype=np.int64),
        test_x=_normalise_array(dataset["test_images"], mean, std),
        test_y=np.ascontiguousarray(dataset["test_labels"], dtype=np.int64),
        background=_background(mean, std) if single else None,
    )


def _background(mean: float, std: float) -> float:
    """The normalised value of a blank pixel (images of one channel)."""
    return float(_normalise_array(np.zeros((1, 1), dtype=np.uint8), mean, std)[0, 0])


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
