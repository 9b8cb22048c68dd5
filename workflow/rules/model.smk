# Stage 2: the original initialisation θ0 of each replicate, its own artifact.


rule initialise:
    output:
        init=f"{RESULTS}/{{replicate}}/init.safetensors",
    log:
        f"{LOGS}/{{replicate}}/initialise.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        architecture=to_params(EXPERIMENT.architecture),
        seed=lambda wildcards: EXPERIMENT.replicates[wildcards.replicate].init_seed,
    script:
        "../scripts/initialise.py"
