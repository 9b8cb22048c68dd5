"""Snakemake adapter: round 0, the dense network trained from θ0 (lottery.jobs.train_dense),
run in the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("train_dense", globals()["snakemake"])
