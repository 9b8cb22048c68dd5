"""Snakemake adapter: a replicate's runs table from its networks' metrics (lottery.jobs.collect_runs)."""

from lottery.jobs import run_script

run_script("collect_runs", globals()["snakemake"])
