"""The sanity checks of pruning at initialisation (lottery.sanity: layer-wise shuffling, inversion,
the reinitialisation's seed) and layer collapse (lottery.collapse), on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from lottery import collapse, order, pruning, sanity
from lottery.desc import Replicate, derived_seed

SHAPES = {"fc1.weight": (30, 40), "fc2.weight": (20, 30), "fc3.weight": (10, 20)}


def _mask(seed=0, density=0.3):
    rng = np.random.default_rng(seed)
    return {n: (rng.random(s) < density).astype(np.float32) for n, s in SHAPES.items()}


# --- shuffling within layers -------------------------------------------------------------------


def test_shuffling_keeps_each_layers_count_and_moves_the_survivors():
    masks = _mask()
    before = {n: m.copy() for n, m in masks.items()}
    shuffled = sanity.shuffle_within_layers(masks, seed=5)
    assert pruning.kept_counts(shuffled) == pruning.kept_counts(masks)
    for name in masks:
        assert shuffled[name].shape == masks[name].shape and shuffled[name].dtype == np.float32
        overlap = np.sum((shuffled[name] == 1) & (masks[name] == 1)) / masks[name].sum()
        assert overlap < 0.6  # a random 30% mask shares about 30% of another's survivors
    again = sanity.shuffle_within_layers(masks, seed=5)
    other = sanity.shuffle_within_layers(masks, seed=6)
    assert all(np.array_equal(again[n], shuffled[n]) for n in masks)
    assert any(not np.array_equal(other[n], shuffled[n]) for n in masks)
    assert all(np.array_equal(masks[n], before[n]) for n in masks)  # not in place


def test_shuffling_is_torch_randperm_layer_after_layer_from_one_generator():
    masks = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.arange(5, dtype=np.float32)}
    g = order.generator(9)
    perm_a, perm_b = order.permutation(12, g), order.permutation(5, g)
    shuffled = sanity.shuffle_within_layers(masks, seed=9)
    assert np.array_equal(shuffled["a"].reshape(-1), perm_a.astype(np.float32))
    assert np.array_equal(shuffled["b"], perm_b.astype(np.float32))


# --- inversion ------------------------------------------------------------------------------------


def test_inversion_keeps_the_lowest_scores_at_the_methods_per_layer_counts():
    rng = np.random.default_rng(1)
    scores = {n: rng.normal(size=s) for n, s in SHAPES.items()}
    dense = {n: np.ones(s, np.float32) for n, s in SHAPES.items()}
    counts = {"fc1.weight": 100, "fc2.weight": 37, "fc3.weight": 0}
    method_mask = pruning.keep_top_per_layer(scores, dense, counts)
    inverted = sanity.invert(scores, pruning.kept_counts(method_mask))
    assert pruning.kept_counts(inverted) == counts
    for name in SHAPES:
        s, kept = scores[name], inverted[name] == 1
        if kept.any():
            assert s[kept].max() < s[~kept].min()  # the lowest scores, exactly
        # the complement of the method's ranking: with the n - c highest it makes the dense mask
        top = pruning.keep_top_per_layer({name: s}, {name: dense[name]}, {name: s.size - counts[name]})
        assert np.array_equal(inverted[name] + top[name], dense[name])


def test_inversion_is_the_complement_even_with_ties_and_only_among_survivors():
    scores = {"w": np.array([[1.0, 1.0, 1.0, 0.0], [2.0, 2.0, 5.0, 5.0]])}
    inverted = sanity.invert(scores, {"w": 3})
    # the 5 highest as the project ranks them (ties to the lower position) are pruned
    assert inverted["w"].tolist() == [[0, 1, 1, 1], [0, 0, 0, 0]]
    survivors = {"w": np.array([[1, 0, 1, 1], [1, 1, 0, 0]], np.float32)}
    among = sanity.invert(scores, {"w": 2}, survivors)
    assert among["w"].tolist() == [[0, 0, 1, 1], [0, 0, 0, 0]]  # never a pruned weight
    with pytest.raises(ValueError, match="cannot keep 6 of its 5 surviving weights"):
        sanity.invert(scores, {"w": 6}, survivors)


# --- reinitialisation ------------------------------------------------------------------------------


def test_the_reinitialisation_uses_the_reinit_controls_seed():
    replicate = Replicate(init_seed=3, data_order_seed=4, split_seed=0)
    assert sanity.reinit_seed(replicate) == replicate.reinit_seed == 10_003
    assert sanity.reinit_seed(replicate, draw=2) == replicate.reinit_draw_seed(2) != 10_003
    seeds = {sanity.shuffle_seed(replicate, m, r) for m in ("snip", "erk") for r in (3, 7)}
    assert len(seeds) == 4 and replicate.init_seed not in seeds
    assert sanity.shuffle_seed(replicate, "snip", 3) == derived_seed("20003/shuffle/snip/3")


# --- layer collapse --------------------------------------------------------------------------------


def _dense():
    return {n: np.ones(s, np.float32) for n, s in SHAPES.items()}


def test_densities_and_collapsed_layers():
    masks = _dense()
    masks["fc2.weight"][:] = 0
    masks["fc1.weight"][:, :20] = 0
    assert collapse.densities(masks) == {"fc1.weight": 0.5, "fc2.weight": 0.0, "fc3.weight": 1.0}
    assert collapse.collapsed_layers(masks) == ["fc2.weight"]
    assert collapse.collapsed_layers(_dense()) == []


def test_a_path_of_one_weight_per_layer_connects_and_a_cut_middle_layer_disconnects():
    masks = {n: np.zeros(s, np.float32) for n, s in SHAPES.items()}
    masks["fc1.weight"][7, 39] = 1  # input 39 -> unit 7
    masks["fc2.weight"][2, 7] = 1  # unit 7 -> unit 2
    masks["fc3.weight"][9, 2] = 1  # unit 2 -> output 9
    assert not collapse.disconnected(masks)
    assert collapse.collapsed_layers(masks) == []
    assert np.flatnonzero(collapse.reachable(masks)["fc3.weight"]).tolist() == [9]
    # every layer keeps a weight, but they do not line up: fc2 leaves from unit 8, which nothing reaches
    broken = {n: m.copy() for n, m in masks.items()}
    broken["fc2.weight"][2, 7], broken["fc2.weight"][2, 8] = 0, 1
    assert collapse.collapsed_layers(broken) == [] and collapse.disconnected(broken)
    # a middle layer cut entirely
    cut = _dense()
    cut["fc2.weight"][:] = 0
    assert collapse.disconnected(cut) and not collapse.disconnected(_dense())
    summary = collapse.collapse(cut)
    assert summary["collapsed_layers"] == ["fc2.weight"] and summary["disconnected"] is True


def test_conv_channels_and_the_flatten_order_into_fc1():
    """conv1 [4, 1, 3, 3] -> conv2 [2, 4, 3, 3] -> fc1 over 2 channels x 9 positions (C, H, W) -> fc2."""
    masks = {
        "conv1.weight": np.zeros((4, 1, 3, 3), np.float32),
        "conv2.weight": np.zeros((2, 4, 3, 3), np.float32),
        "fc1.weight": np.zeros((5, 18), np.float32),
        "fc2.weight": np.zeros((3, 5), np.float32),
    }
    masks["conv1.weight"][3, 0, 2, 2] = 1  # input -> channel 3 (any kernel position)
    masks["conv2.weight"][1, 3, 0, 1] = 1  # channel 3 -> channel 1
    masks["fc2.weight"][0, 4] = 1
    # channel 1's features are 9..17 in (C, H, W) order; a weight from feature 4 (channel 0) does not help
    masks["fc1.weight"][4, 4] = 1
    assert collapse.disconnected(masks)
    assert collapse.reachable(masks)["conv2.weight"].tolist() == [False, True]
    masks["fc1.weight"][4, 13] = 1  # channel 1, position 4
    assert not collapse.disconnected(masks)
    # the conv path cut: conv2 reads channel 2, which conv1 never reaches
    masks["conv2.weight"][1, 3, 0, 1], masks["conv2.weight"][1, 2, 1, 1] = 0, 1
    assert collapse.disconnected(masks) and collapse.collapsed_layers(masks) == []
    with pytest.raises(ValueError, match="not a whole number of positions"):
        collapse.reachable(masks | {"fc1.weight": np.ones((5, 17), np.float32)})
