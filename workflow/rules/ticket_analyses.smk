# Stage 9: what the tickets are (lottery.ticket_analyses; each an analysis.<name>.enabled switch):
# instability (the only one that trains networks: a second copy of each tested network, and a first
# where the experiment has none), supermasks, mask overlap and the pixel map, read from the masks,
# θ0 and weights of the iterative fixed-rate schedule (Experiment.reference_schedule; this file is
# included where the experiment has one). Each in two steps: a replicate's part into its summary
# (replicate_*: tables, and its masks packed one bit a weight), the experiment's from those.
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
        **MODEL_PARAMS,
        training=to_params(EXPERIMENT.instability_training()),
        replicate=replicate_params,
        network=instability_network,
        variant=lambda wildcards: wildcards.variant,
        twin=lambda wildcards: wildcards.twin,
        iteration=lambda wildcards: int(wildcards.iteration),
    script:
        "../scripts/train_instability_copy.py"


rule replicate_instability:
    input:
        unpack(instability_inputs),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        table=f"{SUMMARY}/{layout.INSTABILITY}",
        path=f"{SUMMARY}/{layout.INSTABILITY_PATH}",
    log:
        f"{LOGS}/{{replicate}}/replicate_instability.log",
    benchmark:
        f"{BENCHMARKS}/{{replicate}}/replicate_instability.tsv"
    wildcard_constraints:
        replicate=UNRECORDED,
    conda:
        "../envs/lottery.yaml"
    threads: 1
    params:
        pairs=lambda wildcards: [
            {key: p[key] for key in ("replicate", "variant", "round", "k")}
            for p in replicate_pairs(wildcards)
        ],
        points=EXPERIMENT.instability.points,
    script:
        "../scripts/ticket_analysis.py"


rule instability:
    input:
        tables=replicate_summaries(layout.INSTABILITY),
        paths=replicate_summaries(layout.INSTABILITY_PATH),
        records=replicate_summaries(record.RECORD),
    output:
        **section_outputs(sections.BY_NAME["instability"]),
        path=f"{ANALYSIS}/{layout.INSTABILITY_PATH}",
    log:
        f"{LOGS}/analysis/instability.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/ticket_analysis.py"


rule replicate_supermasks:
    input:
        init=rules.initialise.output.init,
        masks=lambda wildcards: reference_masks(REFERENCE_ROUNDS, [wildcards.replicate]),
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        table=f"{SUMMARY}/{layout.SUPERMASKS}",
    log:
        f"{LOGS}/{{replicate}}/replicate_supermasks.log",
    benchmark:
        f"{BENCHMARKS}/{{replicate}}/replicate_supermasks.tsv"
    wildcard_constraints:
        replicate=UNRECORDED,
    conda:
        "../envs/lottery.yaml"
    threads: 1
    params:
        replicate=replicate_params,
    script:
        "../scripts/ticket_analysis.py"


rule supermasks:
    input:
        tables=replicate_summaries(layout.SUPERMASKS),
        records=replicate_summaries(record.RECORD),
    output:
        **section_outputs(sections.BY_NAME["supermasks"]),
    log:
        f"{LOGS}/analysis/supermasks.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    script:
        "../scripts/ticket_analysis.py"


rule replicate_masks:
    input:
        masks=replicate_mask_files,
    output:
        masks=f"{SUMMARY}/{layout.MASKS}",
    log:
        f"{LOGS}/{{replicate}}/replicate_masks.log",
    wildcard_constraints:
        replicate=UNRECORDED,
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        mask_keys=list(packed_masks()),
    script:
        "../scripts/ticket_analysis.py"


rule mask_overlap:
    input:
        bundles=replicate_summaries(layout.MASKS),
        records=replicate_summaries(record.RECORD),
    output:
        **section_outputs(sections.BY_NAME["mask_overlap"]),
    log:
        f"{LOGS}/analysis/mask_overlap.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        replicates=list(EXPERIMENT.replicates),
        reference=EXPERIMENT.reference_schedule.name,
        oneshot=getattr(EXPERIMENT.oneshot_reference, "name", None),
        rounds=len(REFERENCE_ROUNDS),
        oneshot_rounds=oneshot_rounds(),
    script:
        "../scripts/ticket_analysis.py"


rule pixel_map:
    input:
        bundles=replicate_summaries(layout.MASKS),
        records=replicate_summaries(record.RECORD),
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
        reference=EXPERIMENT.reference_schedule.name,
        rounds=list(EXPERIMENT.pixel_map.rounds),
    script:
        "../scripts/ticket_analysis.py"
