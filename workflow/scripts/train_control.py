"""Snakemake adapter: a control variant of a ticket round (lottery.jobs.train_control; the variants
are lottery.variants.REGISTRY)."""

from lottery.jobs import run_script

run_script("train_control", globals()["snakemake"])
