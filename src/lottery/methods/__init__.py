"""Pruning methods by name (``pruning.method``): each one module of this package that defines
``METHOD`` (the interface: :mod:`lottery.methods.base`), found as this package is imported. Adding one
is its module here and its name in the schema's ``pruning.method`` enum (a test checks the two
agree)."""

from __future__ import annotations

import importlib
import pkgutil

from lottery.methods.base import GLOBAL, LAYER, Examples, Method, PruningInputs


def _discover() -> dict[str, Method]:
    """Every module of this package that defines ``METHOD``, by the method's name."""
    found: dict[str, Method] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        method = getattr(importlib.import_module(f"{__name__}.{info.name}"), "METHOD", None)
        if method is None:
            continue
        if method.name in found:
            raise ValueError(f"two pruning methods are named {method.name!r}: {info.name} and another")
        found[method.name] = method
    return found


REGISTRY: dict[str, Method] = _discover()


def get(name: str) -> Method:
    """The method ``name``, or an error naming ``pruning.method`` and the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown pruning method {name!r} (pruning.method): expected one of {sorted(REGISTRY)}"
        ) from None


__all__ = ["GLOBAL", "LAYER", "REGISTRY", "Examples", "Method", "PruningInputs", "get"]
