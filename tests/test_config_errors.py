"""Bad configuration values are refused before any job runs, with a message naming the key."""

from __future__ import annotations

import math
import re
import subprocess
import sys

import pytest
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from lottery import datasets, schema
from lottery.experiment import ConfigError, Experiment
from lottery.io import write_json

from .conftest import HUNG, ROOT, local_env
from .test_desc import _config

pytestmark = pytest.mark.faults


def _with(changes: dict, separator: str) -> dict:
    """The default config with ``changes`` ({"a<separator>b": value}), not validated."""
    config = _config()
    for path, value in changes.items():
        *parents, key = path.split(separator)
        node = config
        for part in parents:
            node = node[part]
        node[key] = value
    return config


def _validated(**changes) -> dict:
    """The default config with ``changes`` ({"a.b": value}), validated (and filled) by the schema."""
    config = _with(changes, ".")
    validate(config, str(schema.SCHEMA))
    return config


@pytest.mark.parametrize(
    "path, value",
    [
        ("experiment", ".."),
        ("experiment", "."),
        ("data.name", ".."),
        (
            "data.files",
            {**datasets.official_files("mnist"), "train_images": {"name": "../x.gz", "sha256": "0" * 64}},
        ),
        (
            "data.files",
            {**datasets.official_files("mnist"), "test_labels": {"name": "/etc/passwd", "sha256": "0" * 64}},
        ),
        ("seeds.init", [2**63]),
        ("seeds.split", 2**64),
        ("training.iterations", 10**12),
    ],
)
def test_the_schema_refuses_paths_and_numbers_out_of_range(path, value):
    with pytest.raises(WorkflowError, match="Error validating config"):
        _validated(**{path: value})


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"variants.rewind_iterations": [8000]},
            r"variants\.rewind_iterations has 8000, not below training\.iterations 8000",
        ),
        (
            {"training.test_curve_rounds": [0, 11]},
            r"training\.test_curve_rounds has round 11, but the longest schedule has 10",
        ),
        (
            {"pruning.sweep": {"ratios": [0.5], "rounds": []}},
            r"pruning\.sweep has ratios \[0\.5\] and rounds \[\]",
        ),
        (
            {"training.learning_rate": math.inf},
            r"training\.learning_rate must be positive and finite, got inf",
        ),
    ],
)
def test_values_that_cannot_go_together_name_their_keys(changes, message):
    config = _validated(**changes)
    with pytest.raises(ConfigError, match=message):
        Experiment.from_config(config)


