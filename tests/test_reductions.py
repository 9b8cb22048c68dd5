"""The decode and split jobs without PyTorch give PyTorch's bits: the float64 sum, mean and standard
deviation of lottery.reductions against PyTorch's own on one thread (as the split job ran them), on
random data of every size class of ATen's cascade sum and on the committed sample; the split's and
the decoded data's files against those the PyTorch code wrote."""

from __future__ import annotations

import gzip
import math
import platform

import numpy as np
import pytest
import torch

from lottery import data, fetch, io, jobs, reductions
from lottery.desc import Architecture, to_params

from .conftest import SAMPLE

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"),
    reason="lottery.reductions gives the bits of PyTorch's x86-64 kernels; PyTorch on this CPU may round otherwise",
)


@pytest.fixture(autouse=True)
def one_thread():
    """PyTorch on one thread, as the split job ran it (more threads sum in other chunks)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """The split's statistics as the PyTorch code computed them."""
    x = torch.from_numpy(images).double().div_(255.0)
    return float(x.mean()), float(x.std())


def torch_split(dataset: dict[str, np.ndarray], validation_size: int, seed: int) -> dict[str, torch.Tensor]:
    """The split as the PyTorch code made it: torch.randperm's indices, PyTorch's statistics."""
    n = len(dataset["train_labels"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    train, val = perm[validation_size:].sort().values, perm[:validation_size].sort().values
    mean, std = torch_pixel_stats(dataset["train_images"][train.numpy()])
    return {
        "train_indices": train,
        "val_indices": val,
        "mean": torch.tensor(mean, dtype=torch.float64),
        "std": torch.tensor(std, dtype=torch.float64),
    }


def same_bits(a: float, b: float) -> bool:
    return np.float64(a).view(np.uint64) == np.float64(b).view(np.uint64)


# Sizes: below one vector, below one row of 4 vectors, one block of 16 rows and around it, each
# level of the cascade filled or not, leftover vectors and elements, and 2**23 + 2**21 + 3 elements,
# past 2**19 rows of 16 doubles, where the blocks grow from 16 rows to 32.
SIZES = [1, 2, 3, 4, 5, 15, 16, 17, 63, 64, 65, 255, 256, 257, 16**3 - 1, 16**4 + 7, 16**5 + 1, 784 * 800,
         2**23 + 2**21 + 3]  # fmt: skip


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.filterwarnings("ignore:std..:UserWarning")  # of one element: NaN, and PyTorch says why
def test_sum_mean_and_std_are_pytorchs(n):
    rng = np.random.default_rng(n)
    # values over many magnitudes and signs: any other order of the additions rounds differently
    x = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)
    t = torch.from_numpy(x)
    assert same_bits(reductions.cascade_sum(x), float(t.sum()))
    assert same_bits(reductions.mean(x), float(t.mean()))
    expected = float(t.std())
    got = reductions.std(x)
    assert same_bits(got, expected) or (n == 1 and math.isnan(got) and math.isnan(expected))


def test_the_sums_order_matters():
    """numpy's own sum (pairwise) and a plain running sum round otherwise on such data: the tests above
    tell PyTorch's order from others."""
    rng = np.random.default_rng(0)
    differ = {"numpy": 0, "running": 0}
    for _ in range(20):
        x = rng.standard_normal(100_003) * 10.0 ** rng.uniform(-6, 6, 100_003)
        expected = float(torch.from_numpy(x).sum())
        differ["numpy"] += not same_bits(float(np.sum(x)), expected)
        differ["running"] += not same_bits(float(np.cumsum(x)[-1]), expected)
        assert same_bits(reductions.cascade_sum(x), expected)
    assert differ["numpy"] > 10 and differ["running"] > 10, differ


@pytest.mark.parametrize("seed", range(8))
def test_pixel_statistics_are_pytorchs(seed):
    """Random images of random counts and sizes, mostly blank pixels as MNIST's."""
    rng = np.random.default_rng(seed)
    n, rows, cols = int(rng.integers(1, 3000)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
    images = rng.integers(0, 256, size=(n, rows, cols), dtype=np.uint8)
    images[rng.random(images.shape) < 0.8] = 0
    got, expected = data.pixel_stats(images), torch_pixel_stats(images)
    assert all(
        same_bits(g, e) or (math.isnan(g) and math.isnan(e)) for g, e in zip(got, expected, strict=True)
    )


def _sample() -> dict[str, np.ndarray]:
    return data.decode_dataset({k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()})


def test_the_decoded_sample_is_pytorchs(tmp_path):
    """Decoding with numpy writes the file that the PyTorch code's tensors of the IDX bytes wrote."""
    dataset = _sample()
    tensors = {}
    for key, (name, _) in fetch.MNIST_FILES.items():
        content = gzip.decompress((SAMPLE / name).read_bytes())
        ndim = content[3]
        shape = [int.from_bytes(content[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        tensor = torch.frombuffer(bytearray(content[4 + 4 * ndim :]), dtype=torch.uint8).reshape(shape)
        tensors[key] = tensor.long() if key.endswith("labels") else tensor
        assert dataset[key].dtype == tensors[key].numpy().dtype and dataset[key].flags.writeable
    io.save_tensors(tmp_path / "numpy.safetensors", dataset)
    io.save_tensors(tmp_path / "torch.safetensors", tensors)
    assert (tmp_path / "numpy.safetensors").read_bytes() == (tmp_path / "torch.safetensors").read_bytes()


@pytest.mark.parametrize("validation_size, seed", [(200, 0), (100, 0), (1, 7), (999, 2**40 + 5)])
def test_the_samples_split_is_pytorchs(tmp_path, validation_size, seed):
    """The split step's file, and the split itself, on the committed sample: PyTorch's bytes."""
    dataset = _sample()
    expected = torch_split(dataset, validation_size, seed)
    split = data.make_split(dataset, validation_size, seed)
    assert set(split) == set(expected)
    for key, value in expected.items():
        assert split[key].dtype == value.numpy().dtype and split[key].shape == tuple(value.shape), key
        assert split[key].tobytes() == value.numpy().tobytes(), key
    io.save_tensors(tmp_path / "dataset.safetensors", dataset)
    dataset_path, split_path = tmp_path / "dataset.safetensors", tmp_path / "split.safetensors"
    params = {
        "validation_size": validation_size,
        "seed": seed,
        "architecture": to_params(Architecture()),
        "batch_size": 1,
    }
    jobs.split_dataset(jobs.Job(input={"dataset": dataset_path}, output={"split": split_path}, params=params))
    metadata = {"seed": seed, "validation_size": validation_size}
    io.save_tensors(tmp_path / "torch.safetensors", expected, metadata=metadata)
    assert split_path.read_bytes() == (tmp_path / "torch.safetensors").read_bytes()
