"""Snakemake adapter: one section of the report - its table and figure (lottery.report.write_section)."""

from lottery.logs import setup_logging
from lottery.report import write_section

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
write_section(
    snakemake.params.section,
    snakemake.input.runs,
    dict(snakemake.output.items()),
    snakemake.params.analysis,
)
