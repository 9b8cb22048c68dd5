"""Snakemake adapter: the training/validation split (lottery.jobs.split_dataset)."""

from lottery.jobs import run_script

run_script("split_dataset", globals()["snakemake"])
