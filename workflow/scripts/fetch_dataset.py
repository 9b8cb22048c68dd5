"""Snakemake adapter: fetch and verify the dataset's IDX files (lottery.jobs.fetch_dataset), run in
the warm worker that keeps PyTorch imported (lottery.worker) where it can run."""

from lottery.worker import run_job

snakemake = globals()["snakemake"]
data = snakemake.config["data"]
# config, not params: where the files come from does not change them (they are verified)
run_job("fetch_dataset", snakemake, sources=[data["source"]] if data["source"] else data["mirrors"])
