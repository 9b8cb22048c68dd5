"""``mlp``: a fully connected ReLU network, the widths of its hidden layers ``model.hidden`` -
LeNet-300-100 (784-300-100-10) by default, the paper's MNIST network (Frankle & Carbin 2019, Table 1:
266K weights). Its layers are ``fc1``, ``fc2``, ... (``torch.nn.Linear``'s names), the last the output.

The project's compiled kernels (:mod:`lottery.native`) train it; θ0 is bitwise the one the project
always drew (the same draws in the same order: ``tests/test_models.py`` checks its digest).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lottery.models import Dense, Layer, Model

if TYPE_CHECKING:
    from lottery.desc import Architecture


class MLP(Model):
    name = "mlp"
    description = "fully connected ReLU layers of model.hidden widths (LeNet-300-100 by default)"
    native = True

    def layers(self, arch: Architecture) -> tuple[Layer, ...]:
        return (*(Dense(width) for width in arch.hidden), Dense(None))

    def forward_layers(self, params: Mapping[str, Any]) -> tuple[Layer, ...]:
        n = sum(name.endswith(".weight") for name in params)
        return (*(Dense(params[f"fc{i + 1}.weight"].shape[0]) for i in range(n - 1)), Dense(None))


MODEL = MLP()
