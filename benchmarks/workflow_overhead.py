"""Snakemake's own overhead on a whole run of a configuration (the default one unless told).

    python benchmarks/workflow_overhead.py --source ../shared/data/mnist

Runs ``snakemake --cores N`` from scratch in a temporary working directory, then reads every job's log:
each workflow step logs how long its own work took ("step ... finished in X s"). Whatever else the
run's wall time holds - scheduling, process starts, imports, cores left idle - is overhead:

    overhead = 1 - (sum of the jobs' own work) / (cores x wall time)

It also splits the overhead: for every job with a ``benchmark:`` file (the trainings), its wall time
there minus its own work is the cost of starting it (Python, Snakemake's script preamble,
``import torch``); the rest is scheduling and cores left idle.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEP = re.compile(r"step (\w+) finished in ([0-9.]+) s")


def job_work(log: Path) -> float:
    """Seconds of a job's own work: its outermost step (steps may nest)."""
    durations = [float(m[2]) for m in STEP.finditer(log.read_text())]
    return max(durations, default=0.0)


def start_costs(workdir: Path) -> list[float]:
    """Per benchmarked job: its wall time (benchmark file) minus its own work (its log)."""
    costs = []
    for tsv in sorted(workdir.glob("results/*/benchmarks/**/*.tsv")):
        # results/<experiment>/benchmarks/<job>.tsv pairs with logs/<experiment>/<job>.log
        experiment, _, *job = tsv.relative_to(workdir / "results").parts
        log = (workdir / "logs" / experiment).joinpath(*job).with_suffix(".log")
        with tsv.open() as handle:
            wall = float(next(csv.DictReader(handle, delimiter="\t"))["s"])
        costs.append(wall - job_work(log))
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "config", help="config folder to copy")
    parser.add_argument("--source", help="offline data source (data.source)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="run here instead of a temporary folder")
    args = parser.parse_args(argv)

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="lottery-overhead-"))
    shutil.copytree(args.config, workdir / "config", dirs_exist_ok=True)
    command = [sys.executable, "-m", "snakemake", "--cores", str(args.cores), "--directory", str(workdir)]
    if args.source:
        command += ["--config", f'data={{"source": "{Path(args.source).resolve()}"}}']
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - start

    logs = sorted((workdir / "logs").rglob("*.log"))
    work = sum(job_work(log) for log in logs)
    overhead = 1 - work / (args.cores * wall)
    print(f"Snakemake overhead, config {args.config}, --cores {args.cores}, {date.today().isoformat()}")
    print()
    print("| jobs (logs) | wall time | jobs' own work (sum) | cores x wall | overhead |")
    print("|---|---|---|---|---|")
    print(
        f"| {len(logs)} | {wall:.1f} s | {work:.1f} s | {args.cores * wall:.1f} s | {100 * overhead:.1f}% |"
    )
    costs = start_costs(workdir)
    if costs:
        share = sum(costs) / (args.cores * wall)
        print()
        print(
            f"Starting the {len(costs)} benchmarked jobs (trainings): "
            f"median {statistics.median(costs):.2f} s each, {sum(costs):.1f} s in all = "
            f"{100 * share:.1f}% of cores x wall; scheduling and idle cores: "
            f"{100 * (overhead - share):.1f}%."
        )
    if not args.keep:
        shutil.rmtree(workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