def test_the_workflow_refuses_them_before_any_job(tmp_path):
    """A dry run exits non-zero and names the key: nothing is trained first."""
    (tmp_path / "bad.yaml").write_text("variants:\n  rewind_iterations: [8000]\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--configfile",
            str(ROOT / "config/config.yaml"),
            str(tmp_path / "bad.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HUNG,
        env=local_env(),
    )
    assert result.returncode != 0
    assert "invalid configuration: variants.rewind_iterations has 8000" in result.stderr + result.stdout


def test_metrics_are_strict_json(tmp_path):
    with pytest.raises(ValueError, match=r"metrics\.json: .*NaN or infinite"):
        write_json(tmp_path / "metrics.json", {"val_loss": math.nan})
    assert not (tmp_path / "metrics.json").exists()
    write_json(tmp_path / "ok.json", {"val_loss": 0.25})
    assert (tmp_path / "ok.json").read_text() == '{\n  "val_loss": 0.25\n}\n'


def test_a_diverging_training_fails_naming_the_learning_rate(tiny_data):
    from lottery import model, pruning
    from lottery.desc import Architecture, TrainingHparams
    from lottery.training import train

    init = model.glorot_normal_init(Architecture(input_size=20, hidden=(16, 8), num_classes=4), seed=1)
    masks = pruning.dense_masks(model.prunable(init))
    init["fc1.weight"][0, 0] = math.inf
    hp = TrainingHparams(iterations=40, batch_size=20, eval_every=20)
    with pytest.raises(
        FloatingPointError, match=r"diverged: validation loss nan at iteration 20 \(training\.learning_rate"
    ):
        train(init, masks, tiny_data, hp, data_order_seed=1)


def _changed(**changes) -> dict:
    """The default config with ``changes`` ({"a__b": value}), not validated."""
    return _with(changes, "__")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"variants__draws": {"random": 10**6}}, r"variants\.draws\.random = 1000000: .* maximum of 100; "),
        ({"analysis__bootstrap": 10**9}, r"analysis\.bootstrap = 1000000000: .* maximum of 100000; "),
        (
            {"model__hidden": [100000, 100000]},
            r"model\.hidden\[\d\] = 100000: 100000 is greater than the maximum of 10000; model\.hidden is: ",
        ),
        (
            {"model__hidden": [10] * 11},
            r"model\.hidden = \[10, .*\]: 11 entries, more than the maximum of 10;",
        ),
        ({"model__input_size": 10**6}, r"model\.input_size = 1000000: .* maximum of 65536"),
        ({"model__num_classes": 1000}, r"model\.num_classes = 1000: .* maximum of 256"),
        (
            {"seeds__init": list(range(5000))},
            r"seeds\.init = \[0, 1, 2, .*\.\.\.: 5000 entries, more than the maximum of 1000; seeds\.init is: ",
        ),
        (
            {"seeds__data_order": list(range(1001))},
            r"seeds\.data_order = .*: 1001 entries, more than .* 1000",
        ),
        ({"data__download": {"retries": 10**6}}, r"data\.download\.retries = 1000000: .* maximum of 10;"),
        ({"data__download": {"timeout": 10**6}}, r"data\.download\.timeout = 1000000: .* maximum of 3600;"),
        (
            {"pruning__schedules": [{"rate": 0.2, "rounds": 1000}]},
            r"pruning\.schedules\[0\]\.rounds = 1000: ",
        ),
        ({"pruning__sweep": {"ratios": [0.5], "rounds": [1000]}}, r"pruning\.sweep\.rounds\[0\] = 1000: "),
        (
            {"analysis__instability": {"rounds": [0, 3, 3, 7, 7]}},
            r"analysis\.instability\.rounds = \[0, 3, 3, 7, 7\]: 3, 7 given more than once",
        ),
        (
            {"analysis__instability": {"rewind_iterations": [0, 0]}},
            r"analysis\.instability\.rewind_iterations = \[0, 0\]: 0 given more than once",
        ),
        (
            {"analysis__pixel_map": {"rounds": [3, 3]}},
            r"analysis\.pixel_map\.rounds = \[3, 3\]: 3 given more than once .*; analysis\.pixel_map\.rounds is",
        ),
        ({"variants__rewind_iterations": [50, 50]}, r"variants\.rewind_iterations = \[50, 50\]: 50 given"),
    ],
)
def test_a_value_beyond_its_documented_maximum_is_one_line_naming_the_key(changes, message):
    with pytest.raises(WorkflowError, match="Error validating config"):
        validate(_changed(**changes), str(schema.SCHEMA))
    explained = schema.config_error(_changed(**changes))
    assert "\n" not in explained and len(explained) < 600
    assert re.match(message, explained), explained


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"analysis__max_ratio": math.nan}, "analysis.max_ratio = NaN"),
        ({"data__download": {"timeout": math.nan}}, "data.download.timeout = NaN"),
        ({"data__download": {"timeout": math.inf}}, "data.download.timeout = Infinity"),
        ({"training__learning_rate": math.nan}, "training.learning_rate = NaN"),
        ({"training__sparse_max_density": math.nan}, "training.sparse_max_density = NaN"),
        ({"pruning__schedules": [{"rate": math.nan, "rounds": 2}]}, "pruning.schedules[0].rate = NaN"),
        (
            {"pruning__sweep": {"ratios": [0.5, -math.inf], "rounds": [1]}},
            "pruning.sweep.ratios[1] = -Infinity",
        ),
    ],
)
def test_a_number_that_is_not_finite_is_refused_naming_the_key(changes, key):
    """NaN passes every bound of the schema (it compares false), infinity a lower one: one check
    after the schema's refuses them at every key."""
    config = _changed(**changes)
    explained = schema.non_finite_error(config)
    assert explained.startswith(f"{key}: not a finite number; "), explained
    assert schema.non_finite_error(_config()) is None
