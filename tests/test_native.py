"""The native trainer against the PyTorch reference trainer and a float64 autograd run."""

import gc
import weakref
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lottery import kernels, pruning
from lottery.model import Architecture, glorot_normal_init, prunable
from lottery.native import NONBLANK, SPARSE, NativeTrainer, aligned_zeros, choose_paths
from lottery.order import BatchOrder
from lottery.torch_trainer import MaskedTrainer
from lottery.training import DENSE, TrainingHparams, make_trainer, train

from .conftest import synthetic_data, with_background

ARCH = Architecture(input_size=20, hidden=(16, 8), num_classes=4)
HP = TrainingHparams(iterations=1000, batch_size=30, eval_every=100)


@pytest.fixture(scope="module")
def lib():
    built = kernels.load()
    assert built is not None, kernels.unavailable_reason  # gcc is part of the project's setup
    return built


def _masks(params, keep, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: (torch.rand(w.shape, generator=g) < keep).float() for n, w in prunable(params).items()}


def _state(trainer):
    return {k: torch.as_tensor(np.asarray(v)).double() for k, v in trainer.state_dict().items()}


def _native(init, masks, data, hp, seed):
    """The native trainer, its paths by :func:`choose_paths`."""
    trainer, _ = make_trainer(init, masks, data, hp, seed)
    assert isinstance(trainer, NativeTrainer)
    return trainer


def _reference(init, masks, data, hp, seed):
    return MaskedTrainer(init, masks, data, replace(hp, backend="torch"), seed)


def _float64_reference(init, masks, data, hp, seed, steps):
    """Autograd in float64 with torch.optim.Adam and masked gradients: the arithmetic both float32
    paths approximate."""
    names = [n.removesuffix(".weight") for n in init if n.endswith(".weight")]
    params = {n: t.double().clone().requires_grad_(True) for n, t in pruning.rewind(init, masks).items()}
    opt = torch.optim.Adam(params.values(), lr=hp.learning_rate, eps=1e-8)
    order = BatchOrder(len(data.train_y), hp.batch_size, seed)
    for _ in range(steps):
        idx = torch.from_numpy(order.next())
        a = data.train_x[idx].double()
        for i, layer in enumerate(names):
            a = F.linear(a, params[f"{layer}.weight"], params[f"{layer}.bias"])
            if i < len(names) - 1:
                a = F.relu(a)
        loss = F.cross_entropy(a, data.train_y[idx], reduction="sum")
        opt.zero_grad()
        loss.backward()
        for name, mask in masks.items():
            params[name].grad.mul_(mask)
        for p in params.values():  # summed loss: epsilon scaled as the trainers do
            p.grad.div_(hp.batch_size)
        opt.step()
    return {n: p.detach() for n, p in params.items()}


def _max_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in b)


@pytest.mark.parametrize("keep", [1.0, 0.3, 0.05], ids=["dense", "pruned", "heavily-pruned"])
@pytest.mark.parametrize("steps", [100, 1000])
def test_native_trainer_agrees_with_the_reference_and_autograd(tiny_data, lib, keep, steps):
    """Same θ0, mask and data order: both float32 trainers within 1e-4 of a float64 autograd run
    after 100 steps and within 2e-3 after 1,000 (Adam amplifies rounding: its step is ~lr whatever
    the gradient's size), and of each other."""
    init = glorot_normal_init(ARCH, seed=7)
    masks = _masks(init, keep, seed=3)
    sparse = _native(init, masks, tiny_data, HP, 11)
    dense = _reference(init, masks, tiny_data, HP, 11)
    sparse.run(steps)
    dense.run(steps)
    reference = _float64_reference(init, masks, tiny_data, HP, 11, steps)
    s, d = _state(sparse), _state(dense)
    tolerance = 1e-4 if steps == 100 else 2e-3
    assert _max_diff(s, reference) < tolerance
    assert _max_diff(d, reference) < tolerance
    assert _max_diff(s, d) < tolerance
    for name, mask in masks.items():  # pruned weights exactly zero
        assert bool((s[name][mask == 0] == 0).all())


def test_a_dense_hidden_layer_is_the_csr_matrix_of_all_its_weights(tiny_data, lib):
    init = glorot_normal_init(ARCH, seed=2)
    masks = _masks(init, 0.4, seed=5)
    masks["fc2.weight"] = torch.ones_like(masks["fc2.weight"])
    sparse = _native(init, masks, tiny_data, HP, 4)
    assert sparse.layers[1].path == SPARSE and len(sparse.layers[1].col) == masks["fc2.weight"].numel()
    dense = _reference(init, masks, tiny_data, HP, 4)
    # 100 steps: at step 169 a pre-activation of 1e-7 puts a ReLU on its boundary, and rounding
    # decides which side (a flip, as between any two float32 implementations, not an error).
    sparse.run(100)
    dense.run(100)
    assert _max_diff(_state(sparse), _state(dense)) < 1e-5
    assert bool((_state(sparse)["fc3.weight"][masks["fc3.weight"] == 0] == 0).all())


