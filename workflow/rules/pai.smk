# Stage 10: pruning at initialisation (pai: ..., config/pai.yaml): each method prunes θ0 once to the
# Pm of a round of the reference schedule and its survivors are trained from θ0; the sanity checks
# (the mask shuffled within layers, θ0 redrawn, the mask inverted) of every method and of the
# iterative ticket. Included where pai.methods names methods (lottery.desc.Pai); its helpers
# (pai_inputs, pai_network_params) are in common.smk.
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


# The report's sections of pruning at initialisation (lottery.sections.SECTIONS, rule PAI): from
# runs.csv, and for a section that compares (the ticket's controls) pai.compare's runs table where set
# (another experiment of the same seeds, e.g. paper: results/paper/runs.csv).
PAI_COMPARE = config["pai"].get("compare")


for section in filter(lambda s: s.rule == sections.PAI, sections.SECTIONS):

    rule:
        name:
            section.name
        input:
            **(
                {"compare": f"results/{PAI_COMPARE}/{layout.RUNS_TABLE}"}
                if section.compare and PAI_COMPARE
                else {}
            ),
            runs=rules.collect_runs.output.runs,
        output:
            **section_outputs(section),
        log:
            f"{LOGS}/analysis/{section.name}.log",
        localrule: True
        conda:
            "../envs/lottery.yaml"
        params:
            section=section.name,
            analysis=EXPERIMENT.analysis_params(),
        script:
            "../scripts/pai_section.py"
