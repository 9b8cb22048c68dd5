# Stage 8 (analysis.paper: true): the paper's results checked claim by claim and its test-curve
# figure, from each replicate's test curves (kept in its summary): the sections claims and
# test_curves of lottery.sections.SECTIONS; its iterative vs one-shot comparison is the oneshot
# section of analysis.smk. Small jobs: they run on the submit host.


rule claims:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        **section_outputs(sections.BY_NAME["claims"]),
        markdown=f"{ANALYSIS}/claims.md",
    log:
        f"{LOGS}/analysis/claims.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        analysis=EXPERIMENT.analysis_params(),
    script:
        "../scripts/claims.py"


rule replicate_test_curves:
    input:
        unpack(test_curve_networks),
    output:
        curves=f"{SUMMARY}/{layout.TEST_CURVES}",
    log:
        f"{LOGS}/{{replicate}}/replicate_test_curves.log",
    wildcard_constraints:
        replicate=UNRECORDED,
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/replicate_test_curves.py"


rule test_curves:
    input:
        curves=replicate_summaries(layout.TEST_CURVES),
        records=replicate_summaries(record.RECORD),
    output:
        **section_outputs(sections.BY_NAME["test_curves"]),
    log:
        f"{LOGS}/analysis/test_curves.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/test_curves.py"
