"""Snakemake adapter: a replicate's record.json, what made its summary (lottery.jobs.replicate_record)."""

from lottery.jobs import run_script

run_script("replicate_record", globals()["snakemake"])
