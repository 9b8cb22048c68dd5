"""lottery.order: seeded permutations and minibatch orders in numpy, element for element those of
PyTorch's CPU generator (the reference here: the trainer's order before it was numpy's)."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from lottery import data, order

SEEDS = [0, 1, 7, 2**31, 2**32 - 1, 2**32 + 5, 2**62 + 3, 2**63 - 1, 2**64 - 1, -1]


class TorchBatchOrder:
    """The trainer's batch order as it was written with PyTorch: a fresh ``randperm`` each epoch from
    one seeded generator, batches running across epoch ends."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size = n, batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.order):
            fresh = torch.randperm(self.n, generator=self.generator)
            self.order = torch.cat([self.order[self.pos :], fresh])
            self.pos = 0
        batch = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return batch


def torch_randperm(n: int, seed: int) -> np.ndarray:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 97, 1000, 55_000, 70_000])
def test_randperm_is_torch_randperm(n, seed):
    got = order.randperm(n, seed)
    assert got.dtype == np.int64 and got.shape == (n,)
    np.testing.assert_array_equal(got, torch_randperm(n, seed))


def test_successive_permutations_continue_the_generator_as_torch_does():
    """Each permutation draws n - 1 numbers: the next one starts where PyTorch's would."""
    for seed in (0, 2**32 + 5, 2**62 + 3):
        generator = torch.Generator().manual_seed(seed)
        bit_generator = order.generator(seed)
        for n in (5, 1, 0, 1000, 2, 55_000, 3):
            expected = torch.randperm(n, generator=generator).numpy()
            np.testing.assert_array_equal(order.permutation(n, bit_generator), expected)


def test_a_seed_is_taken_modulo_2_to_the_32_as_torch_takes_it():
    np.testing.assert_array_equal(order.randperm(100, 2**32 + 5), order.randperm(100, 5))
    assert not np.array_equal(order.randperm(100, 2**31), order.randperm(100, 0))
    for seed in (2**64, -(2**63) - 1):  # PyTorch refuses these too
        with pytest.raises(ValueError, match=r"outside \[-2\*\*63, 2\*\*64\)"):
            order.randperm(10, seed)
        with pytest.raises((RuntimeError, ValueError), match="Overflow"):
            torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    "n, batch_size, seed",
    [
        (10, 3, 0),  # every epoch leaves a remainder: batches straddle the epoch ends
        (10, 10, 1),  # exactly one epoch a batch
        (10, 7, 2**31),
        (1, 1, 5),
        (97, 60, 2**32 + 5),
        (1000, 60, 2**62 + 3),
        (55_000, 60, 1),
    ],
)
def test_batch_order_is_the_torch_order_across_epochs(n, batch_size, seed):
    ours, reference = order.BatchOrder(n, batch_size, seed), TorchBatchOrder(n, batch_size, seed)
    epochs = 3 if n > 1000 else 25
    batches = max(1, epochs * n // batch_size)
    for _ in range(batches):
        got = ours.next()
        assert got.dtype == np.int64 and got.shape == (batch_size,)
        np.testing.assert_array_equal(got, reference.next().numpy())


def test_batch_order_refuses_a_batch_above_the_examples():
    with pytest.raises(ValueError, match="batch size 11 exceeds the 10 training examples"):
        order.BatchOrder(10, 11, 0)


def test_a_permutation_above_the_verified_size_is_refused():
    with pytest.raises(ValueError, match=rf"only 0\.\.{order.MAX_N} are verified"):
        order.randperm(order.MAX_N + 1, 0)
    with pytest.raises(ValueError, match="a permutation of -1 elements"):
        order.randperm(-1, 0)


@pytest.mark.parametrize("seed", [0, 3, 2**62 + 3])
def test_split_indices_are_those_of_torch_randperm(seed):
    n, validation = 60_000, 5_000
    train, val = data.split_indices(n, validation, seed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    np.testing.assert_array_equal(train, perm[validation:].sort().values.numpy())
    np.testing.assert_array_equal(val, perm[:validation].sort().values.numpy())
    assert train.dtype == val.dtype == np.int64


def test_a_permutation_of_mnist_size_takes_little_time():
    order.randperm(55_000, 0)
    started = time.perf_counter()
    for seed in range(5):
        order.randperm(55_000, seed)
    assert (time.perf_counter() - started) / 5 < 0.1  # s: about 12 ms on the 2-core machine
