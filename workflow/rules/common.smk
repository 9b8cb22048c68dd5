# Helpers shared by the rules: config validation, the experiment's description, its paths and the
# params each rule hands its script. The logic behind them lives in the package (lottery.experiment,
# lottery.variants, lottery.sections), where it is tested; none of it imports PyTorch or pandas.
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

from lottery import layout, owner, provenance, record, schema, sections, variants
from lottery.desc import Network, to_params
from lottery.experiment import ConfigError, Experiment
from lottery.protocol import protocol_deviations

try:
    validate(config, "../schemas/config.schema.yaml")
except WorkflowError:  # one line naming the key, the value and what is allowed
    explained = schema.config_error(config)
    if explained is None:
        raise
    raise WorkflowError(f"invalid configuration: {explained}") from None
# NaN and infinity, refused at every key: NaN passes every bound of the schema, infinity a lower one.
explained = schema.non_finite_error(config)
if explained is not None:
    raise WorkflowError(f"invalid configuration: {explained}")

# Jobs stop, writing nothing, once this Snakemake is gone (lottery.owner).
os.environ[owner.ENVIRONMENT] = owner.describe()
# The commit every network's provenance.json names: this checkout's, whatever the environment
# inherited (an environment variable, not params: a new commit reruns nothing). A user's own
# $LOTTERY_COMMIT is recorded beside it (lottery.provenance.commit).
os.environ[provenance.CHECKOUT_VARIABLE] = provenance.git_commit(workflow.basedir)

try:
    EXPERIMENT = Experiment.from_config(config)
except ConfigError as e:
    raise WorkflowError(f"invalid configuration: {e}")
# The model's inputs as resolved from the dataset (model.input_size null: the dataset's), for the
# report's description of the experiment.
config["model"]["input_size"] = EXPERIMENT.architecture.input_size

from lottery.datasets import (
    resolve as resolve_data,
)  # data.files and mirrors; null: the dataset's

DATASET = config["data"]["name"]
DATA_FILES = resolve_data(config["data"])["files"]
PAPER = config["analysis"]["paper"]
RESULTS = f"results/{EXPERIMENT.name}"
LOGS = f"logs/{EXPERIMENT.name}"
ANALYSIS = f"{RESULTS}/{layout.ANALYSIS}"
# A replicate's summary: the small files that are committed, from which the experiment's tables are
# built (its checkpoints need not be kept; a later run with more seeds reuses them).
SUMMARY = layout.summary_dir("{replicate}", RESULTS)
FIGURES = f"{RESULTS}/{layout.FIGURES}"
BENCHMARKS = f"{RESULTS}/{layout.BENCHMARKS}"


wildcard_constraints:
    replicate=r"seed-\d+",
    schedule=r"(oneshot-)?rate-[0-9.e-]+|ratio-[0-9.e-]+-rounds-\d+",
    round=r"[1-9]\d*",
    iteration=r"\d+",
    level=r"\d+",
    twin=r"[ab]",
    variant=r"ticket|reinit|random",
    draw=r"[2-9]|[1-9]\d+",
    method=r"[a-z][a-z0-9_]*",
    check=r"found|shuffled|reinit|inverted",


def training_runtime(wildcards, attempt):
    """Minutes a training job may run: 5 ms an iteration (a generous bound for one CPU core) plus
    5 minutes for start and evaluation, more at every retry."""
    return math.ceil(5 + EXPERIMENT.training.iterations * 0.005 / 60) * attempt


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


# Params: the experiment's typed pieces as lottery.desc.to_params (defaults left out).
# A training job's model: a params entry only where it is not the default LeNet-300-100 (mlp), so
# that the default's jobs have the params they had (Snakemake reruns a job whose params change).
MODEL_PARAMS = (
    {"architecture": to_params(EXPERIMENT.architecture)}
    if to_params(EXPERIMENT.architecture)
    else {}
)


