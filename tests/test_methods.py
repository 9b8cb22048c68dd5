"""The pruning-method registry (lottery.methods): a method is a scorer with a scope, chosen by name;
the schedule's per-kind rates (conv, fc, output)."""

from __future__ import annotations

import numpy as np
import pytest

from lottery import methods, pruning, schema
from lottery.desc import Schedule
from lottery.methods.base import LAYER, Examples, PruningInputs, Scorer


def test_the_schema_offers_exactly_the_registered_methods():
    assert set(schema.load()["properties"]["pruning"]["properties"]["method"]["enum"]) == set(
        methods.REGISTRY
    )


def test_an_unknown_method_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"'magic' \(pruning.method\).*global.*layerwise"):
        methods.get("magic")


def _weights(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "conv1.weight": rng.normal(size=(4, 1, 3, 3)).astype(np.float32),
        "conv2.weight": rng.normal(size=(8, 4, 3, 3)).astype(np.float32),
        "fc3.weight": rng.normal(size=(20, 32)).astype(np.float32),
        "fc4.weight": rng.normal(size=(10, 20)).astype(np.float32),
    }


def test_conv_fc_and_output_layers_are_pruned_at_their_own_rates():
    weights = _weights()
    assert pruning.layer_kinds(list(weights)) == {
        "conv1.weight": "conv", "conv2.weight": "conv", "fc3.weight": "fc", "fc4.weight": "output",
    }  # fmt: skip
    schedule = Schedule(0.2, 3, output_rate_factor=0.5, conv_rate_factor=0.75)
    masks = pruning.dense_masks(weights)
    for k in (1, 2, 3):
        masks = pruning.next_masks(weights, masks, schedule, k)
        kept = pruning.kept_counts(masks)
        assert kept["conv1.weight"] == pruning.kept_count(36, 0.15, k)
        assert kept["conv2.weight"] == pruning.kept_count(288, 0.15, k)
        assert kept["fc3.weight"] == pruning.kept_count(640, 0.2, k)
        assert kept["fc4.weight"] == pruning.kept_count(200, 0.1, k)
    # within each conv layer, the largest magnitudes survive
    w, m = np.abs(weights["conv2.weight"]), masks["conv2.weight"]
    assert w[m == 1].min() >= w[m == 0].max()


def test_the_conv_factor_leaves_an_mlp_as_it_was():
    weights = {"fc1.weight": _weights()["fc3.weight"], "fc2.weight": _weights()["fc4.weight"]}
    a = pruning.next_masks(weights, pruning.dense_masks(weights), Schedule(0.2, 1), 1)
    b = pruning.next_masks(weights, pruning.dense_masks(weights), Schedule(0.2, 1, conv_rate_factor=0.9), 1)
    assert all(np.array_equal(a[n], b[n]) for n in a)


def test_a_new_method_is_one_scorer_and_gets_what_it_asks_for(monkeypatch):
    """A method that keeps the weights that were largest at θ0 (a magnitude-at-init criterion): one
    Scorer in the registry, given θ0 through PruningInputs."""
    weights = _weights(1)
    init = _weights(2)

    def at_init(inputs: PruningInputs):
        theta0 = inputs.require("init", "at_init")
        return {name: np.abs(theta0[name]) for name in inputs.trained}

    monkeypatch.setitem(methods.REGISTRY, "at_init", Scorer("at_init", LAYER, at_init))
    masks = pruning.dense_masks(weights)
    with pytest.raises(ValueError, match="'at_init' needs init"):
        pruning.next_masks(weights, masks, Schedule(0.2, 1), 1, "at_init")
    got = pruning.next_masks(
        weights, masks, Schedule(0.2, 1), 1, "at_init", PruningInputs(weights, masks, init=init)
    )
    expected = pruning.next_masks(init, masks, Schedule(0.2, 1), 1, "layerwise")
    assert all(np.array_equal(got[n], expected[n]) for n in got)


def test_examples_per_class_are_drawn_without_replacement_from_each_class():
    y = np.repeat(np.arange(3), [5, 7, 4])
    x = np.arange(len(y), dtype=np.float32)[:, None]
    ex = Examples(x, y)
    xs, ys = ex.per_class(3, seed=7)
    assert list(ys) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len(set(xs[:, 0].tolist())) == 9
    assert all(y[int(i)] == label for i, label in zip(xs[:, 0], ys, strict=True))
    assert np.array_equal(ex.per_class(3, seed=7)[0], xs)  # seeded
    with pytest.raises(ValueError, match="class 2 has 4"):
        ex.per_class(5, seed=0)


def test_a_method_that_chooses_its_masks_gets_the_steps_budget(monkeypatch):
    """SynFlow's iterations or ERK's densities are more than one selection of scores: such a method
    sets ``choose`` and gets the budget - each layer's count at its kind's rate, and the total."""
    weights = _weights()
    seen = {}

    def choose(inputs, budget):
        seen["budget"] = budget
        return pruning.keep_top_jointly(
            {n: np.abs(w) for n, w in inputs.trained.items()}, inputs.masks, budget.ticket_total
        )

    monkeypatch.setitem(methods.REGISTRY, "chooser", Scorer("chooser", LAYER, None, choose=choose))
    schedule = Schedule(0.2, 2)
    masks = pruning.next_masks(weights, pruning.dense_masks(weights), schedule, 2, "chooser")
    budget = seen["budget"]
    sizes = {n: w.size for n, w in weights.items()}
    assert budget.per_layer == pruning.layer_keep_counts(sizes, schedule, 2)
    assert budget.total == pruning.kept_count(sum(sizes.values()), 0.2, 2)
    assert sum(pruning.kept_counts(masks).values()) == budget.ticket_total


def test_the_pai_methods_are_the_registered_ones():
    pai = schema.load()["properties"]["pai"]["properties"]["methods"]["items"]["enum"]
    assert set(pai) == set(methods.REGISTRY)
