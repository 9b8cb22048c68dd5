"""The names the project's callers have always used for a network's parameters, now those of the
model registry (:mod:`lottery.models`, which holds every model: ``mlp``, LeNet-300-100 by default, is
one of them). Parameters live in a flat ``{name: tensor}`` dictionary (``fc1.weight``, ``fc1.bias``,
``conv1.weight``, ...); only ``*.weight`` tensors are prunable.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lottery.desc import Architecture
from lottery.models import check_params, prunable
from lottery.models import of as model_of

if TYPE_CHECKING:  # only θ0's draw needs PyTorch: the rest takes numpy arrays as well as tensors
    import torch

__all__ = ["Architecture", "check_params", "glorot_normal_init", "layer_sizes", "prunable"]


def glorot_normal_init(arch: Architecture, seed: int) -> dict[str, torch.Tensor]:
    """θ0 of ``arch``'s model: Gaussian Glorot weights, biases zero (:meth:`lottery.models.Model.init`)."""
    return model_of(arch).init(arch, seed)


def layer_sizes(arch: Architecture) -> dict[str, int]:
    """Each weight's number of entries, in network order."""
    return {name: math.prod(shape) for name, shape in arch.weight_shapes().items()}