def training_params(wildcards):
    return to_params(EXPERIMENT.training_at(int(wildcards.get("round", 0))))


def replicate_params(wildcards):
    return to_params(EXPERIMENT.replicates[wildcards.replicate])


def ticket_params(wildcards):
    """The ticket round a job prunes and trains, or whose mask a control uses."""
    schedule = EXPERIMENT.schedules[wildcards.schedule]
    return to_params(Network.ticket(schedule, int(wildcards.round), EXPERIMENT.method))


# Paths.
def ticket_round_dir(wildcards, round_=None):
    r = wildcards.round if round_ is None else round_
    return layout.ticket_dir(wildcards.replicate, wildcards.schedule, r, RESULTS)


def previous_round(wildcards):
    """Round k-1's trained weights and mask: the dense network for round 1 and for one-shot levels."""
    k = int(wildcards.round)
    if k == 1 or EXPERIMENT.schedules[wildcards.schedule].oneshot:
        prev = layout.dense_dir(wildcards.replicate, RESULTS)
    else:
        prev = ticket_round_dir(wildcards, k - 1)
    return {
        "previous_weights": layout.file(prev, layout.WEIGHTS),
        "previous_mask": layout.mask_file(prev),
    }


def control_inputs(variant):
    """The files a control variant's job needs besides the data (lottery.variants.Variant.inputs)."""

    def inputs(wildcards):
        rounds = range(1, int(wildcards.round) + 1)
        return variant.inputs(
            variants.ControlInputs(
                replicate=f"{RESULTS}/{wildcards.replicate}",
                ticket_rounds=[ticket_round_dir(wildcards, k) for k in rounds],
                wildcards=dict(wildcards.items()),
            )
        )

    return inputs


def control_rules():
    """(variant, folder pattern) of each control rule: one per variant, and for a drawn variant
    with more than one draw a second one for draws 2, 3, ... (``<folder>-draw-{draw}``).
    """
    for variant in variants.REGISTRY.values():
        yield variant, variant.directory
        if variant.drawn and EXPERIMENT.draws.get(variant.name, 1) > 1:
            yield variant, variants.draw_directory(variant.directory, "{draw}")


def network_outputs(directory):
    """What every training job writes into its network's folder: its final weights, metrics.json
    (reproducible to the byte), the curve, and provenance.json (which machine, code and time made
    it: lottery.provenance)."""
    return layout.network_files(directory)


def control_outputs(variant, directory):
    """Output files of a control network, in ``<schedule>/<folder>/round-<k>/``."""
    folder = layout.round_dir(
        "{replicate}", "{schedule}", directory, "{round}", RESULTS
    )
    outputs = network_outputs(folder)
    return outputs | ({"mask": layout.mask_file(folder)} if variant.writes_mask else {})


def metrics_files(directories):
    return [layout.file(f"{RESULTS}/{d}", layout.METRICS) for d in directories]


def recorded_replicates():
    """Replicates whose summary stands for their networks (lottery.record): its runs table or
    record.json is here and its networks are not (a fresh clone: summaries are committed,
    checkpoints are not). No rule makes their summaries (UNRECORDED below), so nothing of theirs is
    redone nor trained again, even when the data are fetched anew for another seed; delete a
    replicate's summary folder to make it again."""
    return [
        r
        for r in EXPERIMENT.replicates
        if any(
            Path(SUMMARY.format(replicate=r), f).exists()
            for f in (record.RUNS, record.RECORD)
        )
        and not Path(layout.dense_dir(r, RESULTS), layout.METRICS).exists()
    ]


def record_description(replicate):
    """What decides a replicate's networks (lottery.record.description), kept in its record.json."""
    return canonical(record.description(EXPERIMENT, replicate, config["data"]))


