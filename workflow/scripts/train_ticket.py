"""Snakemake adapter: one pruning round - prune round k-1's network, rewind to θ0, train
(lottery.pipeline.train_ticket_round). PyTorch is pinned to the job's ``threads``."""

import torch

from lottery.experiment import Replicate, training_hparams
from lottery.pipeline import setup_logging, train_ticket_round

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train_ticket_round(
    previous_weights=snakemake.input.previous_weights,
    previous_mask=snakemake.input.previous_mask,
    init=snakemake.input.init,
    dataset=snakemake.input.dataset,
    split=snakemake.input.split,
    schedule=snakemake.params.schedule,
    round_=int(snakemake.wildcards.round),
    method=snakemake.params.method,
    hparams=training_hparams({"training": snakemake.params.training}),
    replicate=Replicate(**snakemake.params.replicate),
    outputs=dict(snakemake.output.items()),
)
