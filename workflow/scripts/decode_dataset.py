"""Snakemake adapter: decode the dataset's files into one tensor file (lottery.jobs.decode_dataset)."""

from lottery.jobs import run_script

snakemake = globals()["snakemake"]
# config, not params: the dataset's name is in the output's path already (resources/<data.name>/)
run_script("decode_dataset", snakemake, dataset=snakemake.config["data"]["name"])
