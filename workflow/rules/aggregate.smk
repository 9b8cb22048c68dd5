# Stage 5: one table of every trained network.


rule collect_runs:
    input:
        metrics=dense_metrics() + ticket_metrics() + control_metrics(),
    output:
        runs=f"{RESULTS}/runs.csv",
    log:
        f"{LOGS}/collect_runs.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        experiment=EXPERIMENT,
    script:
        "../scripts/collect_runs.py"
