"""float64 sums, means and standard deviations in numpy, bitwise those of PyTorch's CPU kernels on one
thread: a split job needs no PyTorch for its normalisation statistics (importing it costs seconds).

``float(t.mean())`` and ``float(t.std())`` of a contiguous float64 tensor ``t`` (one thread, as a job
runs with ``torch.set_num_threads(1)``) are:

- the mean: ``t.sum() / t.numel()``, the sum being ATen's cascade sum (``cascade_sum`` in
  ``aten/src/ATen/native/cpu/SumKernel.cpp``): 4 x 4 float64 lanes (4 vectors of 4 doubles, the
  AVX2 kernel, which AVX-512 CPUs run too: ``sum_stub`` has no AVX-512 kernel, and the default
  kernel has 4-double vectors as well), each lane summed in chunks of 16 or more whose sums are
  summed in chunks again, up to 4 levels; then the levels, the 4 vectors, the leftover elements and
  the 4 lanes of the last vector in a fixed order (:func:`cascade_sum`);
- the standard deviation: ``sqrt(sum((x - mean)**2) / (n - 1))``, the squares summed one after the
  other from the first element to the last (``std_var_all_cpu``, ``aten/src/ATen/native/ReduceOps.cpp``;
  :func:`std`).

More threads split both sums into chunks, one per thread: other bits, which these do not reproduce.
They are tested equal to PyTorch on x86-64 (``tests/test_reductions.py``), where every CPU runs the
same kernels; PyTorch on other CPUs (other vector widths, fused multiply-adds in the std's loop) may
round differently, while these give the x86-64 bits everywhere.
"""

from __future__ import annotations

import numpy as np

VECTOR = 4  # doubles in one of the sum kernel's vectors (Vectorized<double>: 256 bits)
ILP = 4  # vectors summed side by side (row_sum's ilp_factor)
LEVELS = 4  # multi_row_sum's num_levels
_CHUNK = 1 << 20  # elements squared and summed at a time by std (8 MB of float64)


def _running_sums(rows: np.ndarray, group: int) -> np.ndarray:
    """``rows [m * group, lanes]``: the running sum (from 0, one row after the other) of each group of
    ``group`` consecutive rows, ``[m, lanes]``."""
    blocks = rows.reshape(-1, group, rows.shape[1])
    acc = np.zeros((blocks.shape[0], rows.shape[1]))
    for j in range(group):
        acc += blocks[:, j]
    return acc


def _running_sum(rows: np.ndarray) -> np.ndarray:
    """The running sum (from 0, one row after the other) of ``rows [m, lanes]``: ``[lanes]``."""
    acc = np.zeros(rows.shape[1])
    for row in rows:
        acc += row
    return acc


def _ceil_log2(x: int) -> int:
    """c10's ``utils::CeilLog2``: 1 for x <= 2."""
    return 1 if x <= 2 else (x - 1).bit_length()


def multi_row_sum(rows: np.ndarray) -> np.ndarray:
    """ATen's ``multi_row_sum`` of ``rows [size, lanes]`` down its rows, each lane on its own: the
    rows summed in blocks of ``step`` (16 or more), added to level 1; level 1 passed on to level 2 after
    every ``step`` blocks, level 2 to level 3 after every ``step**2``; the rows left over summed, then
    levels 1, 2 and 3 added to them."""
    size, lanes = rows.shape
    step = 1 << max(4, _ceil_log2(size) // LEVELS)
    whole = size // step * step
    levels = [np.zeros(lanes) for _ in range(LEVELS)]
    items = _running_sums(rows[:whole], step)  # the blocks' sums, as they reach level 1
    for level in range(1, LEVELS - 1):
        passed = len(items) // step * step
        levels[level] = _running_sum(items[passed:])  # not yet passed on when the rows ran out
        items = _running_sums(items[:passed], step)
    levels[LEVELS - 1] = _running_sum(items)
    total = _running_sum(rows[whole:])
    for level in range(1, LEVELS):
        total = total + levels[level]
    return total


def cascade_sum(x: np.ndarray) -> float:
    """``float(torch.from_numpy(x).sum())`` of a float64 array (as one contiguous vector), one thread."""
    x = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    n = len(x)
    if n < VECTOR:  # the scalar kernel: a running sum, then the three empty lanes
        total = np.float64(0.0)
        for value in x:
            total = total + value
        return float(np.float64(0.0) + (total + 0.0 + 0.0 + 0.0))
    vectors = n // VECTOR
    rows = vectors // ILP
    partial = multi_row_sum(x[: rows * ILP * VECTOR].reshape(rows, ILP * VECTOR)).reshape(ILP, VECTOR)
    first = partial[0]
    for i in range(rows * ILP, vectors):  # the vectors left over, into the first
        first = first + x[i * VECTOR : (i + 1) * VECTOR]
    for k in range(1, ILP):
        first = first + partial[k]
    total = np.float64(0.0)
    for value in x[vectors * VECTOR :]:  # the elements left over, then the vector's lanes
        total = total + value
    for value in first:
        total = total + value
    return float(np.float64(0.0) + total)  # the output, zeroed first, accumulates the sum


def mean(x: np.ndarray) -> float:
    """``float(torch.from_numpy(x).mean())`` of a float64 array, one thread."""
    return float(np.float64(cascade_sum(x)) / np.float64(x.size))


def std(x: np.ndarray, mean_of_x: float | None = None) -> float:
    """``float(torch.from_numpy(x).std())`` (one degree of freedom less) of a float64 array, one
    thread; ``mean_of_x``: :func:`mean` of ``x``, where known. NaN for one element, as PyTorch."""
    flat = np.ascontiguousarray(x, dtype=np.float64).reshape(-1)
    centre = np.float64(mean(flat) if mean_of_x is None else mean_of_x)
    total = np.float64(0.0)
    buffer = np.empty(min(len(flat), _CHUNK))
    for start in range(0, len(flat), _CHUNK):  # a running sum: each chunk's continues the last one's
        chunk = buffer[: min(_CHUNK, len(flat) - start)]
        np.subtract(flat[start : start + len(chunk)], centre, out=chunk)
        np.multiply(chunk, chunk, out=chunk)
        chunk[0] += total
        total = np.cumsum(chunk, out=chunk)[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = (np.float64(0.0) + total) / np.float64(max(0.0, len(flat) - 1.0))
    return float(np.sqrt(variance))
