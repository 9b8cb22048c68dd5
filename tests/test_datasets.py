"""The datasets by name (lottery.datasets): the registry, the config's data section resolved from it,
each format decoded from files of that format written here (gzipped IDX for Fashion-MNIST and KMNIST,
CIFAR-10's binary archive and its extracted batches), checksums of every kind refused when they do
not match, per-channel normalisation, and Fashion-MNIST and KMNIST run by name through the workflow's
data rules with data.source. No network, nothing outside tmp_path."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from lottery import data, datasets, fetch, jobs, record, schema
from lottery.datasets import cifar10
from lottery.desc import Architecture, to_params
from lottery.experiment import ConfigError, Experiment, architecture
from lottery.fetch import DataError
from lottery.io import load_arrays, save_tensors

from .conftest import HUNG, ROOT, local_env

IDX_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def _config(**data_section) -> dict:
    config = copy.deepcopy(schema.defaults())
    config["data"].update(data_section)
    return config


def _idx_arrays(seed: int, n_train: int = 60, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.int64) % 10,
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test).astype(np.int64),
    }


def _write_idx(arrays: dict[str, np.ndarray], folder: Path) -> dict[str, bytes]:
    """The arrays as gzipped IDX files named as MNIST's; their bytes by key."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for key, name in IDX_NAMES.items():
        raw = gzip.compress(data.encode_idx(arrays[key].astype(np.uint8)), mtime=0)
        (folder / name).write_bytes(raw)
        written[key] = raw
    return written


def _cifar_arrays(seed: int, per_batch: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_train = per_batch * len(cifar10.TRAIN_BATCHES)
    return {
        "train_images": rng.integers(0, 256, (n_train, 3, 32, 32), dtype=np.uint8),
        "train_labels": np.arange(n_train, dtype=np.int64) % 10,
        "test_images": rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, per_batch).astype(np.int64),
    }


