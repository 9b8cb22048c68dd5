"""Pruning methods by name (``pruning.method``), one module each with a ``METHOD`` (the interface:
:mod:`lottery.methods.base`). Adding one: write ``lottery/methods/<name>.py`` with its scorer, list it
here, and add its name to the schema's ``pruning.method`` enum (a test checks the two agree)."""

from __future__ import annotations

from lottery.methods import global_magnitude, layerwise
from lottery.methods.base import GLOBAL, LAYER, Examples, Method, PruningInputs

REGISTRY: dict[str, Method] = {m.METHOD.name: m.METHOD for m in (layerwise, global_magnitude)}


def get(name: str) -> Method:
    """The method ``name``, or an error naming ``pruning.method`` and the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown pruning method {name!r} (pruning.method): expected one of {sorted(REGISTRY)}"
        ) from None


__all__ = ["GLOBAL", "LAYER", "REGISTRY", "Examples", "Method", "PruningInputs", "get"]
