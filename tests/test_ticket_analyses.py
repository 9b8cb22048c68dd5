"""The analyses of what the tickets are (lottery.ticket_analyses), on synthetic cases with known
answers, and the experiment's description of them (lottery.experiment, lottery.desc)."""

from __future__ import annotations

import copy

import pytest
import torch

from lottery import model, pruning, schema
from lottery.desc import Architecture, Instability, Replicate
from lottery.experiment import ConfigError, Experiment
from lottery.io import save_tensors
from lottery.ticket_analyses import (
    apply_masks,
    chance_jaccard,
    error_rate,
    instability,
    interpolation_errors,
    jaccard,
    load_mask_bundle,
    mask_key,
    overlap_rows,
    pack_masks,
    pixel_rows,
    pixel_survival,
    signed_constant,
    supermask_rows,
)

SMALL = Architecture(input_size=16, hidden=(8,), num_classes=3)


def data(n: int = 60, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, SMALL.input_size, generator=generator), torch.randint(
        0, 3, (n,), generator=generator
    )


def random_mask(shape: tuple[int, ...], density: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) < density).float()


# ---------------------------------------------------------------- mask overlap
def test_identical_masks_overlap_fully_and_disjoint_ones_not_at_all():
    mask = random_mask((300, 784), 0.3, torch.Generator().manual_seed(1))
    assert jaccard(mask, mask.clone()) == 1.0
    assert jaccard(mask, 1 - mask) == 0.0


def test_independent_random_masks_overlap_as_chance_says():
    generator = torch.Generator().manual_seed(2)
    for d1, d2 in ((0.2, 0.2), (0.05, 0.05), (0.5, 0.1)):
        a, b = random_mask((300, 784), d1, generator), random_mask((300, 784), d2, generator)
        # 235,200 weights: the sampling error of the overlap is far below 0.01
        assert jaccard(a, b) == pytest.approx(chance_jaccard(d1, d2), abs=0.01)
    assert chance_jaccard(0.2, 0.2) == pytest.approx(0.2 / 1.8)


def test_the_overlap_table_compares_seeds_schedules_and_rounds(tmp_path):
    generator = torch.Generator().manual_seed(3)
    rounds = [
        {"fc1.weight": random_mask((8, 16), d, generator), "fc2.weight": torch.ones(3, 8)} for d in (0.8, 0.6)
    ]
    # the two seeds' tickets are the same masks (overlap 1), read back from a replicate's packed file
    packed = {mask_key("rate-0.2", k): masks for k, masks in enumerate(rounds, start=1)}
    save_tensors(tmp_path / "masks.safetensors", *pack_masks(packed))
    bundle = load_mask_bundle(tmp_path / "masks.safetensors")
    loaded = [bundle[mask_key("rate-0.2", k)] for k in (1, 2)]
    rows = overlap_rows({"seed-1": loaded, "seed-2": loaded}, oneshot=None)
    seeds = [r for r in rows if r["comparison"] == "seeds"]
    assert {r["jaccard"] for r in seeds} == {1.0} and {r["pairs"] for r in seeds} == {1}
    fc1 = next(r for r in seeds if r["layer"] == "fc1" and r["round"] == 1)
    d = float(rounds[0]["fc1.weight"].mean())
    assert fc1["chance"] == pytest.approx(d / (2 - d))
    consecutive = next(r for r in rows if r["comparison"] == "consecutive_rounds" and r["layer"] == "fc2")
    assert consecutive["jaccard"] == 1.0 and consecutive["chance"] == 1.0  # both all ones
    assert not [r for r in rows if r["comparison"] == "iterative_vs_oneshot"]


# ---------------------------------------------------------------- instability
def test_the_path_between_identical_weights_has_instability_zero():
    params = model.glorot_normal_init(SMALL, 1)
    x, y = data()
    path = interpolation_errors(params, {k: v.clone() for k, v in params.items()}, 25, x, y)
    assert len(path) == 25 and path[0][0] == 0.0 and path[-1][0] == 1.0
    assert len({error for _, error in path}) == 1
    assert instability([error for _, error in path]) == 0.0


def test_instability_is_the_bump_above_the_ends():
    assert instability([0.1, 0.3, 0.2]) == pytest.approx(0.15)
    assert instability([0.2, 0.15, 0.1]) == pytest.approx(0.05)  # no bump: the worse end above the mean


