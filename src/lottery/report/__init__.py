"""The report: tables, figures (seaborn, PNG and SVG) and the Markdown summary of an experiment.
Each section - the W&B report's (:mod:`.wandb`), the paper's figures and claims
(:mod:`.paper_figures`), each analysis of what the tickets are (:mod:`.tickets`) - is one
:class:`~lottery.report.base.Unit` (its table, figure and summary paragraph), named by its entry of
the one list :data:`lottery.sections.SECTIONS`; :mod:`.summary` writes ``summary.md``. The
workflow's scripts call the steps below."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from lottery.logs import step
from lottery.report.base import PathLike, Unit
from lottery.report.summary import draws_line, summary_markdown, training_paths, write_summary
from lottery.runs import read_runs
from lottery.sections import BY_NAME

__all__ = [
    "Unit",
    "draws_line",
    "summary_markdown",
    "training_paths",
    "write_claims",
    "write_section",
    "write_summary",
    "write_test_curves",
]


@step
def write_section(
    section: str, runs: PathLike, out: Mapping[str, PathLike], params: Mapping[str, Any]
) -> None:
    """A section of ``workflow/rules/analysis.smk`` (read from runs.csv): its unit draws it."""
    found = BY_NAME.get(section)
    if found is None or not found.reads_runs:
        expected = sorted(name for name, s in BY_NAME.items() if s.reads_runs)
        raise ValueError(f"unknown report section {section!r}: expected one of {expected}")
    found.load().draw(read_runs(runs), out, params)


@step
def write_claims(runs: PathLike, out: Mapping[str, PathLike], params: Mapping[str, Any]) -> None:
    """The paper's claims checked on ``runs.csv``: CSV and Markdown."""
    BY_NAME["claims"].load().draw(read_runs(runs), out, params)


@step
def write_test_curves(curves: Sequence[PathLike], out: Mapping[str, PathLike]) -> None:
    """The paper's Figure 3 from the replicates' test curves (``curves``: their summaries'
    ``test_curves.csv``)."""
    BY_NAME["test_curves"].load().draw(pd.concat([pd.read_csv(c) for c in curves], ignore_index=True), out)
