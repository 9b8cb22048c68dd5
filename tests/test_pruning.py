import math
import re

import numpy as np
import pytest
import torch

from lottery import pruning
from lottery.model import Architecture, glorot_normal_init, layer_sizes, prunable
from lottery.pruning import Schedule

PAPER_PM = [100, 80.0, 64.1, 51.3, 41.1, 32.9, 26.3, 21.1, 16.9, 13.5, 10.8,
            8.7, 7.0, 5.6, 4.5, 3.6, 2.9, 2.3, 1.9, 1.5, 1.2]  # fmt: skip
LENET = layer_sizes(Architecture())


def test_paper_pm_table_from_keep_counts():
    schedule = Schedule(rate=0.2, rounds=20)
    total = sum(LENET.values())
    assert total == 266_200
    for k, pm in enumerate(PAPER_PM):
        kept = pruning.layer_keep_counts(LENET, schedule, k)
        assert round(100 * sum(kept.values()) / total, 1) == pm, k


def test_paper_pm_table_from_actual_masks():
    """20 rounds of real pruning on LeNet-300-100 weights reproduce the Pm table."""
    params = prunable(glorot_normal_init(Architecture(), seed=0))
    masks = pruning.dense_masks(params)
    schedule = Schedule(rate=0.2, rounds=20)
    g = torch.Generator().manual_seed(1)
    for k in range(1, 21):
        # Fresh "trained" weights every round, as after retraining.
        weights = {n: torch.randn(w.shape, generator=g) for n, w in params.items()}
        weights = {n: w * masks[n] for n, w in weights.items()}
        new = pruning.next_masks(weights, masks, schedule, k)
        assert all(bool((n <= m).all()) for n, m in zip(new.values(), masks.values(), strict=True)), (
            "not monotone"
        )
        masks = new
        assert round(100 * pruning.weights_remaining(masks), 1) == PAPER_PM[k]


def test_oneshot_level_matches_iterative_counts_in_one_step():
    """One-shot level k prunes the dense network straight to iterative round k's per-layer counts."""
    params = prunable(glorot_normal_init(Architecture(), seed=0))
    g = torch.Generator().manual_seed(2)
    trained = {n: torch.randn(w.shape, generator=g) for n, w in params.items()}
    oneshot = Schedule(rate=0.2, rounds=20, oneshot=True)
    assert oneshot.name == "oneshot-rate-0.2"
    for k in (1, 7, 20):
        masks = pruning.next_masks(trained, pruning.dense_masks(trained), oneshot, k)
        assert pruning.kept_counts(masks) == pruning.layer_keep_counts(LENET, Schedule(0.2, 20), k)
        assert round(100 * pruning.weights_remaining(masks), 1) == PAPER_PM[k]
        # The survivors are each layer's largest-magnitude weights of the dense network.
        for name, mask in masks.items():
            kept, dropped = trained[name].abs()[mask > 0], trained[name].abs()[mask == 0]
            assert dropped.numel() == 0 or kept.min() >= dropped.max()
    with pytest.raises(ValueError, match="oneshot goes with a fixed rate"):
        Schedule(0.5, 1, ratio=0.5, oneshot=True)


def test_output_layer_pruned_at_half_rate():
    kept = pruning.layer_keep_counts(LENET, Schedule(rate=0.2, rounds=1), 1)
    assert kept == {"fc1.weight": 188_160, "fc2.weight": 24_000, "fc3.weight": 900}
    kept = pruning.layer_keep_counts(LENET, Schedule(rate=0.2, rounds=1, output_rate_factor=1.0), 1)
    assert kept["fc3.weight"] == 800


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("rounds", [1, 2, 5, 7])
def test_compound_schedule_reaches_requested_ratio(ratio, rounds):
    schedule = Schedule.from_ratio(ratio, rounds)
    assert 1 - (1 - schedule.rate) ** rounds == pytest.approx(ratio)
    assert schedule.requested_ratio(rounds) == pytest.approx(ratio)
    kept = pruning.layer_keep_counts(LENET, schedule, rounds)
    for name in ("fc1.weight", "fc2.weight"):
        # Within rounding: at most half a weight away from the exact count.
        assert abs(kept[name] - LENET[name] * (1 - ratio)) <= 0.5 + 1e-6
    # The output layer at half the per-round rate loses less than requested.
    assert kept["fc3.weight"] > LENET["fc3.weight"] * (1 - ratio)