RECORDED = recorded_replicates()
SUMMARY_FILES = record.summary_files(EXPERIMENT, PAPER)
# Before any job: every record must describe this config's experiment, its files as they were made.
try:
    record.check_records(
        {r: SUMMARY.format(replicate=r) for r in RECORDED},
        {r: record_description(r) for r in RECORDED},
        SUMMARY_FILES,
        {r: len(EXPERIMENT.network_dirs(r)) for r in RECORDED},
    )
except record.RecordError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None
# The replicate_* rules' wildcard constraint: the replicates that are not records (a lookahead, so
# that matching a replicate costs the same however many seeds the experiment has).
UNRECORDED = (
    r"seed-(?!(?:"
    + "|".join(r.removeprefix("seed-") for r in RECORDED)
    + r")(?!\d))\d+"
    if RECORDED
    else r"seed-\d+"
)


def replicate_summaries(name):
    """A file of every replicate's summary (``seed-<s>/summary/<name>``), in the replicates' order."""
    return [
        os.path.join(SUMMARY.format(replicate=r), name) for r in EXPERIMENT.replicates
    ]


def replicate_networks(wildcards):
    """metrics.json of every network of a replicate's runs table."""
    return metrics_files(EXPERIMENT.network_dirs(wildcards.replicate))


def replicate_provenance_files(wildcards):
    """provenance.json of every network a replicate trains."""
    directories = EXPERIMENT.trained_dirs(wildcards.replicate)
    return [layout.file(f"{RESULTS}/{d}", layout.PROVENANCE) for d in directories]


def test_curve_networks(wildcards):
    """metrics.json and curve.csv of a replicate's networks with a test curve, as two aligned lists."""
    directories = EXPERIMENT.curve_dirs(wildcards.replicate)
    return {
        "metrics": metrics_files(directories),
        "curves": [layout.file(f"{RESULTS}/{d}", layout.CURVE) for d in directories],
    }


def section_outputs(section):
    """A report section's table (and figure), wrapped in report() with its caption and category."""

    def shown(path):
        caption = f"../report/{section.name}.rst"
        return report(path, caption=caption, category=section.category)

    table = f"{ANALYSIS}/{section.name}.csv"
    outputs = {"table": shown(table) if section.table_in_report else table}
    if section.figure:
        outputs["png"] = shown(f"{FIGURES}/{section.name}.png")
        outputs["svg"] = f"{FIGURES}/{section.name}.svg"
    return outputs


def wanted(section):
    return section.wanted(
        PAPER,
        EXPERIMENT.has_oneshot,
        EXPERIMENT.ticket_analyses,
        bool(EXPERIMENT.curve_rounds()),
        has_pai=bool(EXPERIMENT.pai.methods),
    )


def summary_tables():
    return {
        s.name: f"{ANALYSIS}/{s.name}.csv"
        for s in sections.SECTIONS
        if s.in_summary and wanted(s)
    }


def paper_summary_inputs(wildcards):
    """The claims table for the summary when analysis.paper is on."""
    return {"claims": f"{ANALYSIS}/claims.md"} if PAPER else {}


def all_outputs():
    outputs = [f"{RESULTS}/{layout.RUNS_TABLE}", f"{RESULTS}/{layout.SUMMARY_MARKDOWN}"]
    outputs += replicate_summaries(record.RECORD)
    outputs += [f"{ANALYSIS}/{s.name}.csv" for s in sections.SECTIONS if wanted(s)]
    return outputs


# What the tickets are (lottery.ticket_analyses): the masks and weights of the reference schedule
# (Experiment.reference_schedule; workflow/rules/ticket_analyses.smk is included where there is one).
def reference_masks(rounds, replicates=None, schedule=None):
    """Ticket masks, replicate by replicate, each at ``rounds``."""
    return [
        f"{RESULTS}/{EXPERIMENT.ticket_mask(replicate, r, schedule)}"
        for replicate in replicates or EXPERIMENT.replicates
        for r in rounds
    ]


