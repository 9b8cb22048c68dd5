"""Snakemake adapter: the runs table from every network's metrics (lottery.jobs.collect_runs)."""

from lottery.jobs import run_script

run_script("collect_runs", globals()["snakemake"])