def test_the_path_stays_under_the_mask_and_its_ends_are_the_copies():
    a, b = model.glorot_normal_init(SMALL, 1), model.glorot_normal_init(SMALL, 2)
    masks = {
        "fc1.weight": random_mask((8, 16), 0.3, torch.Generator().manual_seed(4)),
        "fc2.weight": torch.ones(3, 8),
    }
    a, b = apply_masks(a, masks), apply_masks(b, masks)
    x, y = data()
    path = interpolation_errors(a, b, 5, x, y)
    assert path[0][1] == error_rate(a, x, y) and path[-1][1] == error_rate(b, x, y)
    midpoint = {k: torch.lerp(a[k], b[k], 0.5) for k in a}
    assert bool((midpoint["fc1.weight"][masks["fc1.weight"] == 0] == 0).all())


# ---------------------------------------------------------------- supermasks
def test_the_signed_constant_keeps_signs_at_the_layers_spread():
    init = model.glorot_normal_init(SMALL, 1)
    constant = signed_constant(init)
    for name in ("fc1.weight", "fc2.weight"):
        assert torch.equal(torch.sign(constant[name]), torch.sign(init[name]))
        assert set(constant[name].abs().unique().tolist()) == pytest.approx([float(init[name].std())])
    assert torch.equal(constant["fc1.bias"], init["fc1.bias"])


def test_an_unpruned_mask_on_theta0_is_theta0(tmp_path):
    init = model.glorot_normal_init(SMALL, 1)
    save_tensors(tmp_path / "init.safetensors", init)
    dense = pruning.dense_masks(model.prunable(init))
    save_tensors(tmp_path / "mask-1.safetensors", dense)
    x, y = data()
    rows = supermask_rows(
        {"seed-1": Replicate(1, 1, 0)},
        {"seed-1": tmp_path / "init.safetensors"},
        {"seed-1": [tmp_path / "mask-1.safetensors"]},
        x,
        y,
    )
    on_init = {(r["round"], r["mask"]): r["test_acc"] for r in rows if r["weights"] == "init"}
    expected = 1.0 - error_rate(init, x, y)
    assert set(on_init.values()) == {expected}  # round 0 and an all-ones mask, ticket or random alike
    assert {r["pm"] for r in rows} == {100.0}


# ---------------------------------------------------------------- the pixel map
def test_a_replicates_masks_come_back_bit_for_bit_from_its_packed_file(tmp_path):
    """Masks of any shape (not a multiple of 8 weights) are kept one bit a weight and read back equal."""
    generator = torch.Generator().manual_seed(5)
    masks = {
        mask_key("rate-0.2", 1): {
            "fc1.weight": random_mask((7, 13), 0.3, generator),
            "fc2.weight": torch.ones(2, 7),
        },
        mask_key("oneshot-rate-0.2", 1): {"fc1.weight": random_mask((7, 13), 0.9, generator)},
    }
    tensors, metadata = pack_masks(masks)
    assert tensors[f"{mask_key('rate-0.2', 1)}/fc1.weight"].numel() == 12  # 91 bits in 12 bytes
    save_tensors(tmp_path / "masks.safetensors", tensors, metadata)
    loaded = load_mask_bundle(tmp_path / "masks.safetensors")
    assert loaded.keys() == masks.keys()
    for key, layers in masks.items():
        for name, mask in layers.items():
            assert loaded[key][name].dtype == torch.bool and torch.equal(loaded[key][name], mask.bool())


def test_a_pixel_that_is_always_blank_keeps_nothing_where_its_weights_shrink(tmp_path):
    """Weights of a pixel that is always 0 get no gradient: trained weights grow past them, so
    magnitude pruning removes them first."""
    weights = model.glorot_normal_init(SMALL, 1)["fc1.weight"]
    weights[:, 0] *= 1e-3  # pixel 0: its weights shrank relative to the others
    masks = pruning.prune_layerwise(
        {"fc1.weight": weights}, {"fc1.weight": torch.ones_like(weights)}, {"fc1.weight": 64}
    )
    survival = pixel_survival(masks["fc1.weight"])
    assert float(survival[0]) == 0.0 and float(survival.mean()) == 0.5
    intensity = torch.linspace(0, 1, 16)
    rows = pixel_rows({3: [masks]}, intensity)
    assert len(rows) == 16 and rows[0]["surviving"] == 0.0 and rows[0]["mean_intensity"] == 0.0
    assert rows[5]["row"] == 0 and rows[5]["col"] == 5


