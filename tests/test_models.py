"""The model registry (lottery.models): each model's weights and shapes (the paper's Table 1), kinds,
θ0 and forward pass; the Architecture that asks it; mlp's θ0 bitwise the one the project always drew."""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys

import pytest
import torch

from lottery import models, schema
from lottery.desc import Architecture
from lottery.model import glorot_normal_init
from lottery.torch_trainer import forward as reference_forward

CIFAR = {"input_size": 3 * 32 * 32, "channels": 3}  # CIFAR-10's images, the paper's Table 1
MNIST = {"input_size": 28 * 28, "channels": 1}
CONV_NETS = ("conv2", "conv4", "conv6")


def _arch(name: str, **sizes) -> Architecture:
    return Architecture(name=name, **sizes)


def _count(shapes) -> int:
    return sum(math.prod(shape) for shape in shapes.values())


def test_the_registry_is_the_schemas_enum_and_an_unknown_name_is_a_clear_error():
    enum = schema.load()["properties"]["model"]["properties"]["name"]["enum"]
    assert sorted(models.REGISTRY) == sorted(enum) == ["conv2", "conv4", "conv6", "lenet5", "mlp"]
    assert schema.defaults()["model"]["name"] == Architecture().name == "mlp"
    with pytest.raises(ValueError, match=r"model\.name 'resnet' is not a model: expected one of \['conv2'"):
        models.get("resnet")
    with pytest.raises(ValueError, match=r"model\.name 'resnet'"):
        Architecture(name="resnet")


@pytest.mark.parametrize(
    ("name", "weights", "conv_weights", "exact", "exact_conv"),
    [("conv2", 4.3e6, 38e3, 4_300_992, 38_592), ("conv4", 2.4e6, 260e3, 2_425_024, 259_776)],
)
def test_conv_nets_have_the_papers_table_1_weight_counts(name, weights, conv_weights, exact, exact_conv):
    """Table 1 (CIFAR-10): all weights and the conv layers' (the paper's rounding: 38.6K reads 38K)."""
    shapes = _arch(name, **CIFAR).weight_shapes()
    conv = sum(math.prod(s) for n, s in shapes.items() if n.startswith("conv"))
    assert (_count(shapes), conv) == (exact, exact_conv)
    assert abs(_count(shapes) / weights - 1) < 0.02 and abs(conv / conv_weights - 1) < 0.02


def test_conv6_has_table_1s_conv_weights_and_the_total_its_layers_give():
    """Table 1: Conv-6 1.7M weights, 1.1M of them conv. The layers Figure 2 and Table 1 give (six 3x3
    convs, three pools, fc 256, 256, 10) hold 1.1M conv weights and 2.26M in all (4 x 4 x 256 = 4,096
    features into fc 256: 1.05M); the 1.7M does not follow from them."""
    shapes = _arch("conv6", **CIFAR).weight_shapes()
    conv = sum(math.prod(s) for n, s in shapes.items() if n.startswith("conv"))
    assert round(conv, -5) == 1.1e6
    assert conv == 1_144_512
    assert shapes["fc1.weight"] == (256, 4096)
    assert _count(shapes) == 2_261_184


def test_shapes_names_and_order():
    shapes = models.get("conv4").param_shapes(_arch("conv4", **CIFAR))
    assert list(shapes) == [
        f"{layer}.{kind}" for layer in ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "fc3")
        for kind in ("weight", "bias")
    ]  # fmt: skip
    assert shapes["conv1.weight"] == (64, 3, 3, 3) and shapes["conv1.bias"] == (64,)
    assert shapes["conv3.weight"] == (128, 64, 3, 3)
    assert shapes["fc1.weight"] == (256, 128 * 8 * 8)
    assert shapes["fc3.weight"] == (10, 256) and shapes["fc3.bias"] == (10,)
    lenet5 = models.get("lenet5").param_shapes(_arch("lenet5", **MNIST))
    assert {n: s for n, s in lenet5.items() if n.endswith(".weight")} == {
        "conv1.weight": (6, 1, 5, 5),
        "conv2.weight": (16, 6, 5, 5),
        "fc1.weight": (120, 16 * 5 * 5),  # padding 2 on 28 x 28: 28, 14, 10, 5
        "fc2.weight": (84, 120),
        "fc3.weight": (10, 84),
    }
    assert _count(_arch("lenet5", **MNIST).weight_shapes()) == 61_470
    assert _arch("lenet5", **CIFAR).weight_shapes()["fc1.weight"] == (120, 16 * 6 * 6)
    assert _arch("conv2", **MNIST).weight_shapes()["fc1.weight"] == (256, 64 * 14 * 14)