def test_native_trainer_is_bitwise_reproducible(tiny_data, lib):
    init = glorot_normal_init(ARCH, seed=1)
    masks = _masks(init, 0.2, seed=1)
    hp = replace(HP, iterations=300, eval_every=50)
    a, b = train(init, masks, tiny_data, hp, 5), train(init, masks, tiny_data, hp, 5)
    assert set(a.paths.values()) == {SPARSE}
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params)  # init's kind: torch
    assert a.curve == b.curve


def test_native_evaluation_matches_the_reference(tiny_data, lib):
    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, 0.3, seed=2)
    sparse = _native(init, masks, tiny_data, HP, 2)
    dense = _reference(init, masks, tiny_data, HP, 2)
    got = sparse.evaluate(sparse.evaluation_inputs(tiny_data.test_x), tiny_data.test_y)
    want = dense.evaluate(dense.evaluation_inputs(tiny_data.test_x), tiny_data.test_y)
    assert got.accuracy == want.accuracy
    assert got.loss == pytest.approx(want.loss, rel=1e-5)


@pytest.mark.parametrize("keep", [1.0, 0.3])
def test_inputs_made_for_one_evaluation_are_never_read_by_another(tiny_data, lib, keep):
    """The trainer binds its evaluation calls to raw pointers into the inputs and caches them by the
    inputs' id: the cache must keep the inputs alive, or inputs made anew for a later call could get
    the freed ones' id and be evaluated by calls that read freed memory (seen once: a loss off by
    1.8). Inputs made for each call then give each set's own result."""
    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, keep, seed=2)
    trainer = _native(init, masks, tiny_data, HP, 2)
    fresh = _native(init, masks, tiny_data, HP, 2)
    inputs = trainer.evaluation_inputs(tiny_data.val_x)
    alive = weakref.ref(inputs[0] if isinstance(inputs, tuple) else inputs)
    trainer.evaluate(inputs, tiny_data.val_y)
    del inputs
    gc.collect()
    assert alive() is not None
    for x, y in [(tiny_data.val_x, tiny_data.val_y), (tiny_data.test_x, tiny_data.test_y)] * 2:
        got = trainer.evaluate(trainer.evaluation_inputs(x), y)
        want = fresh.evaluate(fresh.evaluation_inputs(x), y, flat=fresh.flat_copy())
        assert (got.loss, got.accuracy) == (want.loss, want.accuracy)


def test_first_layer_reads_only_the_pixels_its_weights_read(tiny_data, lib):
    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, 0.3, seed=2)
    masks["fc1.weight"][:, [0, 5, 6]] = 0  # three inputs no surviving weight reads
    trainer = _native(init, masks, tiny_data, HP, 2)
    assert trainer.layers[0].inp == 17 and 5 not in trainer.pixels.tolist()
    dense = _reference(init, masks, tiny_data, HP, 2)
    trainer.run(50)
    dense.run(50)
    assert _max_diff(_state(trainer), _state(dense)) < 1e-5


def test_the_threshold_chooses_the_first_layers_path(tiny_data):
    init = glorot_normal_init(ARCH, seed=3)
    masks = {
        "fc1.weight": _masks(init, 0.6)["fc1.weight"],
        "fc2.weight": torch.ones(8, 16),
        "fc3.weight": _masks(init, 0.2)["fc3.weight"],
    }
    assert choose_paths(masks, 0.5, True) == {
        "fc1.weight": NONBLANK,
        "fc2.weight": SPARSE,
        "fc3.weight": SPARSE,
    }
    assert choose_paths(masks, 0.7, True) == dict.fromkeys(masks, SPARSE)
    assert choose_paths(masks, 0.5, False) == dict.fromkeys(masks, SPARSE)  # no background value
    hp = replace(HP, iterations=20, eval_every=10)
    result = train(init, masks, with_background(tiny_data), hp, 0)
    assert result.paths == {"fc1.weight": NONBLANK, "fc2.weight": SPARSE, "fc3.weight": SPARSE}
    assert result.metrics()["paths"] == result.paths and result.metrics()["backend"] == "native"
    reference = train(init, masks, tiny_data, replace(hp, backend="torch"), 0)
    assert set(reference.paths.values()) == {DENSE} and reference.metrics()["backend"] == "torch"
    assert reference.kernel_flavour is None


