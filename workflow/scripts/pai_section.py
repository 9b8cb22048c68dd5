"""Snakemake adapter: a section of pruning at initialisation - its table and figure
(lottery.report.pai.write_pai_section), with pai.compare's runs table where set."""

from lottery.logs import setup_logging
from lottery.report.pai import write_pai_section

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
write_pai_section(
    snakemake.params.section,
    snakemake.input.runs,
    dict(snakemake.output.items()),
    snakemake.params.analysis,
    compare=snakemake.input.get("compare"),
)