def test_rounding_is_half_up_from_original_size():
    # 10 weights at 25% a round: 7.5 -> 8 after one round, 5.625 -> 6 after two.
    assert pruning.kept_count(10, 0.25, 1) == 8
    assert pruning.kept_count(10, 0.25, 2) == 6
    assert pruning.kept_count(10, 0.25, 0) == 10
    assert pruning.kept_count(3, 0.5, 1) == 2  # 1.5 rounds up


def _reference_layerwise(w: np.ndarray, mask: np.ndarray, keep: int) -> np.ndarray:
    """Independent computation: keep the `keep` survivors whose magnitude is above a threshold."""
    alive = np.abs(w[mask > 0])
    threshold = np.sort(alive)[::-1][keep - 1] if keep > 0 else np.inf
    return ((np.abs(w) >= threshold) & (mask > 0)).astype(np.float32)


@pytest.mark.parametrize("seed", range(5))
def test_layerwise_matches_independent_computation(seed):
    rng = np.random.default_rng(seed)
    shapes = {"fc1.weight": (30, 40), "fc2.weight": (20, 30), "fc3.weight": (5, 20)}
    weights = {n: torch.from_numpy(rng.normal(size=s).astype(np.float32)) for n, s in shapes.items()}
    masks = {n: torch.from_numpy((rng.random(s) < 0.7).astype(np.float32)) for n, s in shapes.items()}
    keep = {n: int(m.sum()) // 2 + seed for n, m in masks.items()}
    got = pruning.prune_layerwise(weights, masks, keep)
    for name in shapes:
        expected = _reference_layerwise(weights[name].numpy(), masks[name].numpy(), keep[name])
        np.testing.assert_array_equal(got[name].numpy(), expected)
        assert int(got[name].sum()) == keep[name]
        assert bool((got[name] <= masks[name]).all())


def test_global_pruning_keeps_largest_overall():
    weights = {
        "a.weight": torch.tensor([[0.1, 5.0], [0.2, 0.3]]),
        "b.weight": torch.tensor([[4.0, 0.05]]),
    }
    masks = pruning.dense_masks(weights)
    got = pruning.prune_global(weights, masks, keep_total=3)
    assert got["a.weight"].tolist() == [[0.0, 1.0], [0.0, 1.0]]
    assert got["b.weight"].tolist() == [[1.0, 0.0]]


def test_pruned_weight_never_revives():
    weights = {"w.weight": torch.tensor([[10.0, 1.0, 2.0, 3.0]])}
    masks = {"w.weight": torch.tensor([[0.0, 1.0, 1.0, 1.0]])}  # the largest is already pruned
    got = pruning.prune_layerwise(weights, masks, {"w.weight": 2})
    assert got["w.weight"].tolist() == [[0.0, 0.0, 1.0, 1.0]]


def test_random_pruning_keeps_counts_among_survivors():
    masks = {"w.weight": (torch.arange(100).reshape(10, 10) % 3 != 0).float()}
    got = pruning.prune_random(masks, {"w.weight": 20}, 0)
    assert int(got["w.weight"].sum()) == 20
    assert bool((got["w.weight"] <= masks["w.weight"]).all())


def test_rewind_restores_survivors_exactly():
    init = glorot_normal_init(Architecture(input_size=12, hidden=(6,), num_classes=3), seed=4)
    masks = {n: (torch.rand(w.shape) > 0.5).float() for n, w in prunable(init).items()}
    trained = {n: t + 1.0 for n, t in init.items()}
    rewound = pruning.rewind(init, masks)
    for name, mask in masks.items():
        assert torch.equal(rewound[name][mask.bool()], init[name][mask.bool()])
        assert bool((rewound[name][~mask.bool()] == 0).all())
        assert not torch.equal(rewound[name], trained[name])
    assert torch.equal(rewound["fc1.bias"], init["fc1.bias"])


def test_schedule_names_and_validation():
    assert Schedule(0.2, 20).name == "rate-0.2"
    assert Schedule.from_ratio(0.9, 5).name == "ratio-0.9-rounds-5"
    with pytest.raises(ValueError, match="rate"):
        Schedule(1.2, 3)
    with pytest.raises(ValueError, match="ratio"):
        Schedule.from_ratio(1.0, 3)
    with pytest.raises(ValueError, match="round"):
        Schedule(0.2, 0)
    with pytest.raises(ValueError, match="unknown pruning method"):
        pruning.next_masks(
            {"w.weight": torch.ones(2, 2)},
            {"w.weight": torch.ones(2, 2)},
            Schedule(0.2, 1),
            1,
            "magic",
        )


# --- numpy arrays: the same masks as PyTorch's sort gave, without PyTorch


def _torch_keep_top(scores: torch.Tensor, mask: torch.Tensor, keep: int) -> torch.Tensor:
    """The masks as they were made with PyTorch: a stable descending sort (NaN first, ties to the
    lower flat index), its first ``keep`` survivors kept."""
    alive = int(mask.sum())
    if keep > alive:
        raise ValueError(f"cannot keep {keep} weights when only {alive} survive")
    flat = torch.where(mask.flatten() > 0, scores.flatten(), torch.tensor(-math.inf))
    order = torch.sort(flat, descending=True, stable=True).indices[:keep]
    new_mask = torch.zeros(flat.numel(), dtype=mask.dtype)
    new_mask[order] = 1
    return new_mask.view_as(mask)


def _torch_next_masks(weights, masks, schedule, round_, method):
    sizes = {name: w.numel() for name, w in weights.items()}
    if method == pruning.LAYERWISE:
        keep = pruning.layer_keep_counts(sizes, schedule, round_)
        return {n: _torch_keep_top(weights[n].abs(), masks[n], keep[n]) for n in weights}
    names = list(weights)
    total = pruning.kept_count(sum(sizes.values()), schedule.rate, round_)
    scores = torch.cat([weights[n].abs().flatten() for n in names])
    joint = _torch_keep_top(scores, torch.cat([masks[n].flatten() for n in names]), total)
    parts = joint.split([masks[n].numel() for n in names])
    return {n: part.view_as(masks[n]) for n, part in zip(names, parts, strict=True)}


def _tied_weights(rng, shapes, levels, nans=0):
    """Weights of a few magnitudes (many ties, signed zeros among them), some NaN."""
    weights = {
        n: (rng.integers(-levels, levels + 1, size=s) * 0.5).astype(np.float32) for n, s in shapes.items()
    }
    first = next(iter(weights.values()))
    first.flat[rng.integers(0, first.size, nans)] = np.nan
    first.flat[0] = -0.0
    return weights


@pytest.mark.parametrize("method", [pruning.LAYERWISE, pruning.GLOBAL])
@pytest.mark.parametrize("seed", range(40))
def test_numpy_masks_are_the_torch_sort_masks(method, seed):
    """Ties (to the lower flat index), NaN weights (kept first, as PyTorch's sort puts them), masks
    already pruned: numpy arrays in, the masks PyTorch's stable sort made, as numpy arrays out;
    tensors in, the same masks as tensors."""
    rng = np.random.default_rng(seed)
    shapes = {"fc1.weight": tuple(rng.integers(1, 30, 2)), "fc2.weight": (int(rng.integers(1, 9)), 7)}
    weights = _tied_weights(rng, shapes, levels=int(rng.integers(1, 6)), nans=int(rng.integers(0, 4)))
    masks = {n: (rng.random(s) < 0.8).astype(np.float32) for n, s in shapes.items()}
    schedule, round_ = Schedule(rate=0.3, rounds=4), int(rng.integers(0, 5))
    as_tensors = [{n: torch.from_numpy(a) for n, a in d.items()} for d in (weights, masks)]
    try:
        expected = _torch_next_masks(*as_tensors, schedule, round_, method)
    except ValueError as error:  # more kept than survive: the same refusal
        for inputs in ((weights, masks), as_tensors):
            with pytest.raises(ValueError, match=re.escape(str(error))):
                pruning.next_masks(*inputs, schedule, round_, method)
        return
    got = pruning.next_masks(weights, masks, schedule, round_, method)
    got_tensors = pruning.next_masks(*as_tensors, schedule, round_, method)
    for name, mask in expected.items():
        assert type(got[name]) is np.ndarray and got[name].dtype == np.float32
        assert np.array_equal(got[name], mask.numpy())
        assert isinstance(got_tensors[name], torch.Tensor) and torch.equal(got_tensors[name], mask)


def test_numpy_masks_on_lenet_are_the_torch_sort_masks():
    """LeNet-300-100's sizes, 20 rounds: rounded weights (ties in every round) pruned layerwise and
    globally from numpy arrays, as PyTorch pruned them."""
    params = prunable(glorot_normal_init(Architecture(), seed=0))
    rng = np.random.default_rng(3)
    schedule = Schedule(rate=0.2, rounds=20)
    for method in (pruning.LAYERWISE, pruning.GLOBAL):
        masks = pruning.dense_masks({n: w.numpy() for n, w in params.items()})
        for k in (1, 2, 10, 20):
            weights = {
                n: np.round(rng.normal(size=w.shape), 2).astype(np.float32) * masks[n]
                for n, w in params.items()
            }
            new = pruning.next_masks(weights, masks, schedule, k, method)
            tensors = [{n: torch.from_numpy(a) for n, a in d.items()} for d in (weights, masks)]
            expected = _torch_next_masks(*tensors, schedule, k, method)
            assert all(np.array_equal(new[n], expected[n].numpy()) for n in new), (method, k)
            masks = new


def test_numpy_rewind_and_counts_are_those_of_tensors():
    rng = np.random.default_rng(5)
    params = {"fc1.weight": rng.normal(size=(4, 6)).astype(np.float32), "fc1.bias": np.ones(4, np.float32)}
    params["fc1.weight"][0, 0] = -0.0
    masks = {"fc1.weight": (rng.random((4, 6)) < 0.5).astype(np.float32)}
    masks["fc1.weight"][0, 0] = 1
    rewound = pruning.rewind(params, masks)
    tensors = pruning.rewind(*({n: torch.from_numpy(a) for n, a in d.items()} for d in (params, masks)))
    for name, array in rewound.items():
        assert type(array) is np.ndarray and array.dtype == np.float32
        assert np.array_equal(array.view(np.uint32), tensors[name].numpy().view(np.uint32))  # -0.0 kept
        assert not np.shares_memory(array, params[name])  # a copy, as clone() was
    w = params["fc1.weight"]
    assert np.array_equal(rewound["fc1.weight"], np.where(masks["fc1.weight"] > 0, w, 0))
    assert pruning.kept_counts(masks) == pruning.kept_counts(
        {"fc1.weight": torch.from_numpy(masks["fc1.weight"])}
    )
    assert pruning.weights_remaining(masks) == float(masks["fc1.weight"].sum()) / 24
    assert pruning.remaining_fractions(masks) == {"fc1.weight": pruning.weights_remaining(masks)}
    dense = pruning.dense_masks({"fc1.weight": w})
    assert type(dense["fc1.weight"]) is np.ndarray and dense["fc1.weight"].dtype == np.float32
    assert np.array_equal(dense["fc1.weight"], np.ones_like(w))
    with pytest.raises(ValueError, match=r"mask of fc1.weight has shape \(6, 4\), weights \(4, 6\)"):
        pruning.rewind(params, {"fc1.weight": np.ones((6, 4), np.float32)})


def test_random_pruning_of_numpy_masks_draws_as_for_tensors():
    masks = {"w.weight": (np.arange(100).reshape(10, 10) % 3 != 0).astype(np.float32)}
    got = pruning.prune_random(masks, {"w.weight": 20}, 0)
    scores = torch.rand((10, 10), generator=torch.Generator().manual_seed(0))
    expected = _torch_keep_top(scores, torch.from_numpy(masks["w.weight"]), 20)
    assert type(got["w.weight"]) is np.ndarray
    assert np.array_equal(got["w.weight"], expected.numpy())


@pytest.mark.parametrize("keep", range(8))
def test_nan_weights_are_kept_first_in_position_order_as_torch_sorted_them(keep):
    weights = {"w.weight": np.array([[1.0, np.nan, 3.0, np.nan], [np.inf, np.nan, 3.0, 0.0]], np.float32)}
    masks = {"w.weight": np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.float32)}
    got = pruning.prune_layerwise(weights, masks, {"w.weight": keep})["w.weight"]
    expected = _torch_keep_top(
        torch.from_numpy(weights["w.weight"]).abs(), torch.from_numpy(masks["w.weight"]), keep
    )
    assert np.array_equal(got, expected.numpy())
