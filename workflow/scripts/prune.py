"""Snakemake adapter: round k's mask from round k-1 (lottery.pipeline.prune)."""

from lottery.pipeline import prune, setup_logging
from lottery.pruning import Schedule

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
s = snakemake.params.schedule
prune(
    weights=snakemake.input.weights,
    previous_mask=snakemake.input.mask,
    schedule=Schedule(s["rate"], int(snakemake.wildcards.round), s["output_rate_factor"], s["ratio"]),
    round_=int(snakemake.wildcards.round),
    method=snakemake.params.method,
    out=snakemake.output.mask,
)
