"""Snakemake adapter: seeded train/validation split (lottery.pipeline.split_dataset)."""

from lottery.pipeline import setup_logging, split_dataset

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
split_dataset(
    snakemake.input.dataset,
    validation_size=snakemake.params.validation_size,
    seed=snakemake.params.seed,
    out=snakemake.output.split,
)
