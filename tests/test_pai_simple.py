"""The simple methods of pruning at initialisation (lottery.methods.random, erk, magnitude_init): each
prunes θ0 once to the iterative ticket's total at level k, with its own per-layer split."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from lottery import methods, pruning, schema
from lottery.desc import Schedule
from lottery.methods import densities, erk
from lottery.methods import random as random_method
from lottery.methods.base import PruningInputs

LENET = {"fc1.weight": (300, 784), "fc2.weight": (100, 300), "fc3.weight": (10, 100)}
CONV = {
    "conv1.weight": (4, 1, 3, 3),
    "conv2.weight": (8, 4, 3, 3),
    "fc1.weight": (20, 32),
    "fc2.weight": (10, 20),
}
NEW = ("random", "erk", "magnitude_init")


def _theta0(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return {n: rng.normal(size=s).astype(np.float32) for n, s in shapes.items()}


def _prune(method, shapes=LENET, k=7, seed=3, init_seed=0, masks=None):
    """What the workflow does at level k: next_masks on θ0's weights from the dense masks."""
    theta0 = _theta0(shapes, init_seed)
    masks = pruning.dense_masks(theta0) if masks is None else masks
    inputs = PruningInputs(trained=theta0, masks=masks, init=theta0, seed=seed)
    return pruning.next_masks(theta0, masks, Schedule(0.2, k), k, method, inputs)


def _ticket_total(shapes, k):
    sizes = {n: int(np.prod(s)) for n, s in shapes.items()}
    return sum(pruning.layer_keep_counts(sizes, Schedule(0.2, k), k).values())


def test_the_methods_are_registered_and_offered_by_the_schema():
    enum = schema.load()["properties"]["pruning"]["properties"]["method"]["enum"]
    for name in NEW:
        assert methods.get(name).name == name
        assert name in enum


@pytest.mark.parametrize("method", NEW)
@pytest.mark.parametrize("shapes", [LENET, CONV], ids=["lenet", "conv"])
@pytest.mark.parametrize("k", [1, 7, 20])
def test_each_method_keeps_the_tickets_total_exactly(method, shapes, k):
    masks = _prune(method, shapes, k)
    assert list(masks) == list(shapes)
    assert sum(pruning.kept_counts(masks).values()) == _ticket_total(shapes, k)
    assert all(set(np.unique(m)) <= {0, 1} for m in masks.values())


@pytest.mark.parametrize("method", NEW)
def test_a_seed_gives_the_same_masks_and_the_random_ones_change_with_it(method):
    a, b, c = _prune(method, seed=3), _prune(method, seed=3), _prune(method, seed=4)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    differs = any(not np.array_equal(a[n], c[n]) for n in a)
    assert differs == (method != "magnitude_init")  # magnitude at init draws nothing


