"""Snakemake adapter: a control variant of a ticket round (lottery.jobs.train_control; the variants
are lottery.variants.REGISTRY), run in the warm worker that keeps PyTorch imported (lottery.worker)
where it can run."""

from lottery.worker import run_job

run_job("train_control", globals()["snakemake"])
