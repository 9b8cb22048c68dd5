# Helpers shared by the rules: config validation, the experiment's replicates and schedules, paths.
import math
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The logic lives in the package under src/: importable here and in every job's scripts, whether or
# not it was pip-installed (e.g. in a conda environment made from workflow/envs/lottery.yaml).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])])
)

from lottery.experiment import (
    ConfigError,
    architecture,
    replicates,
    schedules,
    training_hparams,
)
from lottery.paper import protocol_deviations

validate(config, "../schemas/config.schema.yaml")

try:
    EXPERIMENT = config["experiment"]
    REPLICATES = {r.name: r for r in replicates(config)}
    SCHEDULES = schedules(config)
    ARCHITECTURE = architecture(config)
    TRAINING = training_hparams(config)
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {e}")

DATASET = config["data"]["name"]
DATA_FILES = config["data"]["files"]
RESULTS = f"results/{EXPERIMENT}"
LOGS = f"logs/{EXPERIMENT}"
ANALYSIS = f"{RESULTS}/analysis"
FIGURES = f"{RESULTS}/figures"
BENCHMARKS = f"{RESULTS}/benchmarks"


wildcard_constraints:
    seed=r"seed-\d+",
    schedule=r"(oneshot-)?rate-[0-9.e-]+|ratio-[0-9.e-]+-rounds-\d+",
    round=r"[1-9]\d*",
    iteration=r"\d+",


def training_runtime(wildcards, attempt):
    """Minutes a training job may run: 5 ms an iteration (about 5x what it takes on one core of a
    2-core development machine) plus 5 minutes for start and evaluation, more at every retry.
    """
    return math.ceil(5 + config["training"]["iterations"] * 0.005 / 60) * attempt


def training_mem_mb(wildcards, attempt):
    """Memory of a training job: the dataset as float32 (~200 MB), PyTorch (~500 MB), headroom."""
    return 2000 * attempt


def canonical(value):
    """``value`` with dictionary keys sorted, recursively: Snakemake compares params by repr, so
    reordering keys in a config file must not rerun jobs."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def data_sources():
    """Where the dataset's files are fetched from: the offline source if set, else the mirrors."""
    source = config["data"]["source"]
    return [source] if source else list(config["data"]["mirrors"])


def schedule_params(wildcards):
    s = SCHEDULES[wildcards.schedule]
    return {
        "name": s.name,
        "rate": s.rate,
        "output_rate_factor": s.output_rate_factor,
        "ratio": s.ratio,
        "rounds": s.rounds if s.ratio is not None else None,
        # only where set: adding the option must not change (and rerun) existing jobs
        **({"oneshot": True} if s.oneshot else {}),
    }


def training_params(wildcards):
    """The training settings of one job: ``test_every`` holds only at ``test_curve_rounds`` (round 0
    is the dense network), 0 elsewhere - a test curve costs about 80% more training time.
    """
    training = {k: v for k, v in config["training"].items() if k != "test_curve_rounds"}
    rounds = config["training"].get("test_curve_rounds")
    if rounds is not None and int(wildcards.get("round", 0)) not in rounds:
        training["test_every"] = 0
    return canonical(training)


def ticket_round_dir(wildcards, round_=None):
    r = wildcards.round if round_ is None else round_
    return f"{RESULTS}/{wildcards.seed}/{wildcards.schedule}/ticket/round-{r}"


def previous_round(wildcards):
    """Round k-1's trained weights and mask: the dense network for round 1 and for one-shot levels."""
    k = int(wildcards.round)
    if k == 1 or SCHEDULES[wildcards.schedule].oneshot:
        prev = f"{RESULTS}/{wildcards.seed}/dense"
    else:
        prev = ticket_round_dir(wildcards, k - 1)
    return {
        "previous_weights": f"{prev}/final.safetensors",
        "previous_mask": f"{prev}/mask.safetensors",
    }


def replicate_params(wildcards):
    r = REPLICATES[wildcards.seed]
    return {
        "init_seed": r.init_seed,
        "data_order_seed": r.data_order_seed,
        "split_seed": r.split_seed,
        "controls_offset": r.controls_offset,
    }


