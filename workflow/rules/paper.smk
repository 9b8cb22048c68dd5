# Stage 8 (analysis.paper: true): the paper's results checked claim by claim and its test-curve
# figure (its iterative vs one-shot comparison is the oneshot section of analysis.smk). Small jobs:
# they run on the submit host.


rule claims:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/claims.csv",
            caption="../report/claims.rst",
            category="7. The paper's claims",
        ),
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


rule test_curves:
    input:
        **test_curve_networks(),
    output:
        table=f"{ANALYSIS}/test_curves.csv",
        png=report(
            f"{FIGURES}/test_curves.png",
            caption="../report/test_curves.rst",
            category="7. The paper's claims",
        ),
        svg=f"{FIGURES}/test_curves.svg",
    log:
        f"{LOGS}/analysis/test_curves.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/test_curves.py"
