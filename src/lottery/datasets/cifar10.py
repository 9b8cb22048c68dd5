"""CIFAR-10 (Krizhevsky, 2009, www.cs.toronto.edu/~kriz/cifar.html): 50,000 training and 10,000 test
colour images, 3 x 32 x 32, 10 classes - the official *binary* version, ``cifar-10-binary.tar.gz``
(never the pickled Python version: nothing here unpickles).

The archive holds ``cifar-10-batches-bin/data_batch_1.bin`` .. ``data_batch_5.bin`` (training) and
``test_batch.bin``, each 10,000 records of 1 label byte and 3,072 pixel bytes: the red, green and
blue planes of 32 x 32 pixels, row by row. Only those members are read, from memory (nothing is
extracted to disk: no path in the archive is ever written), each of a bounded size, as is every
other member passed over.

Checksums: of the archive, as published - its md5 on the CIFAR page, its sha256 in
tensorflow_datasets' ``url_checksums/cifar10.txt``; both must hold. A folder of the extracted batches
may be given instead (``data.files`` with the six ``.bin`` files as keys ``data_batch_1`` ..
``test_batch``, each with its own checksum: no official one exists for them).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lottery.datasets import Dataset

ARCHIVE = "archive"
FILES = {
    ARCHIVE: {
        "name": "cifar-10-binary.tar.gz",
        "md5": "c32a1d4ab5d03f1284b67883e8d87530",
        "sha256_file": "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd",
    },
}
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
FOLDER = "cifar-10-batches-bin"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES = (*TRAIN_BATCHES, TEST_BATCH)
SHAPE = (3, 32, 32)
RECORD = 1 + SHAPE[0] * SHAPE[1] * SHAPE[2]  # 3,073 bytes: the label, then the three planes
RECORDS = 10_000  # per batch in the official files; a batch holds at most this many
MAX_BATCH = RECORD * RECORDS  # 30,730,000 bytes
MAX_MEMBER = 1 << 26  # bytes: the most any member of the archive may hold (64 MiB)
MAX_MEMBERS = 64  # members of the archive read (the official one has 8)
MAX_ARCHIVE_CONTENT = 1 << 29  # bytes of all members together (512 MiB; the official: 184 MB)


def parse_batch(content: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n x 3 x 32 x 32 uint8) and labels (int64) of a batch's bytes."""
    from lottery.fetch import DataError

    if not content or len(content) % RECORD:
        raise DataError(
            f"{name}: {len(content)} bytes, not a whole number of CIFAR-10 records of {RECORD} bytes "
            "(1 label byte, 3,072 pixel bytes)"
        )
    if len(content) > MAX_BATCH:
        raise DataError(f"{name}: {len(content) // RECORD} records, more than a batch's {RECORDS}")
    records = np.frombuffer(content, dtype=np.uint8).reshape(-1, RECORD)
    images = records[:, 1:].reshape(len(records), *SHAPE).copy()
    return images, records[:, 0].astype(np.int64)


def read_archive(raw: bytes, name: str) -> dict[str, bytes]:
    """The six batches' bytes from the archive's bytes, keyed by batch name; other members are passed
    over. Members are never extracted: each batch is read into memory, after its size (from its tar
    header) is checked, so that no archive writes a file or inflates without bound."""
    from lottery.fetch import DataError

    wanted = {f"{FOLDER}/{batch}.bin": batch for batch in BATCHES}
    found: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:gz") as tar:
            for count in range(MAX_MEMBERS + 1):
                member = tar.next()
                if member is None:
                    break
                if count == MAX_MEMBERS:
                    raise DataError(f"{name}: more than {MAX_MEMBERS} members, refused")
                total += member.size
                if member.size > MAX_MEMBER or total > MAX_ARCHIVE_CONTENT:
                    raise DataError(
                        f"{name}: member {member.name!r} of {member.size} bytes makes the archive "
                        f"hold more than allowed ({MAX_MEMBER} bytes a member, {MAX_ARCHIVE_CONTENT} in "
                        "all), refused"
                    )
                batch = wanted.get(member.name)
                if batch is None:
                    continue
                if not member.isreg():
                    raise DataError(f"{name}: {member.name} is not a regular file in the archive")
                if batch in found:
                    raise DataError(f"{name}: {member.name} appears twice in the archive")
                extracted = tar.extractfile(member)
                assert extracted is not None  # a regular file's
                found[batch] = extracted.read(member.size + 1)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{name}: truncated or corrupt tar.gz archive ({e})") from e
    missing = [f"{FOLDER}/{batch}.bin" for batch in BATCHES if batch not in found]
    if missing:
        raise DataError(f"{name}: the archive lacks {missing}: not the CIFAR-10 binary version")
    return found


def decode(paths: Mapping[str, Path], files: Mapping[str, Mapping[str, str]]) -> dict[str, np.ndarray]:
    """The arrays of the official archive (key ``archive``) or of the six extracted batches (keys
    ``data_batch_1`` .. ``test_batch``), each file verified against its spec first (where ``files``
    has one)."""
    from lottery.data import check_labels
    from lottery.fetch import read_verified

    if ARCHIVE in paths:
        path = paths[ARCHIVE]
        found = read_archive(read_verified(path, files.get(ARCHIVE)), str(path))
        contents = {f"{path}:{FOLDER}/{batch}.bin": found[batch] for batch in BATCHES}
    else:
        contents = {str(paths[batch]): read_verified(paths[batch], files.get(batch)) for batch in BATCHES}
    parts = [parse_batch(content, where) for where, content in contents.items()]
    train, (test_images, test_labels) = parts[: len(TRAIN_BATCHES)], parts[-1]
    arrays = {
        "train_images": np.concatenate([images for images, _ in train]),
        "train_labels": np.concatenate([labels for _, labels in train]),
        "test_images": test_images,
        "test_labels": test_labels,
    }
    where = list(contents)
    check_labels(arrays, {"train_labels": ", ".join(where[: len(TRAIN_BATCHES)]), "test_labels": where[-1]})
    return arrays


DATASET = Dataset(
    name="cifar10",
    files=FILES,
    mirrors=MIRRORS,
    shape=SHAPE,
    classes=10,
    decode=decode,
    layouts=(frozenset(BATCHES),),
    origin=(
        "md5 (the CIFAR page) and sha256 (tensorflow_datasets) of the official binary archive; "
        "extracted batches: your own checksums"
    ),
)
