"""Snakemake adapter: the paper's test-curve figure from the replicates' test curves
(lottery.report.write_test_curves)."""

from lottery.logs import setup_logging
from lottery.report import write_test_curves

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
write_test_curves(list(snakemake.input.curves), dict(snakemake.output.items()))