def test_mlp_is_lenet_300_100_as_before():
    arch = Architecture()
    assert arch.weight_shapes() == {
        "fc1.weight": (300, 784),
        "fc2.weight": (100, 300),
        "fc3.weight": (10, 100),
    }
    assert arch.layer_names == ["fc1", "fc2", "fc3"]
    assert arch.weight_names == ["fc1.weight", "fc2.weight", "fc3.weight"]
    assert arch.prunable_count == 266_200
    small = Architecture(input_size=20, hidden=(16, 8, 6), num_classes=4)
    assert small.weight_shapes() == {
        "fc1.weight": (16, 20), "fc2.weight": (8, 16), "fc3.weight": (6, 8), "fc4.weight": (4, 6),
    }  # fmt: skip
    assert models.get("mlp").kinds(small) == {
        "fc1.weight": "fc", "fc2.weight": "fc", "fc3.weight": "fc", "fc4.weight": "output",
    }  # fmt: skip


def test_architecture_asks_the_model():
    arch = _arch("conv2", **CIFAR)
    assert arch.layer_names == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    assert arch.weight_names == [f"{n}.weight" for n in arch.layer_names]
    assert arch.prunable_count == 4_300_992
    assert models.of(arch) is models.get("conv2")


@pytest.mark.parametrize("name", (*CONV_NETS, "lenet5"))
def test_kinds(name):
    kinds = models.get(name).kinds(_arch(name, **CIFAR))
    assert list(kinds) == list(_arch(name, **CIFAR).weight_shapes())
    assert [k for n, k in kinds.items() if n.startswith("conv")] == ["conv"] * (len(kinds) - 3)
    assert [kinds[f"fc{i}.weight"] for i in (1, 2, 3)] == ["fc", "fc", "output"]


def test_architectures_that_do_not_fit_are_clear_errors():
    with pytest.raises(ValueError, match=r"model\.hidden is mlp's"):
        Architecture(name="conv2", hidden=(10,))
    with pytest.raises(ValueError, match=r"model\.input_size 784 is not model\.channels 3 x a square"):
        Architecture(name="conv2", channels=3)
    with pytest.raises(ValueError, match=r"model\.input_size 1000 is not model\.channels 1 x a square"):
        Architecture(name="lenet5", input_size=1000)
    with pytest.raises(ValueError, match=r"model\.input_size 4 .* too small"):
        Architecture(name="conv6", input_size=4)
    with pytest.raises(ValueError, match=r"model\.channels must be a positive integer"):
        Architecture(channels=0)


