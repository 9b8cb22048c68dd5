"""Every report section writes its table and figure, with and without a sweep in the experiment."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from lottery import report
from lottery.sections import BY_NAME, SECTIONS

from .conftest import ROOT
from .test_analysis import _runs, _sweep


def _fixed_rate_only():
    return _runs([
        {"seed": s, "variant": v, "schedule": "dense" if v == "dense" else "rate-0.2", "round": k,
         "weights_remaining_pct": 100 * 0.8**k, "early_stop_iteration": 1000 - 50 * k, "test_acc": 0.97 + 0.001 * k}
        for s in (1, 3) for v, rounds in (("dense", [0]), ("ticket", [1, 2]), ("random", [1, 2])) for k in rounds
    ])  # fmt: skip


SWEEP_SECTIONS = {"pruning_ratios", "accuracy", "parameter_importance", "random_states"}


@pytest.mark.parametrize("kind", ["sweep", "fixed-rate only"])
def test_sections_and_summary(tmp_path, kind):
    if kind == "sweep":
        runs = _sweep({"ticket": lambda p, n, s: 0.98 - 0.01 * p, "random": lambda p, n, s: 0.98 - 0.05 * p})
        runs["schedule"] = "ratio-" + runs["schedule_ratio"].astype(str)
    else:
        runs = _fixed_rate_only()
    runs.to_csv(tmp_path / "runs.csv", index=False)
    params = {"max_ratio": 0.85, "bootstrap": 100, "seed": 0, "iterative_rounds": 3}
    tables = {}
    for section in (s.name for s in SECTIONS if s.reads_runs):
        out = {
            k: tmp_path / f"{section}.{ext}" for k, ext in (("table", "csv"), ("png", "png"), ("svg", "svg"))
        }
        with plt.rc_context({"svg.fonttype": "none"}):  # text stays text: the note can be searched
            report.write_section(section, tmp_path / "runs.csv", out, params)
        tables[section] = out["table"]
        assert out["table"].stat().st_size > 0
        if BY_NAME[section].figure:
            assert out["png"].stat().st_size > 1000 and out["svg"].stat().st_size > 1000
            # A sweep section without a sweep says so instead of drawing empty axes.
            noted = "No {ratio, rounds} schedule" in out["svg"].read_text()
            assert noted == (kind != "sweep" and section in SWEEP_SECTIONS), section
    summary = report.summary_markdown(
        {s.name: tables[s.name] for s in SECTIONS if s.in_summary and s.reads_runs}, "x", 0.85
    )
    assert "## The paper's view" in summary
    if kind == "sweep":
        assert "| ticket |" in summary and pd.read_csv(tables["correlations"]).shape[0] == 8
        # The correlations' intervals name their method under the table: a bootstrap over networks.
        assert "\n\n95% CI: percentile bootstrap over the networks" in summary
    else:
        assert "No {ratio, rounds} schedule" in summary


def test_not_a_runs_table_is_a_clear_error(tmp_path):
    (tmp_path / "runs.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"runs\.csv: not a runs table"):
        report.write_section("accuracy", tmp_path / "runs.csv", {}, {})


def test_every_section_has_its_unit_and_caption():
    """The sections list is the one place: each entry names its unit (table, figure, summary
    paragraph) and has its caption; every unit of the report's modules is listed, once, and no
    module looks a section up by a name of its own (``section_<name>``, ``globals()``)."""
    import importlib
    import pkgutil

    from lottery.report import Unit

    for section in SECTIONS:
        assert isinstance(section.load(), Unit), section.name
        assert (ROOT / "workflow" / "report" / f"{section.name}.rst").is_file(), section.name
    listed = [id(s.load()) for s in SECTIONS]
    assert len(set(listed)) == len(SECTIONS)
    package = ROOT / "src" / "lottery" / "report"
    for info in pkgutil.iter_modules([str(package)]):
        module = importlib.import_module(f"lottery.report.{info.name}")
        units = [name for name, value in vars(module).items() if isinstance(value, Unit)]
        assert all(id(getattr(module, name)) in listed for name in units), (info.name, units)
        assert not [name for name in vars(module) if name.startswith("section_")], info.name
    for path in [*package.glob("*.py"), ROOT / "src" / "lottery" / "ticket_analyses.py"]:
        assert "globals()" not in path.read_text(), path.name
    assert not (ROOT / "src" / "lottery" / "report.py").exists()


def test_summary_states_the_sections_in_the_lists_order(tmp_path, monkeypatch):
    """summary.md's paragraphs are the units' (their tables given), in the list's order."""
    from lottery.report import Unit, summary

    class Listed:
        def __init__(self, name):
            self.name = name

        def load(self):
            return Unit(draw=print, paragraph=lambda table, ratio: [f"{self.name} {len(table)} {ratio:g}"])

    monkeypatch.setattr(summary, "SECTIONS", tuple(Listed(n) for n in ("b", "a", "c")))
    for name in ("a", "b"):
        pd.DataFrame({"x": [1, 2]}).to_csv(tmp_path / f"{name}.csv", index=False)
    text = summary.summary_markdown({n: tmp_path / f"{n}.csv" for n in ("a", "b")}, "x", 0.5)
    assert text.splitlines()[2:] == ["b 2 0.5", "a 2 0.5"]  # c: no table, no paragraph


def test_summary_says_which_path_trained_the_layers():
    import pandas as pd

    from lottery.report import training_paths

    old = pd.DataFrame({"variant": ["dense", "ticket"], "round": [0, 1]})
    assert "every network was trained by the dense trainer" in training_paths(old)
    runs = pd.DataFrame(
        {
            "path_fc1": ["dense-nonblank", "sparse", "sparse"],
            "path_fc2": ["dense", "sparse", "sparse"],
            "path_fc3": ["dense", "sparse", "sparse"],
        }
    )
    text = training_paths(runs)
    assert "- fc1 sparse, fc2 sparse, fc3 sparse: 2 network(s)" in text
    assert "- fc1 dense-nonblank, fc2 dense, fc3 dense: 1 network(s)" in text
    assert text.index("fc1 sparse") < text.index("fc1 dense-nonblank")  # most networks first


def test_the_html_reports_categories_sort_in_the_reports_order():
    """Snakemake's report lists categories sorted by name: the summary first, then the sections in
    their list's order (the paper's claims at its place), whatever their count."""
    import re

    from lottery.sections import CLAIMS_CATEGORY, SUMMARY_CATEGORY

    categories = [SUMMARY_CATEGORY, *dict.fromkeys(s.category for s in SECTIONS)]
    assert categories == sorted(categories)
    assert [int(c.split(".")[0]) for c in categories] == list(range(len(categories)))
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert not re.search(r'category="', rules)  # every category from lottery.sections
    assert CLAIMS_CATEGORY in categories
