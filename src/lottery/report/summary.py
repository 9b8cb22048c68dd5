"""``summary.md``: who made the results, how the networks were trained, the paper's claims and the
deviations from its protocol, then each section's paragraph in the order of
:data:`lottery.sections.SECTIONS` (its unit's ``paragraph``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from lottery.io import write_text
from lottery.logs import step
from lottery.report.base import PathLike
from lottery.runs import read_runs
from lottery.sections import SECTIONS
from lottery.stats import METHOD


def summary_markdown(
    tables: Mapping[str, PathLike],
    experiment: str,
    max_ratio: float,
    claims: PathLike | None = None,
    deviations: list[str] | None = None,
    runs: PathLike | None = None,
    provenance: Sequence[PathLike] | None = None,
) -> str:
    """A short statement of each section's result in numbers (``tables``: the tables of the sections
    it has); with ``claims`` (the claims table's Markdown) and ``deviations`` first, the paper's claims
    checked and how the run departs from it; with ``runs`` (runs.csv), how the networks were trained;
    with ``provenance`` (the replicates' ``summary/provenance.json``), which machine, commit and time
    made each replicate."""
    t = {name: pd.read_csv(path) for name, path in tables.items()}
    lines = [f"# Summary of experiment `{experiment}`", ""]
    if provenance:
        from lottery.provenance import provenance_markdown, read_replicate_provenance

        lines += [
            "## Who made these results",
            "",
            "Each replicate's networks were trained by the code, PyTorch and CPU below; replicates made on "
            "different machines are independent samples, rounded by different kernels. Each replicate's "
            "`seed-<s>/summary/provenance.json` also gives its trainer's path per layer and its times: "
            "the trainings' own time summed over networks (one core each, evaluations included) and the "
            "span from its first training's start to its last one's end.",
            "",
            provenance_markdown([read_replicate_provenance(p) for p in provenance]).rstrip(),
            "",
        ]
    if runs is not None:
        each = read_runs(runs, draws="each")
        lines += ["## How the networks were trained", "", training_paths(each), ""]
        lines += [draws_line(each), ""]
    seeds = sorted(set(t["paper_view"]["n"])) if "paper_view" in t else []
    if claims is not None:
        runs_seeds = int(max(seeds)) if seeds else 0
        lines += [
            "## The paper's claims (Frankle & Carbin 2019, LeNet-300-100 on MNIST)",
            "",
            f"Networks per level: up to {runs_seeds} seed(s). Each claim is computed within each seed "
            f"(paired networks), then over seeds: the mean (a ratio's geometric mean) and a 95% interval "
            f"by {METHOD} on the per-seed values (a ratio's on the log scale); test accuracy at the "
            "early-stop iteration (minimum validation loss).",
            "",
            Path(claims).read_text().rstrip(),
            "",
        ]
    if deviations is not None:
        lines += ["## Deviations from the paper's protocol", ""]
        lines += [f"- {d}" for d in deviations] or ["- none"]
        lines.append("")
    for section in SECTIONS:
        paragraph = section.load().paragraph
        if section.name in t and paragraph is not None:
            lines += paragraph(t[section.name], max_ratio)
    return "\n".join(lines) + "\n"


def training_paths(runs: pd.DataFrame) -> str:
    """Which trainer path trained each layer (runs.csv's ``path_*`` columns), network counts."""
    columns = [c for c in runs.columns if c.startswith("path_")]
    if not columns:
        return (
            "runs.csv records no training paths: every network was trained by the dense trainer "
            "(dense weight matrices times their masks), before the sparse path existed."
        )
    combos = runs[columns].fillna("unrecorded").astype(str).value_counts()
    lines = [
        "Each layer's path (`training.sparse_max_density` chooses it; runs.csv's `path_*` columns): "
        "`sparse` - its surviving weights only; `dense` - a dense matrix times its mask; "
        "`dense-nonblank` - dense, reading only each image's non-blank pixels."
    ]
    for combo, count in sorted(combos.items(), key=lambda item: (-item[1], item[0])):
        layers = ", ".join(
            f"{c.removeprefix('path_')} {path}" for c, path in zip(columns, combo, strict=True)
        )
        lines.append(f"- {layers}: {count} network(s)")
    return "\n".join(lines)


def draws_line(runs: pd.DataFrame) -> str:
    """How many networks of each variant a seed has per level (its draws), and how they are read."""
    per = runs.groupby(["variant", "seed", "schedule", "round", "rewind_iteration"], dropna=False).size()
    counts = per.groupby(level="variant").max()
    parts = [f"{variant} {int(n)}" for variant, n in counts.items() if variant != "dense"]
    return (
        "Networks per seed and level: " + ", ".join(parts) + ". The tables and figures average a seed's "
        "draws, then go over seeds (their bars: min and max over seeds)."
    )


@step
def write_summary(
    tables: Mapping[str, PathLike],
    experiment: str,
    max_ratio: float,
    out: PathLike,
    claims: PathLike | None = None,
    deviations: list[str] | None = None,
    runs: PathLike | None = None,
    provenance: Sequence[PathLike] | None = None,
) -> None:
    write_text(out, summary_markdown(tables, experiment, max_ratio, claims, deviations, runs, provenance))
