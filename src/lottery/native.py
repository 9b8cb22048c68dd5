"""The native trainer: every layer, the loss, the backward pass, Adam and the evaluation in the
project's own compiled kernels (``lottery/sparse_kernels.c``), numpy arrays around them - no PyTorch,
so that a training job starts at once and gives the same bits on every x86-64 machine.

Each weight matrix is kept as its surviving weights only, a blocked CSR matrix (the :data:`SPARSE`
path: a dense hidden layer is the CSR matrix of all its weights); a first layer more than
``training.sparse_max_density`` dense, whose inputs have a background value (MNIST's blank pixel),
is a dense matrix that reads only each example's non-blank inputs (:data:`NONBLANK`). Activations are
stored tile-major (``[tiles, units, 64]``: 64 examples contiguous, lanes past the batch zero), so
that a weight costs one vectorised multiply-add per example in the forward pass, in its gradient and
in the input gradient. A sparse first layer reads only the input pixels that some surviving weight
reads. Parameters, gradients and Adam's moments are one compact vector: the surviving weights, the
first layer's matrix where it is dense, the biases; Adam runs on that vector only.

Validation and test sets go through the same layers (their inputs gathered once), so evaluation
follows the sparsity too; a sparse first layer denser than :data:`EVALUATION_NONBLANK_DENSITY` is
evaluated as a dense-nonblank one, which costs less there.

The path is chosen per layer from the mask (never by a timing), and every sum's order is fixed in
the kernels: the numbers a run gives depend neither on the machine nor on how busy it was. They
differ from the PyTorch reference trainer's (``training.backend: torch``) by float rounding only:
tested against it and against float64 autograd.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from lottery.desc import TrainingHparams
from lottery.order import BatchOrder
from lottery.pruning import rewind
from lottery.trainer_parts import ADAM_BETAS, ADAM_EPS, Evaluation

PAD = 64  # the kernels' tile: the batch dimension is padded to a multiple of it
ALIGN = 64  # bytes: a cache line, where every buffer the kernels stream through starts
# A sparse first layer denser than this, whose inputs have a background value, is evaluated as a
# dense-nonblank one (its surviving weights scattered into a dense matrix once a pass): on an
# evaluation set that costs the same at every density, the CSR path in proportion to its weights.
# A validation pass at rounds 4 and 5 of the paper's schedule (41% and 33% of fc1) took 7-24% less
# time so, as long at round 6 (26%), 17-43% more at rounds 7 and 8 (two processes side by side on
# the AVX2 Zen 3: benchmarks/evaluation_paths.py, BENCHMARKS.md). Chosen from the mask, never from
# a timing.
EVALUATION_NONBLANK_DENSITY = 0.3
BLOCK = 64  # input features per block of the blocked CSR, at least (64 x 64 floats: 16 KiB, in L1)
BLOCK_ENTRIES = 8  # entries per row and block, on average, at least
SPARSE = "sparse"
NONBLANK = "dense-nonblank"  # a dense first layer reading only each example's non-blank inputs


def padded(n: int) -> int:
    return -(-n // PAD) * PAD


def aligned_zeros(shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """Zeros whose first byte is on a 64-byte boundary (a cache line; numpy gives large arrays 16
    bytes past one), so that a tile row's vectors never straddle two lines: with 16 bytes off, half
    of the AVX2 loads and every AVX-512 load of a tile row read two lines."""
    dtype = np.dtype(dtype)
    count = math.prod(shape) if isinstance(shape, tuple) else shape
    raw = np.zeros(count * dtype.itemsize + ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + count * dtype.itemsize].view(dtype).reshape(shape)


def choose_paths(masks: dict[str, Any], max_density: float, nonblank: bool = False) -> dict[str, str]:
    """Each layer's path: :data:`SPARSE`, but a first layer more than ``max_density`` dense whose
    inputs have a background value (``nonblank``) reads only the non-blank inputs (:data:`NONBLANK`)."""
    paths = dict.fromkeys(masks, SPARSE)
    first = next(iter(masks))
    if nonblank and float(np.asarray(masks[first]).mean()) > max_density:
        paths[first] = NONBLANK
    return paths


def _i32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int32)


def _ptr(a: np.ndarray) -> int:
    return a.ctypes.data


@contextmanager
def flushing_denormals(lib: ctypes.CDLL) -> Iterator[None]:
    """Subnormal floats flushed to zero on this thread (the kernels' ``lt_set_flush``), as before
    after; see :mod:`lottery.training` for why."""
    before = lib.lt_set_flush(1)
    try:
        yield
    finally:
        lib.lt_set_flush(before)


@dataclass(frozen=True)
class NonBlankInputs:
    """Inputs as their deviations from the background value, the non-zero ones per example (CSR):
    what a :data:`NONBLANK` first layer reads."""

    offsets: np.ndarray  # int64, n + 1
    columns: np.ndarray  # int32
    values: np.ndarray
    background: float
    n: int

    @classmethod
    def from_dense(cls, x: np.ndarray, background: float) -> NonBlankInputs:
        rows, columns = np.nonzero(x != np.float32(background))
        offsets = np.zeros(len(x) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(np.bincount(rows, minlength=len(x)))
        values = np.ascontiguousarray(x[rows, columns] - np.float32(background), dtype=np.float32)
        return cls(offsets, _i32(columns), values, background, len(x))


@dataclass
class Layer:
    """One layer's structure and where its values and bias sit in the compact vector."""

    name: str
    out: int
    inp: int
    path: str
    values: slice  # in the compact vector: CSR values (sparse) or the transposed matrix (nonblank)
    bias: slice
    # sparse: the surviving weights by rows (blocked CSR) and by columns, their places in the matrix
    stride: int = 0  # nonblank: the stored matrix's row length
    nblocks: int = 1
    rowptr: np.ndarray | None = None
    col: np.ndarray | None = None
    colptr: np.ndarray | None = None
    rows: np.ndarray | None = None
    perm: np.ndarray | None = None
    matrix_index: np.ndarray | None = None  # row * inp + original column, int64
    mask: np.ndarray | None = None  # nonblank and pruned: multiplied into its gradient (as stored)

    @classmethod
    def sparse(cls, name: str, mask: np.ndarray, start: int, columns: np.ndarray | None = None) -> Layer:
        """CSR of ``mask``'s surviving weights; ``columns[k]`` renumbers input feature k (its
        position among the features the layer reads, -1 for the others) where given."""
        out, inp = mask.shape
        rows, cols = np.nonzero(mask)
        matrix_index = rows.astype(np.int64) * inp + cols
        if columns is not None:
            cols = columns[cols]
            inp = int((columns >= 0).sum())
        # Blocked CSR: entries sorted by (input block, row, column); see lt_forward. Blocks of at
        # least BLOCK inputs, as many as keep BLOCK_ENTRIES entries a row and block on average:
        # each (row, block) costs a load and a store of the row's tile, worth it only for a run.
        nblocks = max(1, min(-(-inp // BLOCK), len(rows) // (out * BLOCK_ENTRIES)))
        width = -(-inp // nblocks) if inp else 1
        block_row = (cols // width) * out + rows
        order = np.argsort(block_row.astype(np.int64) * inp + cols, kind="stable")  # keys are unique
        rows, cols, matrix_index, block_row = rows[order], cols[order], matrix_index[order], block_row[order]
        nnz = len(rows)
        rowptr = np.zeros(nblocks * out + 1, dtype=np.int64)
        rowptr[1:] = np.cumsum(np.bincount(block_row, minlength=nblocks * out))
        by_column = np.argsort(cols.astype(np.int64) * out + rows, kind="stable")  # by (column, row)
        colptr = np.zeros(inp + 1, dtype=np.int64)
        colptr[1:] = np.cumsum(np.bincount(cols, minlength=inp))
        return cls(
            name,
            out,
            inp,
            SPARSE,
            slice(start, start + nnz),
            slice(start + nnz, start + nnz + out),
            nblocks=nblocks,
            rowptr=_i32(rowptr),
            col=_i32(cols),
            colptr=_i32(colptr),
            rows=_i32(rows[by_column]),
            perm=_i32(by_column),
            matrix_index=matrix_index,
        )

    @classmethod
    def nonblank(cls, name: str, mask: np.ndarray, start: int) -> Layer:
        """The dense matrix transposed, ``[inp, stride]``, its rows padded to a multiple of 64
        (``stride``; the weights past ``out`` are zero and stay so: their gradients and mask are zero)."""
        out, inp = mask.shape
        stride = padded(out)
        stored = np.zeros((inp, stride), dtype=np.float32)
        stored[:, :out] = mask.T
        size = stored.size
        return cls(
            name,
            out,
            inp,
            NONBLANK,
            slice(start, start + size),
            slice(start + size, start + size + out),
            stride=stride,
            mask=None if bool(mask.all()) else stored.reshape(-1),
        )

    @property
    def end(self) -> int:
        return self.bias.stop


class NativeTrainer:
    """The training state of one masked network on the native kernels."""

    def __init__(
        self,
        init: dict[str, np.ndarray],
        masks: dict[str, np.ndarray],
        data: Any,
        hparams: TrainingHparams,
        data_order_seed: int,
        paths: dict[str, str],
        lib: ctypes.CDLL,
        start_iteration: int = 0,
    ) -> None:
        self.lib = lib
        names = [name for name in init if name.endswith(".weight")]
        missing = [name for name in names if name not in masks]
        if missing:
            raise ValueError(f"no mask for {missing}")
        start = {name: np.asarray(t, dtype=np.float32) for name, t in rewind(init, masks).items()}
        train_x = np.ascontiguousarray(data.train_x, dtype=np.float32)
        if start[names[0]].shape[1] != train_x.shape[1]:
            raise ValueError(
                f"the network expects {start[names[0]].shape[1]} inputs but the data have {train_x.shape[1]}"
            )
        bool_masks = {name: np.asarray(masks[name]) != 0 for name in names}
        # The first layer reads only the pixels some surviving weight reads (all, on the nonblank path).
        first = bool_masks[names[0]]
        if paths[names[0]] == SPARSE:
            self.pixels = np.flatnonzero(first.any(0))
            columns = np.full(first.shape[1], -1, dtype=np.int64)
            columns[self.pixels] = np.arange(len(self.pixels))
        else:
            self.pixels, columns = None, None
        self.layers: list[Layer] = []
        offset = 0
        for i, name in enumerate(names):
            if paths[name] == NONBLANK:
                if i:
                    raise ValueError(f"{NONBLANK} is a first layer's path, not {name}'s")
                layer = Layer.nonblank(name, bool_masks[name], offset)
            else:
                layer = Layer.sparse(name, bool_masks[name], offset, columns if i == 0 else None)
            self.layers.append(layer)
            offset = layer.end
        self.flat = aligned_zeros(offset)
        for layer in self.layers:
            w = start[layer.name]
            if layer.path == SPARSE:
                self.flat[layer.values] = w.reshape(-1)[layer.matrix_index]
            else:
                self.flat[layer.values].reshape(layer.inp, layer.stride)[:, : layer.out] = w.T
            self.flat[layer.bias] = start[layer.name.removesuffix(".weight") + ".bias"]
        self.grad = aligned_zeros(offset)
        self.exp_avg = aligned_zeros(offset)
        self.exp_avg_sq = aligned_zeros(offset)
        self.step_count = 0
        self.names = [f"{n.removesuffix('.weight')}.{kind}" for n in names for kind in ("weight", "bias")]
        self.shapes = {name: tuple(start[name].shape) for name in self.names}

        self.lr, self.batch_size = hparams.learning_rate, hparams.batch_size
        self.train_y = np.ascontiguousarray(data.train_y, dtype=np.int64)
        self.order = BatchOrder(len(self.train_y), hparams.batch_size, data_order_seed)
        for _ in range(start_iteration):
            self.order.next()
        self.ntiles = padded(hparams.batch_size) // PAD
        self.train_x = train_x
        self.pixels_i32 = None if self.pixels is None else _i32(self.pixels)
        self.background = data.background
        if self.layers[0].path == NONBLANK:
            if data.background is None:
                raise ValueError(f"{NONBLANK} needs inputs with a background value")
            self.train_nonblank = NonBlankInputs.from_dense(self.train_x, data.background)
            n_in, n_out = self.layers[0].inp, self.layers[0].out
            # the kernels' scratch: the weight gradient's sort by input; the forward's block starts
            self.iscratch = np.zeros(max(n_in + 1 + PAD * n_in, 2 * PAD * (n_in // 64 + 2)), dtype=np.int32)
            self.fscratch = aligned_zeros(PAD * n_in + (PAD + 1) * padded(n_out))
        self.inputs = aligned_zeros((self.ntiles, self.layers[0].inp, PAD))
        self.acts = self._activations(self.ntiles)
        self.grads = self._activations(self.ntiles)
        self.idx = np.zeros(hparams.batch_size, dtype=np.int64)
        self.evaluation_path = self.layers[0].path  # see EVALUATION_NONBLANK_DENSITY
        dense_enough = float(first.mean()) > EVALUATION_NONBLANK_DENSITY
        if self.evaluation_path == SPARSE and data.background is not None and dense_enough:
            self.evaluation_path = NONBLANK
        self.evaluation_buffers: dict[int | str, list[np.ndarray]] = {}
        self.evaluation_calls: dict[tuple[int, int, int], tuple[list, np.ndarray, Any]] = {}
        self.calls = self._calls()
        self.loss_sum = 0.0
        self.steps_since_loss = 0

    # ------------------------------------------------------------------ buffers and layer calls

    def _activations(self, ntiles: int) -> list[np.ndarray]:
        """Each layer's output, tile-major ``[tiles, units, PAD]``, zeroed."""
        return [aligned_zeros((ntiles, layer.out, PAD)) for layer in self.layers]

    def _layer_forward(self, flat: np.ndarray, i: int, x: Any, y: np.ndarray):
        """Layer i's forward call, its arguments bound: ``y`` = layer(``x``), ReLU but on the last."""
        layer, relu = self.layers[i], i < len(self.layers) - 1
        base = _ptr(flat)
        if layer.path == NONBLANK:
            inputs = x if isinstance(x, tuple) else (self.train_nonblank, self.idx)
            return self._nonblank_forward(
                base + 4 * layer.values.start, layer.stride, layer.inp, layer.out,
                base + 4 * layer.bias.start, inputs, y, relu, self.iscratch, self.fscratch,
            )  # fmt: skip
        return partial(
            self.lib.lt_forward, layer.out, layer.inp, layer.nblocks, _ptr(layer.rowptr),
            _ptr(layer.col), base + 4 * layer.values.start, base + 4 * layer.bias.start,
            _ptr(x), x.shape[0], _ptr(y), int(relu), None, 0,
        )  # fmt: skip

    def _nonblank_forward(
        self,
        wt: int,
        stride: int,
        n_in: int,
        n_out: int,
        bias: int,
        inputs: tuple,
        y: np.ndarray,
        relu: bool,
        iscratch: np.ndarray,
        fscratch: np.ndarray,
    ):
        """lt_nonblank_forward's call, its arguments bound: ``y`` = the dense matrix at ``wt``
        (transposed, rows of ``stride`` floats) times ``inputs`` (:class:`NonBlankInputs`, the
        examples' indices) plus the bias at ``bias``."""
        nb, idx = inputs
        return partial(
            self.lib.lt_nonblank_forward, n_out, stride, n_in, len(idx), _ptr(idx), _ptr(nb.offsets),
            _ptr(nb.columns), _ptr(nb.values), nb.background, wt, bias, _ptr(y), int(relu), _ptr(iscratch),
            _ptr(fscratch),
        )  # fmt: skip

    def _calls(self) -> list:
        """The step's calls with their arguments bound: the buffers never move, so a step is a loop
        over ready calls (Python's overhead, not the arithmetic, is what a very sparse step would
        otherwise spend its time on)."""
        lib, B, T = self.lib, self.batch_size, self.ntiles
        x0, acts, grads = self.inputs, self.acts, self.grads
        base, gbase = _ptr(self.flat), _ptr(self.grad)
        pixels = None if self.pixels_i32 is None else _ptr(self.pixels_i32)
        train_x, idx = self.train_x, self.idx
        calls = [] if self.layers[0].path == NONBLANK else [
            partial(lib.lt_gather, _ptr(train_x), train_x.shape[1], _ptr(idx), B, pixels,
                    self.layers[0].inp, _ptr(x0))
        ]  # fmt: skip
        inputs = [x0, *acts[:-1]]
        calls += [self._layer_forward(self.flat, i, inputs[i], acts[i]) for i in range(len(self.layers))]
        last = len(self.layers) - 1
        self.softmax_args = (self.layers[-1].out, _ptr(acts[-1]), B, _ptr(self.train_y), _ptr(idx),
                             _ptr(grads[last]))  # fmt: skip
        calls.append(self._take_loss)
        for i in range(last, -1, -1):
            layer, g, x = self.layers[i], grads[i], inputs[i]
            if layer.path == NONBLANK:
                nb = self.train_nonblank
                mask = None if layer.mask is None else _ptr(layer.mask)
                calls.append(partial(
                    lib.lt_nonblank_weight_grad, layer.out, layer.stride, layer.inp, B, _ptr(idx),
                    _ptr(nb.offsets), _ptr(nb.columns), _ptr(nb.values), nb.background, _ptr(g), mask,
                    gbase + 4 * layer.values.start, gbase + 4 * layer.bias.start, _ptr(self.iscratch),
                    _ptr(self.fscratch),
                ))  # fmt: skip
            else:
                calls.append(partial(
                    lib.lt_weight_grad, layer.out, layer.inp, layer.nblocks, _ptr(layer.rowptr),
                    _ptr(layer.col), _ptr(g), _ptr(x), T, gbase + 4 * layer.values.start,
                    gbase + 4 * layer.bias.start,
                ))  # fmt: skip
            if i == 0:
                continue
            calls.append(partial(
                lib.lt_input_grad, layer.inp, layer.out, _ptr(layer.colptr), _ptr(layer.rows),
                _ptr(layer.perm), base + 4 * layer.values.start, _ptr(g), _ptr(x), T, _ptr(grads[i - 1]),
            ))  # fmt: skip
        self.adam_args = (len(self.flat), base, gbase, _ptr(self.exp_avg), _ptr(self.exp_avg_sq),
                          self.lr, ADAM_BETAS[0], ADAM_BETAS[1], ADAM_EPS * B)  # fmt: skip
        return calls

    def _take_loss(self) -> None:
        self.loss_sum += self.lib.lt_softmax_xent(*self.softmax_args)
        self.steps_since_loss += 1

    def step(self) -> None:
        """One minibatch step of Adam on the surviving weights."""
        self.idx[:] = self.order.next()
        for call in self.calls:
            call()
        self.step_count += 1
        self.lib.lt_adam(*self.adam_args, self.step_count)

    def run(self, steps: int) -> None:
        with flushing_denormals(self.lib):
            for _ in range(steps):
                self.step()

    def take_train_loss(self) -> float:
        """Mean training loss per example since the last call."""
        mean = self.loss_sum / max(1, self.steps_since_loss * self.batch_size)
        self.loss_sum = 0.0
        self.steps_since_loss = 0
        return mean

    # ------------------------------------------------------------------ evaluation and weights

    def evaluation_inputs(self, x: Any) -> Any:
        """``x`` as the first layer reads it: tile-major, its pixels only, lanes past the end zero."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = len(x)
        if self.evaluation_path == NONBLANK:
            return NonBlankInputs.from_dense(x, self.background), np.arange(n, dtype=np.int64)
        xt = aligned_zeros((padded(n) // PAD, self.layers[0].inp, PAD))
        pixels = None if self.pixels_i32 is None else _ptr(self.pixels_i32)
        idx = np.arange(n, dtype=np.int64)
        self.lib.lt_gather(_ptr(x), x.shape[1], _ptr(idx), n, pixels, self.layers[0].inp, _ptr(xt))
        return xt

    def _evaluation_calls(self, flat: np.ndarray, xt: Any, ntiles: int) -> tuple[list, np.ndarray]:
        """A pass over a set's ``ntiles`` tiles, its calls bound, and the logits it writes. The sparse
        layers run tile by tile, each tile through all of them, so that a tile's activations stay in
        the cache (a whole set's are megabytes: reading them back cost more than the arithmetic);
        a dense-nonblank first layer runs over the whole set first (its column sums once a pass)."""
        layers, last = self.layers, len(self.layers) - 1
        if ntiles not in self.evaluation_buffers:  # allocated once per set: no page faults per pass
            self.evaluation_buffers[ntiles] = [
                aligned_zeros((ntiles, layers[0].out, PAD)),
                aligned_zeros((ntiles, layers[-1].out, PAD)),
            ]
        first_out, logits = self.evaluation_buffers[ntiles]
        tile = self.evaluation_buffers.setdefault(-1, self._activations(1))  # one tile of each layer
        calls, start, source = [], 0, xt
        if layers[0].path == NONBLANK:
            calls.append(self._layer_forward(flat, 0, xt, first_out if last else logits))
            start, source = 1, first_out
        elif self.evaluation_path == NONBLANK:
            calls += self._sparse_as_nonblank(flat, xt, first_out if last else logits)
            start, source = 1, first_out
        base, tile_bytes = _ptr(flat), 4 * source.shape[1] * PAD
        for t in range(ntiles):
            for i in range(start, len(layers)):
                layer = layers[i]
                x = _ptr(source) + t * tile_bytes if i == start else _ptr(tile[i - 1])
                y = _ptr(logits) + 4 * t * layer.out * PAD if i == last else _ptr(tile[i])
                ahead = _ptr(source) + (t + 1) * tile_bytes if i == start and t + 1 < ntiles else None
                calls.append(partial(
                    self.lib.lt_forward, layer.out, layer.inp, layer.nblocks, _ptr(layer.rowptr),
                    _ptr(layer.col), base + 4 * layer.values.start, base + 4 * layer.bias.start, x, 1, y,
                    int(i < last), ahead, tile_bytes if ahead else 0,
                ))  # fmt: skip
        return calls, logits

    def _sparse_as_nonblank(self, flat: np.ndarray, xt: tuple, y: np.ndarray) -> list:
        """A sparse first layer's evaluation as a dense-nonblank one (see
        :data:`EVALUATION_NONBLANK_DENSITY`): its surviving weights scattered into a dense matrix
        (transposed, rows padded as :meth:`Layer.nonblank` stores them; the others stay zero), then
        ``lt_nonblank_forward``. Bound calls, as :meth:`_evaluation_calls` returns them."""
        layer = self.layers[0]
        n_in, n_out = self.shapes[layer.name][1], layer.out
        stride = padded(n_out)
        if "sparse-as-nonblank" not in self.evaluation_buffers:
            rows, columns = np.divmod(layer.matrix_index, n_in)
            self.evaluation_buffers["sparse-as-nonblank"] = [
                aligned_zeros(n_in * stride),  # the matrix
                columns * stride + rows,  # each surviving weight's place in it
                aligned_zeros(2 * PAD * (n_in // 64 + 2), np.int32),  # the kernel's scratch
                aligned_zeros((PAD + 1) * stride),
            ]
        matrix, places, iscratch, fscratch = self.evaluation_buffers["sparse-as-nonblank"]
        values = flat[layer.values]

        def scatter() -> None:
            matrix[places] = values

        bias = _ptr(flat) + 4 * layer.bias.start
        relu = len(self.layers) > 1
        return [
            scatter,
            self._nonblank_forward(_ptr(matrix), stride, n_in, n_out, bias, xt, y, relu, iscratch, fscratch),
        ]

    def evaluate(self, xt: Any, y: Any, flat: np.ndarray | None = None):
        """The loss and accuracy of the weights (``flat``, else the trainer's own) on a set."""
        y = np.ascontiguousarray(y, dtype=np.int64)
        ntiles = padded(len(y)) // PAD
        flat = self.flat if flat is None else flat
        key = (flat.ctypes.data, id(xt[0] if isinstance(xt, tuple) else xt), ntiles)
        if key not in self.evaluation_calls:  # the trainer's own weights: bound once per set
            calls = self._evaluation_calls(flat, xt, ntiles)
            if flat is not self.flat:  # a copy (the early-stop weights): evaluated once or twice
                return self._evaluate_with(calls, y)
            # The bound calls hold raw pointers into ``xt``: the entry keeps ``xt`` alive, so that
            # neither its memory nor its id (the key) can go to other inputs while it is cached.
            self.evaluation_calls[key] = (*calls, xt)
        calls, logits, _ = self.evaluation_calls[key]
        return self._evaluate_with((calls, logits), y)

    def _evaluate_with(self, bound: tuple[list, np.ndarray], y: np.ndarray):
        calls, logits = bound
        with flushing_denormals(self.lib):
            for call in calls:
                call()
        loss = ctypes.c_double()
        correct = self.lib.lt_evaluate(self.layers[-1].out, _ptr(logits), len(y), _ptr(y), ctypes.byref(loss))
        return Evaluation(loss=loss.value / len(y), accuracy=correct / len(y))

    def flat_copy(self, into: np.ndarray | None = None) -> np.ndarray:
        """The compact vector's values, copied (into ``into`` where given)."""
        if into is None:
            into = aligned_zeros(len(self.flat))
        into[:] = self.flat
        return into

    def state_dict(self, flat: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The weights as dense matrices (pruned ones exactly zero) and biases."""
        flat = self.flat if flat is None else flat
        out: dict[str, np.ndarray] = {}
        for layer in self.layers:
            shape = self.shapes[layer.name]
            if layer.path == SPARSE:
                w = np.zeros(math.prod(shape), dtype=np.float32)
                w[layer.matrix_index] = flat[layer.values]
                w = w.reshape(shape)
            else:
                w = np.ascontiguousarray(
                    flat[layer.values].reshape(layer.inp, layer.stride)[:, : layer.out].T
                )
            out[layer.name] = w
            out[layer.name.removesuffix(".weight") + ".bias"] = flat[layer.bias].copy()
        return out