def _digest(params) -> str:
    h = hashlib.sha256()
    for name, t in params.items():
        h.update(name.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def test_mlp_theta0_is_bitwise_the_projects():
    """Digests of θ0 as lottery.model drew it before the registry (commit e6a44bc): every committed
    result was trained from these bits."""
    assert _digest(glorot_normal_init(Architecture(), 1)) == (
        "7afee1f245cb1e0bac516fb88f236c6fbfc58f7803f66c83e8afd1739c8f8401"
    )
    small = Architecture(input_size=20, hidden=(16, 8), num_classes=4)
    assert _digest(models.get("mlp").init(small, 7)) == (
        "37de4b4a600f5eec7fe08742a669e3b416bad62fe3650c2b143b1429096f38e2"
    )


@pytest.mark.parametrize("name", ("lenet5", "conv2", "conv6"))
def test_init_is_glorot_normal_with_the_receptive_field_and_deterministic(name):
    arch = _arch(name, **CIFAR)
    params = models.get(name).init(arch, seed=3)
    assert {n: tuple(t.shape) for n, t in params.items()} == models.get(name).param_shapes(arch)
    for n, t in params.items():
        assert t.dtype == torch.float32
        if n.endswith(".bias"):
            assert bool((t == 0).all())
            continue
        field = math.prod(t.shape[2:])
        std = math.sqrt(2 / (t.shape[1] * field + t.shape[0] * field))
        # the sample's std within 5 standard errors (n >= 162 draws), its mean near 0
        assert abs(float(t.std()) / std - 1) < 5 / math.sqrt(2 * t.numel()), n
        assert abs(float(t.mean())) < 5 * std / math.sqrt(t.numel()), n
    again, other = models.get(name).init(arch, seed=3), models.get(name).init(arch, seed=4)
    assert all(torch.equal(params[n], again[n]) for n in params)
    assert not torch.equal(params["conv1.weight"], other["conv1.weight"])


@pytest.mark.parametrize("name", sorted(models.REGISTRY))
@pytest.mark.parametrize("sizes", [MNIST, CIFAR], ids=["mnist", "cifar"])
def test_forward_gives_logits(name, sizes):
    arch = _arch(name, **sizes, num_classes=7)
    params = models.get(name).init(arch, seed=1)
    x = torch.randn(5, arch.input_size, generator=torch.Generator().manual_seed(0))
    logits = models.get(name).forward(params, x)
    assert logits.shape == (5, 7) and logits.dtype == torch.float32
    assert bool(torch.isfinite(logits).all())


def test_conv_forward_reads_channel_major_images():
    """The flat inputs are C x H x W, channel first (as a flattened N x C x H x W tensor)."""
    arch = _arch("conv2", input_size=3 * 8 * 8, channels=3)
    params = models.get("conv2").init(arch, seed=1)
    images = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    a = torch.nn.functional.conv2d(images, params["conv1.weight"], params["conv1.bias"], padding=1).relu()
    a = torch.nn.functional.conv2d(a, params["conv2.weight"], params["conv2.bias"], padding=1).relu()
    a = torch.nn.functional.max_pool2d(a, 2).flatten(1)
    for i in (1, 2, 3):
        a = torch.nn.functional.linear(a, params[f"fc{i}.weight"], params[f"fc{i}.bias"])
        a = a.relu() if i < 3 else a
    torch.testing.assert_close(models.get("conv2").forward(params, images.flatten(1)), a, rtol=0, atol=0)


def test_mlp_forward_is_the_reference_trainers():
    arch = Architecture(input_size=20, hidden=(16, 8), num_classes=4)
    params = models.get("mlp").init(arch, seed=2)
    x = torch.randn(9, 20, generator=torch.Generator().manual_seed(0))
    weights = [params[f"fc{i}.weight"] for i in (1, 2, 3)]
    biases = [params[f"fc{i}.bias"] for i in (1, 2, 3)]
    torch.testing.assert_close(models.get("mlp").forward(params, x), reference_forward(weights, biases, x))


def test_check_params_names_what_does_not_fit():
    arch = _arch("lenet5", **MNIST)
    params = models.get("lenet5").init(arch, seed=1)
    models.check_params(params, arch, "init.safetensors")
    with pytest.raises(ValueError, match=r"init\.safetensors: parameters"):
        models.check_params(params, _arch("lenet5", **CIFAR), "init.safetensors")


def test_the_registry_and_the_shapes_import_no_pytorch():
    code = (
        "import sys; from lottery.desc import Architecture; import lottery.models as m; "
        "a = Architecture(name='conv6', input_size=3072, channels=3); "
        "assert a.prunable_count > 0 and m.get('conv6').kinds(a); "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