def test_random_gives_every_layer_the_same_density_rounded_by_largest_remainder():
    for k in range(1, 21):
        total = _ticket_total(LENET, k)
        kept = pruning.kept_counts(_prune("random", LENET, k))
        n = {name: int(np.prod(s)) for name, s in LENET.items()}
        assert kept == random_method.uniform_counts(n, total)
        for name in LENET:
            ideal = Fraction(total * n[name], 266_200)
            assert kept[name] in (
                ideal.numerator // ideal.denominator,
                -(-ideal.numerator // ideal.denominator),
            )
            assert abs(kept[name] / n[name] - total / 266_200) < 1 / n[name]
    # by hand: 10 weights over layers of 3, 3 and 4 at density 7/10 -> ideals 2.1, 2.1, 2.8
    assert densities.apportion({"a": 3, "b": 3, "c": 4}, 7) == {"a": 2, "b": 2, "c": 3}
    # ideals 1.5, 1.5, 2.0 with one left over: the tie goes to the earlier layer
    assert densities.apportion({"a": 3, "b": 3, "c": 4}, 5) == {"a": 2, "b": 1, "c": 2}


def test_random_positions_are_the_projects_seeded_uniform_draws():
    """The positions are those of pruning.prune_random (bitwise torch.rand) at random's counts."""
    masks = _prune("random", LENET, 7, seed=11)
    expected = pruning.prune_random(pruning.dense_masks(_theta0(LENET)), pruning.kept_counts(masks), seed=11)
    assert all(np.array_equal(masks[n], expected[n]) for n in masks)


def test_random_positions_spread_over_the_layer():
    mask = _prune("random", LENET, 3)["fc1.weight"]
    per_row = mask.sum(axis=1)
    assert per_row.min() > 0.5 * per_row.mean()  # not a block of rows
    assert abs(mask[:, :392].mean() - mask[:, 392:].mean()) < 0.01


def test_erk_densities_by_the_formula():
    """ε * (sum of dims) / (product of dims), the layers above 1 made dense and ε solved again."""
    # LeNet-300-100 at round 7: T = 56094. Raw densities 1084/235200, 400/30000, 110/1000:
    # ε = T / (1084 + 400 + 110) = 35.19 makes the output 3.87 > 1 -> dense; ε = (T - 1000) / 1484 =
    # 37.13 -> fc2 0.495, fc1 0.171, both below 1.
    total = _ticket_total(LENET, 7)
    assert total == 56094
    d = erk.densities(LENET, total)
    eps = Fraction(total - 1000, 1084 + 400)
    assert d == {"fc1.weight": eps * Fraction(1084, 235200), "fc2.weight": eps * Fraction(400, 30000),
                 "fc3.weight": 1}  # fmt: skip
    assert abs(float(d["fc1.weight"]) - 0.1711) < 1e-4 and abs(float(d["fc2.weight"]) - 0.4950) < 1e-4
    # round 1: T = 213060, fc2 too exceeds 1 once the output is dense -> only fc1 is sparse
    d1 = erk.densities(LENET, _ticket_total(LENET, 1))
    assert d1["fc2.weight"] == d1["fc3.weight"] == 1
    assert d1["fc1.weight"] == Fraction(213060 - 31000, 235200)
    # round 20: T = 3180, nothing is dense: ε = 3180 / 1594
    d20 = erk.densities(LENET, 3180)
    assert d20["fc3.weight"] == Fraction(3180, 1594) * Fraction(110, 1000) < 1
    # a conv layer: (c_out + c_in + k_h + k_w) / (c_out c_in k_h k_w)
    dc = erk.densities(CONV, 600)
    raw = {"conv1.weight": Fraction(4 + 1 + 3 + 3, 36), "conv2.weight": Fraction(8 + 4 + 3 + 3, 288),
           "fc1.weight": Fraction(52, 640), "fc2.weight": Fraction(30, 200)}  # fmt: skip
    assert erk.dense_layers(CONV, 600) == {"conv1.weight"}  # ε = 600 / 111 makes conv1 5.4 * 0.31 > 1
    eps = Fraction(600 - 36, 18 + 52 + 30)  # 5.64: fc2 0.85, fc1 0.46, conv2 0.35
    assert max(eps * r for n, r in raw.items() if n != "conv1.weight") < 1
    assert erk.dense_layers(CONV, 200) == set()  # ε = 200 / 111: conv1 0.55
    assert dc == {"conv1.weight": 1} | {n: eps * r for n, r in raw.items() if n != "conv1.weight"}


def test_erk_masks_keep_the_rounded_densities_at_random_positions():
    for k in (1, 7, 14, 20):
        total = _ticket_total(LENET, k)
        kept = pruning.kept_counts(_prune("erk", LENET, k))
        for name, density in erk.densities(LENET, total).items():
            ideal = density * int(np.prod(LENET[name]))
            assert ideal - 1 < kept[name] < ideal + 1
    masks = _prune("erk", LENET, 7, seed=5)
    expected = pruning.prune_random(pruning.dense_masks(masks), pruning.kept_counts(masks), seed=5)
    assert all(np.array_equal(masks[n], expected[n]) for n in masks)


def test_erk_keeps_everything_or_nothing_at_the_ends():
    n = {name: int(np.prod(s)) for name, s in LENET.items()}
    assert erk.counts(LENET, 266_200) == n
    assert erk.counts(LENET, 0) == dict.fromkeys(LENET, 0)
    with pytest.raises(ValueError, match="cannot keep 266201"):
        erk.counts(LENET, 266_201)


def test_magnitude_init_keeps_the_largest_theta0_over_all_layers():
    theta0 = _theta0(LENET)
    masks = _prune("magnitude_init", LENET, 7)
    kept = np.concatenate([np.abs(theta0[n])[masks[n] == 1] for n in LENET])
    dropped = np.concatenate([np.abs(theta0[n])[masks[n] == 0] for n in LENET])
    assert kept.min() >= dropped.max()
    # it reads θ0 (init), not the weights it is handed as trained
    trained = _theta0(LENET, seed=9)
    inputs = PruningInputs(trained=trained, masks=pruning.dense_masks(trained), init=theta0)
    got = pruning.next_masks(trained, inputs.masks, Schedule(0.2, 7), 7, "magnitude_init", inputs)
    assert all(np.array_equal(got[n], masks[n]) for n in masks)
    with pytest.raises(ValueError, match="'magnitude_init' needs init"):
        pruning.next_masks(trained, inputs.masks, Schedule(0.2, 7), 7, "magnitude_init")


@pytest.mark.parametrize("method", NEW)
def test_no_method_revives_a_pruned_weight(method):
    """From masks already pruned (here the ticket's of round 3), the survivors are among the old ones."""
    theta0 = _theta0(LENET)
    old = pruning.next_masks(theta0, pruning.dense_masks(theta0), Schedule(0.2, 3), 3)
    new = _prune(method, LENET, 20, masks=old)
    assert all(np.all(new[n] <= old[n]) for n in LENET)
    assert sum(pruning.kept_counts(new).values()) == _ticket_total(LENET, 20)


def test_a_split_a_layer_cannot_hold_is_refused():
    """random's uniform density needs more of fc3 than a mask keeping 5 of its weights has left."""
    theta0 = _theta0(LENET)
    masks = pruning.dense_masks(theta0)
    masks["fc3.weight"] = np.zeros_like(masks["fc3.weight"])
    masks["fc3.weight"].reshape(-1)[:5] = 1
    with pytest.raises(ValueError, match=r"'random': layer fc3.weight would keep 211 .* only 5 survive"):
        _prune("random", LENET, 7, masks=masks)
