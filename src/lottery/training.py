"""Training a masked network with Adam (the paper's protocol): the loop, its evaluations and early
stopping, on one of three backends (``training.backend``):

- ``native`` (the default): :mod:`lottery.native`, every layer, the loss, the backward pass, Adam
  and the evaluation in the project's own compiled kernels, numpy around them - no PyTorch, so a
  training job starts at once, and the same bits on every x86-64 machine. The kernels train
  fully connected networks (``mlp``) on the CPU; any other model (or ``training.device: cuda``)
  trains on the autograd trainer;
- ``torch``: :mod:`lottery.torch_trainer`, the PyTorch reference trainer of ``mlp`` (also the
  fallback where the kernels cannot be built: the log says why);
- ``autograd``: :mod:`lottery.autograd_trainer`, PyTorch's autograd, any model of
  :mod:`lottery.models`, on ``training.device``.

This module imports neither PyTorch nor, until a backend is chosen, the kernels. Inputs may be numpy
arrays or PyTorch tensors; the trained weights come back as the same kind as ``init``'s.

Training steps run with subnormal floats flushed to zero. A weight whose gradient becomes zero (its
unit silent for a whole batch) keeps a first moment that decays by 0.9 a step into the subnormal
range, where x86 arithmetic takes a slow microcode path: such moments pile up as training goes on and
slow the steps down (measured by ``benchmarks/denormals.py``, figures in BENCHMARKS.md). The update
such a moment gives is far below the weight's rounding, so the weights are bitwise those of IEEE
arithmetic (tested; over whole runs by that benchmark); only the moments differ.

Early stopping follows the paper: training always runs the full number of iterations; the early-stop
iteration is the one of minimum validation loss (the first, on ties), and the test accuracy reported
is that of the weights at that iteration (kept in memory when the validation loss improves), so the
test set need not be evaluated every ``eval_every`` iterations.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from lottery import kernels, models
from lottery.desc import TrainingHparams
from lottery.logs import log, seconds_since_process_start
from lottery.trainer_parts import Evaluation

NATIVE, TORCH, AUTOGRAD = "native", "torch", "autograd"
DENSE = "dense"  # the reference trainer's path for every layer

PROGRESS_SECONDS = 10.0  # a 50,000-iteration job's log moves under `tail -f`; a short job's stays short


@dataclass
class TrainingResult:
    params: dict[str, Any]  # numpy arrays, or PyTorch tensors where init's were
    curve: list[dict[str, float | int | None]]
    early_stop_iteration: int
    early_stop_val: Evaluation
    early_stop_test: Evaluation
    final_val: Evaluation
    final_test: Evaluation
    iterations: int
    paths: dict[str, str]  # each weight matrix's path: "sparse", "dense-nonblank" or "dense"
    backend: str  # the trainer that ran: "native", "torch" (asked for, or the fallback) or "autograd"
    # the compiled kernels' build flavour ($LOTTERY_MARCH) where they ran, else None: for the
    # provenance only (the results are the same bits from every flavour), never in the metrics
    kernel_flavour: str | None = None

    def metrics(self) -> dict[str, float | int | dict[str, str]]:
        return {
            "backend": self.backend,
            "paths": self.paths,
            "iterations": self.iterations,
            "early_stop_iteration": self.early_stop_iteration,
            "val_loss": self.early_stop_val.loss,
            "val_acc": self.early_stop_val.accuracy,
            "test_loss": self.early_stop_test.loss,
            "test_acc": self.early_stop_test.accuracy,
            "val_loss_final": self.final_val.loss,
            "val_acc_final": self.final_val.accuracy,
            "test_loss_final": self.final_test.loss,
            "test_acc_final": self.final_test.accuracy,
        }


def _is_torch(value: Any) -> bool:
    return type(value).__module__.startswith("torch")


def _arrays(tensors: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.asarray(t) for name, t in tensors.items()}


def _array_data(data: Any) -> Any:
    """``data`` with numpy arrays (a PyTorch :class:`lottery.data.TensorData` is viewed as numpy)."""
    if not _is_torch(data.train_x):
        return data
    from lottery.data import ARRAYS, ArrayData

    return ArrayData(**{f: np.asarray(getattr(data, f)) for f in ARRAYS}, background=data.background)


def _tensor_data(data: Any) -> Any:
    import torch

    from lottery.data import ARRAYS, TensorData

    if _is_torch(data.train_x):
        return data
    tensors = {f: torch.from_numpy(np.ascontiguousarray(getattr(data, f))) for f in ARRAYS}
    return TensorData(**tensors, background=data.background)


def _tensors(arrays: dict[str, Any]) -> dict[str, Any]:
    import torch

    return {n: t if _is_torch(t) else torch.from_numpy(np.ascontiguousarray(t)) for n, t in arrays.items()}


def make_trainer(
    init: dict[str, Any],
    masks: dict[str, Any],
    data: Any,
    hparams: TrainingHparams,
    data_order_seed: int,
    start_iteration: int = 0,
    flush_denormals: bool = True,
    model: str = "mlp",
) -> tuple[Any, dict[str, str]]:
    """The trainer ``hparams.backend`` asks for, for the model ``model`` (a name of
    :data:`lottery.models.REGISTRY`), and each layer's path: :class:`lottery.native.NativeTrainer`
    (paths by :func:`lottery.native.choose_paths`) where the kernels train the model; the PyTorch
    reference :class:`lottery.torch_trainer.MaskedTrainer` (``mlp`` only, every layer dense) - asked
    for, or where the kernels cannot be built (the log says why); else :class:`lottery.
    autograd_trainer.AutogradTrainer` (every layer dense). ``flush_denormals`` False (the PyTorch
    trainers only) keeps IEEE arithmetic, for the benchmark that measures what flushing buys."""
    names = [name for name in init if name.endswith(".weight")]
    native_model = models.get(model).native
    if hparams.backend == TORCH and not native_model:
        raise ValueError(
            f"training.backend torch is the reference trainer of mlp: model.name {model} trains on "
            f"backend native or autograd"
        )
    if hparams.backend == TORCH and hparams.device != "cpu":
        raise ValueError(f"training.backend torch trains on the CPU: training.device {hparams.device} "
                         "needs backend native or autograd")  # fmt: skip
    if hparams.backend == AUTOGRAD or not native_model or hparams.device != "cpu":
        from lottery.autograd_trainer import AutogradTrainer

        if hparams.backend == NATIVE:
            log.info("model %s on %s: the native kernels train mlp on the CPU; training on the "
                     "autograd trainer", model, hparams.device)  # fmt: skip
        trainer = AutogradTrainer(
            _tensors(init), _tensors(masks), _tensor_data(data), hparams, data_order_seed,
            start_iteration, flush_denormals, model=model,
        )  # fmt: skip
        return trainer, dict.fromkeys(names, DENSE)
    if hparams.backend == NATIVE:
        lib = kernels.load()
        if lib is not None:
            from lottery import native

            paths = native.choose_paths(masks, hparams.sparse_max_density, data.background is not None)
            trainer = native.NativeTrainer(
                _arrays(init), _arrays(masks), _array_data(data), hparams, data_order_seed, paths, lib,
                start_iteration,
            )  # fmt: skip
            return trainer, paths
        log.warning(
            "native trainer unavailable (%s): training on the PyTorch reference trainer instead",
            kernels.unavailable_reason,
        )
    from lottery.torch_trainer import MaskedTrainer

    trainer = MaskedTrainer(
        _tensors(init), _tensors(masks), _tensor_data(data), hparams, data_order_seed, start_iteration,
        flush_denormals,
    )  # fmt: skip
    return trainer, dict.fromkeys(names, DENSE)


def backend_of(trainer: Any) -> str:
    module = type(trainer).__module__
    return {"lottery.torch_trainer": TORCH, "lottery.autograd_trainer": AUTOGRAD}.get(module, NATIVE)


def _like(params: dict[str, Any], init: dict[str, Any]) -> dict[str, Any]:
    """``params`` as the kind of ``init``'s values: PyTorch tensors where those were, else numpy."""
    want_torch = any(_is_torch(t) for t in init.values())
    if want_torch:
        return _tensors(params)
    return {n: t.numpy() if _is_torch(t) else t for n, t in params.items()}