def test_numpy_in_numpy_out(tiny_data, lib):
    """A job hands numpy arrays (no PyTorch imported) and gets numpy arrays back."""
    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, 0.3)
    hp = replace(HP, iterations=20, eval_every=10)
    arrays = train({n: t.numpy() for n, t in init.items()}, {n: m.numpy() for n, m in masks.items()},
                   tiny_data, hp, 0)  # fmt: skip
    tensors = train(init, masks, tiny_data, hp, 0)
    for name, value in arrays.params.items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float32
        assert np.array_equal(value, tensors.params[name].numpy())


def test_without_a_compiler_the_reference_trainer_trains_and_says_so(
    tiny_data, monkeypatch, caplog, tmp_path
):
    monkeypatch.setenv("LOTTERY_CC", str(tmp_path / "no-such-compiler"))
    monkeypatch.setenv("LOTTERY_KERNEL_CACHE", str(tmp_path / "cache"))
    kernels.load.cache_clear()
    try:
        assert kernels.load() is None
        assert "no C compiler" in kernels.unavailable_reason
        init = glorot_normal_init(ARCH, seed=3)
        masks = _masks(init, 0.1)
        trainer, paths = make_trainer(init, masks, tiny_data, HP, 0)
        assert isinstance(trainer, MaskedTrainer) and set(paths.values()) == {DENSE}
        assert "native trainer unavailable (no C compiler" in caplog.text
    finally:
        kernels.load.cache_clear()


def test_a_failed_build_falls_back_and_leaves_no_file(tiny_data, monkeypatch, tmp_path):
    fake = tmp_path / "cc"
    fake.write_text(
        '#!/bin/sh\nfor a; do :; done\n[ "$1" = --version ] && echo fake && exit 0\necho broken >&2; exit 1\n'
    )
    fake.chmod(0o755)
    monkeypatch.setenv("LOTTERY_CC", str(fake))
    monkeypatch.setenv("LOTTERY_KERNEL_CACHE", str(tmp_path / "cache"))
    kernels.load.cache_clear()
    try:
        assert kernels.load() is None
        assert "failed" in kernels.unavailable_reason and "broken" in kernels.unavailable_reason
        assert list((tmp_path / "cache").iterdir()) == []  # no half-written library left
    finally:
        kernels.load.cache_clear()


def test_the_build_is_cached_per_cpu_and_source(monkeypatch, tmp_path):
    monkeypatch.setenv("LOTTERY_KERNEL_CACHE", str(tmp_path))
    kernels.load.cache_clear()
    try:
        assert kernels.load() is not None
        built = list(tmp_path.glob("sparse_kernels-*.so"))
        assert len(built) == 1
        kernels.load.cache_clear()
        monkeypatch.setattr(kernels, "cpu_identity", lambda: "another cpu")
        assert kernels.load() is not None
        assert len(list(tmp_path.glob("sparse_kernels-*.so"))) == 2  # never another CPU's build
    finally:
        kernels.load.cache_clear()


def test_batches_of_several_tiles_agree_with_the_reference(tiny_data, lib):
    """Batch 100: two tiles of 64 examples; evaluation alike."""
    init = glorot_normal_init(ARCH, seed=6)
    masks = _masks(init, 0.3, seed=4)
    hp = replace(HP, batch_size=100)
    sparse = _native(init, masks, tiny_data, hp, 8)
    dense = _reference(init, masks, tiny_data, hp, 8)
    assert sparse.ntiles == 2
    sparse.run(30)
    dense.run(30)
    assert _max_diff(_state(sparse), _state(dense)) < 1e-5
    got = sparse.evaluate(sparse.evaluation_inputs(tiny_data.val_x), tiny_data.val_y)
    want = dense.evaluate(dense.evaluation_inputs(tiny_data.val_x), tiny_data.val_y)
    assert got.accuracy == want.accuracy
    assert got.loss == pytest.approx(want.loss, rel=1e-5)


