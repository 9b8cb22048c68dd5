"""Snakemake adapter: the random-pruning control of a ticket round (lottery.pipeline.train_random_round).
PyTorch is pinned to the job's ``threads``."""

import torch

from lottery.experiment import Replicate, training_hparams
from lottery.pipeline import setup_logging, train_random_round

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train_random_round(
    ticket_masks=list(snakemake.input.ticket_masks),
    init=snakemake.input.init,
    dataset=snakemake.input.dataset,
    split=snakemake.input.split,
    schedule=snakemake.params.schedule,
    method=snakemake.params.method,
    hparams=training_hparams({"training": snakemake.params.training}),
    replicate=Replicate(**snakemake.params.replicate),
    outputs=dict(snakemake.output.items()),
)
