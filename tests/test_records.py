"""Records (lottery.record): a replicate whose summary is here and whose networks are not stands for
them only while it describes this config's experiment and its files are as they were made. Each
refusal comes before any job, names the record, the key or file, and says what to do. The workflow
cases run the small experiment of test_faults once, keep its summaries alone (as a fresh clone has
them) and dry-run copies of it; run alone with `pytest -m faults`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from lottery import provenance, record
from lottery.io import read_json, read_json_with_digest, write_json_with_digest
from lottery.text import markdown_cell

from .test_bad_input import merged
from .test_faults import SMALL, run, small_workdir
from .test_workflow import RESULTS

SUMMARY = Path(RESULTS) / "seed-1" / "summary"


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory) -> Path:
    """The small experiment run once, then its networks deleted: seed-1 is a record."""
    workdir = small_workdir(tmp_path_factory.mktemp("recorded"))
    result = run(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    for path in (workdir / RESULTS / "seed-1").iterdir():
        if path.name != "summary":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(workdir / "resources")
    shutil.rmtree(workdir / ".snakemake")
    return workdir


def copy_of(recorded_run: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "copy"
    shutil.copytree(recorded_run, workdir)
    return workdir


def set_config(workdir: Path, changes: dict) -> None:
    (workdir / "config" / "small.yaml").write_text(yaml.safe_dump(merged(SMALL, changes)))


def refused(workdir: Path, *needles: str) -> str:
    result = run(workdir, "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for needle in needles:
        assert needle in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    return output


@pytest.mark.faults
def test_a_record_with_the_config_it_was_made_with_trains_nothing(recorded_run, tmp_path):
    """The analyses' options change no network: the record stands, nothing is trained."""
    workdir = copy_of(recorded_run, tmp_path)
    set_config(workdir, {"analysis": {"bootstrap": 300, "max_ratio": 0.5}})
    result = run(workdir, "-n")
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "train_" not in result.stdout
    assert (workdir / SUMMARY / "record.json").is_file()


# config changes -> what the refusal names: the key, the record's value and the config's
CHANGED_CONFIG = {
    "iterations": (
        {"training": {"iterations": 100}},
        "training.iterations: the record's 200, the config's 100",
    ),
    "learning rate": (
        {"training": {"learning_rate": 0.05}},
        "training.learning_rate: the record's 0.0012, the config's 0.05",
    ),
    "draws": (
        {"variants": {"draws": {"reinit": 2}}},
        "variants.draws.reinit: the record's 1, the config's 2",
    ),
    "schedule rate": (
        {"pruning": {"schedules": [{"rate": 0.3, "rounds": 2}]}},
        "pruning.schedules.rate-0.3.rate: the record's (absent), the config's 0.3",
    ),
    "an analysis that trains": (
        {"analysis": {"instability": {"enabled": True, "rounds": [0, 1], "rewind_iterations": [0]}}},
        "analysis.instability.enabled: the record's (absent), the config's true",
    ),
    "an analysis whose table the record lacks": (
        {"analysis": {"supermasks": {"enabled": True}}},
        "analysis.supermasks.enabled: the record has no supermasks.csv (it was made without), the config reads it",
    ),
}


@pytest.mark.faults
@pytest.mark.parametrize("case", sorted(CHANGED_CONFIG))
def test_a_record_made_with_another_config_is_refused_naming_each_key(case, recorded_run, tmp_path):
    changes, message = CHANGED_CONFIG[case]
    workdir = copy_of(recorded_run, tmp_path)
    set_config(workdir, changes)
    refused(workdir, message, "results/tiny/seed-1/summary/", "delete the record's summary folder")


@pytest.mark.faults
def test_a_record_of_other_data_is_refused(recorded_run, tmp_path):
    workdir = copy_of(recorded_run, tmp_path)
    config_file = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config["data"]["files"]["train_labels"]["sha256"] = "0" * 64
    config_file.write_text(yaml.safe_dump(config))
    refused(workdir, "data.sha256.train_labels: the record's \"895f65", "the config's \"000000")


@pytest.mark.faults
def test_a_record_copied_to_another_seed_or_experiment_is_refused(recorded_run, tmp_path):
    workdir = copy_of(recorded_run, tmp_path)
    shutil.copytree(workdir / SUMMARY, workdir / RESULTS / "seed-2" / "summary")
    set_config(workdir, {"seeds": {"split": 0, "init": [1, 2]}})
    refused(workdir, "seeds.init: the record's 1, the config's 2", "results/tiny/seed-2/summary/")

    workdir = tmp_path / "other"
    shutil.copytree(recorded_run, workdir)
    shutil.move(workdir / RESULTS, workdir / "results" / "other")
    set_config(workdir, {"experiment": "other"})
    refused(
        workdir, 'experiment: the record\'s "tiny", the config\'s "other"', "results/other/seed-1/summary/"
    )


def _cut_mid_row(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 20])


