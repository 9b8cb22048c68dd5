"""Snakemake adapter: write θ0 or the reinit control's weights (lottery.jobs.initialise)."""

from lottery.jobs import run_script

run_script("initialise", globals()["snakemake"])
