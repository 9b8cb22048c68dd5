"""Layer collapse (Tanaka et al., NeurIPS 2020): whether pruning cut a layer entirely, or every path
from the input to the output, leaving an untrainable network.

Masks are numpy arrays (or CPU tensors) keyed by layer in network order, shaped as the models of
:mod:`lottery.models` shape their weights: fully connected ``[out, in]``, convolutions ``[c_out, c_in,
k_h, k_w]``; any conv layers come first. Only weights carry a path; biases are ignored (a unit fed by
its bias alone carries no signal from the input).

Reachability is propagated from the input to the output, layer after layer:

- a fully connected layer: an output unit is reachable where a surviving weight joins it to a
  reachable input unit (the boolean product of the mask and the reachable inputs);
- a convolution: the unit is the channel - an output channel is reachable where any surviving kernel
  weight joins it to a reachable input channel (every input channel is reachable at the start);
- from the last convolution to the first fully connected layer: the flattened features are in
  PyTorch's ``(C, H, W)`` order (:meth:`lottery.models.Model.forward` flattens ``N x C x H x W``), so
  feature f belongs to channel ``f // (H * W)``, ``H * W`` being fc1's inputs over the channels.

Pooling and padding keep channels, so this is connectivity at the channel's granularity: a channel
counts as reachable at every position. A channel reachable at some positions only (a surviving kernel
weight that reads the padding at an edge) is counted whole, so :func:`disconnected` flags only
networks that are truly cut; it may miss a cut that only spatial positions make.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from lottery.methods.base import as_array


def densities(masks: Mapping[str, Any]) -> dict[str, float]:
    """Each layer's fraction of surviving weights, in network order."""
    return {name: float(np.count_nonzero(as_array(m))) / as_array(m).size for name, m in masks.items()}


def collapsed_layers(masks: Mapping[str, Any]) -> list[str]:
    """The layers with no surviving weight, in network order."""
    return [name for name, m in masks.items() if not np.any(as_array(m))]


def reachable(masks: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Each layer's output units (fully connected) or channels (conv) reachable from the input through
    surviving weights, as boolean vectors in network order."""
    out: dict[str, np.ndarray] = {}
    units: np.ndarray | None = None  # the previous layer's reachable units (None: the input, all)
    previous_conv = False
    for name, mask in masks.items():
        alive = as_array(mask) != 0
        if alive.ndim == 4:  # conv [c_out, c_in, k_h, k_w]: channel to channel
            if units is not None and not previous_conv:
                raise ValueError(f"{name}: a convolution after a fully connected layer")
            joins = alive.reshape(alive.shape[0], alive.shape[1], -1).any(axis=2)
            units = joins.any(axis=1) if units is None else joins[:, _fits(units, joins, name)].any(axis=1)
            previous_conv = True
        elif alive.ndim == 2:  # fc [out, in]
            if units is not None and previous_conv:  # channels to (C, H, W) features
                features = alive.shape[1]
                if features % len(units):
                    raise ValueError(
                        f"{name}: {features} inputs are not a whole number of positions for each of "
                        f"the previous convolution's {len(units)} channels"
                    )
                units = np.repeat(units, features // len(units))
            units = alive.any(axis=1) if units is None else alive[:, _fits(units, alive, name)].any(axis=1)
            previous_conv = False
        else:
            raise ValueError(f"{name}: a mask of shape {alive.shape} is neither fully connected nor a conv")
        out[name] = units
    return out


def _fits(units: np.ndarray, joins: np.ndarray, name: str) -> np.ndarray:
    """``units``, the previous layer's reachable units, checked against ``joins``' inputs (axis 1)."""
    inputs = joins.shape[1]
    if len(units) != inputs:
        raise ValueError(f"{name}: {inputs} inputs, but the previous layer has {len(units)} units")
    return units


def disconnected(masks: Mapping[str, Any]) -> bool:
    """True where no path of surviving weights joins any input to any output unit."""
    reach = reachable(masks)
    return not bool(reach[next(reversed(reach))].any()) if reach else True


def collapse(masks: Mapping[str, Any]) -> dict[str, Any]:
    """What a network records of its mask: per-layer ``densities``, the ``collapsed_layers`` and
    whether it is ``disconnected``."""
    return {
        "densities": densities(masks),
        "collapsed_layers": collapsed_layers(masks),
        "disconnected": disconnected(masks),
    }
