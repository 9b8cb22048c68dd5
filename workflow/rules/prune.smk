# Stage 4: pruning rounds. Round k's mask comes from round k-1's trained weights and mask; the
# survivors are rewound to θ0 and trained again. Each round is its own directory. Pruning and
# training share one job: the mask takes milliseconds, a job's start takes seconds.


rule train_ticket:
    input:
        unpack(previous_round),
        init=rules.initialise.output.init,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **network_outputs(
            f"{RESULTS}/{{replicate}}/{{schedule}}/ticket/round-{{round}}"
        ),
        mask=f"{RESULTS}/{{replicate}}/{{schedule}}/ticket/round-{{round}}/mask.safetensors",
    log:
        f"{LOGS}/{{replicate}}/{{schedule}}/ticket/round-{{round}}.log",
    benchmark:
        f"{BENCHMARKS}/{{replicate}}/{{schedule}}/ticket/round-{{round}}.tsv"
    # The iterative rounds are a chain (round k needs round k-1): run them first, so that the
    # controls and one-shot levels fill the other cores instead of waiting for the chain at the end.
    priority: 10
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
    script:
        "../scripts/train_ticket.py"
