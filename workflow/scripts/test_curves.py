"""Snakemake adapter: the paper's test-curve figure from the networks' curves
(lottery.report.write_test_curves)."""

from lottery.logs import setup_logging
from lottery.report import write_test_curves

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
write_test_curves(
    list(zip(snakemake.input.metrics, snakemake.input.curves, strict=True)),
    dict(snakemake.output.items()),
)
