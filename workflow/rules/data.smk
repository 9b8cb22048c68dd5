# Stage 1: fetch the dataset (on the submit host: compute nodes often have no internet), decode it,
# split it into training and validation sets (checking first that the experiment fits the data).


rule fetch_dataset:
    output:
        **{
            key: f"resources/{DATASET}/raw/{spec['name']}"
            for key, spec in DATA_FILES.items()
        },
    log:
        f"logs/{DATASET}/fetch_dataset.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        files=canonical(DATA_FILES),
        retries=config["data"]["download"]["retries"],
        timeout=config["data"]["download"]["timeout"],
    script:
        "../scripts/fetch_dataset.py"


rule decode_dataset:
    input:
        **rules.fetch_dataset.output,
    output:
        dataset=f"resources/{DATASET}/dataset.safetensors",
    log:
        f"logs/{DATASET}/decode_dataset.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        files=canonical(DATA_FILES),
    script:
        "../scripts/decode_dataset.py"


rule split_dataset:
    input:
        dataset=rules.decode_dataset.output.dataset,
    output:
        split=f"{RESULTS}/data/split.safetensors",
    log:
        f"{LOGS}/split_dataset.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        validation_size=config["data"]["validation_size"],
        seed=config["seeds"]["split"],
        architecture=to_params(EXPERIMENT.architecture),
        batch_size=EXPERIMENT.training.batch_size,
    script:
        "../scripts/split_dataset.py"