@pytest.mark.parametrize("keep", [1.0, 0.7], ids=["dense", "pruned-dense"])
def test_nonblank_first_layer_agrees_with_the_reference_and_autograd(tiny_data, lib, keep):
    """Inputs with a background value: a dense first layer reads only the other inputs."""
    data = with_background(tiny_data)
    init = glorot_normal_init(ARCH, seed=9)
    masks = _masks(init, keep, seed=2)
    hp = replace(HP, sparse_max_density=0.5)
    trainer, paths = make_trainer(init, masks, data, hp, 3)
    assert paths == {"fc1.weight": NONBLANK, "fc2.weight": SPARSE, "fc3.weight": SPARSE}
    dense = _reference(init, masks, data, hp, 3)
    trainer.run(100)
    dense.run(100)
    reference = _float64_reference(init, masks, data, hp, 3, 100)
    assert _max_diff(_state(trainer), reference) < 1e-4
    assert _max_diff(_state(trainer), _state(dense)) < 1e-4
    for name, mask in masks.items():
        assert bool((_state(trainer)[name][mask == 0] == 0).all())
    got = trainer.evaluate(trainer.evaluation_inputs(data.val_x), data.val_y)
    want = dense.evaluate(dense.evaluation_inputs(data.val_x), data.val_y)
    assert got.accuracy == want.accuracy
    assert got.loss == pytest.approx(want.loss, rel=1e-5)


def test_nonblank_first_layer_with_several_tiles(tiny_data, lib):
    data = with_background(tiny_data)
    init = glorot_normal_init(ARCH, seed=4)
    masks = _masks(init, 1.0)
    hp = replace(HP, batch_size=100)
    trainer, paths = make_trainer(init, masks, data, hp, 1)
    assert paths["fc1.weight"] == NONBLANK and trainer.ntiles == 2
    dense = _reference(init, masks, data, hp, 1)
    trainer.run(30)
    dense.run(30)
    assert _max_diff(_state(trainer), _state(dense)) < 1e-5


def test_wide_layers_are_blocked_and_agree_with_the_reference(lib):
    """200 inputs: the first layer's weights in 4 blocks of inputs (lt_forward's blocked CSR)."""
    data = synthetic_data(dim=200)
    arch = Architecture(input_size=200, hidden=(64, 16), num_classes=4)
    init = glorot_normal_init(arch, seed=1)
    masks = _masks(init, 0.5, seed=3)
    trainer = _native(init, masks, data, HP, 2)
    assert trainer.layers[0].nblocks == 4 and trainer.layers[1].nblocks == 1
    dense = _reference(init, masks, data, HP, 2)
    trainer.run(50)
    dense.run(50)
    assert _max_diff(_state(trainer), _state(dense)) < 1e-5
    got = trainer.evaluate(trainer.evaluation_inputs(data.val_x), data.val_y)
    want = dense.evaluate(dense.evaluation_inputs(data.val_x), data.val_y)
    assert got.loss == pytest.approx(want.loss, rel=1e-5)


def test_compact_adam_is_torchs_fused_adam(lib):
    """lt_adam against torch._fused_adam_ over 50 steps (float32 throughout; 1 - beta in double, as
    torch does: 1 - float32(0.999) would make every second moment 5e-5 too large)."""
    g = torch.Generator().manual_seed(0)
    n = 1000
    p_c, p_t = torch.randn(n, generator=g), None
    p_t = p_c.clone()
    m_c, v_c, m_t, v_t = (torch.zeros(n) for _ in range(4))
    steps = torch.zeros(())
    for step in range(1, 51):
        grad = torch.randn(n, generator=g) * torch.logspace(-9, 0, n)  # tiny gradients too
        lib.lt_adam(n, p_c.data_ptr(), grad.data_ptr(), m_c.data_ptr(), v_c.data_ptr(), 1.2e-3, 0.9, 0.999,
                    6e-7, step)  # fmt: skip
        steps += 1
        torch._fused_adam_([p_t], [grad], [m_t], [v_t], [], [steps], lr=1.2e-3, beta1=0.9, beta2=0.999,
                           weight_decay=0.0, eps=6e-7, amsgrad=False, maximize=False)  # fmt: skip
    torch.testing.assert_close(v_c, v_t, rtol=1e-6, atol=0)
    torch.testing.assert_close(p_c, p_t, rtol=1e-6, atol=1e-9)


def test_the_reference_trainer_takes_numpy_data_as_jobs_hand_it(tiny_data):
    """A job hands numpy arrays and ArrayData whatever the backend."""
    from lottery.data import ARRAYS, ArrayData

    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, 0.3)
    arrays = ArrayData(**{f: getattr(tiny_data, f).numpy() for f in ARRAYS}, background=None)
    hp = replace(HP, iterations=20, eval_every=10, backend="torch")
    got = train(
        {n: t.numpy() for n, t in init.items()}, {n: m.numpy() for n, m in masks.items()}, arrays, hp, 0
    )
    want = train(init, masks, tiny_data, hp, 0)
    assert got.backend == "torch" and isinstance(got.params["fc1.weight"], np.ndarray)
    assert all(np.array_equal(got.params[n], want.params[n].numpy()) for n in want.params)


