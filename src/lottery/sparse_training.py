"""The sparse training path: a pruned layer trains at the cost of its surviving weights.

A layer whose remaining fraction is at most ``training.sparse_max_density`` keeps only its surviving
weights, as a blocked CSR matrix (``lottery.sparse_kernels.c``); the others stay dense matrices
multiplied by their masks, as in :class:`lottery.training.MaskedTrainer`, and a dense first layer
reads only each example's non-blank inputs where the inputs have a background value
(:data:`NONBLANK`). Activations are stored tile-major (``[tiles, units, 64]``: 64 examples
contiguous, lanes past the batch zero), so that a surviving weight costs one vectorised multiply-add
per example in the forward pass, in its gradient and in the input gradient. A sparse first layer
reads only the input pixels that some surviving weight reads. Parameters, gradients and Adam's
moments are one compact vector: the surviving weights of the sparse layers, the dense layers'
matrices, the biases; Adam runs on that vector only.

Validation and test sets go through the same layers (their inputs gathered once), so evaluation
follows the sparsity too.

The path is chosen per layer by that fixed threshold, never by a timing: the numbers a run gives do
not depend on how busy the machine was. They differ from the dense path's by float rounding only
(sums in another order; tested against it and against autograd).
"""

from __future__ import annotations

import ctypes
import math
from dataclasses import dataclass
from functools import partial

import torch

from lottery.data import TensorData
from lottery.desc import TrainingHparams
from lottery.pruning import rewind

PAD = 64  # the kernels' tile: the batch dimension is padded to a multiple of it
BLOCK = 64  # input features per block of the blocked CSR, at least (64 x 64 floats: 16 KiB, in L1)
BLOCK_ENTRIES = 8  # entries per row and block, on average, at least
SPARSE, DENSE = "sparse", "dense"
NONBLANK = "dense-nonblank"  # a dense first layer reading only each example's non-blank inputs


def padded(n: int) -> int:
    return -(-n // PAD) * PAD


def choose_paths(
    masks: dict[str, torch.Tensor], max_density: float, kernels_available: bool, nonblank: bool = False
) -> dict[str, str]:
    """Each layer's path: sparse where its remaining fraction is at most ``max_density``, else
    dense; a dense first layer reads only the non-blank inputs where ``nonblank`` (the inputs have a
    background value). Without the kernels, every layer is dense."""
    if not kernels_available:
        return dict.fromkeys(masks, DENSE)
    paths = {name: SPARSE if float(mask.mean()) <= max_density else DENSE for name, mask in masks.items()}
    first = next(iter(masks))
    if nonblank and paths[first] == DENSE:
        paths[first] = NONBLANK
    return paths


def _i32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.int32).contiguous()


def _dense_forward(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor, relu: bool) -> None:
    """``y = w x + b`` (then ReLU) for tile-major ``x``, ``y``: a dense layer of the sparse trainer."""
    if x.shape[0] == 1:  # a training batch: one tile, one addmm
        torch.addmm(b.unsqueeze(1), w, x[0], out=y[0])
    else:
        torch.matmul(w, x, out=y)
        y.add_(b.view(1, -1, 1))
    if relu:
        y.relu_()


def _dense_weight_grad(
    g: torch.Tensor, x: torch.Tensor, gw: torch.Tensor, gb: torch.Tensor, mask: torch.Tensor | None
) -> None:
    """A dense layer's weight and bias gradients (the weight's times its mask, if pruned)."""
    if g.shape[0] == 1:
        torch.mm(g[0], x[0].t(), out=gw)
        torch.sum(g[0], dim=1, out=gb)
    else:
        gw.copy_(torch.einsum("tol,til->oi", g, x))
        gb.copy_(g.sum((0, 2)))
    if mask is not None:
        gw.view(-1).mul_(mask)


def _dense_input_grad(w: torch.Tensor, g: torch.Tensor, x: torch.Tensor, out: torch.Tensor) -> None:
    """``out`` = (w^T g) where x > 0, else 0: a dense layer's gradient w.r.t. its (ReLU) input."""
    torch.ops.aten.threshold_backward.grad_input(torch.matmul(w.t(), g), x, 0.0, grad_input=out)


