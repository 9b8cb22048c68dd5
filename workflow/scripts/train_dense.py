"""Snakemake adapter: round 0, the dense network trained from θ0 (lottery.jobs.train_dense)."""

from lottery.jobs import run_script

run_script("train_dense", globals()["snakemake"])
