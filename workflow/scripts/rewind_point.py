"""Snakemake adapter: θk, the dense network after k iterations (lottery.jobs.train_rewind_point),
run in the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("rewind_point", globals()["snakemake"])
