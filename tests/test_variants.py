import numpy as np
import pytest
import torch

from lottery import model, pruning
from lottery.desc import Network, Replicate, Schedule
from lottery.io import save_tensors
from lottery.torch_trainer import MaskedTrainer
from lottery.training import TrainingHparams, train
from lottery.variants import REGISTRY, random_mask_seed, random_masks

ARCH = model.Architecture(input_size=20, hidden=(16, 8), num_classes=4)
SCHEDULE = Schedule.from_ratio(0.5, 2)


def test_rewind_point_is_the_dense_run_at_iteration_k(tiny_data):
    """θk from a k-step run equals the weights of a longer run at iteration k, bit for bit."""
    init = model.glorot_normal_init(ARCH, seed=1)
    dense = pruning.dense_masks(model.prunable(init))
    hp = TrainingHparams(iterations=100, batch_size=20)
    short = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=3)
    short.run(30)
    long = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=3)
    long.run(30)
    assert torch.equal(short.flat, long.flat)
    long.run(10)
    assert not torch.equal(short.flat, long.flat)
    theta_k = short.state_dict()
    assert not torch.equal(theta_k["fc1.weight"], init["fc1.weight"])


def test_rewound_training_resumes_the_data_order(tiny_data):
    """Training from θk for the remaining iterations continues the data order of iteration k."""
    init = model.glorot_normal_init(ARCH, seed=1)
    dense = pruning.dense_masks(model.prunable(init))
    hp = TrainingHparams(iterations=60, batch_size=20, eval_every=20)
    trainer = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=3)
    trainer.run(20)
    theta = trainer.state_dict()
    resumed = train(theta, dense, tiny_data, hp, data_order_seed=3, start_iteration=20)
    assert [row["iteration"] for row in resumed.curve] == [40, 60]
    # Adam restarts at θk, so the weights differ from the uninterrupted run but the batches are the same.
    order = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=3, start_iteration=20).order
    reference = MaskedTrainer(init, dense, tiny_data, hp, data_order_seed=3).order
    for _ in range(20):
        reference.next()
    assert np.array_equal(np.asarray(order.next()), np.asarray(reference.next()))


def test_random_pruning_matches_ticket_counts_not_its_mask(tmp_path):
    params = model.glorot_normal_init(ARCH, seed=2)
    weights = model.prunable(params)
    schedule = pruning.Schedule.from_ratio(0.5, 2)
    ticket1 = pruning.next_masks(weights, pruning.dense_masks(weights), schedule, 1)
    ticket2 = pruning.next_masks(weights, ticket1, schedule, 2)
    save_tensors(tmp_path / "t1.safetensors", ticket1)
    save_tensors(tmp_path / "t2.safetensors", ticket2)
    replicate = Replicate(1, 1, 0)
    r1 = random_masks([tmp_path / "t1.safetensors"], replicate, schedule.name)
    r2 = random_masks([tmp_path / "t1.safetensors", tmp_path / "t2.safetensors"], replicate, schedule.name)
    assert pruning.kept_counts(r1) == pruning.kept_counts(ticket1)
    assert pruning.kept_counts(r2) == pruning.kept_counts(ticket2)
    assert all(type(r2[n]) is np.ndarray and r2[n].dtype == np.float32 for n in r2)
    assert any(not np.array_equal(r2[n], ticket2[n].numpy()) for n in r2)
    assert all(bool((r2[n] <= r1[n]).all()) for n in r2)  # round 2 prunes round 1's survivors
    # Deterministic given the seeds, different for another replicate.
    again = random_masks([tmp_path / "t1.safetensors"], replicate, schedule.name)
    assert all(np.array_equal(again[n], r1[n]) for n in r1)
    other = random_masks([tmp_path / "t1.safetensors"], Replicate(3, 3, 0), schedule.name)
    assert any(not np.array_equal(other[n], r1[n]) for n in r1)


def test_random_masks_are_those_drawn_on_tensors(tmp_path):
    """Random pruning of the masks read as numpy arrays keeps the weights it kept when the masks were
    tensors: each round's scores drawn by PyTorch's generator, its seed as before."""
    weights = model.prunable(model.glorot_normal_init(ARCH, seed=2))
    ticket1 = pruning.next_masks(weights, pruning.dense_masks(weights), SCHEDULE, 1)
    ticket2 = pruning.next_masks(weights, ticket1, SCHEDULE, 2)
    paths = [tmp_path / "t1.safetensors", tmp_path / "t2.safetensors"]
    save_tensors(paths[0], ticket1)
    save_tensors(paths[1], ticket2)
    replicate = Replicate(1, 1, 0)
    for draw in (1, 2):
        got = random_masks(paths, replicate, SCHEDULE.name, draw)
        expected = pruning.dense_masks(ticket1)  # tensors throughout, as random_masks had them
        for round_, ticket in enumerate((ticket1, ticket2), start=1):
            seed = random_mask_seed(replicate, SCHEDULE.name, round_, draw)
            expected = _torch_prune_random(expected, pruning.kept_counts(ticket), seed)
        assert all(np.array_equal(got[n], expected[n].numpy()) for n in expected)