@pytest.mark.parametrize("nonblank", [False, True])
def test_every_buffer_the_kernels_stream_starts_on_a_cache_line(tiny_data, lib, nonblank):
    """numpy puts a large array 16 bytes past a 64-byte line: half of a tile row's AVX2 loads (every
    AVX-512 one) would then read two lines (measured 5-18% of a step and of a validation pass)."""
    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, 0.9 if nonblank else 0.3, seed=2)
    data = with_background(tiny_data) if nonblank else tiny_data
    trainer = _native(init, masks, data, HP, 2)
    assert (trainer.layers[0].path == NONBLANK) == nonblank
    xt = trainer.evaluation_inputs(data.test_x)
    trainer.evaluate(xt, data.test_y)
    buffers = [
        trainer.flat,
        trainer.grad,
        trainer.exp_avg,
        trainer.exp_avg_sq,
        trainer.inputs,
        *trainer.acts,
        *trainer.grads,
        trainer.flat_copy(),
    ]
    buffers += [b for bs in trainer.evaluation_buffers.values() for b in bs]
    buffers += [trainer.fscratch] if nonblank else [xt]
    assert [b.ctypes.data % 64 for b in buffers] == [0] * len(buffers)
    big = aligned_zeros((3, 1000, 64))  # numpy alone: 16 bytes past a line
    assert big.ctypes.data % 64 == 0 and big.shape == (3, 1000, 64) and not big.any()


def test_the_evaluations_prefetch_changes_no_bit(tiny_data, lib):
    """An evaluation's first layer fetches the next tile ahead (lt_forward's ``ahead``): a hint only."""
    from functools import partial

    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, 0.3, seed=2)
    trainer = _native(init, masks, tiny_data, HP, 2)
    x = np.concatenate([np.asarray(tiny_data.test_x)] * 3)  # several tiles
    y = np.concatenate([np.asarray(tiny_data.test_y)] * 3)
    xt = trainer.evaluation_inputs(x)
    calls, logits = trainer._evaluation_calls(trainer.flat, xt, xt.shape[0])
    assert sum(c.args[-1] > 0 for c in calls) == xt.shape[0] - 1  # every tile but the last
    with_hint = trainer._evaluate_with((calls, logits), y), logits.copy()
    plain = [partial(c.func, *c.args[:-2], None, 0) for c in calls]
    without = trainer._evaluate_with((plain, logits), y), logits.copy()
    assert with_hint[0] == without[0] and np.array_equal(with_hint[1], without[1])


@pytest.mark.parametrize("keep", [0.2, 0.42])
def test_a_sparse_first_layer_denser_than_the_threshold_is_evaluated_as_nonblank(tiny_data, lib, keep):
    """Its surviving weights scattered into a dense matrix, read at the non-blank inputs only: the
    reference's loss to float rounding, its accuracy, for the trainer's weights and for a copy."""
    import lottery.native as native

    init = glorot_normal_init(ARCH, seed=3)
    masks = _masks(init, keep, seed=2)
    data = with_background(tiny_data)
    trainer = _native(init, masks, data, HP, 2)
    assert trainer.layers[0].path == SPARSE
    dense = keep > native.EVALUATION_NONBLANK_DENSITY
    assert trainer.evaluation_path == (NONBLANK if dense else SPARSE)
    reference = _reference(init, masks, data, HP, 2)
    trainer.run(30)
    reference.run(30)
    copy = trainer.flat_copy()
    trainer.run(5)  # the copy keeps the weights of 30 steps
    xt = trainer.evaluation_inputs(data.test_x)
    assert isinstance(xt, tuple) == dense
    want = reference.evaluate(reference.evaluation_inputs(data.test_x), data.test_y)
    for got in (trainer.evaluate(xt, data.test_y, copy), trainer.evaluate(xt, data.test_y, copy)):
        assert got.accuracy == want.accuracy
        assert got.loss == pytest.approx(want.loss, rel=1e-5)
    reference.run(5)
    got = trainer.evaluate(xt, data.test_y)
    assert got.loss == pytest.approx(
        reference.evaluate(reference.evaluation_inputs(data.test_x), data.test_y).loss, rel=1e-5
    )


def test_the_trainers_import_not_the_training_loop_above_them():
    """Shared pieces live below both trainers (lottery.trainer_parts); the loop (lottery.training)
    imports the trainers, never the reverse, not even inside a function."""
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "lottery"
    for name in ("native.py", "torch_trainer.py", "autograd_trainer.py", "trainer_parts.py"):
        imported = set()
        for node in ast.walk(ast.parse((src / name).read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
        assert "lottery.training" not in imported, name
