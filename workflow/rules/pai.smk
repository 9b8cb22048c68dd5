# Stage 10: pruning at initialisation (pai: ..., config/pai.yaml): each method prunes θ0 once to the
# Pm of a round of the reference schedule and its survivors are trained from θ0; the sanity checks
# (the mask shuffled within layers, θ0 redrawn, the mask inverted) of every method and of the
# iterative ticket. Included where pai.methods names methods (lottery.desc.Pai).
PAI_REFERENCE = EXPERIMENT.reference_schedule


def pai_inputs(wildcards):
    """θ0, and what the network's check or the ticket needs: the reinit control's weights, the
    ticket's mask of that round, and for its inversion the round before it (its weights and mask).
    """
    replicate, level = wildcards.replicate, int(wildcards.level)
    inputs = {"init": layout.init_file(replicate, RESULTS)}
    if wildcards.check == "reinit":
        inputs["reinit"] = layout.reinit_init_file(replicate, 1, RESULTS)
    if wildcards.method == "ticket":
        ticket = layout.ticket_dir(replicate, PAI_REFERENCE.name, level, RESULTS)
        inputs["mask"] = layout.mask_file(ticket)
        if wildcards.check == "inverted":
            previous = (
                layout.dense_dir(replicate, RESULTS)
                if level == 1
                else layout.ticket_dir(
                    replicate, PAI_REFERENCE.name, level - 1, RESULTS
                )
            )
            inputs["previous_weights"] = layout.file(previous, layout.WEIGHTS)
            inputs["previous_mask"] = layout.mask_file(previous)
    return inputs


def pai_network_params(wildcards):
    """The network as the runs table names it (lottery.jobs.pai_network)."""
    ticket = Network.ticket(PAI_REFERENCE, int(wildcards.level), EXPERIMENT.method)
    return to_params(ticket)


PAI_NETWORK = layout.pai_dir("{replicate}", "{method}", "{check}", "{level}", RESULTS)


rule train_pai:
    input:
        unpack(pai_inputs),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **network_outputs(PAI_NETWORK),
        mask=layout.mask_file(PAI_NETWORK),
    log:
        f"{LOGS}/{{replicate}}/pai/{{method}}/{{check}}/level-{{level}}.log",
    benchmark:
        f"{BENCHMARKS}/{{replicate}}/pai/{{method}}/{{check}}/level-{{level}}.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        **MODEL_PARAMS,
        training=lambda wildcards: to_params(
            EXPERIMENT.training_at(int(wildcards.level))
        ),
        replicate=replicate_params,
        network=pai_network_params,
        method=lambda wildcards: wildcards.method,
        check=lambda wildcards: wildcards.check,
    script:
        "../scripts/train_pai.py"
