"""Snakemake adapter: a replicate's test curves (lottery.jobs.replicate_test_curves)."""

from lottery.jobs import run_script

run_script("replicate_test_curves", globals()["snakemake"])
