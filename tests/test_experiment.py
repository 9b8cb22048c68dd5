import pytest
import torch

from lottery.experiment import ConfigError, Replicate, replicates, schedules
from lottery.io import atomic_path, load_tensors, save_tensors


def _config(**overrides):
    config = {
        "seeds": {"split": 0, "init": [1, 3], "data_order": None},
        "pruning": {"output_rate_factor": 0.5, "schedules": [{"rate": 0.2, "rounds": 3}]},
    }
    for key, value in overrides.items():
        section, name = key.split("__")
        config[section][name] = value
    return config


def test_replicates_pair_init_and_data_order():
    assert replicates(_config()) == [Replicate(1, 1, 0), Replicate(3, 3, 0)]
    assert replicates(_config(seeds__data_order=[7, 8]))[1] == Replicate(3, 8, 0)
    with pytest.raises(ConfigError, match=r"seeds\.data_order has 1 entries but seeds\.init has 2"):
        replicates(_config(seeds__data_order=[7]))
    with pytest.raises(ConfigError, match="repeated"):
        replicates(_config(seeds__init=[1, 1]))


def test_schedules_by_name():
    config = _config(
        pruning__schedules=[
            {"rate": 0.2, "rounds": 3},
            {"rate": 0.2, "rounds": 5},
            {"ratio": 0.9, "rounds": 5},
        ]
    )
    found = schedules(config)
    assert list(found) == ["rate-0.2", "ratio-0.9-rounds-5"]
    assert found["rate-0.2"].rounds == 5  # rounds of equal-rate schedules are shared
    assert found["ratio-0.9-rounds-5"].requested_ratio(5) == pytest.approx(0.9)


def test_oneshot_schedule_is_its_own_directory():
    config = _config(
        pruning__schedules=[{"rate": 0.2, "rounds": 4}, {"rate": 0.2, "rounds": 4, "oneshot": True}]
    )
    found = schedules(config)
    assert list(found) == ["rate-0.2", "oneshot-rate-0.2"]
    assert found["oneshot-rate-0.2"].oneshot and not found["rate-0.2"].oneshot
    assert found["oneshot-rate-0.2"].rounds == 4


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"rate": 0.2, "ratio": 0.5, "rounds": 2}, "either 'rate'"),
        ({"rounds": 2}, "either 'rate'"),
        ({"ratio": 1.5, "rounds": 2}, "prune ratio must be in"),
        ({"rate": 0.2, "rounds": 0}, "at least one round"),
        ({"ratio": 0.5, "rounds": 1, "oneshot": True}, "'oneshot' goes with 'rate'"),
    ],
)
def test_bad_schedule_names_its_entry(entry, message):
    with pytest.raises(ConfigError, match=rf"pruning\.schedules\[0\].*{message}"):
        schedules(_config(pruning__schedules=[entry]))


def test_tensor_files_are_byte_reproducible(tmp_path):
    tensors = {"b": torch.arange(6.0).reshape(2, 3), "a": torch.ones(4, dtype=torch.uint8)}
    metadata = {"round": 3, "schedule": "rate-0.2", "method": "layerwise", "z": 1, "y": 2}
    save_tensors(tmp_path / "one.safetensors", tensors, metadata)
    save_tensors(
        tmp_path / "two.safetensors", dict(reversed(tensors.items())), dict(reversed(metadata.items()))
    )
    assert (tmp_path / "one.safetensors").read_bytes() == (tmp_path / "two.safetensors").read_bytes()
    loaded = load_tensors(tmp_path / "one.safetensors")
    assert torch.equal(loaded["b"], tensors["b"]) and torch.equal(loaded["a"], tensors["a"])


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_unreadable_tensor_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match=r"broken\.safetensors"):
        load_tensors(bad)


@pytest.mark.parametrize(
    "entries, sweep, message",
    [
        (
            [{"rate": 0.2, "rounds": 2}, {"rate": 0.2000001, "rounds": 3}],
            None,
            r"pruning\.schedules\[1\] and pruning\.schedules\[0\] have rates 0\.2000001 and 0\.2, which "
            r"share the folder rate-0\.2",
        ),
        (
            [{"ratio": 0.5, "rounds": 2}],
            {"ratios": [0.5000001], "rounds": [2]},
            r"pruning\.sweep's \{ratio: 0\.5000001, rounds: 2\} and pruning\.schedules\[0\] have ratios "
            r"0\.5000001 and 0\.5, which share the folder ratio-0\.5-rounds-2",
        ),
    ],
)
def test_schedules_whose_rates_print_alike_are_refused(entries, sweep, message):
    config = _config(pruning__schedules=entries)
    config["pruning"]["sweep"] = sweep or {}
    with pytest.raises(ConfigError, match=message):
        schedules(config)


def test_equal_rates_or_ratios_share_their_folder():
    config = _config(pruning__schedules=[{"rate": 0.2, "rounds": 2}, {"rate": 0.2, "rounds": 3}])
    config["pruning"]["sweep"] = {"ratios": [0.5], "rounds": [2]}
    config["pruning"]["schedules"].append({"ratio": 0.5, "rounds": 2})
    found = schedules(config)
    assert list(found) == ["rate-0.2", "ratio-0.5-rounds-2"] and found["rate-0.2"].rounds == 3


def test_a_replicates_networks_cost_the_same_however_many_seeds(monkeypatch):
    """Each replicate's inputs are made from its own networks, never by filtering every replicate's:
    the DAG's cost is linear in the seeds."""
    from lottery.experiment import Experiment

    from .test_desc import _config as full_config

    def experiment(seeds):
        config = full_config(".test/config/config.yaml", seeds={"init": list(range(1, seeds + 1))})
        return Experiment.from_config(config)

    few, many = experiment(2), experiment(300)
    for method in ("network_dirs", "trained_dirs", "curve_dirs", "instability_pairs"):
        assert getattr(few, method)("seed-2") == getattr(many, method)("seed-2"), method
    everything = many.dense_dirs() + many.ticket_dirs() + many.control_dirs()
    assert many.network_dirs("seed-7") == [d for d in everything if d.startswith("seed-7/")]
    pairs = many.instability_pairs()
    assert many.instability_pairs("seed-7") == [p for p in pairs if p["replicate"] == "seed-7"]

    counted = []
    original = Experiment.instability_first_copy
    monkeypatch.setattr(
        Experiment,
        "instability_first_copy",
        lambda self, *args: counted.append(args) or original(self, *args),
    )
    for e in (few, many):
        counted.clear()
        e.trained_dirs("seed-2")
        assert len(counted) == len(many.instability.networks())
