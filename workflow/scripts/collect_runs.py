"""Snakemake adapter: the runs table from every network's metrics (lottery.jobs.collect_runs),
run in the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("collect_runs", globals()["snakemake"])
