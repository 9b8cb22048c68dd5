"""Seeded permutations and minibatch orders in numpy, bitwise those of PyTorch's CPU generator.

A training job needs no PyTorch for its data order (importing it costs seconds). PyTorch's
``torch.Generator().manual_seed(seed)`` on the CPU is the Mersenne Twister MT19937 seeded by the
standard ``init_genrand`` with the seed's low 32 bits (the seed is taken as a 64-bit unsigned
integer, then truncated: ``2**32 + 5`` draws as ``5``), and ``torch.randperm(n, generator=g)`` is a
Fisher-Yates shuffle of ``0..n-1`` drawing one raw 32-bit output per position::

    for i in range(n - 1):
        z = random32() % (n - i)
        r[i], r[i + z] = r[i + z], r[i]

(``aten/src/ATen/native/TensorFactories.cpp``, ``randperm_cpu``; it switches to 64-bit draws and
another shuffle only for n of about 2**32 / 20). This module reproduces both with numpy's MT19937,
whose raw outputs are the same generator's; the equality is tested against PyTorch
(``tests/test_order.py``) for n up to :data:`MAX_N`, above which it refuses.
"""

from __future__ import annotations

import numpy as np

# The largest n whose permutations were compared with PyTorch's (2.14: 2**25, every element equal).
MAX_N = 2**25

_STATE_N = 624  # MT19937's state words


def generator(seed: int) -> np.random.MT19937:
    """An MT19937 in the state ``torch.Generator().manual_seed(seed)`` leaves PyTorch's CPU generator:
    ``init_genrand`` of the seed's low 32 bits (PyTorch accepts seeds in [-2**63, 2**64) and takes them
    modulo 2**64)."""
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"seed {seed} is outside [-2**63, 2**64), the seeds PyTorch accepts")
    key = np.empty(_STATE_N, dtype=np.uint32)
    s = seed & 0xFFFFFFFF
    key[0] = s
    for j in range(1, _STATE_N):  # init_genrand (Matsumoto and Nishimura's mt19937ar.c)
        s = (1812433253 * (s ^ (s >> 30)) + j) & 0xFFFFFFFF
        key[j] = s
    bit_generator = np.random.MT19937()
    # pos = 624: the first draw twists the state first, as PyTorch's (left_ = 1) and mt19937ar.c do
    bit_generator.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": _STATE_N}}
    return bit_generator


def permutation(n: int, bit_generator: np.random.MT19937) -> np.ndarray:
    """``torch.randperm(n, generator=g)`` (int64), ``bit_generator`` standing for ``g``'s state (and
    advanced as ``g`` would be: n - 1 draws)."""
    n = int(n)
    if not 0 <= n <= MAX_N:
        raise ValueError(
            f"a permutation of {n} elements: only 0..{MAX_N} are verified to draw as PyTorch's randperm does"
        )
    if n < 2:
        return np.arange(n, dtype=np.int64)
    # Each position's swap partner, drawn at once: i + raw % (n - i).
    raw = bit_generator.random_raw(n - 1)
    partners = (raw % np.arange(n, 1, -1, dtype=np.uint64) + np.arange(n - 1, dtype=np.uint64)).tolist()
    r = list(range(n))
    for i, j in zip(range(n - 1), partners, strict=True):  # the swaps themselves are sequential
        t = r[j]
        r[j] = r[i]
        r[i] = t
    return np.fromiter(r, dtype=np.int64, count=n)


def randperm(n: int, seed: int) -> np.ndarray:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` as an int64 array."""
    return permutation(n, generator(seed))


def uniform(shape: tuple[int, ...], bit_generator: np.random.MT19937) -> np.ndarray:
    """float32 draws in [0, 1), bitwise ``torch.rand(shape, generator=g)`` where ``bit_generator`` is
    ``g``'s state (:func:`generator`): one raw 32-bit output per element, in order, its low 24 bits
    times 2**-24 (ATen's ``uniform_real_distribution<float>``; tested against PyTorch)."""
    n = int(np.prod(shape, dtype=np.int64))
    raw = bit_generator.random_raw(n) & 0xFFFFFF
    return (raw.astype(np.float32) * np.float32(2.0**-24)).reshape(shape)


class BatchOrder:
    """Minibatch indices: a fresh seeded permutation each epoch, batches running across epoch ends
    (the leftover of an epoch, then the next epoch's permutation)."""

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} exceeds the {n} training examples")
        self.n, self.batch_size = n, batch_size
        self.generator = generator(seed)
        self.order = permutation(n, self.generator)
        self.pos = 0

    def next(self) -> np.ndarray:
        """The next minibatch's indices (int64, ``batch_size`` of them)."""
        if self.pos + self.batch_size > len(self.order):
            fresh = permutation(self.n, self.generator)
            self.order = np.concatenate([self.order[self.pos :], fresh])
            self.pos = 0
        batch = self.order[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return batch
