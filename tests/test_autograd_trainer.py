"""The autograd trainer (lottery.autograd_trainer): any registered model under its masks, the paper's
protocol, driven by lottery.training.train; its agreement with the native trainer on LeNet-300-100.

The agreement's tolerance, measured on the .test MNIST sample (800 training images, batch 60), with
LeNet-300-100 trained from the same θ0, masks and data order by both trainers: the two sum in
different orders, and Adam's update m / (sqrt(v) + eps) turns a gradient's rounding into an update's
difference where the gradient is near eps (a sum that cancels). After one step the weights differ by
at most 3.7e-6 (dense; 5.4e-6 at 30% of the weights, the native trainer's sparse path), after 100 by
3.3e-5 (5.4e-6), after 300 by 5.5e-4 (4.8e-4): the differences grow as training goes, chaotically.
The validation losses differ by at most 3e-7 up to iteration 100, 1e-4 at 300. PyTorch's own MLP
reference trainer (lottery.torch_trainer) differs from the native one by the same amounts (7.7e-6
after one step, 5.5e-4 after 300). The test allows, with about 10 times margin:
:data:`STEP_TOLERANCE` 5e-5 on the weights after one step, :data:`EARLY_TOLERANCE` 3e-4 after 100,
:data:`WEIGHT_TOLERANCE` 5e-3 after 300 (weights up to 0.2 in size) and :data:`LOSS_TOLERANCE` 1e-3
on the curve's losses (accuracies within 2 of the 200 validation images). A wrong protocol is far
outside: Adam's eps not scaled by the batch, for one, moves weights by 1e-3 in the first step.
"""

from __future__ import annotations

import dataclasses
import gzip

import numpy as np
import pytest
import torch

from lottery import kernels, models, pruning
from lottery.autograd_trainer import EVALUATION_ROWS, AutogradTrainer
from lottery.data import TensorData
from lottery.desc import Architecture, TrainingHparams, plain, recorded, to_params
from lottery.training import make_trainer, train

from .conftest import SAMPLE, synthetic_data

STEP_TOLERANCE = 5e-5  # the weights after one step (measured: 5.4e-6)
EARLY_TOLERANCE = 3e-4  # after 100 steps (measured: 3.3e-5)
WEIGHT_TOLERANCE = 5e-3  # after 300 steps (measured: 5.5e-4)
LOSS_TOLERANCE = 1e-3  # the curve's losses over 300 steps (measured: 1e-4)


