"""Snakemake adapter: fetch and verify the dataset's IDX files (lottery.jobs.fetch_dataset)."""

from lottery.jobs import run_script

snakemake = globals()["snakemake"]
data = snakemake.config["data"]
# config, not params: where the files come from does not change them (they are verified)
run_script("fetch_dataset", snakemake, sources=[data["source"]] if data["source"] else data["mirrors"])