def _torch_prune_random(masks, keep_counts, seed):
    """Random pruning as it was with PyTorch's generator: torch.rand scores layer after layer, the
    highest ``keep`` of the survivors kept (ties to the lower index)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, mask in masks.items():
        scores = torch.rand(tuple(mask.shape), generator=generator).flatten()
        flat = torch.where(torch.as_tensor(mask).flatten() > 0, scores, torch.tensor(-float("inf")))
        kept = torch.zeros(flat.numel())
        kept[torch.sort(flat, descending=True, stable=True).indices[: keep_counts[name]]] = 1
        out[name] = kept.view(tuple(mask.shape))
    return out


def test_random_pruning_draws_pytorchs_numbers_without_pytorch():
    masks = {"fc1.weight": np.ones((30, 20), np.float32), "fc2.weight": np.ones((4, 30), np.float32)}
    masks["fc1.weight"][::3] = 0
    for seed in (0, 5, 2**40 + 7):
        got = pruning.prune_random(masks, {"fc1.weight": 150, "fc2.weight": 60}, seed)
        want = _torch_prune_random(masks, {"fc1.weight": 150, "fc2.weight": 60}, seed)
        assert all(np.array_equal(got[n], want[n].numpy()) for n in masks)


def test_reinit_draws_other_weights_from_the_same_initialiser():
    replicate = Replicate(1, 1, 0, controls_offset=10_000)
    original = model.glorot_normal_init(ARCH, replicate.init_seed)
    fresh = model.glorot_normal_init(ARCH, replicate.reinit_seed)
    assert replicate.reinit_seed == 10_001 and replicate.random_mask_seed == 20_001
    for name in model.prunable(original):
        assert not torch.equal(original[name], fresh[name])
        assert abs(float(original[name].std()) - float(fresh[name].std())) < 0.2 * float(original[name].std())


def _round_two(tmp_path):
    """Round 2's ticket, a mask and the files a control of it reads (its mask, both rounds' masks)."""
    ticket = Network.ticket(SCHEDULE, 2, "layerwise")
    weights = model.prunable(model.glorot_normal_init(ARCH, seed=2))
    mask = pruning.next_masks(weights, pruning.dense_masks(weights), SCHEDULE, 1)
    save_tensors(tmp_path / "mask.safetensors", mask)
    files = {
        "init": "θ",
        "mask": tmp_path / "mask.safetensors",
        "ticket_masks": [tmp_path / "mask.safetensors"] * 2,
    }
    return ticket, mask, files


def test_each_variant_records_its_seed_or_point(tmp_path):
    """A control's network is the ticket's identity with its variant and what made it: the reinit
    seed, the random mask's seed (and method random), the rewinding point."""
    replicate = Replicate(1, 1, 0)
    ticket, mask, files = _round_two(tmp_path)
    reinit = REGISTRY["reinit"].prepare(files, ticket, replicate, {})
    assert reinit.network.identity()["reinit_seed"] == 10_001 and reinit.start_iteration == 0
    random = REGISTRY["random"].prepare(files, ticket, replicate, {}).network.identity()
    assert random["method"] == "random" and random["mask_seed"] == random_mask_seed(
        replicate, SCHEDULE.name, 2
    )
    rewind = REGISTRY["rewind"].prepare(files, ticket, replicate, {"iteration": "100"})
    assert rewind.network.identity()["rewind_iteration"] == 100 and rewind.start_iteration == 100
    assert rewind.network.identity()["requested_ratio"] == 0.5
    for prepared in (reinit, rewind):
        assert all(np.array_equal(prepared.masks[n], mask[n].numpy()) for n in mask)
        assert all(type(prepared.masks[n]) is np.ndarray for n in mask)  # read without PyTorch


def test_each_draw_is_its_own_network_with_its_own_seeds(tmp_path):
    """Draws of a drawn control (variants.draws): the first keeps the seeds a single draw always had,
    the others get seeds of their own - distinct from each other and from every seed of the
    replicates - and a random draw its own chain of nested masks with the ticket's counts."""
    replicate = Replicate(1, 1, 0)
    seeds = [replicate.reinit_draw_seed(d) for d in (1, 2, 3)]
    assert seeds[0] == replicate.reinit_seed == 10_001 and len(set(seeds)) == 3
    others = {r.init_seed for r in (Replicate(s, s, 0) for s in range(1, 100))} | {
        10_001 + k for k in range(100)
    }
    assert not set(seeds[1:]) & others
    with pytest.raises(ValueError, match="from 1"):
        replicate.reinit_draw_seed(0)
    ticket, mask, files = _round_two(tmp_path)
    first = REGISTRY["reinit"].prepare(files, ticket, replicate, {})
    second = REGISTRY["reinit"].prepare(files, ticket, replicate, {"draw": "2"})
    assert (first.network.draw, second.network.draw) == (1, 2)
    assert second.network.identity()["reinit_seed"] == seeds[1]
    a = REGISTRY["random"].prepare(files, ticket, replicate, {})
    b = REGISTRY["random"].prepare(files, ticket, replicate, {"draw": "2"})
    assert a.network.mask_seed != b.network.mask_seed and b.network.draw == 2
    assert pruning.kept_counts(a.masks) == pruning.kept_counts(b.masks) == pruning.kept_counts(mask)
    assert any(not np.array_equal(a.masks[n], b.masks[n]) for n in a.masks)
    assert a.network.mask_seed == random_mask_seed(replicate, SCHEDULE.name, 2)  # draw 1: as before draws


def test_draws_name_their_folders():
    from lottery.variants import draw_directory, enabled_directories

    switches = {
        "reinit": True,
        "random": True,
        "rewind_iterations": [100],
        "draws": {"reinit": 3, "random": 2},
    }
    assert enabled_directories(switches) == [
        "reinit", "reinit-draw-2", "reinit-draw-3", "random", "random-draw-2", "rewind-100"
    ]  # fmt: skip
    assert draw_directory("random", 1) == "random" and draw_directory("random", 4) == "random-draw-4"
