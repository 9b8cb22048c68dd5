"""Snakemake adapter: round 0, the dense network trained from θ0 (lottery.pipeline.train_network).

PyTorch is pinned to the job's ``threads`` so that ``--cores N`` runs N jobs side by side without
oversubscribing the CPU.
"""

import torch

from lottery.experiment import Replicate, training_hparams
from lottery.pipeline import DENSE, setup_logging, train_network

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
train_network(
    init=snakemake.input.init,
    mask=None,
    dataset=snakemake.input.dataset,
    split=snakemake.input.split,
    hparams=training_hparams({"training": snakemake.params.training}),
    replicate=Replicate(**snakemake.params.replicate),
    identity=DENSE,
    outputs=dict(snakemake.output.items()),
)
