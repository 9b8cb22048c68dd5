# Stage 4: pruning rounds. Round k's mask comes from round k-1's trained weights and mask; the
# survivors are rewound to θ0 and trained again. Each round is its own directory.


rule prune_ticket:
    input:
        unpack(previous_round),
    output:
        mask=f"{RESULTS}/{{seed}}/{{schedule}}/ticket/round-{{round}}/mask.safetensors",
    log:
        f"{LOGS}/{{seed}}/{{schedule}}/ticket/round-{{round}}/prune.log",
    conda:
        "../envs/lottery.yaml"
    params:
        schedule=schedule_params,
        method=config["pruning"]["method"],
    script:
        "../scripts/prune.py"


rule train_ticket:
    input:
        init=rules.initialise.output.init,
        mask=rules.prune_ticket.output.mask,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        weights=f"{RESULTS}/{{seed}}/{{schedule}}/ticket/round-{{round}}/final.safetensors",
        metrics=f"{RESULTS}/{{seed}}/{{schedule}}/ticket/round-{{round}}/metrics.json",
        curve=f"{RESULTS}/{{seed}}/{{schedule}}/ticket/round-{{round}}/curve.csv",
    log:
        f"{LOGS}/{{seed}}/{{schedule}}/ticket/round-{{round}}/train.log",
    benchmark:
        f"{BENCHMARKS}/{{seed}}/{{schedule}}/ticket/round-{{round}}.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    params:
        training=canonical(config["training"]),
        replicate=replicate_params,
        schedule=schedule_params,
        method=config["pruning"]["method"],
    script:
        "../scripts/train_network.py"
