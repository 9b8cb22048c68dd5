# Stage 6: each replicate summarised in small files that are committed (seed-<s>/summary/: its runs
# table and provenance here, its test curves and what the ticket analyses read in stages 8 and 9),
# its record (lottery.record: what made it, a digest of each file), and the experiment's runs table
# from them. Checkpoints need not be kept: where a replicate's
# summary is present, Snakemake has nothing to redo for it, so adding a seed trains only that seed.


rule replicate_runs:
    input:
        metrics=replicate_networks,
    output:
        runs=f"{SUMMARY}/{layout.RUNS}",
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
        provenance=f"{SUMMARY}/{layout.PROVENANCE}",
    log:
        f"{LOGS}/{{replicate}}/replicate_provenance.log",
    wildcard_constraints:
        replicate=UNRECORDED,
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/replicate_provenance.py"


rule replicate_record:
    input:
        files=[f"{SUMMARY}/{name}" for name in SUMMARY_FILES],
    output:
        record=f"{SUMMARY}/{record.RECORD}",
    log:
        f"{LOGS}/{{replicate}}/replicate_record.log",
    wildcard_constraints:
        replicate=UNRECORDED,
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        replicate=lambda wildcards: wildcards.replicate,
        description=lambda wildcards: record_description(wildcards.replicate),
        networks=lambda wildcards: len(EXPERIMENT.network_dirs(wildcards.replicate)),
    script:
        "../scripts/replicate_record.py"


rule collect_runs:
    input:
        runs=replicate_summaries(layout.RUNS),
        records=replicate_summaries(record.RECORD),
    output:
        runs=f"{RESULTS}/{layout.RUNS_TABLE}",
    log:
        f"{LOGS}/collect_runs.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/concatenate_runs.py"