def instability_copy_inputs(wildcards):
    """What a copy starts from: θ0, θk or the reinit draw, and its mask (the random control's mask
    is replayed from the ticket's masks, as the control's job does)."""
    replicate = f"{RESULTS}/{wildcards.replicate}"
    level, k = int(wildcards.level), int(wildcards.iteration)
    init = layout.theta_file(replicate, k) if k else layout.init_file(replicate)
    if wildcards.variant == "reinit":
        init = layout.reinit_init_file(replicate)
    if wildcards.variant == "random":
        rounds = range(1, level + 1)
        return {
            "init": init,
            "ticket_masks": reference_masks(rounds, [wildcards.replicate]),
        }
    return {"init": init, "mask": reference_masks([level], [wildcards.replicate])[0]}


def instability_network(wildcards):
    """The ticket round a copy's mask comes from (None: the dense network)."""
    level = int(wildcards.level)
    if level == 0:
        return None
    ticket = Network.ticket(EXPERIMENT.reference_schedule, level, EXPERIMENT.method)
    return to_params(ticket)


def replicate_pairs(wildcards):
    """A replicate's tested networks of the instability analysis (Experiment.instability_pairs)."""
    return EXPERIMENT.instability_pairs(wildcards.replicate)


def instability_inputs(wildcards):
    """The two copies' final weights of every tested network of a replicate."""
    pairs = replicate_pairs(wildcards)
    return {
        twin: [layout.file(f"{RESULTS}/{p[twin]}", layout.WEIGHTS) for p in pairs]
        for twin in ("a", "b")
    }


def oneshot_rounds():
    """The one-shot schedule's rounds at the reference schedule's levels (0 without one)."""
    oneshot = EXPERIMENT.oneshot_reference
    if oneshot is None:
        return 0
    return min(oneshot.rounds, EXPERIMENT.reference_schedule.rounds)


def packed_masks():
    """The masks a replicate's summary keeps (lottery.ticket_analyses.write_replicate_masks): by
    key, the reference schedule's rounds and the one-shot ones at its levels."""
    reference, oneshot = EXPERIMENT.reference_schedule, EXPERIMENT.oneshot_reference
    schedules = [(reference, reference.rounds), (oneshot, oneshot_rounds())]
    return {
        layout.mask_key(s.name, k): (s, k)
        for s, rounds in schedules
        if s is not None
        for k in range(1, rounds + 1)
    }


def replicate_mask_files(wildcards):
    return [
        f"{RESULTS}/{EXPERIMENT.ticket_mask(wildcards.replicate, k, s)}"
        for s, k in packed_masks().values()
    ]


# Pruning at initialisation (workflow/rules/pai.smk, included where pai.methods names methods).
def pai_inputs(wildcards):
    """θ0, and what the network's check or the ticket needs: the reinit control's weights, the
    ticket's mask of that round, and for its inversion the round before it (its weights and mask).
    """
    replicate, level = wildcards.replicate, int(wildcards.level)
    inputs = {"init": layout.init_file(replicate, RESULTS)}
    if wildcards.check == "reinit":
        inputs["reinit"] = layout.reinit_init_file(replicate, 1, RESULTS)
    if wildcards.method == "ticket":
        ticket = layout.ticket_dir(
            replicate, EXPERIMENT.reference_schedule.name, level, RESULTS
        )
        inputs["mask"] = layout.mask_file(ticket)
        if wildcards.check == "inverted":
            previous = (
                layout.dense_dir(replicate, RESULTS)
                if level == 1
                else layout.ticket_dir(
                    replicate, EXPERIMENT.reference_schedule.name, level - 1, RESULTS
                )
            )
            inputs["previous_weights"] = layout.file(previous, layout.WEIGHTS)
            inputs["previous_mask"] = layout.mask_file(previous)
    return inputs


def pai_network_params(wildcards):
    """The network as the runs table names it (lottery.jobs.pai_network)."""
    ticket = Network.ticket(
        EXPERIMENT.reference_schedule, int(wildcards.level), EXPERIMENT.method
    )
    return to_params(ticket)