@pytest.fixture(autouse=True)
def one_thread():
    """One PyTorch thread, as a workflow job has: two threads on a 2-core machine that is busy with
    something else wait on each other at every small operation."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _idx(name: str) -> np.ndarray:
    content = gzip.decompress((SAMPLE / name).read_bytes())
    ndim = content[3]
    shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _sample(side: int = 28) -> TensorData:
    """The .test MNIST sample: 800 training, 200 validation and 200 test images, normalised as the
    workflow does (float32, the training images' mean and std), flat; ``side`` 14 halves each side."""
    images = torch.from_numpy(_idx("train-images-idx3-ubyte.gz").copy()).float().div_(255.0)
    test_images = torch.from_numpy(_idx("t10k-images-idx3-ubyte.gz").copy()).float().div_(255.0)
    labels = torch.from_numpy(_idx("train-labels-idx1-ubyte.gz").astype(np.int64))
    test_labels = torch.from_numpy(_idx("t10k-labels-idx1-ubyte.gz").astype(np.int64))
    if side != 28:
        images = torch.nn.functional.avg_pool2d(images[:, None], 28 // side)[:, 0]
        test_images = torch.nn.functional.avg_pool2d(test_images[:, None], 28 // side)[:, 0]
    mean, std = float(images[:800].mean()), float(images[:800].std())

    def norm(x):
        return ((x - mean) / std).reshape(len(x), -1).contiguous()

    return TensorData(norm(images[:800]), labels[:800], norm(images[800:]), labels[800:],
                      norm(test_images), test_labels, background=(0.0 - mean) / std)  # fmt: skip


def _random_masks(init, keep, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: (torch.rand(w.shape, generator=g) < keep).float() for n, w in models.prunable(init).items()}


NO_KERNELS = pytest.mark.skipif(kernels.load() is None, reason=f"no kernels: {kernels.unavailable_reason}")
MASKS = pytest.mark.parametrize("keep", [1.0, 0.3], ids=["dense", "pruned"])


def _lenet_300_100(keep):
    init = models.get("mlp").init(Architecture(), seed=1)
    masks = _random_masks(init, keep) if keep < 1 else pruning.dense_masks(models.prunable(init))
    return init, masks


def _max_difference(a, b) -> float:
    return max(float(np.abs(np.asarray(a[n]) - np.asarray(b[n])).max()) for n in a)


@NO_KERNELS
@MASKS
def test_steps_agree_with_the_native_trainers(keep):
    data = _sample()
    init, masks = _lenet_300_100(keep)
    native, _ = make_trainer(init, masks, data, TrainingHparams(), data_order_seed=5)
    auto, paths = make_trainer(init, masks, data, TrainingHparams(backend="autograd"), data_order_seed=5)
    assert isinstance(auto, AutogradTrainer) and set(paths.values()) == {"dense"}
    native.run(1)
    auto.run(1)
    assert 0 < _max_difference(auto.state_dict(), native.state_dict()) < STEP_TOLERANCE
    native.run(99)
    auto.run(99)
    assert _max_difference(auto.state_dict(), native.state_dict()) < EARLY_TOLERANCE
    assert auto.take_train_loss() == pytest.approx(native.take_train_loss(), abs=1e-6)


@NO_KERNELS
@pytest.mark.parametrize(
    ("keep", "start"), [(1.0, 0), (0.3, 0), (1.0, 50)], ids=["dense", "pruned", "theta50"]
)
def test_training_agrees_with_the_native_trainer_on_lenet_300_100(keep, start):
    data = _sample()
    init, masks = _lenet_300_100(keep)
    hp = TrainingHparams(iterations=300, eval_every=100)
    native = train(init, masks, data, hp, data_order_seed=5, start_iteration=start)
    auto = train(init, masks, data, dataclasses.replace(hp, backend="autograd"), 5, start)
    assert (native.backend, auto.backend) == ("native", "autograd")
    assert set(auto.paths.values()) == {"dense"}
    if keep < 1:
        assert set(native.paths.values()) == {"sparse"}  # the native trainer's other path
    for name in init:
        torch.testing.assert_close(auto.params[name], native.params[name], rtol=0, atol=WEIGHT_TOLERANCE)
    for name, mask in masks.items():
        assert bool((auto.params[name][mask == 0] == 0).all())
    for a, n in zip(auto.curve, native.curve, strict=True):
        assert a["iteration"] == n["iteration"]
        for key in ("train_loss", "val_loss"):
            assert a[key] == pytest.approx(n[key], abs=LOSS_TOLERANCE), (a["iteration"], key)
        assert a["val_acc"] == pytest.approx(n["val_acc"], abs=2 / 200)
    assert auto.early_stop_iteration == native.early_stop_iteration
    assert auto.final_test.accuracy == pytest.approx(native.final_test.accuracy, abs=2 / 200)


def _conv_data(n=120, side=8, channels=1, seed=0) -> TensorData:
    """Small learnable images: the label is the quadrant of the brightest blob."""
    g = torch.Generator().manual_seed(seed)

    def part(count):
        x = torch.randn(count, channels, side, side, generator=g) * 0.3
        y = torch.randint(0, 4, (count,), generator=g)
        half = side // 2
        for i, label in enumerate(y.tolist()):
            r, c = divmod(label, 2)
            x[i, :, r * half : (r + 1) * half, c * half : (c + 1) * half] += 1.0
        return x.flatten(1).contiguous(), y

    return TensorData(*part(n), *part(40), *part(40))


def test_pruned_conv_weights_stay_exactly_zero():
    data = _conv_data()
    arch = Architecture(name="conv2", input_size=64, num_classes=4)
    init = models.get("conv2").init(arch, seed=2)
    masks = _random_masks(init, keep=0.5, seed=1)
    hp = TrainingHparams(iterations=30, batch_size=20, eval_every=10, backend="autograd")
    result = train(init, masks, data, hp, data_order_seed=3, model="conv2")
    assert result.backend == "autograd"
    for name, mask in masks.items():
        trained = result.params[name]
        assert bool((trained[mask == 0] == 0).all()), name
        moved = (trained[mask == 1] != init[name][mask == 1]).float().mean()
        assert moved > 0.5, name  # Adam moves the survivors (not those of units silent throughout)


def test_same_seed_same_bits_different_order_differs():
    data = _conv_data(side=16)
    arch = Architecture(name="lenet5", input_size=256, num_classes=4)
    init = models.get("lenet5").init(arch, seed=2)
    masks = _random_masks(init, keep=0.7)
    hp = TrainingHparams(iterations=20, batch_size=20, eval_every=10)
    a, b = (train(init, masks, data, hp, data_order_seed=3, model="lenet5") for _ in range(2))
    c = train(init, masks, data, hp, data_order_seed=4, model="lenet5")
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params) and a.curve == b.curve
    assert not torch.equal(a.params["conv1.weight"], c.params["conv1.weight"])


@pytest.mark.parametrize(("name", "side"), [("lenet5", 28), ("conv2", 14)])
def test_conv_nets_train_through_train_on_backend_native(name, side):
    """Backend native (the default) trains the models the kernels do not on the autograd trainer; on
    the .test MNIST sample (conv2's at 14 x 14, to stay fast) the loss falls."""
    data = _sample(side)
    arch = Architecture(name=name, input_size=side * side)
    init = models.get(name).init(arch, seed=1)
    masks = _random_masks(init, keep=0.8)
    hp = TrainingHparams(iterations=60, eval_every=20, test_every=20)
    assert hp.backend == "native"
    result = train(init, masks, data, hp, data_order_seed=2, model=name)
    assert result.backend == "autograd" and result.kernel_flavour is None
    assert result.paths == dict.fromkeys(arch.weight_names, "dense")
    losses = [row["val_loss"] for row in result.curve]
    assert losses[-1] < 0.7 * losses[0] < 0.7 * 2.5, losses
    assert result.final_test.accuracy > 0.5
    assert result.curve[0]["train_loss"] > result.curve[-1]["train_loss"]


def test_numpy_inputs_give_numpy_weights():
    tensors = _conv_data(side=16)
    arrays = type(tensors)(*(np.asarray(getattr(tensors, f)) for f in ("train_x", "train_y", "val_x",
                                                                       "val_y", "test_x", "test_y")))  # fmt: skip
    arch = Architecture(name="lenet5", input_size=256, num_classes=4)
    init = {n: t.numpy() for n, t in models.get("lenet5").init(arch, seed=2).items()}
    masks = {n: np.ones_like(w) for n, w in models.prunable(init).items()}
    hp = TrainingHparams(iterations=5, batch_size=20, eval_every=5)
    result = train(init, masks, arrays, hp, data_order_seed=3, model="lenet5")
    assert all(isinstance(t, np.ndarray) and t.shape == init[n].shape for n, t in result.params.items())


def test_evaluation_in_parts_is_the_evaluation_at_once():
    data = synthetic_data(n_val=EVALUATION_ROWS + 37)
    arch = Architecture(input_size=20, hidden=(16, 8), num_classes=4)
    init = models.get("mlp").init(arch, seed=1)
    trainer = AutogradTrainer(init, _random_masks(init, 0.5), data, TrainingHparams(), 0)
    trainer.run(3)
    parts = trainer.evaluate(data.val_x, data.val_y)
    logits = models.get("mlp").forward(trainer.state_dict(), data.val_x)
    assert parts.loss == pytest.approx(float(torch.nn.functional.cross_entropy(logits, data.val_y)), rel=1e-6)
    assert parts.accuracy == int((logits.argmax(1) == data.val_y).sum()) / len(data.val_y)
    best = trainer.flat_copy()
    trainer.run(5)
    assert trainer.evaluate(data.val_x, data.val_y, flat=best) == parts


def test_backends_and_models_that_do_not_go_together_are_clear_errors():
    data = _conv_data()
    init = models.get("conv2").init(Architecture(name="conv2", input_size=64, num_classes=4), seed=1)
    masks = {n: torch.ones_like(w) for n, w in models.prunable(init).items()}
    with pytest.raises(
        ValueError, match=r"training\.backend torch is the reference trainer of mlp: model\.name conv2"
    ):
        make_trainer(init, masks, data, TrainingHparams(backend="torch"), 0, model="conv2")
    with pytest.raises(ValueError, match=r"model\.name conv2: parameters .* do not fit inputs of 144"):
        make_trainer(init, masks, _conv_data(side=12), TrainingHparams(), 0, model="conv2")
    with pytest.raises(ValueError, match=r"model\.name 'conv9' is not a model"):
        make_trainer(init, masks, data, TrainingHparams(), 0, model="conv9")
    with pytest.raises(ValueError, match=r"training\.device must be one of \['cpu', 'cuda'\], got 'gpu'"):
        TrainingHparams(device="gpu")
    with pytest.raises(ValueError, match=r"training\.backend torch trains on the CPU"):
        mlp = models.get("mlp").init(Architecture(input_size=64, num_classes=4), seed=1)
        make_trainer(mlp, models.prunable(mlp), data, TrainingHparams(backend="torch", device="cuda"), 0)


def test_the_device_is_left_out_of_params_records_and_metrics():
    assert TrainingHparams().device == "cpu"
    assert "device" not in to_params(TrainingHparams()) and "device" not in plain(TrainingHparams())
    on_gpu = TrainingHparams(device="cuda")
    assert to_params(on_gpu) == {"device": "cuda"}
    assert "device" not in recorded(on_gpu)


def test_cuda_without_a_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = _conv_data(side=16)
    init = models.get("lenet5").init(Architecture(name="lenet5", input_size=256, num_classes=4), seed=1)
    with pytest.raises(ValueError, match=r"training\.device is 'cuda' but PyTorch sees no CUDA GPU"):
        train(
            init, models.prunable(init), data, TrainingHparams(device="cuda", iterations=2), 0, model="lenet5"
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_cuda_trains_what_the_cpu_trains():
    """On a GPU: the same protocol as on the CPU, weights within float rounding after 100 steps (and
    the masks kept exactly); the weights come back on the CPU."""
    data = _conv_data()
    arch = Architecture(name="conv2", input_size=64, num_classes=4)
    init = models.get("conv2").init(arch, seed=2)
    masks = _random_masks(init, keep=0.5, seed=1)
    hp = TrainingHparams(iterations=100, batch_size=20, eval_every=50, backend="autograd")
    cpu = train(init, masks, data, hp, 3, model="conv2")
    gpu = train(init, masks, data, dataclasses.replace(hp, device="cuda"), 3, model="conv2")
    for name in init:
        assert gpu.params[name].device.type == "cpu"
        torch.testing.assert_close(gpu.params[name], cpu.params[name], rtol=1e-3, atol=1e-4)
    for name, mask in masks.items():
        assert bool((gpu.params[name][mask == 0] == 0).all())
    assert gpu.curve[-1]["val_loss"] == pytest.approx(cpu.curve[-1]["val_loss"], abs=1e-3)
