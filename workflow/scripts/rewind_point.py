"""Snakemake adapter: θk, the dense network after k iterations (lottery.jobs.train_rewind_point)."""

from lottery.jobs import run_script

run_script("rewind_point", globals()["snakemake"])
