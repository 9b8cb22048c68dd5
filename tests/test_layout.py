"""The results layout has one owner, lottery.layout: its paths are those the workflow always wrote,
and the workflow, the experiment, the variants and the analyses ask it rather than spell them."""

import re

import pytest

from lottery import layout, variants

from .conftest import ROOT


def test_the_paths_are_the_layouts_of_the_committed_results():
    assert layout.init_file("seed-1") == "seed-1/init.safetensors"
    assert layout.theta_file("seed-1", 500, "results/x") == "results/x/seed-1/theta-500.safetensors"
    assert layout.reinit_init_file("seed-1") == "seed-1/reinit-init.safetensors"
    assert layout.reinit_init_file("seed-1", 3) == "seed-1/reinit-init-draw-3.safetensors"
    assert layout.dense_dir("seed-2", "results/paper") == "results/paper/seed-2/dense"
    assert layout.ticket_dir("seed-1", "rate-0.2", 3) == "seed-1/rate-0.2/ticket/round-3"
    assert layout.round_dir("{replicate}", "{schedule}", "rewind-{iteration}", "{round}", "r") == (
        "r/{replicate}/{schedule}/rewind-{iteration}/round-{round}"
    )
    assert layout.instability_dir("seed-1", "rate-0.2", "random", 7, 500, "b") == (
        "seed-1/rate-0.2/instability/random/k-500/round-7/copy-b"
    )
    assert layout.summary_dir("{replicate}", "results/paper") == "results/paper/{replicate}/summary"
    assert layout.network_files("d") == {
        "weights": "d/final.safetensors",
        "metrics": "d/metrics.json",
        "curve": "d/curve.csv",
        "provenance": "d/provenance.json",
    }
    assert layout.mask_file("d") == "d/mask.safetensors"
    assert layout.mask_key("oneshot-rate-0.2", 4) == "oneshot-rate-0.2/round-4"
    assert layout.is_instability_copy(layout.instability_dir("s", "r", "ticket", 1, 0, "a"))
    assert not layout.is_instability_copy(layout.ticket_dir("s", "r", 1))
    assert variants.draw_directory("random", 1) == "random" and variants.draw_directory("random", 2) == (
        "random-draw-2"
    )


def test_the_experiments_networks_are_the_layouts():
    from lottery.experiment import Experiment

    from .test_desc import _config

    experiment = Experiment.from_config(_config("config/paper.yaml"))
    replicate = next(iter(experiment.replicates))
    reference = experiment.reference_schedule
    assert experiment.dense_dirs(replicate) == [layout.dense_dir(replicate)]
    assert layout.ticket_dir(replicate, reference.name, 1) in experiment.ticket_dirs(replicate)
    assert experiment.ticket_mask(replicate, 0) == layout.mask_file(layout.dense_dir(replicate))
    assert experiment.ticket_mask(replicate, 2) == layout.mask_file(
        layout.ticket_dir(replicate, reference.name, 2)
    )
    for control in experiment.control_dirs(replicate):
        name, folder, round_ = control.split("/")[1:]
        assert control == layout.round_dir(replicate, name, folder, round_.removeprefix("round-"))


# Where the layout was spelled before it had an owner: its folder and file names must not come back.
SPELLED = re.compile(
    r"round-|/dense\b|final\.safetensors|mask\.safetensors|metrics\.json|init\.safetensors|theta-"
)
ASKERS = [
    "workflow/rules/common.smk",
    "workflow/rules/aggregate.smk",
    "workflow/rules/analysis.smk",
    "workflow/rules/paper.smk",
    "src/lottery/experiment.py",
    "src/lottery/variants.py",
    "src/lottery/ticket_analyses.py",
    "src/lottery/record.py",
]


@pytest.mark.parametrize("path", ASKERS)
def test_the_workflow_the_experiment_and_the_analyses_ask_the_layout(path):
    """No path of the layout spelled in code (comments and docstrings may name it)."""
    code, in_docstring = [], False
    for line in (ROOT / path).read_text().splitlines():
        stripped = line.strip()
        quotes = stripped.count('"""')
        if in_docstring or stripped.startswith('"""'):
            in_docstring = in_docstring != (quotes % 2 == 1)
            continue
        code.append(line.split("#")[0])
    found = [line for line in code if SPELLED.search(line)]
    assert not found, found
