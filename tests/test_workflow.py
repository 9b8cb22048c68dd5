"""End to end: the tiny `.test` configuration through Snakemake, on temporary copies of `.test`."""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from lottery.io import load_tensors
from lottery.pruning import kept_counts

from .conftest import HUNG, ROOT, local_env

pytestmark = pytest.mark.workflow
RESULTS = "results/tiny"
SEEDS = ("seed-1", "seed-2")
CONTROLLED = {"rate-0.2": 2, "ratio-0.5-rounds-1": 1, "ratio-0.5-rounds-2": 2, "ratio-0.8-rounds-1": 1,
              "ratio-0.8-rounds-2": 2}  # fmt: skip
SCHEDULE_ROUNDS = {
    **CONTROLLED,
    "oneshot-rate-0.2": 2,
}  # one-shot levels get no controls (variants.rounds auto)
CONTROLS = ("reinit", "random", "random-draw-2", "rewind-50")  # .test: variants.draws.random 2
SUMMARY_FILES = ("runs.csv", "provenance.json", "record.json", "test_curves.csv", "instability.csv", "instability_path.csv",
                 "supermasks.csv", "masks.safetensors")  # fmt: skip
SECTIONS = ("pruning_ratios", "accuracy", "parameter_importance", "random_states", "paper_view", "oneshot",
            "instability", "supermasks", "mask_overlap", "pixel_map")  # fmt: skip


def snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`snakemake --cores 2 --directory <copy of .test>` run from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HUNG,
        env=local_env(env),
    )


def copy_test_dir(dest: Path) -> Path:
    shutil.copytree(ROOT / ".test" / "config", dest / "config")
    shutil.copytree(ROOT / ".test" / "data", dest / "data")
    return dest


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", output, re.MULTILINE) if m[1] != "total"}


