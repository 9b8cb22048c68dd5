"""Snakemake adapter: one pruning round - prune round k-1's network, rewind to θ0, train
(lottery.jobs.train_ticket), run in the warm worker that keeps PyTorch imported (lottery.worker)
where it can run."""

from lottery.worker import run_job

run_job("train_ticket", globals()["snakemake"])
