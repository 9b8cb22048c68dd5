"""What the warm worker saves: the cost of starting a training job with and without it.

    python benchmarks/worker_savings.py --repeats 5 --work 2 5 12

Runs the tiny ``.test`` workflow (one replicate, no sweep: a dozen short trainings) from scratch,
alternately with the warm worker (``LOTTERY_WORKER=1``) and with every job in its own process
(``LOTTERY_WORKER=0``), ``--repeats`` times each. A training job's start cost is its wall time in its
``benchmark:`` file minus the work its log says it did (``workflow_overhead.start_costs``). Prints the
median start cost per job of each way, the saving per job, and what share of a job's wall time that
saving is for jobs whose own work takes ``--work`` seconds (today's default-config trainings, and the
few-second late rounds of a sparse trainer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from workflow_overhead import start_costs  # noqa: E402

OVERLAY = """\
seeds: {split: 0, init: [1]}
pruning:
  schedules: [{rate: 0.2, rounds: 2}]
  sweep: {ratios: [], rounds: []}
analysis: {paper: false, bootstrap: 200}
"""


def run_once(worker: bool) -> list[float]:
    """Start costs of the training jobs of one run from scratch."""
    with tempfile.TemporaryDirectory(prefix="lottery-worker-savings-") as tmp:
        workdir = Path(tmp)
        shutil.copytree(ROOT / ".test" / "config", workdir / "config")
        shutil.copytree(ROOT / ".test" / "data", workdir / "data")
        (workdir / "config" / "overlay.yaml").write_text(OVERLAY)
        command = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir),
                   "--configfile", str(workdir / "config" / "config.yaml"),
                   str(workdir / "config" / "overlay.yaml")]  # fmt: skip
        env = os.environ | {"LOTTERY_WORKER": "1" if worker else "0"}
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
        return start_costs(workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--work", type=float, nargs="+", default=[2.0, 5.0, 12.0], help="seconds of a job's work"
    )
    args = parser.parse_args(argv)

    medians: dict[bool, list[float]] = {True: [], False: []}
    jobs = 0
    for _ in range(args.repeats):
        for worker in (True, False):  # interleaved
            costs = run_once(worker)
            jobs = len(costs)
            medians[worker].append(statistics.median(costs))
    with_worker, without = statistics.median(medians[True]), statistics.median(medians[False])
    saved = without - with_worker
    print(f"Warm worker savings, tiny workflow ({jobs} trainings a run), {args.repeats} runs each way, "
          f"{date.today().isoformat()}")  # fmt: skip
    print()
    print("| training job start (median of run medians) | with the worker | in its own process | saved |")
    print("|---|---|---|---|")
    print(f"| seconds | {with_worker:.2f} | {without:.2f} | {saved:.2f} |")
    print(f"(run medians with: {', '.join(f'{m:.2f}' for m in medians[True])}; "
          f"without: {', '.join(f'{m:.2f}' for m in medians[False])})")  # fmt: skip
    print()
    print("| a job's own work | its wall time without the worker | saved by the worker |")
    print("|---|---|---|")
    for work in args.work:
        print(f"| {work:g} s | {work + without:.2f} s | {100 * saved / (work + without):.1f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
