"""Snakemake adapter: one copy of a network for the instability analysis
(lottery.jobs.train_instability_copy)."""

from lottery.jobs import run_script

run_script("train_instability_copy", globals()["snakemake"])
