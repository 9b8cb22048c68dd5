"""Command-line helpers: ``python -m lottery sample SOURCE OUT`` writes a small MNIST-format sample;
``python -m lottery config-keys [--write README]`` prints (or writes into ``config/README.md``) the
config key table generated from the schema."""

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
    args = parser.parse_args(argv)
    if args.command == "config-keys":
        if args.write is None:
            print(schema.key_table(), end="")
        else:
            path = Path(args.write)
            path.write_text(schema.with_key_table(path.read_text()))
        return 0

    from lottery import data  # PyTorch: only for the sample
    from lottery.fetch import MNIST_FILES

    files = {key: f"{args.source}/{name}" for key, (name, _) in MNIST_FILES.items()}
    sums = data.write_sample(data.decode_dataset(files), args.out, args.train, args.test)
    for key, digest in sums.items():
        print(f"{key}: {{name: {MNIST_FILES[key][0]}, sha256: {digest}}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
