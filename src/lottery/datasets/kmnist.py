"""Kuzushiji-MNIST (Clanuwat et al., 2018, github.com/rois-codh/kmnist): 60,000 training and 10,000
test images of cursive Japanese characters, 1 x 28 x 28, 10 classes, in MNIST's four gzipped IDX
files and names, from the ROIS-DS Center for Open Data in the Humanities.

Checksums: of the downloaded .gz files, as published - their md5s as torchvision's
``datasets/mnist.py`` (class ``KMNIST``) gives them, and their sha256s as tensorflow_datasets'
``url_checksums/kmnist.txt`` gives them; both must hold, so a copy must be those very files (not
recompressed, not decompressed). The files themselves could not be downloaded where this was
written: the content's sha256 is not known here.
"""

from __future__ import annotations

from lottery.datasets import Dataset
from lottery.datasets.mnist import decode_idx

FILES = {
    "train_images": {
        "name": "train-images-idx3-ubyte.gz",
        "md5": "bdb82020997e1d708af4cf47b453dcf7",
        "sha256_file": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
    },
    "train_labels": {
        "name": "train-labels-idx1-ubyte.gz",
        "md5": "e144d726b3acfaa3e44228e80efcd344",
        "sha256_file": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
    },
    "test_images": {
        "name": "t10k-images-idx3-ubyte.gz",
        "md5": "5c965bf0a639b31b8f53240b1b52f4d7",
        "sha256_file": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
    },
    "test_labels": {
        "name": "t10k-labels-idx1-ubyte.gz",
        "md5": "7320c461ea6c1c855c0b718fb2a4b134",
        "sha256_file": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
    },
}
MIRRORS = ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)

DATASET = Dataset(
    name="kmnist",
    files=FILES,
    mirrors=MIRRORS,
    shape=(1, 28, 28),
    classes=10,
    decode=decode_idx,
    origin="md5 (torchvision) and sha256 (tensorflow_datasets) of the official .gz files",
)
