"""Snakemake adapter: train a control variant - reinit, random or rewind - of a ticket round
(lottery.pipeline.train_network). PyTorch is pinned to the job's ``threads``."""

import torch

from lottery.experiment import Replicate, training_hparams
from lottery.pipeline import setup_logging, train_network, variant_identity

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
replicate = Replicate(**snakemake.params.replicate)
rewind_iteration = int(snakemake.wildcards.get("iteration", 0))
train_network(
    init=snakemake.input.init,
    mask=snakemake.input.mask,
    dataset=snakemake.input.dataset,
    split=snakemake.input.split,
    hparams=training_hparams({"training": snakemake.params.training}),
    replicate=replicate,
    identity=variant_identity(
        snakemake.params.schedule,
        int(snakemake.wildcards.round),
        snakemake.params.method,
        snakemake.params.variant,
        replicate,
        rewind_iteration or None,
    ),
    outputs=dict(snakemake.output.items()),
    start_iteration=rewind_iteration,
)
