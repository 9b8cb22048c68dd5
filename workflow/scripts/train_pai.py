"""Snakemake adapter: a network of pruning at initialisation or a sanity check
(lottery.jobs.train_pai)."""

from lottery.jobs import run_script

run_script("train_pai", globals()["snakemake"])
