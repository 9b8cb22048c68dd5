"""The gradient and flow scorers of pruning at initialisation (lottery.methods.snip, grasp, synflow),
each on a case with a known answer: SNIP's |g ⊙ θ0| and GraSP's Hg against numpy gradients by hand
(Hg by central differences of them), SynFlow's conservation of flow; the counts kept (the ticket's),
no weight revived, the same masks for the same seed, no layer collapse, and a conv model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lottery import methods, models, pruning
from lottery.desc import Architecture, Schedule
from lottery.methods import grasp, snip, synflow
from lottery.methods.base import Budget, Examples, PruningInputs

torch.set_num_threads(1)

SMALL = Architecture(input_size=6, hidden=(5,), num_classes=3)  # fc1 5x6, fc2 (output) 3x5


def _params(arch, seed=0, biases=True):
    """θ0 of ``arch`` as numpy, with nonzero biases (unless ``biases`` is False) so that they count."""
    params = {k: v.numpy().astype(np.float32) for k, v in models.of(arch).init(arch, seed).items()}
    rng = np.random.default_rng(seed + 100)
    for name in params:
        if name.endswith(".bias") and biases:
            params[name] = rng.normal(0, 0.3, size=params[name].shape).astype(np.float32)
    return params


def _examples(arch, per_class=12, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(arch.num_classes), per_class)
    return Examples(rng.normal(size=(len(y), arch.input_size)).astype(np.float32), y)


def _inputs(arch, params, masks=None, examples=None, seed=3):
    weights = models.prunable(params)
    return PruningInputs(
        trained=weights,
        masks=pruning.dense_masks(weights) if masks is None else masks,
        init=params,
        architecture=arch,
        examples=examples,
        seed=seed,
    )


def _hand_gradients(p, x, y, temperature=1.0):
    """Gradients of the mean cross-entropy of ``logits / temperature`` for a one-hidden-layer ReLU
    network, by hand in float64: the weights' and the hidden pre-activations'."""
    w1, b1, w2, b2 = (
        np.asarray(p[k], np.float64) for k in ("fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")
    )
    x = np.asarray(x, np.float64)
    pre = x @ w1.T + b1
    hidden = np.maximum(pre, 0)
    z = (hidden @ w2.T + b2) / temperature
    soft = np.exp(z - z.max(axis=1, keepdims=True))
    soft /= soft.sum(axis=1, keepdims=True)
    dz = (soft - np.eye(w2.shape[0])[y]) / len(y) / temperature
    dw2 = dz.T @ hidden
    dpre = (dz @ w2) * (pre > 0)
    dw1 = dpre.T @ x
    return {"fc1.weight": dw1, "fc2.weight": dw2}, pre


def test_snip_scores_a_two_layer_relu_network_as_by_hand():
    params = _params(SMALL)
    examples = _examples(SMALL)
    inputs = _inputs(SMALL, params, examples=examples)
    x, y = examples.per_class(snip.EXAMPLES_PER_CLASS, inputs.seed)
    grads, pre = _hand_gradients(params, x, y)
    assert (pre > 0).any() and (pre <= 0).any()  # the ReLU cuts some units: the case is not linear
    scores = methods.get("snip").scores(inputs)
    assert list(scores) == ["fc1.weight", "fc2.weight"]
    for name, g in grads.items():
        expected = np.abs(g * params[name])
        np.testing.assert_allclose(scores[name], expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_snip_draws_ten_examples_per_class_with_the_steps_seed():
    params = _params(SMALL)
    examples = _examples(SMALL, per_class=12)
    scores = snip.scores(_inputs(SMALL, params, examples=examples, seed=3))
    again = snip.scores(_inputs(SMALL, params, examples=examples, seed=3))
    other = snip.scores(_inputs(SMALL, params, examples=examples, seed=4))
    np.testing.assert_array_equal(scores["fc1.weight"], again["fc1.weight"])
    assert not np.allclose(scores["fc1.weight"], other["fc1.weight"], rtol=1e-3)
    with pytest.raises(ValueError, match="class 0 has 9 training examples, not 10"):
        snip.scores(_inputs(SMALL, params, examples=_examples(SMALL, per_class=9)))
    with pytest.raises(ValueError, match="'snip' needs examples"):
        snip.scores(_inputs(SMALL, params))


def test_grasp_hessian_gradient_product_is_the_central_difference_of_the_gradient():
    params = _params(SMALL)
    examples = _examples(SMALL)
    x, y = examples.per_class(grasp.EXAMPLES_PER_CLASS, 3)
    t = 200.0  # the references' temperature
    assert t == grasp.TEMPERATURE
    g, _ = _hand_gradients(params, x, y, t)
    step = 1e-4 / max(np.abs(v).max() for v in g.values())
    ahead = {k: v + step * g[k] if k in g else v for k, v in params.items()}
    behind = {k: v - step * g[k] if k in g else v for k, v in params.items()}
    g_ahead, g_behind = _hand_gradients(ahead, x, y, t)[0], _hand_gradients(behind, x, y, t)[0]
    hg = {k: (g_ahead[k] - g_behind[k]) / (2 * step) for k in g}
    # the product itself, in float64
    p64 = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    ours = grasp.hessian_gradient(
        models.of(SMALL), p64, list(g), torch.tensor(x, dtype=torch.float64), torch.tensor(y), t
    )
    for k in g:
        np.testing.assert_allclose(ours[k].numpy(), hg[k], rtol=1e-6, atol=1e-8 * np.abs(hg[k]).max())
    # the method's scores (float32): θ0 ⊙ Hg, the highest kept (GraSP's −θ0 ⊙ Hg lowest)
    scores = methods.get("grasp").scores(_inputs(SMALL, params, examples=examples))
    for k in g:
        expected = params[k] * hg[k]
        np.testing.assert_allclose(scores[k], expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def _gradient_norm(params, masks, x, y, t):
    pruned = {k: v * masks[k] if k in masks else v for k, v in params.items()}
    return sum(float((g**2).sum()) for g in _hand_gradients(pruned, x, y, t)[0].values())


def test_grasp_removes_the_weights_whose_removal_raises_the_gradient_norm():
    """The sign: removing a few weights GraSP's way raises ‖g‖² (to first order by -2 θᵀHg over them);
    removing the same number from the other end lowers it."""
    params = _params(SMALL)
    examples = _examples(SMALL)
    inputs = _inputs(SMALL, params, examples=examples)
    x, y = examples.per_class(grasp.EXAMPLES_PER_CLASS, inputs.seed)
    budget = Budget({"fc1.weight": 27, "fc2.weight": 15}, 42)  # 3 of the 45 weights go
    kept = grasp.choose(inputs, budget)
    scores = grasp.scores(inputs)
    flipped = pruning.keep_top_jointly({k: -s for k, s in scores.items()}, inputs.masks, 42)
    assert sum(pruning.kept_counts(kept).values()) == 42
    dense = _gradient_norm(params, inputs.masks, x, y, grasp.TEMPERATURE)
    assert _gradient_norm(params, kept, x, y, grasp.TEMPERATURE) > dense
    assert _gradient_norm(params, flipped, x, y, grasp.TEMPERATURE) < dense


def _flow_by_hand(params, masks, features):
    """R of the all-ones input through |θ| ⊙ m, for a bias-free ReLU network, by hand."""
    a = np.ones(features)
    for name in masks:
        a = np.maximum(np.abs(params[name].astype(np.float64)) * masks[name] @ a, 0)
    return a.sum()


def test_synflow_conserves_the_flow_every_layer_scores_the_same_total():
    arch = Architecture(input_size=8, hidden=(7, 5), num_classes=4)
    params = _params(arch, biases=False)
    weights = models.prunable(params)
    rng = np.random.default_rng(1)
    for masks in (
        pruning.dense_masks(weights),
        {k: (rng.random(w.shape) < 0.6).astype(np.float32) for k, w in weights.items()},
    ):
        scores = synflow.scores(_inputs(arch, params, masks=masks))
        totals = [s.sum() for s in scores.values()]
        r = _flow_by_hand(params, masks, arch.input_size)
        assert r > 0
        np.testing.assert_allclose(totals, [r] * len(totals), rtol=1e-12)
        for name in masks:
            assert (scores[name][masks[name] == 0] == 0).all()
            assert scores[name].dtype == np.float64
    # the flow reads |θ|: a weight's sign changes nothing
    flipped = dict(params, **{"fc2.weight": -params["fc2.weight"]})
    np.testing.assert_array_equal(
        synflow.scores(_inputs(arch, flipped))["fc2.weight"],
        synflow.scores(_inputs(arch, params))["fc2.weight"],
    )


def test_synflow_prunes_on_the_exponential_schedule_to_exactly_the_ticket_total():
    counts = synflow.targets(1000, 10)
    assert len(counts) == synflow.ITERATIONS == 100
    assert counts[0] == pruning.round_half_up(1000 * 0.01 ** (1 / 100)) == 955
    assert counts[49] == 100 and counts[-1] == 10
    assert counts == sorted(counts, reverse=True)
    assert synflow.targets(50, 50) == [50] * 100
    with pytest.raises(ValueError, match="cannot keep 11"):
        synflow.targets(10, 11)


def test_synflow_selection_of_survivors_is_keep_top_jointly():
    rng = np.random.default_rng(0)
    scores = {"a": rng.random((30, 20)).round(2), "b": rng.random((10, 30)).round(2)}  # with ties
    masks = {k: (rng.random(s.shape) < 0.5).astype(np.float32) for k, s in scores.items()}
    for count in (0, 1, 57, 200):
        ours = synflow.keep_top_alive(scores, masks, count)
        theirs = pruning.keep_top_jointly(scores, masks, count)
        for k in scores:
            np.testing.assert_array_equal(ours[k], theirs[k])
            assert ours[k].dtype == masks[k].dtype


@pytest.mark.parametrize("name", ["snip", "grasp", "synflow"])
def test_each_keeps_the_tickets_count_revives_nothing_and_repeats_itself(name):
    arch = Architecture(input_size=20, hidden=(16, 12), num_classes=3)
    params = _params(arch)
    weights = models.prunable(params)
    rng = np.random.default_rng(2)
    start = {k: (rng.random(w.shape) < 0.7).astype(np.float32) for k, w in weights.items()}
    inputs = _inputs(arch, params, masks=start, examples=_examples(arch))
    schedule = Schedule(0.2, 6)
    sizes = {k: w.size for k, w in weights.items()}
    ticket_total = sum(pruning.layer_keep_counts(sizes, schedule, 6).values())
    assert ticket_total != pruning.kept_count(sum(sizes.values()), 0.2, 6)  # not the global budget
    method = methods.get(name)
    assert method.scope == methods.GLOBAL and method.choose is not None
    masks = pruning.next_masks(weights, start, schedule, 6, name, inputs)
    assert sum(pruning.kept_counts(masks).values()) == ticket_total
    for k in weights:
        assert masks[k].shape == start[k].shape and masks[k].dtype == start[k].dtype
        assert set(np.unique(masks[k])) <= {0, 1}
        assert (masks[k] <= start[k]).all()  # nothing revived
    again = pruning.next_masks(weights, start, schedule, 6, name, inputs)
    for k in weights:
        np.testing.assert_array_equal(masks[k], again[k])
    # torch masks in, torch masks out
    tensors = {k: torch.from_numpy(m) for k, m in start.items()}
    with_tensors = _inputs(arch, params, masks=tensors, examples=_examples(arch))
    as_tensors = pruning.next_masks(weights, tensors, schedule, 6, name, with_tensors)
    for k in weights:
        assert isinstance(as_tensors[k], torch.Tensor)
        np.testing.assert_array_equal(as_tensors[k].numpy(), masks[k])


def test_synflow_does_not_collapse_a_layer_of_lenet_at_one_percent(monkeypatch):
    arch = Architecture()  # LeNet-300-100
    params = _params(arch, biases=False)
    weights = models.prunable(params)
    dense = pruning.dense_masks(weights)
    schedule, level = Schedule(0.2, 20), 20  # Pm 1.2%
    masks = pruning.next_masks(weights, dense, schedule, level, "synflow", _inputs(arch, params))
    counts = pruning.kept_counts(masks)
    assert sum(counts.values()) == sum(
        pruning.layer_keep_counts({k: w.size for k, w in weights.items()}, schedule, level).values()
    )
    assert min(counts.values()) >= 1
    # fc2 scaled by 2^-10: global magnitude at init empties it; SynFlow's scores all scale alike
    # (R is linear in each layer), so it keeps the very same weights
    scaled = dict(params, **{"fc2.weight": params["fc2.weight"] * np.float32(2.0**-10)})
    magnitude = pruning.keep_top_jointly(
        {k: np.abs(w) for k, w in models.prunable(scaled).items()}, dense, sum(counts.values())
    )
    assert pruning.kept_counts(magnitude)["fc2.weight"] == 0
    again = pruning.next_masks(
        models.prunable(scaled), dense, schedule, level, "synflow", _inputs(arch, scaled)
    )
    for k in weights:
        np.testing.assert_array_equal(again[k], masks[k])
    # in one shot (no iterations), the flow empties fc1: what the exponential schedule prevents
    monkeypatch.setattr(synflow, "ITERATIONS", 1)
    one_shot = pruning.next_masks(weights, dense, schedule, level, "synflow", _inputs(arch, params))
    assert pruning.kept_counts(one_shot)["fc1.weight"] == 0


def test_each_runs_on_a_conv_model(monkeypatch):
    arch = Architecture(name="conv2", input_size=784, channels=1)
    params = _params(arch, biases=False)
    weights = models.prunable(params)
    dense = pruning.dense_masks(weights)
    inputs = _inputs(arch, params, examples=_examples(arch, per_class=2))
    monkeypatch.setattr(snip, "EXAMPLES_PER_CLASS", 1)
    monkeypatch.setattr(grasp, "EXAMPLES_PER_CLASS", 1)
    monkeypatch.setattr(synflow, "ITERATIONS", 5)  # each round is one pass and one selection
    schedule = Schedule(0.2, 10)
    expected = sum(pruning.layer_keep_counts({k: w.size for k, w in weights.items()}, schedule, 10).values())
    for name in ("snip", "grasp", "synflow"):
        masks = pruning.next_masks(weights, dense, schedule, 10, name, inputs)
        assert list(masks) == ["conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight", "fc3.weight"]
        assert sum(pruning.kept_counts(masks).values()) == expected
        assert min(pruning.kept_counts(masks).values()) >= 1
