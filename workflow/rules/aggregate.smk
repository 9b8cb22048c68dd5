# Stage 6: each replicate summarised in small files that are committed (seed-<s>/summary/: its runs
# table and provenance here, its test curves and what the ticket analyses read in stages 8 and 9),
# and the experiment's runs table from them. Checkpoints need not be kept: where a replicate's
# summary is present, Snakemake has nothing to redo for it, so adding a seed trains only that seed.


rule replicate_runs:
    input:
        metrics=replicate_networks,
    output:
        runs=f"{SUMMARY}/runs.csv",
    log:
        f"{LOGS}/{{replicate}}/replicate_runs.log",
    wildcard_constraints:
        replicate=UNRECORDED,
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        experiment=EXPERIMENT.name,
    script:
        "../scripts/collect_runs.py"


rule replicate_provenance:
    input:
        provenance=replicate_provenance_files,
    output:
        provenance=f"{SUMMARY}/provenance.json",
    log:
        f"{LOGS}/{{replicate}}/replicate_provenance.log",
    wildcard_constraints:
        replicate=UNRECORDED,
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/replicate_provenance.py"


rule collect_runs:
    input:
        runs=replicate_summaries("runs.csv"),
    output:
        runs=f"{RESULTS}/runs.csv",
    log:
        f"{LOGS}/collect_runs.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/concatenate_runs.py"
