"""The conda environment of the rules (``--sdm conda``) holds what the package needs to run."""

import re

import pytest
import yaml

from .conftest import ROOT

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

# conda-forge names of PyPI packages; snakemake itself is not needed in a job's environment (its
# script preamble puts Snakemake's own installation on the job's path)
CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
NOT_IN_JOBS = {"snakemake"}


def _requirements(lines):
    found = {}
    for line in lines:
        name, bound = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*(?:>=\s*([0-9.]+))?", line.strip()).groups()
        found[name.lower()] = bound
    return found


def test_the_conda_environment_has_the_runtime_dependencies_at_the_same_bounds():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = _requirements(pyproject["project"]["dependencies"])
    env = yaml.safe_load((ROOT / "workflow" / "envs" / "lottery.yaml").read_text())
    conda = _requirements(d for d in env["dependencies"] if isinstance(d, str))
    assert conda.pop("python") == pyproject["project"]["requires-python"].removeprefix(">=")
    # the native trainer's kernels are built where they run: the environment brings a C compiler
    assert "c-compiler" in conda and conda.pop("c-compiler") is None
    expected = {
        CONDA_NAMES.get(name, name): bound for name, bound in runtime.items() if name not in NOT_IN_JOBS
    }
    assert conda == expected


def test_the_catalog_metadata_matches_the_workflow():
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    assert catalog["software-stack-deployment"]["conda"] is True
    assert catalog["report"] is True
    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    assert rules.count('"../envs/lottery.yaml"') >= rules.count("script:")  # every rule has its env
    assert (ROOT / "workflow" / "report" / "workflow.rst").is_file()


def test_the_repository_ci_runs_what_ci_runs():
    """.github/workflows/main.yml: its test job runs .ci/run, whose last step is the README's test
    command; it lints the workflow and checks the formats test_style checks, on .test."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "main.yml").read_text())
    jobs = workflow["jobs"]
    steps = [step for job in jobs.values() for step in job["steps"]]
    assert any(step.get("run") == "bash .ci/run" for step in jobs["tests"]["steps"])
    readme = (ROOT / "README.md").read_text()
    test_command = re.search(r"^(python3 -m venv .*pytest)$", readme, re.MULTILINE)[1]
    last = (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1]
    assert (
        last.split("&&")[-1].strip() == test_command.split("&&")[-1].strip() == ".venv/bin/python -m pytest"
    )
    formatting = " ".join(step.get("run", "") for step in jobs["formatting"]["steps"])
    for check in ("ruff check .", "ruff format --check .", "snakefmt --check ."):
        assert check in formatting
    actions = [
        step["with"] for step in steps if step.get("uses", "").startswith("snakemake/snakemake-github-action")
    ]
    assert {"--lint", "--cores 2 --sdm conda --conda-cleanup-pkgs cache"} <= {a["args"] for a in actions}
    assert all(a["directory"] == ".test" and (ROOT / a["snakefile"]).is_file() for a in actions)
    # the workflow as a module from another folder (issue 29): a dry run of the module Snakefile
    module = " ".join(step.get("run", "") for step in jobs["module"]["steps"])
    assert "module lottery" in module and "snakemake -n" in module
