"""Snakemake adapter: θk, the dense network after k iterations (lottery.pipeline.rewind_point)."""

import torch

from lottery.experiment import Replicate, training_hparams
from lottery.pipeline import rewind_point, setup_logging

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
rewind_point(
    init=snakemake.input.init,
    dataset=snakemake.input.dataset,
    split=snakemake.input.split,
    hparams=training_hparams({"training": snakemake.params.training}),
    replicate=Replicate(**snakemake.params.replicate),
    iteration=int(snakemake.wildcards.iteration),
    out=snakemake.output.theta,
)
