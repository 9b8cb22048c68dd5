"""Snakemake adapter: fetch and verify the dataset's IDX files (lottery.pipeline.fetch_dataset)."""

from lottery.pipeline import fetch_dataset, setup_logging

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
data_config = snakemake.config["data"]
source = data_config["source"]
fetch_dataset(
    outputs=dict(snakemake.output.items()),
    files=snakemake.params.files,
    sources=[source] if source else data_config["mirrors"],
    retries=snakemake.params.retries,
    timeout=snakemake.params.timeout,
)
