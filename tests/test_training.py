from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lottery import pruning
from lottery.model import Architecture, glorot_normal_init, prunable
from lottery.order import BatchOrder
from lottery.torch_trainer import MaskedTrainer, SparseInputs, as_evaluation_inputs, evaluate, forward
from lottery.training import TrainingHparams, train

from .conftest import with_background

ARCH = Architecture(input_size=20, hidden=(16, 8), num_classes=4)


def _masks(params, keep=0.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {n: (torch.rand(w.shape, generator=g) < keep).float() for n, w in prunable(params).items()}


def test_pruned_weights_exactly_zero_after_training(tiny_data):
    init = glorot_normal_init(ARCH, seed=1)
    masks = _masks(init, keep=0.3)
    result = train(init, masks, tiny_data, TrainingHparams(iterations=150, batch_size=20, eval_every=25), 1)
    for name, mask in masks.items():
        assert bool((result.params[name][mask == 0] == 0).all())
        assert bool((result.params[name][mask == 1] != init[name][mask == 1]).any())


def test_same_seed_identical_different_seed_differs(tiny_data):
    init = glorot_normal_init(ARCH, seed=2)
    masks = _masks(init)
    hp = TrainingHparams(iterations=60, batch_size=20, eval_every=20)
    a = train(init, masks, tiny_data, hp, data_order_seed=5)
    b = train(init, masks, tiny_data, hp, data_order_seed=5)
    c = train(init, masks, tiny_data, hp, data_order_seed=6)
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params)
    assert a.curve == b.curve
    assert any(not torch.equal(a.params[n], c.params[n]) for n in a.params)
    other_init = train(glorot_normal_init(ARCH, seed=3), masks, tiny_data, hp, data_order_seed=5)
    assert any(not torch.equal(a.params[n], other_init.params[n]) for n in a.params)


def _autograd_reference(init, masks, data, hp, seed):
    """A straightforward implementation: nn-style autograd, torch.optim.Adam, masked gradients."""
    names = [n.removesuffix(".weight") for n in init if n.endswith(".weight")]
    params = {n: t.clone().requires_grad_(True) for n, t in pruning.rewind(init, masks).items()}
    opt = torch.optim.Adam(params.values(), lr=hp.learning_rate)
    order = BatchOrder(len(data.train_y), hp.batch_size, seed)
    for _ in range(hp.iterations):
        idx = order.next()
        a = data.train_x[idx]
        for i, layer in enumerate(names):
            a = F.linear(a, params[f"{layer}.weight"], params[f"{layer}.bias"])
            if i < len(names) - 1:
                a = F.relu(a)
        loss = F.cross_entropy(a, data.train_y[idx])
        opt.zero_grad()
        loss.backward()
        for name, mask in masks.items():
            params[name].grad.mul_(mask)
        opt.step()
    return {n: p.detach() for n, p in params.items()}


def test_fast_trainer_matches_autograd(tiny_data):
    init = glorot_normal_init(ARCH, seed=7)
    masks = _masks(init, keep=0.6, seed=3)
    hp = TrainingHparams(iterations=100, batch_size=30, eval_every=50)
    fast = train(init, masks, tiny_data, hp, data_order_seed=11).params
    reference = _autograd_reference(init, masks, tiny_data, hp, seed=11)
    for name in reference:
        torch.testing.assert_close(fast[name], reference[name], rtol=1e-4, atol=1e-5)


def test_early_stop_is_iteration_of_minimum_validation_loss(tiny_data):
    init = glorot_normal_init(ARCH, seed=1)
    hp = TrainingHparams(iterations=300, batch_size=20, eval_every=10, learning_rate=0.02)
    result = train(init, pruning.dense_masks(prunable(init)), tiny_data, hp, 0)
    losses = [(row["val_loss"], row["iteration"]) for row in result.curve]
    assert [row["iteration"] for row in result.curve] == list(range(10, 301, 10))
    best_loss, best_iteration = min(losses)
    assert result.early_stop_iteration == best_iteration
    assert result.early_stop_val.loss == best_loss
    best_row = next(r for r in result.curve if r["iteration"] == best_iteration)
    assert best_row["test_acc"] == result.early_stop_test.accuracy
    assert result.curve[-1]["test_acc"] == result.final_test.accuracy
    assert result.early_stop_val.accuracy > 0.7  # it learns


def test_batch_order_covers_each_epoch_once():
    order = BatchOrder(10, 4, seed=0)
    seen = np.concatenate([order.next() for _ in range(5)])  # 20 indices = 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))


def test_eval_iterations_include_the_last():
    assert TrainingHparams(iterations=250, eval_every=100).eval_iterations() == [100, 200, 250]
    assert TrainingHparams(iterations=50, eval_every=100).eval_iterations() == [50]
    with pytest.raises(ValueError, match=r"training\.iterations"):
        TrainingHparams(iterations=0)


def test_mismatched_input_size_is_a_clear_error(tiny_data):
    init = glorot_normal_init(Architecture(input_size=784), seed=1)
    with pytest.raises(ValueError, match="784 inputs but the data have 20"):
        train(init, pruning.dense_masks(prunable(init)), tiny_data, TrainingHparams(iterations=1), 0)


