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
        architecture=canonical(config["model"]),
        seed=lambda wildcards: REPLICATES[wildcards.seed].init_seed,
    script:
        "../scripts/initialise.py"
