"""Snakemake adapter: the training/validation split (lottery.jobs.split_dataset), run in the warm worker
that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("split_dataset", globals()["snakemake"])
