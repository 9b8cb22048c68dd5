"""Snakemake adapter: decode the IDX files into one tensor file (lottery.pipeline.decode_dataset)."""

from lottery.pipeline import decode_dataset, setup_logging

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
decode_dataset(dict(snakemake.input.items()), snakemake.output.dataset)
