"""Snakemake adapter: decode the IDX files into one tensor file (lottery.jobs.decode_dataset),
run in the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

run_job("decode_dataset", globals()["snakemake"])