def _records(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records written plainly: per image its label byte, then its red, green and
    blue planes, each 32 rows of 32 bytes."""
    out = bytearray()
    for image, label in zip(images, labels, strict=True):
        out.append(int(label))
        for channel in range(3):
            for row in range(32):
                out += bytes(int(v) for v in image[channel, row])
    return bytes(out)


def _batches(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    n = len(arrays["train_labels"]) // len(cifar10.TRAIN_BATCHES)
    out = {
        batch: _records(
            arrays["train_images"][i * n : (i + 1) * n], arrays["train_labels"][i * n : (i + 1) * n]
        )
        for i, batch in enumerate(cifar10.TRAIN_BATCHES)
    }
    out[cifar10.TEST_BATCH] = _records(arrays["test_images"], arrays["test_labels"])
    return out


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return buffer.getvalue()


def _member(name: str, content: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    return info, content


def _archive(batches: dict[str, bytes], extra: list | None = None) -> bytes:
    members = [_member(f"{cifar10.FOLDER}/batches.meta.txt", b"airplane\nautomobile\n")]
    members += [_member(f"{cifar10.FOLDER}/{batch}.bin", content) for batch, content in batches.items()]
    return _tar_gz(members + (extra or []))


def _own_spec(raw: bytes, name: str, **kinds: str) -> dict[str, str]:
    """A user's own file spec of ``raw`` with the checksums ``kinds`` names ("md5", "sha256_file")."""
    digests = {"md5": hashlib.md5(raw).hexdigest(), "sha256_file": hashlib.sha256(raw).hexdigest()}
    return {"name": name, **{kind: digests[kind] for kind in kinds}}


# The registry and the config


def test_the_schema_names_the_registrys_datasets():
    pattern = schema.load()["properties"]["data"]["properties"]["name"]["pattern"]
    names = re.match(r"\^\(([^)]*)\)", pattern)[1].split("|")
    assert sorted(names) == sorted(datasets.REGISTRY) == ["cifar10", "fashion_mnist", "kmnist", "mnist"]
    for name in (*names, "mnist-sample", "cifar10-own.1"):
        assert re.fullmatch(pattern, name), name
    for name in ("svhn", "..", "mnist-", "mnist/x", "cifar-10"):
        assert not re.fullmatch(pattern, name), name


def test_an_unknown_dataset_is_an_error_naming_the_key_and_the_choices():
    with pytest.raises(
        ConfigError, match=r"data\.name is 'svhn'.*\['cifar10', 'fashion_mnist', 'kmnist', 'mnist'\]"
    ):
        datasets.get("svhn")
    assert datasets.get("mnist-sample") is datasets.REGISTRY["mnist"]


def test_image_shapes_and_classes():
    assert {name: (d.shape, d.classes) for name, d in datasets.REGISTRY.items()} == {
        "mnist": ((1, 28, 28), 10),
        "fashion_mnist": ((1, 28, 28), 10),
        "kmnist": ((1, 28, 28), 10),
        "cifar10": ((3, 32, 32), 10),
    }


def test_null_files_and_mirrors_are_the_datasets_official_ones():
    for name, entry in datasets.REGISTRY.items():
        resolved = datasets.resolve(_config(name=name)["data"])
        assert resolved["files"] == {key: dict(spec) for key, spec in entry.files.items()}
        assert resolved["mirrors"] == list(entry.mirrors)
    own = {key: {"name": f"{key}.gz", "sha256": "0" * 64} for key in IDX_NAMES}
    resolved = datasets.resolve(_config(name="kmnist", files=own, mirrors=["https://example.org/"])["data"])
    assert resolved["files"] == own and resolved["mirrors"] == ["https://example.org/"]


def test_mnist_resolves_to_the_files_and_mirrors_of_before():
    """MNIST's files, mirrors and record are those the schema's defaults gave before datasets had
    names (the values of commit e6a44bc), so no job reruns and every committed record holds."""
    before = {
        "train_images": ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
        "train_labels": ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
        "test_images": ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
        "test_labels": ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
    }  # fmt: skip
    resolved = datasets.resolve(_config()["data"])
    assert resolved["files"] == {key: {"name": n, "sha256": s} for key, (n, s) in before.items()}
    assert resolved["mirrors"] == [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ]
    assert datasets.describe(_config()["data"]) == {
        "validation_size": 5000,
        "sha256": {key: s for key, (_, s) in sorted(before.items())},
    }
    assert before == fetch.MNIST_FILES


def test_committed_records_describe_the_data_as_the_config_does():
    for path in sorted(ROOT.glob("results/*/seed-*/summary/record.json")):
        recorded = yaml.safe_load(path.read_text())["description"]["data"]
        assert recorded == datasets.describe(_config(validation_size=recorded["validation_size"])["data"]), (
            path
        )


def test_other_datasets_records_name_them_and_their_checksums():
    described = datasets.describe(_config(name="cifar10")["data"])
    assert described == {
        "validation_size": 5000,
        "name": "cifar10",
        "sha256_file": {"archive": cifar10.FILES["archive"]["sha256_file"]},
        "md5": {"archive": "c32a1d4ab5d03f1284b67883e8d87530"},
    }
    experiment = Experiment.from_config(_config(name="fashion_mnist"))
    assert record.description(experiment, "seed-1", _config(name="fashion_mnist")["data"])["data"][
        "name"
    ] == ("fashion_mnist")


def test_files_of_another_layout_are_an_error_naming_data_files():
    files = {"archive": {"name": "x.tar.gz", "md5": "0" * 32}}
    with pytest.raises(ConfigError, match=r"data\.files has the keys \['archive'\], but mnist takes"):
        datasets.resolve(_config(files=files)["data"])
    batches = {batch: {"name": f"{batch}.bin", "sha256": "0" * 64} for batch in cifar10.BATCHES}
    assert datasets.resolve(_config(name="cifar10", files=batches)["data"])["files"] == batches


def test_the_schema_takes_every_checksum_kind_and_refuses_a_file_without_one():
    from jsonschema import validators

    validator = validators.validator_for(schema.load())(schema.load())
    for spec in (
        {"name": "a.gz", "sha256": "0" * 64},
        {"name": "a.gz", "md5": "0" * 32},
        {"name": "a.gz", "md5": "0" * 32, "sha256_file": "0" * 64},
    ):
        assert not list(validator.iter_errors(_config(files={"archive": spec}))), spec
    for spec in ({"name": "a.gz"}, {"name": "a.gz", "md5": "0" * 31}, {"name": "../a.gz", "md5": "0" * 32}):
        assert list(validator.iter_errors(_config(files={"archive": spec}))), spec
    assert not list(validator.iter_errors(_config(name="cifar10", files=None, mirrors=None)))


def test_the_network_takes_the_datasets_inputs():
    assert architecture(_config()) == Architecture(784, (300, 100), 10)
    assert to_params(architecture(_config())) == {}  # mnist: no job's params change
    assert architecture(_config(name="kmnist")) == Architecture(784, (300, 100), 10)
    cifar = architecture(_config(name="cifar10"))
    assert (cifar.input_size, cifar.channels) == (3 * 32 * 32, 3)
    config = _config(name="cifar10")
    config["model"]["input_size"] = 1000
    assert architecture(config).input_size == 1000  # given: kept (check_fits says if it does not fit)


# The formats


@pytest.mark.parametrize("name", ["fashion_mnist", "kmnist"])
def test_idx_datasets_decode_from_gzipped_files_with_each_checksum_kind(name, tmp_path):
    arrays = _idx_arrays(seed=len(name))
    raw = _write_idx(arrays, tmp_path)
    paths = {key: tmp_path / file for key, file in IDX_NAMES.items()}
    content_specs = {
        key: {"name": IDX_NAMES[key], "sha256": hashlib.sha256(gzip.decompress(raw[key])).hexdigest()}
        for key in IDX_NAMES
    }
    file_specs = {key: _own_spec(raw[key], IDX_NAMES[key], md5="", sha256_file="") for key in IDX_NAMES}
    for specs in (content_specs, file_specs):
        decoded = datasets.decode(name, paths, specs)
        for key, array in arrays.items():
            np.testing.assert_array_equal(decoded[key], array)
            assert decoded[key].dtype == array.dtype
    for kind, what in (("sha256", "sha256 of decompressed content"), ("md5", "md5 of the file"),
                       ("sha256_file", "sha256 of the file")):  # fmt: skip
        specs = copy.deepcopy(file_specs if kind != "sha256" else content_specs)
        specs["test_labels"][kind] = "0" * len(specs["test_labels"][kind])
        with pytest.raises(
            DataError, match=rf"t10k-labels-idx1-ubyte\.gz: {what} is [0-9a-f]+, expected 0+ "
        ):
            datasets.decode(name, paths, specs)


def test_a_decompressed_copy_verifies_by_content_but_not_by_the_gzs_own_checksum(tmp_path):
    arrays = _idx_arrays(seed=3)
    raw = _write_idx(arrays, tmp_path / "gz")
    plain = tmp_path / "plain"
    plain.mkdir()
    for key, name in IDX_NAMES.items():
        (plain / name).write_bytes(gzip.decompress(raw[key]))
    paths = {key: plain / name for key, name in IDX_NAMES.items()}
    by_content = {key: {"name": n, "sha256": hashlib.sha256(gzip.decompress(raw[key])).hexdigest()}
                  for key, n in IDX_NAMES.items()}  # fmt: skip
    np.testing.assert_array_equal(datasets.decode("fashion_mnist", paths, by_content)["train_images"],
                                  arrays["train_images"])  # fmt: skip
    by_md5 = {key: _own_spec(raw[key], n, md5="") for key, n in IDX_NAMES.items()}
    with pytest.raises(DataError, match="md5 of the file is"):
        datasets.decode("kmnist", paths, by_md5)


def test_the_official_checksums_refuse_other_files_naming_them(tmp_path):
    arrays = _idx_arrays(seed=5)
    _write_idx(arrays, tmp_path)
    paths = {key: tmp_path / name for key, name in IDX_NAMES.items()}
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: md5 of the file is [0-9a-f]{32}, "
                                        r"expected bdb82020997e1d708af4cf47b453dcf7"):  # fmt: skip
        datasets.decode("kmnist", paths, datasets.official_files("kmnist"))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: sha256 of decompressed content is .*"
                                        r"expected c59f468a"):  # fmt: skip
        datasets.decode("fashion_mnist", paths, datasets.official_files("fashion_mnist"))
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(_archive(_batches(_cifar_arrays(seed=1))))
    with pytest.raises(DataError, match=r"cifar-10-binary\.tar\.gz: md5 of the file is [0-9a-f]{32}, "
                                        r"expected c32a1d4ab5d03f1284b67883e8d87530"):  # fmt: skip
        datasets.decode("cifar10", {"archive": archive}, datasets.official_files("cifar10"))