# ---------------------------------------------------------------- the description
def config(**analysis) -> dict:
    c = copy.deepcopy(schema.defaults())
    c["pruning"]["schedules"] = [{"rate": 0.2, "rounds": 20}, {"rate": 0.2, "rounds": 20, "oneshot": True}]
    c["seeds"]["init"] = [1, 2]
    for name, value in analysis.items():
        c["analysis"][name].update(value)
    return c


def test_the_tested_networks_and_their_first_copies():
    experiment = Experiment.from_config(config(instability={"enabled": True}))
    assert experiment.reference_schedule.name == "rate-0.2"
    assert experiment.oneshot_reference.name == "oneshot-rate-0.2"
    networks = Instability(rounds=(0, 3), rewind_iterations=(0, 500)).networks()
    assert ("reinit", 3, 500) not in networks and ("random", 0, 0) not in networks
    assert set(networks) == {
        ("ticket", 0, 0),
        ("ticket", 0, 500),
        ("ticket", 3, 0),
        ("ticket", 3, 500),
        ("reinit", 3, 0),
        ("random", 3, 0),
        ("random", 3, 500),
    }
    first = experiment.instability_first_copy
    assert first("seed-1", "ticket", 0, 0) == "seed-1/dense"
    assert first("seed-1", "ticket", 3, 0) == "seed-1/rate-0.2/ticket/round-3"
    assert first("seed-1", "random", 3, 0) == "seed-1/rate-0.2/random/round-3"  # trained as a control
    assert first("seed-1", "random", 3, 500) == "seed-1/rate-0.2/instability/random/k-500/round-3/copy-a"
    assert len(experiment.instability_pairs()) == 2 * len(experiment.instability.networks())


def test_a_control_that_is_not_trained_gets_a_first_copy_of_its_own():
    c = config(instability={"enabled": True})
    c["variants"]["random"] = False
    experiment = Experiment.from_config(c)
    assert experiment.instability_first_copy("seed-1", "random", 3, 0).endswith("random/k-0/round-3/copy-a")


@pytest.mark.parametrize(
    "analysis, message",
    [
        ({"instability": {"enabled": True, "rounds": [0, 21]}}, r"analysis.instability.rounds has \[21\]"),
        ({"pixel_map": {"enabled": True, "rounds": [25]}}, r"analysis.pixel_map.rounds has \[25\]"),
        ({"instability": {"enabled": True, "rewind_iterations": [50_000]}}, "rewind_iterations has"),
    ],
)
def test_analyses_that_do_not_fit_the_experiment_are_refused(analysis, message):
    with pytest.raises(ConfigError, match=message):
        Experiment.from_config(config(**analysis))


def test_the_analyses_need_an_iterative_schedule():
    c = config(supermasks={"enabled": True})
    c["pruning"]["schedules"] = [{"ratio": 0.9, "rounds": 5}]
    with pytest.raises(ConfigError, match=r"analysis\.supermasks reads the tickets of an iterative"):
        Experiment.from_config(c)
    c["analysis"]["supermasks"]["enabled"] = False
    assert Experiment.from_config(c).ticket_analyses == []


def test_the_analyses_defaults_are_the_schemas():
    from lottery.desc import PixelMap, from_params

    d = schema.defaults()["analysis"]
    assert Instability() == from_params(Instability, d["instability"])
    assert PixelMap() == from_params(PixelMap, d["pixel_map"])


def test_the_paper_and_the_ticket_analyses_read_the_same_reference_schedule():
    """One rule (lottery.desc.reference_schedule_name): the paper's rate-0.2 where there is one, even
    beside a longer fixed-rate schedule (the analyses once took the longest, the paper's claims
    rate-0.2); else the most rounds, the first by name among equals."""
    import pandas as pd

    from lottery import paper

    for schedules, want in (
        ([{"rate": 0.5, "rounds": 12}, {"rate": 0.2, "rounds": 5}], "rate-0.2"),
        ([{"rate": 0.3, "rounds": 4}, {"rate": 0.5, "rounds": 6}], "rate-0.5"),
        ([{"rate": 0.5, "rounds": 6}, {"rate": 0.3, "rounds": 6}], "rate-0.3"),
    ):
        c = config()
        c["pruning"]["schedules"] = schedules
        experiment = Experiment.from_config(c)
        runs = pd.DataFrame(
            [
                {"schedule": f"rate-{s['rate']:g}", "round": r, "variant": "ticket"}
                for s in schedules
                for r in range(1, s["rounds"] + 1)
            ]
        )
        assert experiment.reference_schedule.name == want
        assert paper.iterative_schedule(runs) == want
