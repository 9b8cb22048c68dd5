"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, github.com/zalandoresearch/fashion-mnist):
60,000 training and 10,000 test images of clothing, 1 x 28 x 28, 10 classes, in MNIST's four gzipped
IDX files and names.

Checksums: the sha256 of each file's decompressed content, as for MNIST, so that the official
download, Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``, whose
gzip headers Debian normalised) and a decompressed copy all verify. They were computed from the
official files: Debian's files with their gzip headers restored (the file name, and the time stamps
1504176606 for the training files, 1504176627 for the test files) are byte for byte the official
downloads - their md5s are those the Fashion-MNIST README publishes (:data:`PUBLISHED_MD5`) and their
sha256s those of tensorflow_datasets' ``url_checksums/fashion_mnist.txt``
(:data:`PUBLISHED_SHA256`).
"""

from __future__ import annotations

from lottery.datasets import Dataset
from lottery.datasets.mnist import decode_idx

FILES = {
    "train_images": {
        "name": "train-images-idx3-ubyte.gz",
        "sha256": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    "train_labels": {
        "name": "train-labels-idx1-ubyte.gz",
        "sha256": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    "test_images": {
        "name": "t10k-images-idx3-ubyte.gz",
        "sha256": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    "test_labels": {
        "name": "t10k-labels-idx1-ubyte.gz",
        "sha256": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
# The official downloads' own checksums (of the .gz files), which the content sha256s above were
# checked against: a user's data.files may give them (md5, sha256_file) for a copy of those files.
PUBLISHED_MD5 = {
    "train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
    "test_images": "bef4ecab320f06d8554ea6380940ec79",
    "test_labels": "bb300cfdad3c16e7a12a480ee83cd310",
}
PUBLISHED_SHA256 = {
    "train_images": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train_labels": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "test_images": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "test_labels": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

DATASET = Dataset(
    name="fashion_mnist",
    files=FILES,
    mirrors=MIRRORS,
    shape=(1, 28, 28),
    classes=10,
    decode=decode_idx,
    origin=(
        "sha256 of the decompressed content of the official files, which match the md5s of the "
        "Fashion-MNIST README"
    ),
)