def test_fetch_verifies_each_checksum_kind_and_names_the_file_and_source(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    raw = _archive(_batches(_cifar_arrays(seed=2)))
    (source / "cifar-10-binary.tar.gz").write_bytes(raw)
    spec = _own_spec(raw, "cifar-10-binary.tar.gz", md5="", sha256_file="")
    dest = tmp_path / "out" / "cifar-10-binary.tar.gz"
    assert fetch.fetch_file(spec["name"], spec, [str(source)], dest) == str(source)
    assert dest.read_bytes() == raw
    for kind in ("md5", "sha256_file"):
        wrong = {**spec, kind: "0" * len(spec[kind])}
        with pytest.raises(DataError, match=rf"(?s)could not fetch cifar-10-binary\.tar\.gz;.*{source}: .* is "
                                            rf"{spec[kind]}, expected 0+"):  # fmt: skip
            fetch.fetch_file(spec["name"], wrong, [str(source)], tmp_path / "never")
        assert not (tmp_path / "never").exists()
    with pytest.raises(DataError, match="gives no checksum"):
        fetch.fetch_file(spec["name"], {"name": spec["name"]}, [str(source)], tmp_path / "never")


def test_cifar10_decodes_the_binary_archive_and_the_extracted_batches_alike(tmp_path):
    arrays = _cifar_arrays(seed=7)
    batches = _batches(arrays)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(_archive(batches))
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for batch, content in batches.items():
        (folder / f"{batch}.bin").write_bytes(content)
    from_archive = datasets.decode(
        "cifar10", {"archive": archive}, {"archive": _own_spec(archive.read_bytes(), archive.name, md5="")}
    )
    batch_specs = {
        b: {"name": f"{b}.bin", "sha256": hashlib.sha256(c).hexdigest()} for b, c in batches.items()
    }
    from_folder = datasets.decode("cifar10", {b: folder / f"{b}.bin" for b in batches}, batch_specs)
    for key, array in arrays.items():
        np.testing.assert_array_equal(from_archive[key], array)
        np.testing.assert_array_equal(from_folder[key], array)
        assert from_archive[key].dtype == array.dtype
    assert from_archive["train_images"].shape == (60, 3, 32, 32)
    # the red plane first: the byte after the label is the top-left pixel's red value
    assert from_archive["train_images"][0, 0, 0, 0] == batches["data_batch_1"][1]
    assert from_archive["train_images"][0, 2, 0, 0] == batches["data_batch_1"][1 + 2048]
    batch_specs["test_batch"]["sha256"] = "0" * 64
    with pytest.raises(DataError, match=r"test_batch\.bin: sha256 of decompressed content is"):
        datasets.decode("cifar10", {b: folder / f"{b}.bin" for b in batches}, batch_specs)


def _refused(raw: bytes, tmp_path: Path, message: str) -> None:
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(raw)
    with pytest.raises(DataError, match=message):
        datasets.decode("cifar10", {"archive": archive}, {})


def test_an_archive_is_read_only_for_its_known_members_within_bounds(tmp_path, monkeypatch):
    batches = _batches(_cifar_arrays(seed=4, per_batch=10))
    # members outside the folder, or with other names, are never read nor written anywhere
    traversal = _member("../../evil.bin", b"x" * 10)
    decoded = tmp_path / "ok"
    decoded.mkdir()
    archive = decoded / "a.tar.gz"
    archive.write_bytes(_archive(batches, [traversal]))
    datasets.decode("cifar10", {"archive": archive}, {})
    assert not (tmp_path.parent / "evil.bin").exists() and not list(decoded.rglob("evil*"))

    link = tarfile.TarInfo(f"{cifar10.FOLDER}/test_batch.bin")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    without_test = {b: c for b, c in batches.items() if b != "test_batch"}
    _refused(_archive(without_test, [(link, None)]), tmp_path, r"test_batch\.bin is not a regular file")
    _refused(
        _archive(without_test), tmp_path, r"the archive lacks \['cifar-10-batches-bin/test_batch\.bin'\]"
    )
    twice = [_member(f"{cifar10.FOLDER}/test_batch.bin", batches["test_batch"])]
    _refused(_archive(batches, twice), tmp_path, r"test_batch\.bin appears twice")
    _refused(_archive(batches)[:-100], tmp_path, "truncated or corrupt tar.gz archive")
    _refused(b"\x1f\x8b not a tar", tmp_path, "truncated or corrupt tar.gz archive")
    short = {**batches, "data_batch_3": batches["data_batch_3"][:-5]}
    _refused(
        _archive(short), tmp_path, r"data_batch_3\.bin: 30725 bytes, not a whole number of CIFAR-10 records"
    )
    relabelled = {**batches, "test_batch": bytes([10]) + batches["test_batch"][1:]}
    _refused(_archive(relabelled), tmp_path, r"test_batch\.bin: label 10 \(example 0\) is not a class")
    monkeypatch.setattr(cifar10, "MAX_MEMBER", 20_000)  # a member larger than allowed, from its header
    _refused(_archive(batches), tmp_path, r"member 'cifar-10-batches-bin/data_batch_1\.bin' of 30730 bytes")
    monkeypatch.undo()
    monkeypatch.setattr(cifar10, "MAX_MEMBERS", 3)
    _refused(_archive(batches), tmp_path, "more than 3 members")


def test_labels_beyond_the_datasets_classes_are_refused_naming_the_file(tmp_path):
    arrays = _idx_arrays(seed=9, n_train=120)
    arrays["train_labels"] = np.arange(120) % 12
    _write_idx(arrays, tmp_path)
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte\.gz: label 10 \(example 10\), but kmnist has "
                                        r"10 classes"):  # fmt: skip
        datasets.decode("kmnist", {key: tmp_path / name for key, name in IDX_NAMES.items()}, {})


