"""The experiment's one description: typed pieces, their params, the schema as the one place of
defaults, and the workflow's view of the experiment (lottery.experiment), all without PyTorch."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
import yaml

from lottery import experiment, schema, variants
from lottery.desc import (
    Architecture,
    Network,
    Replicate,
    Schedule,
    TrainingHparams,
    from_params,
    network_from_params,
    recorded,
    to_params,
)
from lottery.experiment import ConfigError, Experiment

from .conftest import ROOT


def _config(path: str = "config/config.yaml", **sections) -> dict:
    """A config file merged over the schema's defaults, as Snakemake's validation fills it."""
    config = schema.defaults()
    for key, value in yaml.safe_load((ROOT / path).read_text()).items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    for key, value in sections.items():
        config[key] = {**config[key], **value}
    return config


def test_params_leave_out_defaults_and_give_the_piece_back():
    hp = TrainingHparams(iterations=8000)
    assert to_params(hp) == {"iterations": 8000}
    assert from_params(TrainingHparams, to_params(hp)) == hp
    assert to_params(Architecture()) == {}
    assert from_params(Architecture, {"hidden": [30, 10]}) == Architecture(hidden=(30, 10))
    assert from_params(TrainingHparams, {"learning_rate": 1}).learning_rate == 1.0  # a float
    ticket = Network.ticket(Schedule.from_ratio(0.9, 5), 3, "layerwise")
    assert network_from_params(to_params(ticket)) == ticket
    with pytest.raises(ValueError, match=r"unknown fields \['learning_rat'\]"):
        from_params(TrainingHparams, {"learning_rat": 0.1})


def test_a_new_field_with_its_default_changes_no_job_params():
    """Snakemake reruns a job whose params change: a key added with a default must not."""

    @dataclasses.dataclass(frozen=True)
    class Extended(TrainingHparams):
        momentum: float = 0.0

    assert to_params(Extended(iterations=8000)) == to_params(TrainingHparams(iterations=8000))


def test_a_fixed_rate_rounds_job_does_not_depend_on_the_rounds_after_it():
    short, long = Schedule(0.2, 3), Schedule(0.2, 20)
    assert to_params(Network.ticket(short, 2, "layerwise")) == to_params(Network.ticket(long, 2, "layerwise"))
    swept = Schedule.from_ratio(0.9, 5)
    assert Network.ticket(swept, 2, "layerwise").schedule == swept  # its rate depends on all rounds
    with pytest.raises(ValueError, match=r"rounds 1\.\.3"):
        short.up_to(4)


def test_the_pieces_defaults_are_the_schemas():
    d = schema.defaults()
    assert TrainingHparams() == from_params(
        TrainingHparams, {k: v for k, v in d["training"].items() if k != "test_curve_rounds"}
    )
    assert Architecture() == experiment.architecture(d)  # the model's inputs are the dataset's
    assert Replicate(1, 1, 0).controls_offset == d["seeds"]["controls_offset"]
    assert Schedule(0.2, 1).output_rate_factor == d["pruning"]["output_rate_factor"]
    assert Schedule(0.2, 1).conv_rate_factor == d["pruning"]["conv_rate_factor"]


def test_config_readme_key_table_is_generated_from_the_schema():
    readme = (ROOT / "config" / "README.md").read_text()
    assert schema.with_key_table(readme) == readme, (
        "run: python -m lottery config-keys --write config/README.md"
    )
    for path, _ in schema._leaves(schema.load()):
        assert f"| `{path}` |" in readme


def test_every_schema_key_has_a_description_and_a_default():
    for path, node in schema._leaves(schema.load()):
        assert node.get("description"), path
        assert "default" in node, path


def test_metrics_record_the_marked_fields():
    assert recorded(TrainingHparams()) == {
        "learning_rate": 1.2e-3,
        "batch_size": 60,
        "eval_every": 100,
        "sparse_max_density": 0.5,
        "backend": "native",
    }
    assert recorded(Replicate(3, 4, 0)) == {"init_seed": 3, "data_order_seed": 4, "split_seed": 0}
    assert Network().identity() == {
        "variant": "dense",
        "schedule": "dense",
        "round": 0,
        "requested_ratio": 0.0,
    }
    identity = Network.ticket(Schedule(0.2, 20), 2, "layerwise").identity()
    assert identity["schedule_rounds"] is None and identity["requested_ratio"] == pytest.approx(0.36)


def test_the_default_experiment():
    e = Experiment.from_config(_config())
    assert list(e.replicates) == ["seed-1", "seed-3"]
    assert e.controls == ("reinit", "random")
    rate, swept = e.schedules["rate-0.2"], e.schedules["ratio-0.9-rounds-5"]
    assert e.control_rounds(rate) == list(range(1, 11)) and e.control_rounds(swept) == [5]
    assert len(e.dense_dirs() + e.ticket_dirs() + e.control_dirs()) == 182  # the README's count
    assert e.training_at(3) == e.training == TrainingHparams(iterations=8000)


def test_the_paper_experiment():
    e = Experiment.from_config(_config("config/paper.yaml"))
    assert e.control_rounds(e.schedules["oneshot-rate-0.2"]) == []
    assert e.curve_rounds() == set(e.test_curve_rounds)
    assert e.training_at(0).test_every == 100 and e.training_at(1).test_every == 0
    # 140 per seed, 141 with the dense one: 40 tickets, 3 reinits and 2 random masks at 20 levels
    assert e.controls == ("reinit", "reinit-draw-2", "reinit-draw-3", "random", "random-draw-2")
    assert len(e.ticket_dirs() + e.control_dirs()) // len(e.replicates) == 140
    every = Experiment.from_config(_config("config/paper.yaml", variants={"rounds": "final"}))
    assert every.control_rounds(every.schedules["rate-0.2"]) == [20]


def test_the_pruning_at_initialisation_experiment():
    """config/pai.yaml: 236 trainings a seed, as its header says - the dense network, 20 tickets,
    6 methods at 20 levels, and at 5 levels 16 checks of the methods (no inversion of random or erk)
    and 3 of the ticket."""
    e = Experiment.from_config(_config("config/pai.yaml"))
    assert e.pai.methods == ("random", "erk", "magnitude_init", "snip", "grasp", "synflow")
    assert len(e.network_dirs("seed-1")) == 236
    networks = e.pai_networks()
    assert ("random", "inverted", 3) not in networks and ("snip", "inverted", 3) in networks
    assert {k for _, check, k in networks if check != "found"} == {3, 7, 12, 15, 18}
    assert e.training == dataclasses.replace(e.training, iterations=50_000, test_every=0)


def test_a_bad_training_value_names_its_section():
    with pytest.raises(ConfigError, match=r"training: training\.batch_size must be at least 1"):
        Experiment.from_config(_config(training={"batch_size": 0}))


def test_variants_registry_names_the_folders_and_their_inputs():
    switches = {"reinit": True, "random": False, "rewind_iterations": [500, 100]}
    assert variants.enabled_directories(switches) == ["reinit", "rewind-500", "rewind-100"]
    paths = variants.ControlInputs("r/seed-1", ["t/round-1", "t/round-2"], {"iteration": "500"})
    assert variants.REGISTRY["rewind"].inputs(paths) == {
        "init": "r/seed-1/theta-500.safetensors",
        "mask": "t/round-2/mask.safetensors",
    }
    assert variants.REGISTRY["random"].inputs(paths)["ticket_masks"] == [
        "t/round-1/mask.safetensors",
        "t/round-2/mask.safetensors",
    ]
    assert variants.FIGURE_ORDER[:3] == ["ticket", "reinit", "random"]


def test_the_workflow_reads_its_description_without_torch_or_pandas():
    """What common.smk imports to build the DAG: a dry run must not pay for PyTorch or pandas."""
    code = (
        "import sys; import lottery.experiment, lottery.variants, lottery.sections, lottery.protocol; "
        "heavy = sorted(m for m in ('torch', 'pandas', 'numpy', 'scipy') if m in sys.modules); print(heavy)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_backend_key_changes_no_finished_jobs_params():
    """A rule's params hold only what differs from the defaults (to_params): a config that does not
    set training.backend gives the same params as before the key existed, so Snakemake reruns none
    of its finished jobs; setting it does change them."""
    from dataclasses import replace

    from lottery.desc import to_params

    assert "backend" not in to_params(TrainingHparams())
    assert to_params(replace(TrainingHparams(), backend="torch")) == {"backend": "torch"}
    with pytest.raises(ValueError, match=r"training\.backend must be one of"):
        TrainingHparams(backend="jax")
