"""MNIST (LeCun, Cortes and Burges): 60,000 training and 10,000 test images of handwritten digits,
1 x 28 x 28, 10 classes, in four gzipped IDX files.

Checksums: the sha256 of each file's decompressed content, so that every mirror's copy verifies
(mirrors recompress the files: their gzip bytes differ, their content does not), and so does a
decompressed copy. The mirrors are torchvision's (the original site, yann.lecun.com, now asks for a
login).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lottery.datasets import Dataset

FILES = {
    "train_images": {
        "name": "train-images-idx3-ubyte.gz",
        "sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    "train_labels": {
        "name": "train-labels-idx1-ubyte.gz",
        "sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    "test_images": {
        "name": "t10k-images-idx3-ubyte.gz",
        "sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    "test_labels": {
        "name": "t10k-labels-idx1-ubyte.gz",
        "sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def decode_idx(paths: Mapping[str, Path], files: Mapping[str, Mapping[str, str]]) -> dict[str, np.ndarray]:
    """The four IDX files of an MNIST-format dataset (:func:`lottery.data.decode_dataset`), each
    verified against its spec's checksums (where ``files`` has its spec) as it is read."""
    from lottery import data

    return data.decode_dataset(paths, files)


DATASET = Dataset(
    name="mnist",
    files=FILES,
    mirrors=MIRRORS,
    shape=(1, 28, 28),
    classes=10,
    decode=decode_idx,
    origin="sha256 of the decompressed content of the official files (yann.lecun.com/exdb/mnist)",
)
