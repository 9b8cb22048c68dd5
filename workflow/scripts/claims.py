"""Snakemake adapter: the paper's claims checked on runs.csv (lottery.report.write_claims)."""

from lottery.logs import setup_logging
from lottery.report import write_claims

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
write_claims(snakemake.input.runs, dict(snakemake.output.items()), snakemake.params.analysis)
