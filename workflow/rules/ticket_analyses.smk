# Stage 9: what the tickets are (lottery.ticket_analyses; each an analysis.<name>.enabled switch):
# instability (the only one that trains networks: a second copy of each tested network, and a first
# where the experiment has none), supermasks, mask overlap and the pixel map, read from the masks,
# θ0 and weights of the iterative fixed-rate schedule (Experiment.reference_schedule; this file is
# included where the experiment has one).
REFERENCE_ROUNDS = range(1, EXPERIMENT.reference_schedule.rounds + 1)
WILDCARDS = ("{replicate}", "{variant}", "{level}", "{iteration}", "{twin}")
INSTABILITY_COPY = f"{RESULTS}/{EXPERIMENT.instability_dir(*WILDCARDS)}"


rule train_instability_copy:
    input:
        unpack(instability_copy_inputs),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **network_outputs(INSTABILITY_COPY),
    log:
        f"{LOGS}/{{replicate}}/instability/{{variant}}/k-{{iteration}}/round-{{level}}/copy-{{twin}}.log",
    benchmark:
        f"{BENCHMARKS}/{{replicate}}/instability/{{variant}}/k-{{iteration}}/round-{{level}}/copy-{{twin}}.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    resources:
        runtime=training_runtime,
        mem_mb=training_mem_mb,
    params:
        training=to_params(EXPERIMENT.instability_training()),
        replicate=replicate_params,
        network=instability_network,
        variant=lambda wildcards: wildcards.variant,
        twin=lambda wildcards: wildcards.twin,
        iteration=lambda wildcards: int(wildcards.iteration),
    script:
        "../scripts/train_instability_copy.py"


rule instability:
    input:
        unpack(instability_inputs),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **section_outputs(sections.BY_NAME["instability"]),
        path=f"{ANALYSIS}/instability_path.csv",
    log:
        f"{LOGS}/analysis/instability.log",
    benchmark:
        f"{BENCHMARKS}/analysis/instability.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    params:
        pairs=[
            {key: p[key] for key in ("replicate", "variant", "round", "k")}
            for p in EXPERIMENT.instability_pairs()
        ],
        points=EXPERIMENT.instability.points,
    script:
        "../scripts/ticket_analysis.py"


rule supermasks:
    input:
        inits=[f"{RESULTS}/{r}/init.safetensors" for r in EXPERIMENT.replicates],
        masks=reference_masks(REFERENCE_ROUNDS),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **section_outputs(sections.BY_NAME["supermasks"]),
    log:
        f"{LOGS}/analysis/supermasks.log",
    benchmark:
        f"{BENCHMARKS}/analysis/supermasks.tsv"
    conda:
        "../envs/lottery.yaml"
    threads: 1
    params:
        replicates=[to_params(r) for r in EXPERIMENT.replicates.values()],
    script:
        "../scripts/ticket_analysis.py"


rule mask_overlap:
    input:
        iterative=reference_masks(REFERENCE_ROUNDS),
        oneshot=oneshot_masks(),
    output:
        **section_outputs(sections.BY_NAME["mask_overlap"]),
    log:
        f"{LOGS}/analysis/mask_overlap.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        replicates=list(EXPERIMENT.replicates),
        rounds=len(REFERENCE_ROUNDS),
    script:
        "../scripts/ticket_analysis.py"


rule pixel_map:
    input:
        masks=reference_masks(EXPERIMENT.pixel_map.rounds),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **section_outputs(sections.BY_NAME["pixel_map"]),
    log:
        f"{LOGS}/analysis/pixel_map.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        replicates=list(EXPERIMENT.replicates),
        rounds=list(EXPERIMENT.pixel_map.rounds),
    script:
        "../scripts/ticket_analysis.py"
