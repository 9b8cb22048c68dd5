"""LeNet-300-100 as plain tensors or arrays: a fully connected ReLU network with Gaussian Glorot init.

Parameters live in a flat ``{name: tensor}`` dictionary (``fc1.weight``, ``fc1.bias``, ...), the same
names a ``torch.nn.Sequential`` of ``Linear`` layers would use, so checkpoints are easy to read with
any tool. Only ``*.weight`` tensors are prunable; biases never are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lottery.desc import Architecture

if TYPE_CHECKING:  # only θ0's draw needs PyTorch: the rest takes numpy arrays as well as tensors
    import torch


def glorot_normal_init(arch: Architecture, seed: int) -> dict[str, torch.Tensor]:
    """θ0: weights ~ N(0, 2 / (fan_in + fan_out)), biases zero, drawn from a generator seeded by ``seed``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    params: dict[str, torch.Tensor] = {}
    for name, (fan_out, fan_in) in arch.weight_shapes().items():
        std = math.sqrt(2.0 / (fan_in + fan_out))
        params[name] = torch.randn(fan_out, fan_in, generator=generator) * std
        params[name.replace(".weight", ".bias")] = torch.zeros(fan_out)
    return params


def prunable(params: Mapping[str, Any]) -> dict[str, Any]:
    """The weight matrices of ``params``, in network order."""
    return {name: t for name, t in params.items() if name.endswith(".weight")}


def check_params(params: Mapping[str, Any], arch: Architecture, source: str) -> None:
    """Raise a clear error if ``params`` (read from ``source``) do not fit ``arch``."""
    expected = {}
    for name, shape in arch.weight_shapes().items():
        expected[name] = shape
        expected[name.replace(".weight", ".bias")] = (shape[0],)
    actual = {name: tuple(t.shape) for name, t in params.items()}
    if actual != expected:
        raise ValueError(f"{source}: parameters {actual} do not match the architecture {expected}")


def layer_sizes(arch: Architecture) -> dict[str, int]:
    return {name: o * i for name, (o, i) in arch.weight_shapes().items()}
