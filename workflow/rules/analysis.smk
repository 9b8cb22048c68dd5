# Stage 7: the report's sections (lottery.sections.SECTIONS, one rule each), regenerated from
# runs.csv - tables (CSV), seaborn figures (PNG for the report, SVG beside them) - and the Markdown
# summary. Small jobs: they run on the submit host.


for section in filter(lambda s: s.reads_runs, sections.SECTIONS):

    rule:
        name:
            section.name
        input:
            runs=rules.collect_runs.output.runs,
        output:
            **section_outputs(section),
        log:
            f"{LOGS}/analysis/{section.name}.log",
        localrule: True
        conda:
            "../envs/lottery.yaml"
        params:
            section=section.name,
            analysis=EXPERIMENT.analysis_params(),
        script:
            "../scripts/analyse.py"


rule summary:
    input:
        unpack(paper_summary_inputs),
        **summary_tables(),
        runs=f"{RESULTS}/{layout.RUNS_TABLE}",
        provenance=replicate_summaries(layout.PROVENANCE),
        records=replicate_summaries(record.RECORD),
    output:
        summary=report(
            f"{RESULTS}/summary.md",
            caption="../report/summary.rst",
            category=sections.SUMMARY_CATEGORY,
        ),
    log:
        f"{LOGS}/analysis/summary.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        experiment=EXPERIMENT.name,
        max_ratio=config["analysis"]["max_ratio"],
        deviations=protocol_deviations(config) if PAPER else None,
    script:
        "../scripts/summarise.py"
