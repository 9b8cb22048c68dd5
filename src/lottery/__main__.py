"""Command-line helpers: ``python -m lottery sample SOURCE OUT`` writes a small MNIST-format sample;
``python -m lottery config-keys [--write README]`` prints (or writes into ``config/README.md``) the
config key table generated from the schema; ``python -m lottery adopt-record --configfile FILE
SUMMARY...`` describes summaries made before records did (lottery.record.adopt)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lottery import schema


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lottery")
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="write the first N examples of an MNIST-format dataset")
    sample.add_argument("source", help="folder with the four IDX files (gz or not)")
    sample.add_argument("out", help="folder to write the sample to")
    sample.add_argument("--train", type=int, default=1000, help="training examples (default 1000)")
    sample.add_argument("--test", type=int, default=200, help="test examples (default 200)")
    keys = sub.add_parser("config-keys", help="the config key table, generated from the schema")
    keys.add_argument("--write", metavar="README", help="replace the table in this file (config/README.md)")
    adopt = sub.add_parser(
        "adopt-record",
        help="write record.json for replicate summaries made before records described their experiment",
    )
    adopt.add_argument(
        "--configfile",
        action="append",
        required=True,
        help="a config file they were made with, as given to snakemake (repeat for an overlay)",
    )
    adopt.add_argument("summaries", nargs="+", help="results/<experiment>/seed-<s>/summary folders")
    args = parser.parse_args(argv)
    if args.command == "adopt-record":
        return adopt_records(args.configfile, args.summaries)
    if args.command == "config-keys":
        if args.write is None:
            print(schema.key_table(), end="")
        else:
            path = Path(args.write)
            path.write_text(schema.with_key_table(path.read_text()))
        return 0

    from lottery import data
    from lottery.fetch import MNIST_FILES

    files = {key: f"{args.source}/{name}" for key, (name, _) in MNIST_FILES.items()}
    sums = data.write_sample(data.decode_dataset(files), args.out, args.train, args.test)
    for key, digest in sums.items():
        print(f"{key}: {{name: {MNIST_FILES[key][0]}, sha256: {digest}}}")
    return 0


def adopt_records(configfiles: list[str], summaries: list[str]) -> int:
    """``adopt-record``: the config as the workflow reads it (config/config.yaml, then each file over
    it, the schema's defaults filled in), and a record written for each summary folder."""
    import yaml
    from snakemake.utils import update_config, validate

    from lottery import provenance, record
    from lottery.experiment import Experiment

    root = schema.SCHEMA.parents[2]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    for path in configfiles:
        update_config(config, yaml.safe_load(Path(path).read_text()) or {})
    validate(config, str(schema.SCHEMA))
    explained = schema.non_finite_error(config)
    if explained is not None:
        print(f"invalid configuration: {explained}", file=sys.stderr)
        return 1
    experiment = Experiment.from_config(config)
    commit = provenance.git_commit(root)
    for folder in summaries:
        try:
            written = record.adopt(folder, experiment, config["data"], config["analysis"]["paper"], commit)
        except record.RecordError as e:
            print(f"not adopted: {e}", file=sys.stderr)
            return 1
        print(f"adopted: {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
