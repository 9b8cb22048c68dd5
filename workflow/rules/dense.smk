# Stage 3: round 0, the dense network trained from θ0.


rule train_dense:
    input:
        init=rules.initialise.output.init,
        dataset=rules.decode_dataset.output.dataset,
        split=rules.split_dataset.output.split,
    output:
        **network_outputs(f"{RESULTS}/{{replicate}}/dense"),
        mask=f"{RESULTS}/{{replicate}}/dense/mask.safetensors",
    log:
        f"{LOGS}/{{replicate}}/train_dense.log",
    benchmark:
        f"{BENCHMARKS}/{{replicate}}/train_dense.tsv"
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
        "../scripts/train_dense.py"
