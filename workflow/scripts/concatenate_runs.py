"""Snakemake adapter: the experiment's runs table from its replicates' (lottery.jobs.concatenate_runs)."""

from lottery.jobs import run_script

run_script("concatenate_runs", globals()["snakemake"])