@pytest.mark.parametrize("background", [-0.42, 0.0])
def test_sparse_evaluation_inputs_match_dense_forward(tiny_data, background):
    data = with_background(tiny_data)
    params = glorot_normal_init(ARCH, seed=4)
    weights = [params[f"{layer}.weight"] for layer in ("fc1", "fc2", "fc3")]
    biases = [params[f"{layer}.bias"] for layer in ("fc1", "fc2", "fc3")]
    # 0.0 is not the background here: every input is then an entry of the sparse form.
    sparse = as_evaluation_inputs(data.val_x, background)
    assert isinstance(sparse, SparseInputs)
    expected_entries = int((data.val_x != background).sum())
    assert len(sparse.values) == expected_entries and sparse.shape == tuple(data.val_x.shape)
    torch.testing.assert_close(forward(weights, biases, sparse), forward(weights, biases, data.val_x))
    dense_eval = evaluate(weights, biases, data.val_x, data.val_y)
    sparse_eval = evaluate(weights, biases, sparse, data.val_y)
    assert sparse_eval.accuracy == dense_eval.accuracy
    assert sparse_eval.loss == pytest.approx(dense_eval.loss, rel=1e-6)
    assert as_evaluation_inputs(data.val_x, None) is data.val_x


def test_training_with_sparse_evaluation_matches_dense(tiny_data):
    """The reference trainer: the background only changes how validation and test sets are
    evaluated, not the training."""
    data = with_background(tiny_data)
    dense = replace(data, background=None)
    init = glorot_normal_init(ARCH, seed=5)
    masks = _masks(init, keep=0.5, seed=1)
    hp = TrainingHparams(iterations=200, batch_size=20, eval_every=10, test_every=50, backend="torch")
    a, b = train(init, masks, data, hp, 3), train(init, masks, dense, hp, 3)
    assert all(torch.equal(a.params[n], b.params[n]) for n in a.params)
    assert a.early_stop_iteration == b.early_stop_iteration
    assert a.paths == b.paths
    for key, value in b.metrics().items():
        if key not in ("paths", "backend"):
            assert a.metrics()[key] == pytest.approx(value, rel=1e-6), key


def _subnormal(t: torch.Tensor) -> torch.Tensor:
    return (t != 0) & (t.abs() < torch.finfo(t.dtype).tiny)


def test_flushing_subnormals_keeps_the_weights_bitwise(tiny_data):
    # Pixel 0 is always 0, so the gradients of its weights are 0 and their first moments, started
    # at 1e-30, decay by 0.9 a step into the subnormal range (below 1.2e-38) after ~175 steps.
    data = replace(tiny_data, train_x=tiny_data.train_x.clone())
    data.train_x[:, 0] = 0.0
    init = glorot_normal_init(ARCH, seed=4)
    masks = _masks(init, keep=0.7, seed=2)
    hp = TrainingHparams(iterations=250, batch_size=20, eval_every=50)
    trainers = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as training jobs run; flushing is per thread (see flushing_denormals)
    try:
        for flush in (True, False):
            trainer = MaskedTrainer(init, masks, data, hp, data_order_seed=3, flush_denormals=flush)
            first_moment = trainer.views(trainer.exp_avg)[0]
            first_moment[:, 0] = 1e-30 * masks["fc1.weight"][:, 0]
            trainer.run(200)
            trainers[flush] = trainer
    finally:
        torch.set_num_threads(threads)
    flushed, ieee = trainers[True], trainers[False]
    assert bool(_subnormal(ieee.exp_avg).any())
    assert not bool(_subnormal(flushed.exp_avg).any())
    assert torch.equal(flushed.flat, ieee.flat)
    # IEEE arithmetic again once the steps are done.
    assert torch.tensor([1e-39]).mul(1.0).item() != 0.0


def test_dense_network_skips_the_mask_multiply_bitwise(tiny_data):
    init = glorot_normal_init(ARCH, seed=5)
    dense = pruning.dense_masks(prunable(init))
    hp = TrainingHparams(iterations=80, batch_size=20, eval_every=40)
    skipping = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=2)
    masking = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=2)
    masking.pruned = True
    assert not skipping.pruned
    assert MaskedTrainer(init, _masks(init), tiny_data, hp, data_order_seed=2).pruned
    skipping.run(80)
    masking.run(80)
    assert torch.equal(skipping.flat, masking.flat)


def test_a_training_logs_its_progress_at_an_interval(tiny_data, caplog):
    """Lines with the iteration, validation loss and elapsed time, one per evaluation at interval 0,
    none where the interval is longer than the training; the weights are the same either way."""
    init = glorot_normal_init(ARCH, seed=1)
    hp = TrainingHparams(iterations=100, batch_size=20, eval_every=25)
    with caplog.at_level("INFO", logger="lottery"):
        every = train(init, _masks(init), tiny_data, hp, 1, progress_seconds=0)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("iteration ")]
    assert [line.split(":")[0] for line in lines] == [f"iteration {i}/100" for i in (25, 50, 75, 100)]
    assert all(" val loss " in line and " s elapsed" in line for line in lines)
    caplog.clear()
    with caplog.at_level("INFO", logger="lottery"):
        never = train(init, _masks(init), tiny_data, hp, 1, progress_seconds=3600)
    assert not [r for r in caplog.records if r.getMessage().startswith("iteration ")]
    assert all(torch.equal(every.params[n], never.params[n]) for n in every.params)
