"""The datasets, by the config's ``data.name``: each one module here with its :class:`Dataset` entry
(its official files and their checksums, its mirrors, its image shape, its classes and how its files
decode), listed in :data:`REGISTRY`.

A ``data.name`` is a registry name, or one followed by ``-<label>`` for a user's own files of that
dataset's format (``mnist-sample``: the committed 1,000-image MNIST sample of ``.test``); its files go
to ``resources/<data.name>/``. :func:`resolve` fills the config's ``data:`` section (``files`` and
``mirrors`` null: the dataset's official ones) and is what the workflow and the replicate records
read; :func:`image_shape` gives the network's input. No PyTorch: the DAG is built from this.

Adding a dataset: a module here that defines ``DATASET`` (found as this package is imported), and its
name in the schema's ``data.name`` pattern.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lottery.registry import discover

if TYPE_CHECKING:
    import numpy as np

# The checksums a file may be verified by (each given one must hold): the sha256 of the decompressed
# content (IDX files: any mirror's gzip, or none, verifies), and the md5 or sha256 of the file's own
# bytes, as a dataset's authors publish them.
CHECKSUMS = ("sha256", "sha256_file", "md5")
DEFAULT = "mnist"

Decode = Callable[[Mapping[str, Path], Mapping[str, Mapping[str, str]]], dict[str, "np.ndarray"]]


@dataclass(frozen=True)
class Dataset:
    """A dataset of the registry.

    ``files``: the official files, key -> ``{"name": file name, <checksum kind>: digest, ...}``
    (kinds: :data:`CHECKSUMS`); ``mirrors``: the official base URLs; ``shape``: an image's
    (channels, height, width); ``classes``: the number of classes; ``decode``: the arrays of the files
    (``train_images``, ``train_labels``, ``test_images``, ``test_labels``; images uint8, N x H x W for
    one channel and N x C x H x W otherwise; labels int64), from their paths and specs (each file
    verified against its spec's checksums first); ``layouts``: other sets of keys a user's
    ``data.files`` may give (an archive's extracted files); ``origin``: where the files and their
    checksums come from."""

    name: str
    files: Mapping[str, Mapping[str, str]]
    mirrors: tuple[str, ...]
    shape: tuple[int, int, int]
    classes: int
    decode: Decode
    layouts: tuple[frozenset[str], ...] = ()
    origin: str = ""

    @property
    def input_size(self) -> int:
        channels, height, width = self.shape
        return channels * height * width

    @property
    def channels(self) -> int:
        return self.shape[0]

    def accepts(self, keys: frozenset[str]) -> bool:
        return keys == frozenset(self.files) or keys in self.layouts


REGISTRY: dict[str, Dataset] = discover(__name__, __path__, "DATASET", Dataset)


def _error(message: str) -> Exception:
    from lottery.experiment import ConfigError

    return ConfigError(message)


def kind(name: str) -> str:
    """The registry name of a ``data.name``: the name itself, or the part before ``-<label>``."""
    return name.split("-", 1)[0]


def get(name: str) -> Dataset:
    """The registry's entry of ``data.name`` ``name``; an unknown name is a ConfigError naming the
    key and the choices."""
    entry = REGISTRY.get(kind(name))
    if entry is None:
        raise _error(
            f"data.name is {name!r}, not a dataset of the registry: choose one of {sorted(REGISTRY)} "
            "(optionally followed by -<label> for your own files of that format)"
        )
    return entry


def image_shape(name: str) -> tuple[int, int, int]:
    """An image's (channels, height, width) of the dataset ``data.name`` names."""
    return get(name).shape


def official_files(name: str) -> dict[str, dict[str, str]]:
    """The dataset's official files as ``data.files`` gives them (a copy)."""
    return copy.deepcopy({key: dict(spec) for key, spec in get(name).files.items()})


def resolve(data: Mapping[str, Any]) -> dict[str, Any]:
    """The config's ``data:`` section with ``files`` and ``mirrors`` filled from the registry where
    they are null (a copy); ``files`` a user gives must be one of the dataset's layouts (a
    ConfigError naming ``data.files`` otherwise)."""
    name = data.get("name", DEFAULT)
    entry = get(name)
    out = copy.deepcopy(dict(data))
    out["name"] = name
    if out.get("files") is None:
        out["files"] = official_files(name)
    else:
        keys = frozenset(out["files"])
        if not entry.accepts(keys):
            layouts = [sorted(entry.files), *(sorted(layout) for layout in entry.layouts)]
            raise _error(
                f"data.files has the keys {sorted(keys)}, but {entry.name} takes "
                + " or ".join(str(layout) for layout in layouts)
            )
        for key, spec in out["files"].items():
            if not any(k in spec for k in CHECKSUMS):
                raise _error(f"data.files.{key} has no checksum: give one of {list(CHECKSUMS)}")
    if out.get("mirrors") is None:
        out["mirrors"] = list(entry.mirrors)
    return out


def describe(data: Mapping[str, Any]) -> dict[str, Any]:
    """What of the ``data:`` section decides a replicate's networks (its record's ``data``): the
    validation size and each file's checksums by kind (``sha256``: of the content), and the
    dataset's registry name where it is not MNIST (MNIST's records read as before datasets had
    names)."""
    resolved = resolve(data)
    files = resolved["files"]
    out: dict[str, Any] = {"validation_size": data["validation_size"]}
    registry_name = get(resolved["name"]).name
    if registry_name != DEFAULT:
        out["name"] = registry_name
    for checksum in CHECKSUMS:
        given = {key: spec[checksum] for key, spec in sorted(files.items()) if checksum in spec}
        if given:
            out[checksum] = given
    return out


def decode(
    name: str, paths: Mapping[str, str | os.PathLike], files: Mapping[str, Mapping[str, str]]
) -> dict[str, np.ndarray]:
    """The arrays of the dataset ``data.name`` ``name`` from its files (``paths`` keyed like
    ``data.files``), each verified first against its spec in ``files`` where that has one (the
    workflow gives every file's: :func:`resolve`); the decoder checks that the labels are the
    classes 0..K-1, this that K is at most the dataset's."""
    import numpy as np

    from lottery.fetch import DataError

    entry = get(name)
    specs = {key: spec for key, spec in files.items() if key in paths}
    keys = frozenset(paths)
    if not entry.accepts(keys):
        raise DataError(f"{entry.name}: files {sorted(keys)}, not one of its layouts ({sorted(entry.files)})")
    arrays = entry.decode({key: Path(path) for key, path in paths.items()}, specs)
    sources = _sources(paths)
    for part in ("train", "test"):
        labels = arrays[f"{part}_labels"]
        beyond = np.flatnonzero(labels >= entry.classes)
        if len(beyond):
            index = int(beyond[0])
            raise DataError(
                f"{sources[part + '_labels']}: label {int(labels[index])} (example {index}), but "
                f"{entry.name} has {entry.classes} classes (0..{entry.classes - 1})"
            )
    return arrays


def _sources(paths: Mapping[str, str | os.PathLike]) -> dict[str, str]:
    """Where each set of labels of :func:`decode` comes from, for its errors: the file of that key, or
    the files together (an archive, or batches that each hold images and labels)."""
    together = ", ".join(str(p) for p in paths.values())
    return {key: str(paths.get(key, together)) for key in ("train_labels", "test_labels")}
