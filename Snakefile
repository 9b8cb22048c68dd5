# The Lottery Ticket Hypothesis on MNIST (Frankle & Carbin, ICLR 2019) as a Snakemake workflow.
# Stages, in order: workflow/rules/{data,model,dense,prune,variants,aggregate,analysis,paper,
# ticket_analyses}.smk.
# The experiment's knobs: config/README.md.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/dense.smk"
include: "workflow/rules/prune.smk"
include: "workflow/rules/variants.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/paper.smk"


if EXPERIMENT.reference_schedule is not None:

    include: "workflow/rules/ticket_analyses.smk"


if EXPERIMENT.pai.methods:

    include: "workflow/rules/pai.smk"


rule all:
    default_target: True
    input:
        all_outputs(),
