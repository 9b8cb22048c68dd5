"""Snakemake adapter: the random-pruning control of a ticket round (lottery.jobs.train_random),
run in the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("train_random", globals()["snakemake"])
