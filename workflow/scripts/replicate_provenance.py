"""Snakemake adapter: a replicate's provenance from its networks' (lottery.jobs.replicate_provenance)."""

from lottery.jobs import run_script

run_script("replicate_provenance", globals()["snakemake"])
