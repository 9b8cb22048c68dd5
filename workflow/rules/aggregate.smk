# Stage 6: one table of every trained network.


rule collect_runs:
    input:
        metrics=metrics_files(
            EXPERIMENT.dense_dirs()
            + EXPERIMENT.ticket_dirs()
            + EXPERIMENT.control_dirs()
        ),
    output:
        runs=f"{RESULTS}/runs.csv",
    log:
        f"{LOGS}/collect_runs.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        experiment=EXPERIMENT.name,
    script:
        "../scripts/collect_runs.py"
