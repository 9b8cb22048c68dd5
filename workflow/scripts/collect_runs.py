"""Snakemake adapter: the runs table (lottery.pipeline.collect_runs)."""

from lottery.pipeline import collect_runs, setup_logging

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
collect_runs(snakemake.input.metrics, snakemake.params.experiment, snakemake.output.runs)
