"""Snakemake adapter: write θ0 (lottery.pipeline.initialise)."""

from lottery.experiment import architecture
from lottery.pipeline import initialise, setup_logging

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
initialise(
    architecture({"model": snakemake.params.architecture}),
    seed=snakemake.params.seed,
    out=snakemake.output.init,
)
