"""The report's sections, one list (:data:`SECTIONS`): each section's name, category, outputs and
unit - the code that draws its table and figure and writes its paragraph of ``summary.md`` (a
:class:`lottery.report.base.Unit`, in a module of ``lottery/report/``). The workflow generates the
rules of the sections read from runs.csv (``workflow/rules/analysis.smk``), the summary's inputs and
the final targets from this list; the paper's rules (``paper.smk``) and the ticket analyses'
(``ticket_analyses.smk``) take their outputs from it. A section's caption is
``workflow/report/<name>.rst``. Adding a section is its unit, its entry here and its caption.
No PyTorch or pandas: the workflow reads this when it builds the DAG (a unit is imported when used).
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

# The HTML report lists its categories sorted by name: two-digit numbers keep them in the report's
# order (with "10. ..." it read "0., 1., 10., 11., 2., ...").
SUMMARY_CATEGORY = "00. Summary"
CLAIMS_CATEGORY = "07. The paper's claims"

# Where a section's rule is: generated from this list from runs.csv, in workflow/rules/analysis.smk;
# written out in paper.smk (analysis.paper); in ticket_analyses.smk (an analysis.<name>.enabled switch);
# generated in pai.smk from runs.csv where pai.methods names methods (pruning at initialisation).
ANALYSIS, PAPER, TICKET_ANALYSES, PAI = "analysis", "paper", "ticket_analyses", "pai"
PAI_CATEGORY = "12. Pruning at initialisation"


@dataclass(frozen=True)
class Section:
    name: str
    category: str  # the HTML report's category
    unit: str  # its code, "<module>:<attribute>" (a lottery.report.base.Unit)
    figure: bool = True  # a PNG (in the report) and an SVG beside it
    table_in_report: bool = True  # the CSV is in the report too
    in_summary: bool = True  # summary.md states its result (its unit's paragraph)
    paper_oneshot: bool = False  # drawn only with analysis.paper and a one-shot schedule
    # ANALYSIS: drawn from runs.csv by a generated rule. PAPER: drawn only with analysis.paper (and,
    # for a figure of test curves, networks that record one). TICKET_ANALYSES: drawn only with
    # analysis.<name>.enabled; it reads masks and weights (lottery.ticket_analyses.write_<name>).
    rule: str = ANALYSIS
    curves: bool = False  # it reads the networks' test curves
    compare: bool = False  # PAI: it reads pai.compare's runs table too (the ticket's controls)

    def load(self) -> Any:
        """Its unit (imports PyTorch-free pandas and matplotlib code; not done by the workflow)."""
        module, _, attribute = self.unit.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def wanted(
        self,
        paper: bool,
        has_oneshot: bool,
        switched_on: Collection[str] = (),
        has_curves: bool = True,
        has_pai: bool = False,
    ) -> bool:
        """Whether an experiment (``analysis.paper``, with or without one-shot tickets, with the
        switched sections ``switched_on``, with or without test curves, with or without methods of
        pruning at initialisation) draws it."""
        if self.rule == PAI:
            return has_pai
        if self.switched:
            return self.name in switched_on
        if self.rule == PAPER:
            return paper and (has_curves or not self.curves)
        return not self.paper_oneshot or (paper and has_oneshot)

    @property
    def switched(self) -> bool:
        """Drawn only with ``analysis.<name>.enabled``: an analysis of what the tickets are."""
        return self.rule == TICKET_ANALYSES

    @property
    def reads_runs(self) -> bool:
        """Its rule is generated in workflow/rules/analysis.smk from runs.csv."""
        return self.rule == ANALYSIS


_WANDB, _PAPER, _TICKETS = "lottery.report.wandb", "lottery.report.paper_figures", "lottery.report.tickets"
_PAI = "lottery.report.pai"
SECTIONS = (
    # The W&B report's
    Section("pruning_ratios", "01. Desired vs actual pruning", f"{_WANDB}:PRUNING_RATIOS"),
    Section("accuracy", "02. Accuracy against prune ratio", f"{_WANDB}:ACCURACY"),
    Section("correlations", "03. Correlations", f"{_WANDB}:CORRELATIONS", figure=False),
    Section("parameter_importance", "04. Parameter importance", f"{_WANDB}:PARAMETER_IMPORTANCE"),
    Section("random_states", "05. Results per random state", f"{_WANDB}:RANDOM_STATES"),
    # The paper's: its view; with analysis.paper and a oneshot schedule its iterative vs one-shot
    # comparison; with analysis.paper its claims checked (a table, and Markdown that summary.md
    # quotes first) and the test curves of its Figure 3
    Section("paper_view", "06. The paper's view", f"{_PAPER}:PAPER_VIEW"),
    Section(
        "oneshot",
        CLAIMS_CATEGORY,
        f"{_PAPER}:ONESHOT",
        table_in_report=False,
        in_summary=False,
        paper_oneshot=True,
    ),
    Section("claims", CLAIMS_CATEGORY, f"{_PAPER}:CLAIMS", figure=False, in_summary=False, rule=PAPER),
    Section(
        "test_curves",
        CLAIMS_CATEGORY,
        f"{_PAPER}:TEST_CURVES",
        table_in_report=False,
        in_summary=False,
        rule=PAPER,
        curves=True,
    ),
    # What the tickets are (lottery.ticket_analyses)
    Section("instability", "08. Instability", f"{_TICKETS}:INSTABILITY", rule=TICKET_ANALYSES),
    Section("supermasks", "09. Supermasks", f"{_TICKETS}:SUPERMASKS", rule=TICKET_ANALYSES),
    Section("mask_overlap", "10. Mask overlap", f"{_TICKETS}:MASK_OVERLAP", rule=TICKET_ANALYSES),
    Section(
        "pixel_map", "11. The pixel map", f"{_TICKETS}:PIXEL_MAP", table_in_report=False, rule=TICKET_ANALYSES
    ),
    # Pruning at initialisation beside the tickets (lottery.report.pai; pai.methods)
    Section("pai_accuracy", PAI_CATEGORY, f"{_PAI}:ACCURACY", rule=PAI, compare=True),
    Section("pai_sanity", PAI_CATEGORY, f"{_PAI}:SANITY", rule=PAI),
    Section("pai_densities", PAI_CATEGORY, f"{_PAI}:DENSITIES", rule=PAI),
    Section("pai_claims", PAI_CATEGORY, f"{_PAI}:CLAIMS", figure=False, rule=PAI),
)
BY_NAME = {s.name: s for s in SECTIONS}
# The analyses of what the tickets are, in the report's order (lottery.experiment reads them).
TICKET_ANALYSIS_NAMES = tuple(s.name for s in SECTIONS if s.switched)