def _edit_accuracy(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split(",")
    cells = lines[1].rstrip("\n").split(",")
    column = header.index("test_acc")
    cells[column] = str(min(1.0, float(cells[column]) + 0.01))
    lines[1] = ",".join(cells) + "\n"
    path.write_text("".join(lines))


# summary file -> what is done to it, and what the refusal says
DAMAGED = {
    "runs.csv cut mid-row": ("runs.csv", _cut_mid_row, "runs.csv was changed since its record was made"),
    "a test accuracy edited": ("runs.csv", _edit_accuracy, "runs.csv was changed since its record was made"),
    "provenance.json deleted": ("provenance.json", Path.unlink, "provenance.json is missing"),
    "provenance.json emptied": (
        "provenance.json",
        lambda p: p.write_text("{}\n"),
        "provenance.json has no content_sha256",
    ),
    "provenance.json edited": (
        "provenance.json",
        lambda p: p.write_text(p.read_text().replace('"networks": ', '"networks": 1')),
        "provenance.json was changed since it was written",
    ),
    "record.json deleted": ("record.json", Path.unlink, "but no record.json: it is not a whole record"),
}


@pytest.mark.faults
@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_or_edited_record_is_refused_naming_the_file(case, recorded_run, tmp_path):
    name, damage, message = DAMAGED[case]
    workdir = copy_of(recorded_run, tmp_path)
    damage(workdir / SUMMARY / name)
    refused(workdir, message, "git checkout --")


# --- the same checks, in the package ---


def _record_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "x" / "seed-1" / "summary"
    folder.mkdir(parents=True)
    (folder / "runs.csv").write_text("experiment,seed,test_acc\nx,1,0.9\nx,1,0.8\n")
    write_json_with_digest(folder / "provenance.json", {"networks": 2})
    described = {"experiment": "x", "seeds": {"init": 1}, "training": {"iterations": 10}}
    record.write_record(
        folder / "record.json", "seed-1", described, [folder / "runs.csv", folder / "provenance.json"], 2
    )
    return folder


def test_a_job_refuses_a_summary_file_changed_after_its_record(tmp_path):
    folder = _record_folder(tmp_path)
    inputs = {"runs": [str(folder / "runs.csv")], "records": [str(folder / "record.json")]}
    record.verify_inputs(inputs)
    (folder / "runs.csv").write_text("experiment,seed,test_acc\nx,1,0.99\nx,1,0.8\n")
    with pytest.raises(record.RecordError, match=r"runs\.csv was changed since its record was made"):
        record.verify_inputs(inputs)


def test_a_record_counts_and_checks_its_rows(tmp_path):
    folder = _record_folder(tmp_path)
    described = read_json(folder / "record.json")["description"]
    assert record.record_problems(folder, described, ["runs.csv"], 2) == ([], [])
    _, damaged = record.record_problems(folder, described, ["runs.csv"], 3)
    assert damaged == [f"{folder / 'runs.csv'} has 2 rows, but the experiment trains 3 networks a seed"]
    with pytest.raises(record.RecordError, match="has rows of experiment y seed 1"):
        (folder / "runs.csv").write_text("experiment,seed\ny,1\n")
        record.write_record(folder / "record.json", "seed-1", described, [folder / "runs.csv"], 1)


def test_differences_name_each_key_and_ignore_analyses_the_config_does_not_run():
    recorded = {"training": {"iterations": 200, "batch_size": 60}, "analysis": {"instability": {"points": 5}}}
    configured = {"training": {"iterations": 100, "batch_size": 60}}
    assert record.differences(recorded, configured) == [("training.iterations", 200, 100)]
    configured["analysis"] = {"instability": {"points": 7}}
    assert ("analysis.instability.points", 5, 7) in record.differences(recorded, configured)


def test_an_inherited_lottery_commit_never_replaces_the_checkouts(monkeypatch):
    monkeypatch.setenv(provenance.CHECKOUT_VARIABLE, "abc123")
    monkeypatch.setenv(provenance.COMMIT_VARIABLE, "v1 |\n| injected | row |")
    made = provenance.commit()
    assert made == {"commit": "abc123", "commit_override": "v1 | | injected | row |"}
    table = provenance.provenance_markdown(
        [{"replicate": "seed-1", "networks": 3, "machines": {"<b>cpu</b>": 3},
          "commits": {provenance.commit_label(made): 3}, "torch": {"2.4": 3}}]
    )  # fmt: skip
    rows = table.strip().splitlines()
    assert len(rows) == 3, table  # the header, the rule, one row: nothing injected
    assert rows[2].count(" | ") == 4, rows[2]
    assert "abc123 (LOTTERY_COMMIT=v1 \\| \\| injected \\| row \\|)" in rows[2]
    assert "&lt;b&gt;cpu&lt;/b&gt;" in rows[2]
    monkeypatch.setenv(provenance.COMMIT_VARIABLE, "abc123")
    assert provenance.commit() == {"commit": "abc123"}


def test_markdown_cells_hold_one_line_of_text():
    assert markdown_cell("a|b\nc") == "a\\|b c"
    assert markdown_cell("<script>") == "&lt;script&gt;"
    assert len(markdown_cell("x" * 1000)) == 200


def test_a_json_file_with_its_digest_refuses_an_edit(tmp_path):
    path = tmp_path / "p.json"
    write_json_with_digest(path, {"a": 1, "b": [1, 2]})
    assert read_json_with_digest(path) == {"a": 1, "b": [1, 2]}
    path.write_text(path.read_text().replace('"a": 1', '"a": 2'))
    with pytest.raises(ValueError, match="was changed since it was written"):
        read_json_with_digest(path)
    path.write_text(json.dumps({}))
    with pytest.raises(ValueError, match="has no content_sha256"):
        read_json_with_digest(path)
