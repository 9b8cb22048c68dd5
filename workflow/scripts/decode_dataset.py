"""Snakemake adapter: decode the IDX files into one tensor file (lottery.jobs.decode_dataset)."""

from lottery.jobs import run_script

run_script("decode_dataset", globals()["snakemake"])
