# Stage 7: the seed report's sections, regenerated from runs.csv - tables (CSV), seaborn figures (PNG
# for the report, SVG beside them) and a Markdown summary. Small jobs: they run on the submit host.


rule pruning_ratios:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/pruning_ratios.csv",
            caption="../report/pruning_ratios.rst",
            category="1. Desired vs actual pruning",
        ),
        png=report(
            f"{FIGURES}/pruning_ratios.png",
            caption="../report/pruning_ratios.rst",
            category="1. Desired vs actual pruning",
        ),
        svg=f"{FIGURES}/pruning_ratios.svg",
    log:
        f"{LOGS}/analysis/pruning_ratios.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        section="pruning_ratios",
        analysis=analysis_params(),
    script:
        "../scripts/analyse.py"


rule accuracy:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/accuracy.csv",
            caption="../report/accuracy.rst",
            category="2. Accuracy against prune ratio",
        ),
        png=report(
            f"{FIGURES}/accuracy.png",
            caption="../report/accuracy.rst",
            category="2. Accuracy against prune ratio",
        ),
        svg=f"{FIGURES}/accuracy.svg",
    log:
        f"{LOGS}/analysis/accuracy.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        section="accuracy",
        analysis=analysis_params(),
    script:
        "../scripts/analyse.py"


rule correlations:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/correlations.csv",
            caption="../report/correlations.rst",
            category="3. Correlations",
        ),
    log:
        f"{LOGS}/analysis/correlations.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        section="correlations",
        analysis=analysis_params(),
    script:
        "../scripts/analyse.py"


rule parameter_importance:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/parameter_importance.csv",
            caption="../report/parameter_importance.rst",
            category="4. Parameter importance",
        ),
        png=report(
            f"{FIGURES}/parameter_importance.png",
            caption="../report/parameter_importance.rst",
            category="4. Parameter importance",
        ),
        svg=f"{FIGURES}/parameter_importance.svg",
    log:
        f"{LOGS}/analysis/parameter_importance.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        section="parameter_importance",
        analysis=analysis_params(),
    script:
        "../scripts/analyse.py"


rule random_states:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/random_states.csv",
            caption="../report/random_states.rst",
            category="5. Results per random state",
        ),
        png=report(
            f"{FIGURES}/random_states.png",
            caption="../report/random_states.rst",
            category="5. Results per random state",
        ),
        svg=f"{FIGURES}/random_states.svg",
    log:
        f"{LOGS}/analysis/random_states.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        section="random_states",
        analysis=analysis_params(),
    script:
        "../scripts/analyse.py"


rule paper_view:
    input:
        runs=rules.collect_runs.output.runs,
    output:
        table=report(
            f"{ANALYSIS}/paper_view.csv",
            caption="../report/paper_view.rst",
            category="6. The paper's view",
        ),
        png=report(
            f"{FIGURES}/paper_view.png",
            caption="../report/paper_view.rst",
            category="6. The paper's view",
        ),
        svg=f"{FIGURES}/paper_view.svg",
    log:
        f"{LOGS}/analysis/paper_view.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        section="paper_view",
        analysis=analysis_params(),
    script:
        "../scripts/analyse.py"


rule summary:
    input:
        unpack(paper_summary_inputs),
        pruning_ratios=rules.pruning_ratios.output.table,
        accuracy=rules.accuracy.output.table,
        correlations=rules.correlations.output.table,
        parameter_importance=rules.parameter_importance.output.table,
        random_states=rules.random_states.output.table,
        paper_view=rules.paper_view.output.table,
    output:
        summary=report(
            f"{RESULTS}/summary.md",
            caption="../report/summary.rst",
            category="0. Summary",
        ),
    log:
        f"{LOGS}/analysis/summary.log",
    localrule: True
    conda:
        "../envs/lottery.yaml"
    params:
        experiment=EXPERIMENT,
        max_ratio=config["analysis"]["max_ratio"],
        deviations=protocol_deviations(config) if PAPER else None,
    script:
        "../scripts/summarise.py"