def _check_start(start_iteration: int, hparams: TrainingHparams) -> None:
    if not 0 <= start_iteration < hparams.iterations:
        raise ValueError(f"start iteration {start_iteration} must be in [0, {hparams.iterations})")


def train(
    init: dict[str, Any],
    masks: dict[str, Any],
    data: Any,
    hparams: TrainingHparams,
    data_order_seed: int,
    start_iteration: int = 0,
    flush_denormals: bool = True,
    progress_seconds: float = PROGRESS_SECONDS,
    model: str = "mlp",
) -> TrainingResult:
    """Train ``rewind(init, masks)`` of the model ``model`` (:mod:`lottery.models`) with Adam up to
    iteration ``hparams.iterations``.

    ``start_iteration`` k > 0 trains from θk (weights after k iterations of dense training) for the
    remaining iterations, the data order resuming where iteration k left it; Adam starts afresh.
    A progress line goes to the log at the first evaluation ``progress_seconds`` after the last one.
    """
    _check_start(start_iteration, hparams)
    trainer, paths = make_trainer(
        init, masks, data, hparams, data_order_seed, start_iteration, flush_denormals, model
    )
    return run_training(trainer, paths, data, hparams, start_iteration, init, progress_seconds)


def run_training(
    trainer: Any,
    paths: dict[str, str],
    data: Any,
    hparams: TrainingHparams,
    start_iteration: int = 0,
    like: dict[str, Any] | None = None,
    progress_seconds: float = PROGRESS_SECONDS,
) -> TrainingResult:
    """The paper's protocol on a trainer :func:`make_trainer` made (with ``paths``): steps up to
    iteration ``hparams.iterations`` from ``start_iteration``, the validation set every
    ``hparams.eval_every`` iterations, the early-stop weights kept, the test set where the record
    needs it. The trainer holds the optimiser and its learning rate; this loop reads only the
    evaluation grid. The weights come back as ``like``'s kind (numpy where None)."""
    _check_start(start_iteration, hparams)
    if backend_of(trainer) != NATIVE:
        data = trainer.data  # the data as the PyTorch trainer holds them (tensors, on its device)
    val_x = trainer.evaluation_inputs(data.val_x)
    test_x = trainer.evaluation_inputs(data.test_x)
    started_after = seconds_since_process_start()
    if started_after is not None:  # issue 26's figure: a job's own start, up to its first step
        log.info("first training step %.2f s after the process started (%s trainer)", started_after,
                 backend_of(trainer))  # fmt: skip
    best_flat = trainer.flat_copy()
    best_loss, best_iteration = math.inf, 0
    best_val = Evaluation(math.nan, math.nan)
    curve: list[dict[str, float | int | None]] = []
    done = start_iteration
    started = last_progress = time.perf_counter()
    for iteration in hparams.eval_iterations(start_iteration):
        trainer.run(iteration - done)
        done = iteration
        val = trainer.evaluate(val_x, data.val_y)
        if not math.isfinite(val.loss):
            raise FloatingPointError(
                f"training diverged: validation loss {val.loss} at iteration {iteration} "
                f"(training.learning_rate {hparams.learning_rate})"
            )
        row: dict[str, float | int | None] = {
            "iteration": iteration,
            "train_loss": trainer.take_train_loss(),
            "val_loss": val.loss,
            "val_acc": val.accuracy,
            "test_loss": None,
            "test_acc": None,
        }
        if hparams.test_every and iteration % hparams.test_every == 0:
            test = trainer.evaluate(test_x, data.test_y)
            row["test_loss"], row["test_acc"] = test.loss, test.accuracy
        curve.append(row)
        if val.loss < best_loss:
            best_loss, best_iteration, best_val = val.loss, iteration, val
            trainer.flat_copy(into=best_flat)
        if (now := time.perf_counter()) - last_progress >= progress_seconds:
            last_progress = now
            log.info(
                "iteration %d/%d: val loss %.4f, val acc %.4f, %.0f s elapsed",
                iteration, hparams.iterations, val.loss, val.accuracy, now - started,
            )  # fmt: skip

    final_val = Evaluation(curve[-1]["val_loss"], curve[-1]["val_acc"])  # type: ignore[arg-type]
    final_test = trainer.evaluate(test_x, data.test_y)
    early_test = trainer.evaluate(test_x, data.test_y, flat=best_flat)
    for row in curve:
        if row["iteration"] == best_iteration:
            row["test_loss"], row["test_acc"] = early_test.loss, early_test.accuracy
    curve[-1]["test_loss"], curve[-1]["test_acc"] = final_test.loss, final_test.accuracy
    return TrainingResult(
        params=_like(trainer.state_dict(), like or {}),
        curve=curve,
        early_stop_iteration=best_iteration,
        early_stop_val=best_val,
        early_stop_test=early_test,
        final_val=final_val,
        final_test=final_test,
        iterations=hparams.iterations,
        paths=paths,
        backend=backend_of(trainer),
        kernel_flavour=kernels.flavour_of(trainer.lib) if backend_of(trainer) == NATIVE else None,
    )
