"""Snakemake adapter: the Markdown summary of the report's tables (lottery.report.write_summary)."""

from lottery.pipeline import setup_logging
from lottery.report import write_summary

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
write_summary(
    dict(snakemake.input.items()),
    snakemake.params.experiment,
    snakemake.params.max_ratio,
    snakemake.output.summary,
)