@dataclass(frozen=True)
class NonBlankInputs:
    """Inputs as their deviations from the background value, the non-zero ones per example (CSR):
    what a :data:`NONBLANK` first layer reads."""

    offsets: torch.Tensor  # int64, n + 1
    columns: torch.Tensor  # int32
    values: torch.Tensor
    background: float
    n: int

    @classmethod
    def from_dense(cls, x: torch.Tensor, background: float) -> NonBlankInputs:
        rows, columns = (x != background).nonzero(as_tuple=True)
        offsets = torch.zeros(len(x) + 1, dtype=torch.int64)
        offsets[1:] = torch.bincount(rows, minlength=len(x)).cumsum(0)
        values = (x[rows, columns] - background).contiguous()
        return cls(offsets, _i32(columns), values, background, len(x))


@dataclass
class Layer:
    """One layer's structure and where its values and bias sit in the compact vector."""

    name: str
    out: int
    inp: int
    path: str
    values: slice  # in the compact vector: CSR values (sparse), the [out, inp] matrix (dense) or
    # its transpose (dense-nonblank)
    bias: slice
    # sparse: the surviving weights by rows (blocked CSR) and by columns, their places in the matrix
    stride: int = 0  # dense: the stored matrix's row length
    nblocks: int = 1
    rowptr: torch.Tensor | None = None
    col: torch.Tensor | None = None
    colptr: torch.Tensor | None = None
    rows: torch.Tensor | None = None
    perm: torch.Tensor | None = None
    matrix_index: torch.Tensor | None = None  # row * inp + original column, int64
    mask: torch.Tensor | None = None  # dense and pruned: multiplied into its gradient (as stored)

    @classmethod
    def sparse(cls, name: str, mask: torch.Tensor, start: int, columns: torch.Tensor | None = None) -> Layer:
        """CSR of ``mask``'s surviving weights; ``columns[k]`` renumbers input feature k (its
        position among the features the layer reads, -1 for the others) where given."""
        out, inp = mask.shape
        rows, cols = mask.nonzero(as_tuple=True)
        matrix_index = rows * inp + cols
        if columns is not None:
            cols = columns[cols]
            inp = int((columns >= 0).sum())
        # Blocked CSR: entries sorted by (input block, row, column); see lt_forward. Blocks of at
        # least BLOCK inputs, as many as keep BLOCK_ENTRIES entries a row and block on average:
        # each (row, block) costs a load and a store of the row's tile, worth it only for a run.
        nblocks = max(1, min(-(-inp // BLOCK), len(rows) // (out * BLOCK_ENTRIES)))
        width = -(-inp // nblocks) if inp else 1
        block_row = (cols // width) * out + rows
        order = torch.argsort(block_row * inp + cols)
        rows, cols, matrix_index, block_row = rows[order], cols[order], matrix_index[order], block_row[order]
        nnz = len(rows)
        rowptr = torch.zeros(nblocks * out + 1, dtype=torch.int64)
        rowptr[1:] = torch.bincount(block_row, minlength=nblocks * out).cumsum(0)
        by_column = torch.argsort(cols * out + rows)  # entries sorted by (column, row)
        colptr = torch.zeros(inp + 1, dtype=torch.int64)
        colptr[1:] = torch.bincount(cols, minlength=inp).cumsum(0)
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
    def dense(cls, name: str, mask: torch.Tensor, start: int, path: str = DENSE) -> Layer:
        """A dense matrix, as stored: ``[out, inp]``, or for :data:`NONBLANK` its transpose with rows
        padded to a multiple of 64 (``stride``; the weights past ``out`` are zero and stay so: their
        gradients and mask are zero)."""
        out, inp = mask.shape
        if path == NONBLANK:
            stride = padded(out)
            stored = torch.zeros(inp, stride)
            stored[:, :out] = mask.t()
        else:
            stride, stored = inp, mask.float()
        size = stored.numel()
        pruned = None if bool(mask.all()) else stored
        return cls(
            name,
            out,
            inp,
            path,
            slice(start, start + size),
            slice(start + size, start + size + out),
            stride=stride,
            mask=None if pruned is None else pruned.reshape(-1).contiguous(),
        )

    @property
    def end(self) -> int:
        return self.bias.stop


class SparseTrainer:
    """The training state of a network with at least one layer on the sparse path."""

    def __init__(
        self,
        init: dict[str, torch.Tensor],
        masks: dict[str, torch.Tensor],
        data: TensorData,
        hparams: TrainingHparams,
        data_order_seed: int,
        paths: dict[str, str],
        lib: ctypes.CDLL,
        start_iteration: int = 0,
    ) -> None:
        from lottery.training import BatchOrder

        self.lib = lib
        names = [name for name in init if name.endswith(".weight")]
        start = rewind(init, masks)
        if start[names[0]].shape[1] != data.input_size:
            raise ValueError(
                f"the network expects {start[names[0]].shape[1]} inputs but the data have {data.input_size}"
            )
        # The first layer reads only the pixels some surviving weight reads (all, on the dense path).
        first = masks[names[0]].bool()
        if paths[names[0]] == SPARSE:
            self.pixels = first.any(0).nonzero().flatten()
            columns = torch.full((first.shape[1],), -1, dtype=torch.int64)
            columns[self.pixels] = torch.arange(len(self.pixels))
        else:
            self.pixels, columns = None, None
        self.layers: list[Layer] = []
        offset = 0
        for i, name in enumerate(names):
            mask = masks[name].bool()
            if paths[name] == SPARSE:
                layer = Layer.sparse(name, mask, offset, columns if i == 0 else None)
            else:
                layer = Layer.dense(name, mask, offset, paths[name])
            self.layers.append(layer)
            offset = layer.end
        self.flat = torch.empty(offset)
        for layer in self.layers:
            w = start[layer.name]
            if layer.path == SPARSE:
                self.flat[layer.values] = w.reshape(-1)[layer.matrix_index]
            elif layer.path == NONBLANK:
                self.flat[layer.values] = 0.0
                self.flat[layer.values].view(layer.inp, layer.stride)[:, : layer.out] = w.t()
            else:
                self.flat[layer.values] = w.reshape(-1)
            self.flat[layer.bias] = start[layer.name.removesuffix(".weight") + ".bias"]
        self.grad = torch.zeros_like(self.flat)
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.step_count = 0
        self.names = [f"{n.removesuffix('.weight')}.{kind}" for n in names for kind in ("weight", "bias")]
        self.shapes = {name: tuple(start[name].shape) for name in self.names}

        self.lr, self.batch_size = hparams.learning_rate, hparams.batch_size
        self.data = data
        self.order = BatchOrder(len(data.train_y), hparams.batch_size, data_order_seed)
        for _ in range(start_iteration):
            self.order.next()
        self.ntiles = padded(hparams.batch_size) // PAD
        self.train_x = data.train_x.contiguous()
        self.train_y = data.train_y.contiguous()
        self.pixels_i32 = None if self.pixels is None else _i32(self.pixels)
        self.background = data.background
        if self.layers[0].path == NONBLANK:
            if data.background is None:
                raise ValueError(f"{NONBLANK} needs inputs with a background value")
            self.train_nonblank = NonBlankInputs.from_dense(self.train_x, data.background)
            n_in, n_out = self.layers[0].inp, self.layers[0].out
            # the kernels' scratch: the weight gradient's sort by input; the forward's block starts
            self.iscratch = torch.zeros(
                max(n_in + 1 + PAD * n_in, 2 * PAD * (n_in // 64 + 2)), dtype=torch.int32
            )
            self.fscratch = torch.zeros(PAD * n_in + (PAD + 1) * padded(n_out))
        self.inputs = torch.zeros(self.ntiles, self.layers[0].inp, PAD)
        self.acts = self._activations(self.ntiles)
        self.grads = self._activations(self.ntiles)
        self.idx = torch.zeros(hparams.batch_size, dtype=torch.int64)
        self.evaluation_buffers: dict[int, list[torch.Tensor]] = {}
        self.calls = self._calls()
        self.loss_sum = 0.0
        self.steps_since_loss = 0

    # ------------------------------------------------------------------ buffers and layer calls

    def _activations(self, ntiles: int) -> list[torch.Tensor]:
        """Each layer's output, tile-major ``[tiles, units, PAD]``, zeroed."""
        return [torch.zeros(ntiles, layer.out, PAD) for layer in self.layers]

    def _layer_forward(self, flat: torch.Tensor, i: int, x: torch.Tensor, y: torch.Tensor):
        """Layer i's forward call, its arguments bound: ``y`` = layer(``x``), ReLU but on the last."""
        layer, relu = self.layers[i], i < len(self.layers) - 1
        base = flat.data_ptr()
        if layer.path == NONBLANK:
            nb, idx = x if isinstance(x, tuple) else (self.train_nonblank, self.idx)
            return partial(
                self.lib.lt_nonblank_forward, layer.out, layer.stride, layer.inp, len(idx), idx.data_ptr(),
                nb.offsets.data_ptr(), nb.columns.data_ptr(), nb.values.data_ptr(), nb.background,
                base + 4 * layer.values.start, base + 4 * layer.bias.start, y.data_ptr(), int(relu),
                self.iscratch.data_ptr(), self.fscratch.data_ptr(),
            )  # fmt: skip
        if layer.path == DENSE:
            w, b = flat[layer.values].view(layer.out, layer.inp), flat[layer.bias]
            return partial(_dense_forward, w, b, x, y, relu)
        return partial(
            self.lib.lt_forward, layer.out, layer.inp, layer.nblocks, layer.rowptr.data_ptr(),
            layer.col.data_ptr(), base + 4 * layer.values.start, base + 4 * layer.bias.start,
            x.data_ptr(), x.shape[0], y.data_ptr(), int(relu),
        )  # fmt: skip

    def _calls(self) -> list:
        """The step's calls with their arguments bound: the buffers never move, so a step is a loop
        over ready calls (Python's overhead, not the arithmetic, is what a very sparse step would
        otherwise spend its time on)."""
        from lottery.training import ADAM_BETAS, ADAM_EPS

        lib, B, T = self.lib, self.batch_size, self.ntiles
        x0, acts, grads = self.inputs, self.acts, self.grads
        base, gbase = self.flat.data_ptr(), self.grad.data_ptr()
        pixels = None if self.pixels_i32 is None else self.pixels_i32.data_ptr()
        train_x, idx = self.train_x, self.idx
        calls = [] if self.layers[0].path == NONBLANK else [
            partial(lib.lt_gather, train_x.data_ptr(), train_x.shape[1], idx.data_ptr(), B, pixels,
                    self.layers[0].inp, x0.data_ptr())
        ]  # fmt: skip
        inputs = [x0, *acts[:-1]]
        calls += [self._layer_forward(self.flat, i, inputs[i], acts[i]) for i in range(len(self.layers))]
        last = len(self.layers) - 1
        self.softmax_args = (self.layers[-1].out, acts[-1].data_ptr(), B, self.train_y.data_ptr(),
                             idx.data_ptr(), grads[last].data_ptr())  # fmt: skip
        calls.append(self._take_loss)
        for i in range(last, -1, -1):
            layer, g, x = self.layers[i], grads[i], inputs[i]
            if layer.path == NONBLANK:
                nb = self.train_nonblank
                mask = None if layer.mask is None else layer.mask.data_ptr()
                calls.append(partial(
                    lib.lt_nonblank_weight_grad, layer.out, layer.stride, layer.inp, B, idx.data_ptr(),
                    nb.offsets.data_ptr(),
                    nb.columns.data_ptr(), nb.values.data_ptr(), nb.background, g.data_ptr(), mask,
                    gbase + 4 * layer.values.start, gbase + 4 * layer.bias.start, self.iscratch.data_ptr(),
                    self.fscratch.data_ptr(),
                ))  # fmt: skip
            elif layer.path == SPARSE:
                calls.append(partial(
                    lib.lt_weight_grad, layer.out, layer.inp, layer.nblocks, layer.rowptr.data_ptr(),
                    layer.col.data_ptr(), g.data_ptr(), x.data_ptr(), T, gbase + 4 * layer.values.start,
                    gbase + 4 * layer.bias.start,
                ))  # fmt: skip
            else:
                gw = self.grad[layer.values].view(layer.out, layer.inp)
                calls.append(partial(_dense_weight_grad, g, x, gw, self.grad[layer.bias], layer.mask))
            if i == 0:
                continue
            if layer.path == SPARSE:
                calls.append(partial(
                    lib.lt_input_grad, layer.inp, layer.out, layer.colptr.data_ptr(), layer.rows.data_ptr(),
                    layer.perm.data_ptr(), base + 4 * layer.values.start, g.data_ptr(), x.data_ptr(), T,
                    grads[i - 1].data_ptr(),
                ))  # fmt: skip
            else:
                w = self.flat[layer.values].view(layer.out, layer.inp)
                calls.append(partial(_dense_input_grad, w, g, x, grads[i - 1]))
        self.adam_args = (len(self.flat), base, gbase, self.exp_avg.data_ptr(), self.exp_avg_sq.data_ptr(),
                          self.lr, ADAM_BETAS[0], ADAM_BETAS[1], ADAM_EPS * B)  # fmt: skip
        return calls

    def _take_loss(self) -> None:
        self.loss_sum += self.lib.lt_softmax_xent(*self.softmax_args)
        self.steps_since_loss += 1

    def step(self) -> None:
        """One minibatch step of Adam on the surviving weights."""
        self.idx.copy_(self.order.next())
        for call in self.calls:
            call()
        self.step_count += 1
        self.lib.lt_adam(*self.adam_args, self.step_count)

    def run(self, steps: int) -> None:
        from lottery.training import flushing_denormals

        with flushing_denormals():
            for _ in range(steps):
                self.step()

    def take_train_loss(self) -> float:
        mean = self.loss_sum / max(1, self.steps_since_loss * self.batch_size)
        self.loss_sum = 0.0
        self.steps_since_loss = 0
        return mean

    # ------------------------------------------------------------------ evaluation and weights

    def evaluation_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as the first layer reads it: tile-major, its pixels only, lanes past the end zero."""
        n = len(x)
        if self.layers[0].path == NONBLANK:
            return NonBlankInputs.from_dense(x, self.background), torch.arange(n)
        xt = torch.zeros(padded(n) // PAD, self.layers[0].inp, PAD)
        pixels = None if self.pixels_i32 is None else self.pixels_i32.data_ptr()
        x = x.contiguous()
        idx = torch.arange(n)
        self.lib.lt_gather(
            x.data_ptr(), x.shape[1], idx.data_ptr(), n, pixels, self.layers[0].inp, xt.data_ptr()
        )
        return xt

    def evaluate(self, xt: torch.Tensor, y: torch.Tensor, flat: torch.Tensor | None = None):
        from lottery.training import Evaluation, flushing_denormals

        ntiles = padded(len(y)) // PAD
        if ntiles not in self.evaluation_buffers:  # allocated once per set: no page faults per pass
            self.evaluation_buffers[ntiles] = self._activations(ntiles)
        acts = self.evaluation_buffers[ntiles]
        inputs = [xt, *acts[:-1]]
        flat = self.flat if flat is None else flat
        with flushing_denormals():
            for i in range(len(self.layers)):
                self._layer_forward(flat, i, inputs[i], acts[i])()
        loss = ctypes.c_double()
        y = y.contiguous()
        correct = self.lib.lt_evaluate(self.layers[-1].out, acts[-1].data_ptr(), len(y), y.data_ptr(),
                                       ctypes.byref(loss))  # fmt: skip
        return Evaluation(loss=loss.value / len(y), accuracy=correct / len(y))

    def state_dict(self, flat: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The weights as dense matrices (pruned ones exactly zero) and biases."""
        flat = self.flat if flat is None else flat
        out: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            shape = self.shapes[layer.name]
            if layer.path == SPARSE:
                w = torch.zeros(math.prod(shape))
                w[layer.matrix_index] = flat[layer.values]
                w = w.view(shape)
            elif layer.path == NONBLANK:
                w = flat[layer.values].view(layer.inp, layer.stride)[:, : layer.out].t().contiguous()
            else:
                w = flat[layer.values].view(shape).clone()
            out[layer.name] = w
            out[layer.name.removesuffix(".weight") + ".bias"] = flat[layer.bias].clone()
        return out
