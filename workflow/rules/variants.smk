# Stage 5: control variants, each trained with what a ticket round left behind; nothing is trained
# twice. reinit - the ticket's mask, weights drawn afresh (seed init + controls_offset); random - as
# many weights per layer as the ticket, chosen at random among the previous random round's survivors
# (masks need no training, so intermediate random rounds are never trained); rewind - the ticket's
# mask, survivors reset to θk, the dense network after k iterations.


rule initialise_reinit:
    output:
        init=f"{RESULTS}/{{seed}}/reinit-init.safetensors",
    log:
        f"{LOGS}/{{seed}}/initialise_reinit.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        architecture=canonical(config["model"]),
        seed=lambda wildcards: REPLICATES[wildcards.seed].reinit_seed,
    script:
        "../scripts/initialise.py"


rule rewind_point:
    input:
        init=rules.initialise.output.init,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        theta=f"{RESULTS}/{{seed}}/theta-{{iteration}}.safetensors",
    log:
        f"{LOGS}/{{seed}}/rewind_point-{{iteration}}.log",
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        training=training_params,
        replicate=replicate_params,
    script:
        "../scripts/rewind_point.py"


rule train_reinit:
    input:
        init=rules.initialise_reinit.output.init,
        mask=rules.train_ticket.output.mask,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **variant_outputs("reinit"),
    log:
        f"{LOGS}/{{seed}}/{{schedule}}/reinit/round-{{round}}.log",
    benchmark:
        f"{BENCHMARKS}/{{seed}}/{{schedule}}/reinit/round-{{round}}.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        training=training_params,
        replicate=replicate_params,
        schedule=schedule_params,
        method=config["pruning"]["method"],
        variant="reinit",
    script:
        "../scripts/train_control.py"


rule train_random:
    input:
        ticket_masks=ticket_masks_up_to_round,
        init=rules.initialise.output.init,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **variant_outputs("random"),
        mask=f"{RESULTS}/{{seed}}/{{schedule}}/random/round-{{round}}/mask.safetensors",
    log:
        f"{LOGS}/{{seed}}/{{schedule}}/random/round-{{round}}.log",
    benchmark:
        f"{BENCHMARKS}/{{seed}}/{{schedule}}/random/round-{{round}}.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        training=training_params,
        replicate=replicate_params,
        schedule=schedule_params,
        method=config["pruning"]["method"],
    script:
        "../scripts/train_random.py"


rule train_rewind:
    input:
        init=rules.rewind_point.output.theta,
        mask=rules.train_ticket.output.mask,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **variant_outputs("rewind-{iteration}"),
    log:
        f"{LOGS}/{{seed}}/{{schedule}}/rewind-{{iteration}}/round-{{round}}.log",
    benchmark:
        f"{BENCHMARKS}/{{seed}}/{{schedule}}/rewind-{{iteration}}/round-{{round}}.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        training=training_params,
        replicate=replicate_params,
        schedule=schedule_params,
        method=config["pruning"]["method"],
        variant="rewind",
    script:
        "../scripts/train_control.py"