# Split and normalisation


def _split_files(arrays: dict[str, np.ndarray], tmp_path: Path, validation_size: int) -> tuple[Path, Path]:
    dataset, split = tmp_path / "dataset.safetensors", tmp_path / "split.safetensors"
    save_tensors(dataset, arrays)
    save_tensors(split, data.make_split(arrays, validation_size, seed=0))
    return dataset, split


def test_colour_images_are_normalised_per_channel(tmp_path):
    arrays = _cifar_arrays(seed=11)
    dataset, split_path = _split_files(arrays, tmp_path, validation_size=10)
    split = load_arrays(split_path)
    assert split["mean"].shape == split["std"].shape == (3,)
    assert split["mean"].dtype == split["std"].dtype == np.float64
    train = np.sort(split["train_indices"])
    x = arrays["train_images"][train].astype(np.float64) / 255.0  # plain numpy, channel by channel
    np.testing.assert_allclose(split["mean"], x.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(split["std"], x.std(axis=(0, 2, 3), ddof=1), rtol=1e-13)

    loaded = data.load_array_data(dataset, split_path)
    assert loaded.background is None and loaded.input_size == 3072
    mean32, std32 = split["mean"].astype(np.float32), split["std"].astype(np.float32)
    images = arrays["train_images"][split["val_indices"]].astype(np.float32) / np.float32(255.0)
    expected = ((images - mean32[None, :, None, None]) / std32[None, :, None, None]).reshape(len(images), -1)
    np.testing.assert_array_equal(loaded.val_x, expected)
    per_channel = loaded.train_x.reshape(len(loaded.train_x), 3, -1)
    np.testing.assert_allclose(per_channel.mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(per_channel.std(axis=(0, 2), ddof=1), 1, atol=1e-5)
    tensors = data.load_tensor_data(dataset, split_path)
    assert tensors.background is None
    for name in data.ARRAYS:
        got = getattr(tensors, name).numpy()
        assert got.dtype == getattr(loaded, name).dtype
        assert got.tobytes() == getattr(loaded, name).tobytes(), name


def test_one_channel_images_keep_their_scalar_statistics_and_background(tmp_path):
    arrays = _idx_arrays(seed=12)
    dataset, split_path = _split_files(arrays, tmp_path, validation_size=10)
    split = load_arrays(split_path)
    assert split["mean"].shape == split["std"].shape == () and split["mean"].dtype == np.float64
    assert load_arrays(dataset)["train_images"].shape == (60, 28, 28)
    loaded = data.load_array_data(dataset, split_path)
    mean, std = np.float32(split["mean"]), np.float32(split["std"])
    assert loaded.background == float((np.float32(0) - mean) / std)
    assert data.load_tensor_data(dataset, split_path).background == loaded.background


def test_the_models_channels_must_be_the_images(tmp_path):
    arrays = _cifar_arrays(seed=13)
    data.check_fits(arrays, "c", Architecture(3072, (10,), 10, channels=3), 10, 5)
    with pytest.raises(DataError, match=r"takes images of 1 channel\(s\) but those of c have 3"):
        data.check_fits(arrays, "c", Architecture(3072, (10,), 10), 10, 5)
    with pytest.raises(
        DataError, match=r"model\.input_size is 784 but the images of c have 3072 values \(3 x 32"
    ):
        data.check_fits(arrays, "c", Architecture(784, (10,), 10, channels=3), 10, 5)


# By name through the workflow


def _source_folder(name: str, tmp_path: Path) -> tuple[Path, dict, dict[str, np.ndarray]]:
    """A data.source folder of test-written IDX files and a data.files of their own checksums (the
    official ones are of the real files, which a test does not download)."""
    arrays = _idx_arrays(seed=len(name), n_train=100, n_test=30)
    folder = tmp_path / "source"
    raw = _write_idx(arrays, folder)
    files = {key: _own_spec(raw[key], IDX_NAMES[key], md5="", sha256_file="") for key in IDX_NAMES}
    if name == "fashion_mnist":  # as its official ones: of the content
        files = {key: {"name": IDX_NAMES[key], "sha256": hashlib.sha256(gzip.decompress(raw[key])).hexdigest()}
                 for key in IDX_NAMES}  # fmt: skip
    return folder, files, arrays


@pytest.mark.parametrize("name", ["fashion_mnist", "kmnist"])
def test_idx_datasets_run_by_name_through_the_data_jobs(name, tmp_path):
    folder, files, arrays = _source_folder(name, tmp_path)
    config = _config(name=name, source=str(folder), files=files, validation_size=20)
    resolved = datasets.resolve(config["data"])
    experiment = Experiment.from_config(config)
    raw = {key: str(tmp_path / "resources" / "raw" / spec["name"]) for key, spec in resolved["files"].items()}
    dataset, split = tmp_path / "dataset.safetensors", tmp_path / "split.safetensors"
    jobs.run("fetch_dataset", {"input": {}, "output": raw, "params": {
        "files": resolved["files"], "sources": [resolved["source"]], "retries": 1, "timeout": 1}})  # fmt: skip
    jobs.run("decode_dataset", {"input": raw, "output": {"dataset": str(dataset)},
                                "params": {"files": resolved["files"], "dataset": name}})  # fmt: skip
    jobs.run("split_dataset", {"input": {"dataset": str(dataset)}, "output": {"split": str(split)}, "params": {
        "validation_size": 20, "seed": 0, "architecture": to_params(experiment.architecture), "batch_size": 60}})  # fmt: skip
    decoded = load_arrays(dataset)
    for key, array in arrays.items():
        np.testing.assert_array_equal(decoded[key], array)
    assert len(load_arrays(split)["train_indices"]) == 80


@pytest.mark.parametrize("name", ["fashion_mnist", "kmnist"])
def test_idx_datasets_run_by_name_through_the_workflows_data_rules(name, tmp_path):
    """Snakemake's own fetch, decode and split rules (their params, scripts and paths), for
    data.name ``<name>-test`` with data.source: resources/<name>-test/ and the experiment's split."""
    folder, files, arrays = _source_folder(name, tmp_path)
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = {
        "experiment": "by-name",
        "data": {"name": f"{name}-test", "source": str(folder), "files": files, "validation_size": 20},
        "pruning": {"schedules": [{"rate": 0.2, "rounds": 1}]},
        "variants": {"reinit": False, "random": False},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/by-name/data/split.safetensors"
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", target, "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=HUNG, env=local_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    decoded = load_arrays(workdir / "resources" / f"{name}-test" / "dataset.safetensors")
    for key, array in arrays.items():
        np.testing.assert_array_equal(decoded[key], array)
    assert load_arrays(workdir / target)["mean"].shape == ()
    for spec in files.values():
        assert (workdir / "resources" / f"{name}-test" / "raw" / spec["name"]).is_file()


def test_mnist_jobs_are_torch_free_and_decode_the_sample_as_before(tmp_path):
    """The committed sample, decoded through the registry, is the arrays data.decode_dataset gave."""
    from .conftest import SAMPLE

    paths = {key: SAMPLE / name for key, name in IDX_NAMES.items()}
    through_registry = datasets.decode("mnist-sample", paths, {})
    direct = data.decode_dataset(paths)
    for key in direct:
        assert through_registry[key].tobytes() == direct[key].tobytes()
    code = "import sys, lottery.datasets, lottery.experiment; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert torch  # imported above for the tensor readers