def file_digests(workdir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(workdir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for pattern in ("*.safetensors", "*.json", "*.csv")
        for p in sorted((workdir / RESULTS).rglob(pattern))
        if "benchmarks" not in p.parts and p.name != "provenance.json"  # timings: not reproducible
    }


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    workdir = copy_test_dir(tmp_path_factory.mktemp("first"))
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir


def test_every_round_is_an_artifact(first_run):
    results = first_run / RESULTS
    assert (results / "data" / "split.safetensors").is_file()
    for seed in SEEDS:
        assert (results / seed / "init.safetensors").is_file()
        for name in ("final.safetensors", "mask.safetensors", "metrics.json", "curve.csv", "provenance.json"):
            assert (results / seed / "dense" / name).is_file()
        for name in SUMMARY_FILES:
            assert (results / seed / "summary" / name).is_file(), name
        for schedule, rounds in SCHEDULE_ROUNDS.items():
            for k in range(1, rounds + 1):
                round_dir = results / seed / schedule / "ticket" / f"round-{k}"
                for name in ("mask.safetensors", "final.safetensors", "metrics.json", "curve.csv"):
                    assert (round_dir / name).is_file(), round_dir / name
        assert (results / "benchmarks" / seed / "train_dense.tsv").is_file()
        assert not (results / seed / "oneshot-rate-0.2" / "reinit").exists()
        for schedule, rounds in CONTROLLED.items():
            for variant in CONTROLS:
                for name in ("final.safetensors", "metrics.json", "curve.csv"):
                    assert (results / seed / schedule / variant / f"round-{rounds}" / name).is_file()


def test_variant_artifacts(first_run):
    results = first_run / RESULTS / "seed-1"
    init, reinit = (
        load_tensors(results / "init.safetensors"),
        load_tensors(results / "reinit-init.safetensors"),
    )
    theta = load_tensors(results / "theta-50.safetensors")
    assert not torch.equal(init["fc1.weight"], reinit["fc1.weight"])
    assert not torch.equal(init["fc1.weight"], theta["fc1.weight"])
    for schedule, rounds in CONTROLLED.items():
        ticket = load_tensors(results / schedule / "ticket" / f"round-{rounds}" / "mask.safetensors")
        random = load_tensors(results / schedule / "random" / f"round-{rounds}" / "mask.safetensors")
        assert kept_counts(random) == kept_counts(ticket)
        assert any(not torch.equal(random[n], ticket[n]) for n in ticket)
        trained = load_tensors(results / schedule / "reinit" / f"round-{rounds}" / "final.safetensors")
        assert all(bool((trained[n][ticket[n] == 0] == 0).all()) for n in ticket)  # the ticket's mask


def test_oneshot_levels(first_run):
    """One-shot level 1 is iterative round 1, bit for bit; level 2 keeps round 2's counts, chosen by
    magnitude from the dense network rather than from round 1's."""
    results = first_run / RESULTS / "seed-1"
    iterative, oneshot = results / "rate-0.2" / "ticket", results / "oneshot-rate-0.2" / "ticket"
    for name in ("mask.safetensors", "final.safetensors"):  # the masks' metadata name their schedules
        a, b = load_tensors(iterative / "round-1" / name), load_tensors(oneshot / "round-1" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)
    mask_iter = load_tensors(iterative / "round-2" / "mask.safetensors")
    mask_once = load_tensors(oneshot / "round-2" / "mask.safetensors")
    assert kept_counts(mask_once) == kept_counts(mask_iter)
    assert any(not torch.equal(mask_once[n], mask_iter[n]) for n in mask_iter)
    dense = load_tensors(results / "dense" / "final.safetensors")
    w, m = dense["fc1.weight"].abs(), mask_once["fc1.weight"]
    assert w[m > 0].min() >= w[m == 0].max()


def test_test_curves_only_at_chosen_rounds(first_run):
    """test_curve_rounds [0, 2]: a test evaluation every 50 iterations there, elsewhere only at the early
    stop and the end."""
    results = first_run / RESULTS / "seed-1"
    for network, curve_round in (("dense", True), ("rate-0.2/ticket/round-2", True),
                                 ("rate-0.2/reinit/round-2", True), ("rate-0.2/ticket/round-1", False)):  # fmt: skip
        curve = pd.read_csv(results / network / "curve.csv")
        tested = set(curve.dropna(subset=["test_acc"])["iteration"])
        if curve_round:
            assert tested == {50, 100, 150, 200}, network
        else:
            assert len(tested) <= 2 and 200 in tested, network


def test_paper_claims_and_figures(first_run):
    results = first_run / RESULTS
    claims = pd.read_csv(results / "analysis" / "claims.csv")
    assert len(claims) == 11 and set(claims["verdict"]) <= {
        "holds",
        "does not hold",
        "undecided",
        "not measured",
    }
    # The tiny run has no 21.1% level (2 rounds) but has the dense network and both seeds.
    dense = claims.set_index("claim").loc["dense_accuracy"]
    assert dense["seeds"] == 2 and dense["verdict"] in {"holds", "does not hold"}  # 2 seeds: no interval
    assert pd.isna(dense["ci_low"]) and dense["interval"] == "per-seed values (Student t over seeds)"
    assert claims.set_index("claim").loc["reinit_speed_21", "verdict"] == "not measured"
    # Each claim says how its interval over seeds is made: Student t, paired, a ratio on the log scale.
    assert claims["interval"].value_counts().to_dict() == {
        "paired difference (Student t over seeds)": 6,
        "paired ratio, log scale (Student t over seeds)": 4,
        "per-seed values (Student t over seeds)": 1,
    }
    for name in ("test_curves.png", "test_curves.svg", "oneshot.png"):
        assert (results / "figures" / name).stat().st_size > 0
    curves = pd.read_csv(results / "analysis" / "test_curves.csv")
    assert {"ticket", "reinit", "random", "dense"} <= set(curves["variant"])
    summary = (results / "summary.md").read_text()
    assert "## The paper's claims" in summary and "## Deviations from the paper's protocol" in summary
    assert "training.iterations is 200 (the paper: 50000)" in summary
    assert "a 95% interval by Student t over seeds" in summary and "bootstrap 95%" not in summary


def test_report_sections(first_run):
    results = first_run / RESULTS
    for section in SECTIONS:
        for path in (results / "analysis" / f"{section}.csv", results / "figures" / f"{section}.png",
                     results / "figures" / f"{section}.svg"):  # fmt: skip
            assert path.is_file() and path.stat().st_size > 0, path
    correlations = pd.read_csv(results / "analysis" / "correlations.csv")
    assert set(correlations["variant"]) == {"ticket", "reinit", "random", "rewind-50"}  # draws averaged
    assert set(correlations["levels"]) == {"all", "<= 0.85"}
    summary = (results / "summary.md").read_text()
    for heading in (
        "Desired vs actual",
        "Correlation",
        "Parameter importance",
        "random state",
        "paper's view",
        "## Instability (linear mode connectivity)",
        "## Supermasks (masks without training)",
        "## Mask overlap",
        "## The pixel map",
    ):
        assert heading in summary
    instability = pd.read_csv(results / "analysis" / "instability.csv")
    # .test: rounds 0 and 2, k = 0 and 50; reinit at k = 0 only; the dense network as the ticket
    assert len(instability) == len(SEEDS) * 7 and instability["instability"].ge(0).all()
    path = pd.read_csv(results / "analysis" / "instability_path.csv")
    assert len(path) == 25 * len(instability)
    supermasks = pd.read_csv(results / "analysis" / "supermasks.csv")
    assert set(supermasks["round"]) == {0, 1, 2} and set(supermasks["weights"]) == {"init", "signed_constant"}
    overlap = pd.read_csv(results / "analysis" / "mask_overlap.csv")
    assert set(overlap["comparison"]) == {"seeds", "iterative_vs_oneshot", "consecutive_rounds"}
    assert len(pd.read_csv(results / "analysis" / "pixel_map.csv")) == 2 * 784
    report = snakemake(first_run, "--report", "report.html")
    assert report.returncode == 0, report.stderr[-3000:]
    html = (first_run / "report.html").read_text(errors="replace")
    assert len(html) > 10_000 and "accuracy.png" in html
    # the description follows the config (.test: the sample dataset, two replicates, its schedules)
    description = html.replace("\\n", " ")  # the report holds it as a JavaScript string
    for words in ("mnist-sample", "784-300-100-10 units", "200 iterations", "2 replicates",
                  "seeds 1, 2", "rate 0.2 for 2 rounds (one-shot)", "final ratios 0.5, 0.8"):  # fmt: skip
        assert words in description, words


def test_runs_table(first_run):
    with open(first_run / RESULTS / "runs.csv") as f:
        rows = list(csv.DictReader(f))
    # Controls: every round of the fixed-rate schedule, the last round of each swept one.
    control_rounds = CONTROLLED["rate-0.2"] + len(CONTROLLED) - 1
    assert len(rows) == len(SEEDS) * (1 + sum(SCHEDULE_ROUNDS.values()) + control_rounds * len(CONTROLS))
    required = {"experiment", "seed", "variant", "schedule", "round", "requested_ratio", "actual_ratio",
                "weights_remaining_pct", "remaining_fc1", "remaining_fc2", "remaining_fc3",
                "early_stop_iteration", "val_loss", "val_acc", "test_acc", "test_acc_final",
                "iterations"}  # fmt: skip
    assert required <= set(rows[0])
    assert not any("time" in column for column in rows[0])
    one_shot_final = [r for r in rows if r["schedule"] == "ratio-0.5-rounds-2" and r["round"] == "2"]
    for row in one_shot_final:
        assert float(row["requested_ratio"]) == pytest.approx(0.5)
        # The output layer is pruned at half rate, so slightly less than requested overall.
        assert 0.49 < float(row["actual_ratio"]) < 0.5
        assert float(row["remaining_fc3"]) > float(row["remaining_fc1"])
    for row in rows:
        assert row["iterations"] == "200" and row["experiment"] == "tiny"
    variants = {(r["variant"], r["rewind_iteration"]) for r in rows}
    assert variants == {("dense", ""), ("ticket", ""), ("reinit", ""), ("random", ""), ("rewind", "50")}
    draws = {(r["variant"], r["draw"]) for r in rows if r["variant"] in ("reinit", "random")}
    assert draws == {("reinit", "1"), ("random", "1"), ("random", "2")}
    # the experiment's table is its replicates' tables one after the other
    parts = [(first_run / RESULTS / seed / "summary" / "runs.csv").read_text().splitlines() for seed in SEEDS]
    assert (first_run / RESULTS / "runs.csv").read_text().splitlines() == parts[0] + parts[1][1:]


def test_provenance(first_run):
    """Each network names the machine, code and time that made it; a replicate's summary gathers them,
    and summary.md lists them - none of it in runs.csv or metrics.json."""
    import json

    made = json.loads((first_run / RESULTS / "seed-1" / "dense" / "provenance.json").read_text())
    assert made["torch"] == torch.__version__ and made["seconds"] > 0 and made["machine"]["model_name"]
    assert set(made["paths"]) == {"fc1.weight", "fc2.weight", "fc3.weight"}
    replicate = json.loads((first_run / RESULTS / "seed-1" / "summary" / "provenance.json").read_text())
    networks = len(pd.read_csv(first_run / RESULTS / "seed-1" / "summary" / "runs.csv"))
    assert replicate["networks"] == networks + 10  # and the instability analysis's own copies
    assert sum(replicate["machines"].values()) == replicate["networks"]
    assert replicate["training_seconds"] > 0 and replicate["span_seconds"] >= 0
    summary = (first_run / RESULTS / "summary.md").read_text()
    assert "## Who made these results" in summary and "| seed-2 |" in summary
    assert "Networks per seed and level: " in summary and "random 2" in summary
    assert "commit" not in (first_run / RESULTS / "seed-1" / "dense" / "metrics.json").read_text()


def committed_copy(first_run: Path, dest: Path) -> Path:
    """What a fresh clone has of a finished run: the config, the sample data and the committed results
    (tables, figures, summary, runs table and each replicate's summary) - no checkpoints, no masks,
    no dataset, no Snakemake metadata."""
    copy_test_dir(dest)
    results = first_run / RESULTS
    for path in results.rglob("*"):
        relative = path.relative_to(results)
        committed = relative.parts[0] in ("analysis", "figures", "runs.csv", "summary.md") or (
            len(relative.parts) > 1 and relative.parts[1] == "summary"
        )
        if path.is_file() and committed:
            target = dest / RESULTS / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return dest


def test_a_fresh_clone_reuses_the_replicates_summaries(first_run, tmp_path):
    """With its summary committed, a replicate has nothing to redo though its networks are gone, even
    when the data are fetched anew; an added seed trains that seed alone, and the tables are remade."""
    workdir = committed_copy(first_run, tmp_path / "clone")
    assert not list((workdir / RESULTS).rglob("final.safetensors"))
    assert not list((workdir / RESULTS).rglob("mask.safetensors"))
    result = snakemake(workdir, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    counts = job_counts(result.stdout)
    assert not [rule for rule in counts if rule.startswith(("train_", "replicate_", "rewind"))], counts
    counts = dry_run_with(workdir, "seeds", "init", [1, 2, 5])
    trained = {rule for rule in counts if rule.startswith(("train_", "replicate_", "initialise", "rewind"))}
    assert {rule: counts[rule] for rule in trained} == PER_SEED


# The .test workflow's outputs as committed (issue 29's newcomer check in small form): sha256 and path
# of every file file_digests covers. Remade after an intended change of any network or table with
# python -c "from tests.test_workflow import write_outputs_golden; write_outputs_golden('<workdir>')"
# on a finished run of .test (snakemake --cores 2 --directory <copy of .test>), the machine said in
# the commit.
OUTPUTS_GOLDEN = ROOT / "tests" / "golden" / "tiny_outputs.sha256"


def write_outputs_golden(workdir: str) -> None:
    lines = [f"{digest}  {path}" for path, digest in file_digests(Path(workdir)).items()]
    OUTPUTS_GOLDEN.write_text("\n".join(lines) + "\n")


def test_the_tiny_workflow_remakes_the_committed_outputs_byte_for_byte(first_run):
    """Every output of the .test workflow but provenance.json (machine, times) and the benchmarks'
    timings - each network's weights, mask, metrics and curve, the runs tables, the records, every
    analysis table - is byte for byte the committed copy's, on whatever x86-64 machine runs the
    suite: the native trainer's promise, and the newcomer's check of results/, in small form."""
    committed = dict(
        reversed(line.split("  ", 1)) for line in OUTPUTS_GOLDEN.read_text().splitlines() if line
    )
    made = file_digests(first_run)
    assert sorted(made) == sorted(committed), "another set of files than the committed outputs"
    differ = sorted(path for path in made if made[path] != committed[path])
    assert not differ, f"{len(differ)} outputs differ from the committed copies, e.g. {differ[:5]}"


def test_second_run_has_nothing_to_do(first_run):
    result = snakemake(first_run, "--dry-run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def dry_run_with(workdir: Path, section: str, key: str, value) -> dict[str, int]:
    """Job counts of a dry run after changing one value of the copy's config (restored after)."""
    path = workdir / "config" / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config[section][key] = value
    path.write_text(yaml.safe_dump(config))
    try:
        result = snakemake(workdir, "--dry-run")
    finally:
        path.write_text(original)
    assert result.returncode == 0, result.stderr[-3000:]
    return job_counts(result.stdout)


# The jobs of one more seed, and the experiment's tables remade from the replicates' summaries.
PER_SEED = {"initialise": 1, "initialise_reinit": 1, "rewind_point": 1, "train_dense": 1, "train_ticket": 10,
            "train_reinit": 6, "train_random": 6, "train_random_draw": 6, "train_rewind": 6,
            "train_instability_copy": 10, "replicate_runs": 1, "replicate_provenance": 1,
            "replicate_test_curves": 1, "replicate_instability": 1, "replicate_supermasks": 1,
            "replicate_masks": 1, "replicate_record": 1}  # fmt: skip
ANALYSIS = {"collect_runs", "pruning_ratios", "accuracy", "correlations", "parameter_importance", "random_states",
            "paper_view", "claims", "test_curves", "oneshot", "summary", "all", "instability", "supermasks",
            "mask_overlap", "pixel_map"}  # fmt: skip


def test_config_change_reruns_only_affected_jobs(first_run):
    counts = dry_run_with(first_run, "seeds", "init", [1, 2, 5])
    assert counts == PER_SEED | dict.fromkeys(ANALYSIS, 1)
    # One more reinit draw per ticket: its weights and its networks, nothing else.
    counts = dry_run_with(first_run, "variants", "draws", {"reinit": 2, "random": 2})
    assert {rule: n for rule, n in counts.items() if rule.startswith(("train_", "initialise"))} == {
        "initialise_reinit_draw": 2, "train_reinit_draw": 12
    }  # fmt: skip
    counts = dry_run_with(first_run, "training", "eval_every", 25)
    assert counts["train_dense"] == 2 and counts["train_ticket"] == 20
    assert not {"fetch_dataset", "decode_dataset", "split_dataset", "initialise"} & set(counts)


def test_jobs_run_again_give_the_same_bytes(first_run, tmp_path):
    """Determinism, job by job: a ticket round, a control that draws its own mask and an analysis with
    a bootstrap, forced to run again in a copy of the first run, write the same bytes."""
    workdir = tmp_path / "again"
    shutil.copytree(first_run, workdir, symlinks=True)
    targets = [
        f"{RESULTS}/seed-2/rate-0.2/ticket/round-2/final.safetensors",
        f"{RESULTS}/seed-1/rate-0.2/random/round-2/final.safetensors",
        f"{RESULTS}/analysis/correlations.csv",
    ]
    before = {t: (workdir / t).stat().st_mtime_ns for t in targets}
    result = snakemake(workdir, "--force", *targets)
    assert result.returncode == 0, result.stderr[-5000:]
    assert all((workdir / t).stat().st_mtime_ns != before[t] for t in targets), "not all were run again"
    assert file_digests(workdir) == file_digests(first_run)


def test_lint_is_clean():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HUNG,
        env=local_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_the_workflow_runs_as_a_module(tmp_path):
    """config/README.md's module Snakefile, in another folder with the .test config: the dry run lists
    the same jobs as the workflow's own, each rule behind the prefix."""
    copy_test_dir(tmp_path)
    (tmp_path / "Snakefile").write_text(
        'configfile: "config/config.yaml"\n\n\n'
        f'module lottery:\n    snakefile:\n        "{ROOT / "Snakefile"}"\n    config:\n        config\n\n\n'
        "use rule * from lottery as lottery_*\n"
    )
    as_module = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=tmp_path,
                               capture_output=True, text=True, timeout=HUNG, env=local_env())  # fmt: skip
    assert as_module.returncode == 0, as_module.stderr[-3000:]
    own = snakemake(copy_test_dir(tmp_path / "own"), "-n")
    expected = {f"lottery_{rule}": count for rule, count in job_counts(own.stdout).items()}
    assert job_counts(as_module.stdout) == expected and len(expected) > 15
