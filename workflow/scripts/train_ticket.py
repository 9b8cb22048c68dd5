"""Snakemake adapter: one pruning round - prune round k-1's network, rewind to θ0, train
(lottery.jobs.train_ticket)."""

from lottery.jobs import run_script

run_script("train_ticket", globals()["snakemake"])
