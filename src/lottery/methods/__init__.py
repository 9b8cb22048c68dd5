"""Pruning methods by name (``pruning.method``): each one module of this package that defines
``METHOD`` (the interface: :mod:`lottery.methods.base`), found as this package is imported. Adding one
is its module here and its name in the schema's ``pruning.method`` enum (a test checks the two
agree)."""

from __future__ import annotations

from lottery.methods.base import GLOBAL, LAYER, Examples, Method, PruningInputs
from lottery.registry import discover

REGISTRY: dict[str, Method] = discover(__name__, __path__, "METHOD")


def get(name: str) -> Method:
    """The method ``name``, or an error naming ``pruning.method`` and the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown pruning method {name!r} (pruning.method): expected one of {sorted(REGISTRY)}"
        ) from None


__all__ = ["GLOBAL", "LAYER", "REGISTRY", "Examples", "Method", "PruningInputs", "get"]
