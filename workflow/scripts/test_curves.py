"""Snakemake adapter: the paper's test-curve figure from the replicates' test curves
(lottery.report.write_test_curves)."""

from lottery.logs import setup_logging
from lottery.record import verify_inputs
from lottery.report import write_test_curves

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
verify_inputs(snakemake.input)
write_test_curves(list(snakemake.input.curves), dict(snakemake.output.items()))
