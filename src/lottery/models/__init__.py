"""The models, chosen by name (``model.name`` in the config): each one module of this package that
defines ``MODEL``, a :class:`Model`, found as this package is imported (a new model is one
file here plus its name in the config schema's ``model.name`` enum).

A model says, for an :class:`lottery.desc.Architecture` (the input size, channels and classes of the
data; ``hidden`` is only ``mlp``'s):

- :meth:`Model.param_shapes`: its parameters in network order, ``{name: shape}``, each layer's
  ``.weight`` then ``.bias``: conv layers ``conv<i>`` (weights ``[out, in, k, k]``), fully connected
  ones ``fc<i>`` (weights ``[out, in]``), numbered from 1 in their own kind; the last ``fc`` is the
  output layer. Only ``.weight`` tensors are prunable; biases never are;
- :meth:`Model.kinds`: each weight's kind, ``"conv"``, ``"fc"`` or ``"output"`` (what per-kind pruning
  rates are keyed by);
- :meth:`Model.init`: θ0, Gaussian Glorot weights (N(0, 2 / (fan_in + fan_out)), the fans counting a
  conv kernel's receptive field as Keras and TensorFlow do: ``fan_in = in * k * k``, ``fan_out = out *
  k * k``) drawn in network order from ``torch.Generator().manual_seed(seed)``, biases zero. The
  paper's code (TensorFlow) drew Glorot normal weights; a plain normal, as the project always drew,
  not TensorFlow 1's truncated one;
- :meth:`Model.forward`: logits from the parameters and flat float32 inputs ``[n, C * H * W]``
  (PyTorch functional; reshaped to ``N x C x H x W`` where the model has conv layers, ``C`` the first
  conv weight's input channels, ``H = W = sqrt(features / C)``).

This module and the models import no PyTorch (the workflow builds its DAG from the shapes); ``init``
and ``forward`` import it when called.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lottery.registry import discover

if TYPE_CHECKING:
    import torch

    from lottery.desc import Architecture

CONV, FC, OUTPUT = "conv", "fc", "output"  # the kinds of weights


@dataclass(frozen=True)
class Conv:
    """A ``kernel x kernel`` convolution to ``out`` channels, zero padding ``padding``, then ReLU."""

    out: int
    kernel: int = 3
    padding: int = 1


@dataclass(frozen=True)
class Pool:
    """A ``size x size`` max pool of stride ``size`` (an odd row or column left over is dropped)."""

    size: int = 2


@dataclass(frozen=True)
class Dense:
    """A fully connected layer to ``out`` units, then ReLU; ``out`` None: the output layer (logits,
    ``num_classes`` of them, no ReLU), always the last."""

    out: int | None = None


Layer = Conv | Pool | Dense


class Model:
    """A feed-forward network given by its layers (:meth:`layers`): everything else follows from
    them. A subclass sets ``name``, ``description``, ``native`` and ``LAYERS`` (or overrides
    :meth:`layers`, as ``mlp`` does, whose widths are the architecture's)."""

    name: str = ""
    description: str = ""
    native: bool = False  # lottery.native's kernels train it (fully connected layers only)
    LAYERS: tuple[Layer, ...] = ()

    def layers(self, arch: Architecture) -> tuple[Layer, ...]:
        return self.LAYERS

    def forward_layers(self, params: Mapping[str, Any]) -> tuple[Layer, ...]:
        """The layers as :meth:`forward` walks them (their widths read from ``params``)."""
        return self.LAYERS

    def param_shapes(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` in network order, each layer's weight then its bias; a ValueError naming
        the ``model.*`` key where the architecture does not fit the model."""
        layers = self.layers(arch)
        if not layers or layers[-1] != Dense(None):
            raise ValueError(f"model {self.name}: the last layer must be the output layer Dense(None)")
        convs = sum(isinstance(layer, Conv) for layer in layers)
        channels, side = arch.channels, None
        if convs:
            side = math.isqrt(arch.input_size // arch.channels)
            if arch.input_size % arch.channels or side * side * arch.channels != arch.input_size:
                raise ValueError(
                    f"model.name {self.name} takes square images: model.input_size {arch.input_size} "
                    f"is not model.channels {arch.channels} x a square number of pixels"
                )
        features = arch.input_size
        shapes: dict[str, tuple[int, ...]] = {}
        n_conv = n_fc = 0
        for layer in layers:
            if isinstance(layer, Conv):
                if n_fc:
                    raise ValueError(f"model {self.name}: a conv layer after a fully connected one")
                n_conv += 1
                shapes[f"conv{n_conv}.weight"] = (layer.out, channels, layer.kernel, layer.kernel)
                shapes[f"conv{n_conv}.bias"] = (layer.out,)
                channels, side = layer.out, side + 2 * layer.padding - layer.kernel + 1
            elif isinstance(layer, Pool):
                side //= layer.size
            else:
                if n_conv and not n_fc:
                    features = channels * side * side
                n_fc += 1
                out = arch.num_classes if layer.out is None else layer.out
                shapes[f"fc{n_fc}.weight"] = (out, features)
                shapes[f"fc{n_fc}.bias"] = (out,)
                features = out
            if side is not None and side < 1:
                raise ValueError(
                    f"model.name {self.name}: model.input_size {arch.input_size} (model.channels "
                    f"{arch.channels}) is too small an image for its layers"
                )
        return shapes

    def weight_shapes(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        """The prunable weights' shapes, in network order."""
        return {n: s for n, s in self.param_shapes(arch).items() if n.endswith(".weight")}

    def kinds(self, arch: Architecture) -> dict[str, str]:
        """Each weight's kind: ``conv``, ``fc`` or ``output`` (the last layer)."""
        names = list(self.weight_shapes(arch))
        return {n: OUTPUT if n == names[-1] else CONV if n.startswith("conv") else FC for n in names}

    def init(self, arch: Architecture, seed: int) -> dict[str, torch.Tensor]:
        """θ0: Gaussian Glorot weights from ``torch.Generator().manual_seed(seed)`` in network order,
        biases zero (see the module's docstring)."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        params: dict[str, torch.Tensor] = {}
        for name, shape in self.param_shapes(arch).items():
            if name.endswith(".bias"):
                params[name] = torch.zeros(shape)
                continue
            field = math.prod(shape[2:])  # a conv kernel's receptive field; 1 for a matrix
            std = math.sqrt(2.0 / (shape[1] * field + shape[0] * field))
            params[name] = torch.randn(*shape, generator=generator) * std
        return params

    def forward(self, params: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """Logits of the flat inputs ``x`` ``[n, C * H * W]`` (PyTorch functional, differentiable)."""
        import torch.nn.functional as F

        a = x
        if "conv1.weight" in params:
            channels = params["conv1.weight"].shape[1]
            side = math.isqrt(x.shape[1] // channels)
            a = x.reshape(len(x), channels, side, side)
        n_conv = n_fc = 0
        for layer in self.forward_layers(params):
            if isinstance(layer, Conv):
                n_conv += 1
                w, b = params[f"conv{n_conv}.weight"], params[f"conv{n_conv}.bias"]
                a = F.relu(F.conv2d(a, w, b, padding=layer.padding))
            elif isinstance(layer, Pool):
                a = F.max_pool2d(a, layer.size)
            else:
                n_fc += 1
                if a.dim() > 2:
                    a = a.flatten(1)
                a = F.linear(a, params[f"fc{n_fc}.weight"], params[f"fc{n_fc}.bias"])
                if layer.out is not None:
                    a = F.relu(a)
        return a


REGISTRY: dict[str, Model] = discover(__name__, __path__, "MODEL", Model)  # last: they import it


def get(name: str) -> Model:
    """The model ``name``; an unknown name is a ValueError naming ``model.name`` and the choices."""
    if name not in REGISTRY:
        raise ValueError(f"model.name {name!r} is not a model: expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def of(arch: Architecture) -> Model:
    """The model of ``arch`` (its ``name``)."""
    return get(arch.name)


def prunable(params: Mapping[str, Any]) -> dict[str, Any]:
    """The weights of ``params`` (every ``*.weight``), in network order."""
    return {name: t for name, t in params.items() if name.endswith(".weight")}


def check_params(params: Mapping[str, Any], arch: Architecture, source: str) -> None:
    """Raise a clear error if ``params`` (read from ``source``) do not fit ``arch``."""
    expected = of(arch).param_shapes(arch)
    actual = {name: tuple(t.shape) for name, t in params.items()}
    if actual != expected:
        raise ValueError(f"{source}: parameters {actual} do not match the architecture {expected}")
