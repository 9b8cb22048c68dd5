# Stage 5: control variants, each trained with what a ticket round left behind; nothing is trained
# twice. One rule train_<name> per entry of the registry lottery.variants.REGISTRY (its inputs, its
# folder, how its network is made); the two rules below make the weights some of them start from.


rule initialise_reinit:
    output:
        init=variants.reinit_init_file(f"{RESULTS}/{{replicate}}", 1),
    log:
        f"{LOGS}/{{replicate}}/initialise_reinit.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        architecture=to_params(EXPERIMENT.architecture),
        seed=lambda wildcards: EXPERIMENT.replicates[wildcards.replicate].reinit_seed,
    script:
        "../scripts/initialise.py"


use rule initialise_reinit as initialise_reinit_draw with:
    output:
        init=variants.reinit_init_file(f"{RESULTS}/{{replicate}}", "{draw}"),
    log:
        f"{LOGS}/{{replicate}}/initialise_reinit-draw-{{draw}}.log",
    params:
        architecture=to_params(EXPERIMENT.architecture),
        seed=lambda wildcards: EXPERIMENT.replicates[
            wildcards.replicate
        ].reinit_draw_seed(int(wildcards.draw)),


rule rewind_point:
    input:
        init=rules.initialise.output.init,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        theta=f"{RESULTS}/{{replicate}}/theta-{{iteration}}.safetensors",
    log:
        f"{LOGS}/{{replicate}}/rewind_point-{{iteration}}.log",
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        **MODEL_PARAMS,
        training=training_params,
        replicate=replicate_params,
    script:
        "../scripts/rewind_point.py"


# A drawn variant (variants.draws) has a second rule, train_<name>_draw, for its draws 2, 3, ...
# (folder <name>-draw-{draw}); the first draw keeps the variant's own folder.
for variant, directory in control_rules():

    rule:
        name:
            f"train_{variant.name}"
            + ("_draw" if directory != variant.directory else "")
        input:
            unpack(control_inputs(variant)),
            dataset=rules.decode_dataset.output.dataset,
            split=rules.split_dataset.output.split,
        output:
            **control_outputs(variant, directory),
        log:
            f"{LOGS}/{{replicate}}/{{schedule}}/{directory}/round-{{round}}.log",
        benchmark:
            f"{BENCHMARKS}/{{replicate}}/{{schedule}}/{directory}/round-{{round}}.tsv"
        conda:
            "../envs/lottery.yaml"
        threads: 1
        resources:
            runtime=training_runtime,
            mem_mb=training_mem_mb,
        params:
            **MODEL_PARAMS,
            training=training_params,
            replicate=replicate_params,
            network=ticket_params,
            variant=variant.name,
        script:
            "../scripts/train_control.py"
