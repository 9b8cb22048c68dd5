"""The report's sections, one list: each section's name, category and outputs. The workflow generates
one rule per section from it (``workflow/rules/analysis.smk``) and the summary's inputs; the section's
table and figure are drawn by ``lottery.report.section_<name>`` and its caption is
``workflow/report/<name>.rst``. Adding a section is an entry here, its function and its caption.
No PyTorch or pandas: the workflow reads this when it builds the DAG."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

# The HTML report lists its categories sorted by name: two-digit numbers keep them in the report's
# order (with "10. ..." it read "0., 1., 10., 11., 2., ...").
SUMMARY_CATEGORY = "00. Summary"
CLAIMS_CATEGORY = "07. The paper's claims"


@dataclass(frozen=True)
class Section:
    name: str
    category: str  # the HTML report's category
    figure: bool = True  # a PNG (in the report) and an SVG beside it
    table_in_report: bool = True  # the CSV is in the report too
    in_summary: bool = True  # summary.md states its result (lottery.report.summary_markdown)
    paper_oneshot: bool = False  # drawn only with analysis.paper and a one-shot schedule
    # drawn only with analysis.<name>.enabled; it reads masks and weights, not runs.csv, and its rule is
    # in workflow/rules/ticket_analyses.smk (lottery.ticket_analyses.write_<name>)
    switched: bool = False

    def wanted(self, paper: bool, has_oneshot: bool, switched_on: Collection[str] = ()) -> bool:
        """Whether an experiment (``analysis.paper``, with or without one-shot tickets, with the
        switched sections ``switched_on``) draws it."""
        if self.switched:
            return self.name in switched_on
        return not self.paper_oneshot or (paper and has_oneshot)

    @property
    def reads_runs(self) -> bool:
        """Its rule is generated in workflow/rules/analysis.smk from runs.csv."""
        return not self.switched


SECTIONS = (
    Section("pruning_ratios", "01. Desired vs actual pruning"),
    Section("accuracy", "02. Accuracy against prune ratio"),
    Section("correlations", "03. Correlations", figure=False),
    Section("parameter_importance", "04. Parameter importance"),
    Section("random_states", "05. Results per random state"),
    Section("paper_view", "06. The paper's view"),
    # analysis.paper with a oneshot schedule: the paper's iterative vs one-shot comparison
    Section("oneshot", CLAIMS_CATEGORY, table_in_report=False, in_summary=False, paper_oneshot=True),
    # What the tickets are (lottery.experiment.TICKET_ANALYSES)
    Section("instability", "08. Instability", switched=True),
    Section("supermasks", "09. Supermasks", switched=True),
    Section("mask_overlap", "10. Mask overlap", switched=True),
    Section("pixel_map", "11. The pixel map", table_in_report=False, switched=True),
)
BY_NAME = {s.name: s for s in SECTIONS}
