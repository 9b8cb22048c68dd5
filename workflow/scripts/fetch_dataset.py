"""Snakemake adapter: fetch and verify the dataset's files (lottery.jobs.fetch_dataset)."""

from lottery.datasets import resolve
from lottery.jobs import run_script

snakemake = globals()["snakemake"]
data = resolve(snakemake.config["data"])  # mirrors null: the dataset's official ones
# config, not params: where the files come from does not change them (they are verified)
run_script("fetch_dataset", snakemake, sources=[data["source"]] if data["source"] else data["mirrors"])
