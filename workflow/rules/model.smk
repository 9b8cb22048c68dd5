# Stage 2: the original initialisation θ0 of each replicate, its own artifact.


rule initialise:
    output:
        init=f"{RESULTS}/{{seed}}/init.safetensors",
    log:
        f"{LOGS}/{{seed}}/initialise.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        architecture=to_params(EXPERIMENT.architecture),
        seed=lambda wildcards: EXPERIMENT.replicates[wildcards.seed].init_seed,
    script:
        "../scripts/initialise.py"
