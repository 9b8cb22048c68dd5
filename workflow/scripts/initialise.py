"""Snakemake adapter: write θ0 or the reinit control's weights (lottery.jobs.initialise),
run in the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("initialise", globals()["snakemake"])
