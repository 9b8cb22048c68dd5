"""Snakemake adapter: the Markdown summary of the report's tables (lottery.report.write_summary)."""

from lottery.logs import setup_logging
from lottery.record import verify_inputs
from lottery.report import write_summary

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
verify_inputs(snakemake.input)
write_summary(
    {
        name: path
        for name, path in snakemake.input.items()
        if name not in ("claims", "runs", "provenance", "records")
    },
    snakemake.params.experiment,
    snakemake.params.max_ratio,
    snakemake.output.summary,
    claims=snakemake.input.get("claims"),
    deviations=snakemake.params.deviations,
    runs=snakemake.input.runs,
    provenance=list(snakemake.input.provenance),
)
