"""The registries' one way of finding their entries: every module of a package that defines the
entry's attribute (``DATASET``, ``MODEL``, ``METHOD``), by the entry's name - so that a new dataset,
model or pruning method is its file (and its name in the config schema), with no list to edit."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any


def discover(package: str, path: Iterable[str], attribute: str, kind: type | None = None) -> dict[str, Any]:
    """The ``attribute`` of every module of ``package`` (its ``__path__``: ``path``) that defines one
    (of type ``kind`` where given), by its ``name``, modules in name order; two entries of one name
    are an error naming both modules."""
    found: dict[str, Any] = {}
    modules: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(path), key=lambda i: i.name):
        entry = getattr(importlib.import_module(f"{package}.{info.name}"), attribute, None)
        if entry is None or (kind is not None and not isinstance(entry, kind)):
            continue
        if entry.name in found:
            raise ValueError(f"{package}: {modules[entry.name]} and {info.name} both define {entry.name!r}")
        found[entry.name], modules[entry.name] = entry, info.name
    return found
