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
    got = pruning.prune_random(masks, {"w.weight": 20}, torch.Generator().manual_seed(0))
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
