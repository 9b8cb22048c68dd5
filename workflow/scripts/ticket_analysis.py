"""Snakemake adapter: one analysis of what the tickets are - instability, supermasks, mask overlap
or the pixel map, named by the rule (lottery.jobs, lottery.ticket_analyses)."""

from lottery.jobs import run_script

snakemake = globals()["snakemake"]
run_script(snakemake.rule, snakemake)