def variant_outputs(variant):
    """Output files of a control network trained in ``<schedule>/<variant>/round-<k>/``."""
    directory = f"{RESULTS}/{{seed}}/{{schedule}}/{variant}/round-{{round}}"
    return {
        "weights": f"{directory}/final.safetensors",
        "metrics": f"{directory}/metrics.json",
        "curve": f"{directory}/curve.csv",
    }


def ticket_masks_up_to_round(wildcards):
    """The ticket's masks of rounds 1..k: the random control keeps as many weights per layer."""
    return [
        f"{ticket_round_dir(wildcards, k)}/mask.safetensors"
        for k in range(1, int(wildcards.round) + 1)
    ]


VARIANTS = config["variants"]


def control_rounds(schedule):
    """Rounds at which the controls are trained: every round of an iterative fixed-rate schedule
    (each is a level of the paper's plots), the last of a {ratio, rounds} schedule (its target) and
    none of a one-shot schedule (its levels' controls are the iterative ones'), unless
    variants.rounds says 'final' or 'every' for all."""
    if VARIANTS["rounds"] == "auto" and schedule.oneshot:
        return []
    every = VARIANTS["rounds"] == "every" or (
        VARIANTS["rounds"] == "auto" and schedule.ratio is None
    )
    return range(1, schedule.rounds + 1) if every else [schedule.rounds]


def control_variants():
    names = [v for v in ("reinit", "random") if VARIANTS[v]]
    return names + [f"rewind-{k}" for k in VARIANTS["rewind_iterations"]]


def ticket_metrics():
    return [
        f"{RESULTS}/{seed}/{name}/ticket/round-{k}/metrics.json"
        for seed in REPLICATES
        for name, s in SCHEDULES.items()
        for k in range(1, s.rounds + 1)
    ]


def control_metrics():
    return [
        f"{RESULTS}/{seed}/{name}/{variant}/round-{k}/metrics.json"
        for seed in REPLICATES
        for name, s in SCHEDULES.items()
        for variant in control_variants()
        for k in control_rounds(s)
    ]


def dense_metrics():
    return [f"{RESULTS}/{seed}/dense/metrics.json" for seed in REPLICATES]


def analysis_params():
    """The analyses' settings, and the number of rounds of the 'iterative' panel (5 if swept)."""
    rounds = sorted({s.rounds for s in SCHEDULES.values() if s.ratio is not None})
    iterative = 5 if 5 in rounds else max([r for r in rounds if r > 1], default=5)
    return canonical({**config["analysis"], "iterative_rounds": iterative})


PAPER = config["analysis"]["paper"]


def test_curve_rounds():
    """Rounds whose networks record a test curve (none when training.test_every is 0)."""
    if not config["training"]["test_every"]:
        return set()
    chosen = config["training"]["test_curve_rounds"]
    longest = max(s.rounds for s in SCHEDULES.values())
    return set(range(longest + 1)) if chosen is None else set(chosen)


def test_curve_networks():
    """metrics.json and curve.csv of every network with a test curve, as two aligned lists."""
    rounds = test_curve_rounds()
    directories = [f"{RESULTS}/{seed}/dense" for seed in REPLICATES if 0 in rounds]
    for seed in REPLICATES:
        for name, s in SCHEDULES.items():
            directories += [
                f"{RESULTS}/{seed}/{name}/ticket/round-{k}"
                for k in range(1, s.rounds + 1)
                if k in rounds
            ]
            directories += [
                f"{RESULTS}/{seed}/{name}/{variant}/round-{k}"
                for variant in control_variants()
                for k in control_rounds(s)
                if k in rounds
            ]
    return {
        "metrics": [f"{d}/metrics.json" for d in directories],
        "curves": [f"{d}/curve.csv" for d in directories],
    }


def has_oneshot():
    return any(s.oneshot for s in SCHEDULES.values())


def paper_summary_inputs(wildcards):
    """The claims table for the summary when analysis.paper is on."""
    return {"claims": f"{ANALYSIS}/claims.md"} if PAPER else {}


def all_outputs():
    outputs = [f"{RESULTS}/runs.csv", f"{RESULTS}/summary.md"]
    if PAPER:
        outputs.append(f"{ANALYSIS}/claims.csv")
        if test_curve_rounds():
            outputs.append(f"{FIGURES}/test_curves.png")
        if has_oneshot():
            outputs.append(f"{FIGURES}/oneshot.png")
    return outputs
