import functools
import gzip
import resource
import struct
import urllib.error
import zlib

import numpy as np
import pytest
import torch

from lottery import data, fetch, io
from lottery.fetch import DataError

from .conftest import SAMPLE

SAMPLE_SUMS = {
    "train_images": "386bb018796babeaca208787b77c1b9db39532c4098951ea35f4694e744eb4b7",
    "train_labels": "895f65588e45d05babf0b5fa7aee2a0d782d8143b40b5764e596df91bc9dddeb",
    "test_images": "cefe86a05637f831a20aef251bd9db19004a2c986ec848d345c40ffd09264afc",
    "test_labels": "181dda88fbf8032cf747bf0766ad9d035b6bb747997214d834eb8d2f33a72210",
}
NAME = "train-labels-idx1-ubyte.gz"


def _labels_gz(values=(1, 2, 3)) -> bytes:
    return gzip.compress(data.encode_idx(torch.tensor(values, dtype=torch.uint8)), mtime=0)


def test_offline_folder_fetch_and_decode(tmp_path):
    outputs = {}
    for key, (name, _) in fetch.MNIST_FILES.items():
        dest = tmp_path / name
        used = fetch.fetch_file(name, SAMPLE_SUMS[key], [str(SAMPLE)], dest)
        assert used == str(SAMPLE)
        outputs[key] = dest
    tensors = data.decode_dataset(outputs)
    assert tensors["train_images"].shape == (1000, 28, 28)
    assert tensors["test_labels"].shape == (200,)
    assert tensors["train_images"].dtype == np.uint8 and tensors["train_labels"].dtype == np.int64
    assert int(tensors["train_labels"].min()) >= 0 and int(tensors["train_labels"].max()) <= 9


def test_file_url_source_works(tmp_path):
    key, (name, _) = "test_labels", fetch.MNIST_FILES["test_labels"]
    assert fetch.fetch_file(name, SAMPLE_SUMS[key], [f"file://{SAMPLE}"], tmp_path / name)


def test_checksum_mismatch_names_file_and_source(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / NAME).write_bytes(_labels_gz())
    dest = tmp_path / "out" / NAME
    with pytest.raises(DataError) as err:
        fetch.fetch_file(NAME, "0" * 64, [str(tmp_path / "src")], dest)
    message = str(err.value)
    assert NAME in message and str(tmp_path / "src") in message and "sha256" in message
    assert not dest.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_truncated_gzip_is_reported(tmp_path):
    (tmp_path / NAME).write_bytes(_labels_gz(tuple(range(200)))[:-20])
    with pytest.raises(DataError, match="truncated or corrupt gzip"):
        fetch.fetch_file(NAME, "0" * 64, [str(tmp_path)], tmp_path / "out.gz")
    assert not (tmp_path / "out.gz").exists()
    with pytest.raises(DataError, match=f"{NAME}: truncated"):
        data.read_idx_file(tmp_path / NAME, 1)


def test_wrong_magic_number_is_reported(tmp_path):
    path = tmp_path / NAME
    path.write_bytes(_labels_gz())
    with pytest.raises(DataError, match=r"wrong IDX magic number 0x00000801, expected 0x00000803"):
        data.read_idx_file(path, 3)
    bad = bytearray(data.encode_idx(torch.zeros(3, dtype=torch.uint8)))
    bad[2] = 0x0D  # float data
    path.write_bytes(bytes(bad))
    with pytest.raises(DataError, match=f"{NAME}: wrong IDX magic"):
        data.read_idx_file(path, 1)


def test_idx_size_mismatch_is_reported(tmp_path):
    path = tmp_path / "x.idx"
    path.write_bytes(data.encode_idx(torch.zeros(4, dtype=torch.uint8))[:-1])
    with pytest.raises(DataError, match=r"x.idx: IDX header announces shape \[4\]"):
        data.read_idx_file(path, 1)


def test_missing_file_in_every_source(tmp_path):
    with pytest.raises(DataError, match=f"could not fetch {NAME}") as err:
        fetch.fetch_file(NAME, "0" * 64, [str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "o")
    assert str(tmp_path / "a") in str(err.value) and str(tmp_path / "b") in str(err.value)


def test_mirrors_tried_in_order_with_retries(tmp_path):
    """No network: a fake reader stands in for urllib."""
    payload = _labels_gz()
    digest = fetch.sha256(gzip.decompress(payload))
    calls = []

    def read(source, name, timeout):
        calls.append(source)
        if source == "https://first.example/":
            raise urllib.error.URLError("connection refused")
        if len([c for c in calls if c == source]) < 2:
            raise TimeoutError("timed out")
        return payload

    used = fetch.fetch_file(NAME, digest, ["https://first.example/", "https://second.example/"],
                           tmp_path / NAME, retries=3, backoff=0.0, read=read)  # fmt: skip
    assert used == "https://second.example/"
    assert calls == ["https://first.example/"] * 3 + ["https://second.example/"] * 2
    assert (tmp_path / NAME).read_bytes() == payload


def test_all_mirrors_failing_lists_every_attempt(tmp_path):
    def read(source, name, timeout):
        raise urllib.error.URLError("no route")

    with pytest.raises(DataError) as err:
        fetch.fetch_file(NAME, "0" * 64, ["https://a.example/", "https://b.example/"],
                        tmp_path / NAME, retries=2, backoff=0.0, read=read)  # fmt: skip
    message = str(err.value)
    assert message.count("https://a.example/") == 2 and message.count("https://b.example/") == 2
    assert "attempt 2/2" in message
    assert not (tmp_path / NAME).exists()


def test_split_is_seeded_disjoint_and_complete():
    train, val = data.split_indices(100, 10, seed=3)
    train2, val2 = data.split_indices(100, 10, seed=3)
    assert np.array_equal(train, train2) and np.array_equal(val, val2)
    assert len(val) == 10 and len(train) == 90
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(100))
    assert not np.array_equal(val, data.split_indices(100, 10, seed=4)[1])
    with pytest.raises(ValueError, match="validation_size"):
        data.split_indices(100, 100, seed=0)


def test_normalisation_uses_training_statistics(tmp_path):
    from lottery.io import save_tensors

    files = {k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()}
    dataset = data.decode_dataset(files)
    split = data.make_split(dataset, 100, seed=0)
    save_tensors(tmp_path / "d.safetensors", dataset)
    save_tensors(tmp_path / "s.safetensors", split)
    loaded = data.load_tensor_data(tmp_path / "d.safetensors", tmp_path / "s.safetensors")
    assert loaded.train_x.shape == (900, 784) and loaded.val_x.shape == (100, 784)
    assert abs(float(loaded.train_x.mean())) < 1e-4
    assert float(loaded.train_x.std()) == pytest.approx(1.0, abs=1e-3)
    assert loaded.test_x.shape == (200, 784)
    # The background is exactly the normalised blank pixel, so evaluation can skip those pixels.
    blank = dataset["test_images"].reshape(200, -1) == 0
    assert np.array_equal((loaded.test_x == loaded.background).numpy(), blank)
    assert 0.5 < float(blank.mean()) < 0.95


def _saved(folder, dataset: dict, validation_size: int, seed: int) -> tuple:
    """``dataset`` and its split written as the workflow writes them: their paths."""
    paths = folder / f"dataset-{seed}.safetensors", folder / f"split-{seed}.safetensors"
    io.save_tensors(paths[0], dataset)
    io.save_tensors(paths[1], data.make_split(dataset, validation_size, seed))
    return paths


def _assert_same_data(arrays: data.ArrayData, tensors: data.TensorData) -> None:
    for field in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        got, expected = getattr(arrays, field), getattr(tensors, field).numpy()
        assert type(got) is np.ndarray and got.dtype == expected.dtype, field
        assert got.shape == expected.shape and got.flags.c_contiguous, field
        # bitwise: equal as float32 values and as their bit patterns (-0.0 is not 0.0 here)
        assert np.array_equal(got, expected) and np.array_equal(got.view(np.uint8), expected.view(np.uint8))
    assert arrays.background == tensors.background and type(arrays.background) is float
    assert arrays.input_size == tensors.input_size


def test_array_data_is_the_tensor_data_bitwise_on_the_sample(tmp_path):
    """load_array_data reads without PyTorch what load_tensor_data reads: the same values, bit for bit."""
    dataset = data.decode_dataset({k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()})
    for seed in (0, 2**62 + 3):
        paths = _saved(tmp_path, dataset, 100, seed)
        _assert_same_data(data.load_array_data(*paths), data.load_tensor_data(*paths))


def test_array_data_is_the_tensor_data_bitwise_at_mnist_size(tmp_path):
    """60,000 + 10,000 images of 28 x 28 pixels, 81% of them blank as in MNIST, 5,000 held out."""
    rng = np.random.default_rng(0)

    def images(n):
        pixels = rng.integers(1, 256, size=(n, 28, 28), dtype=np.uint8)
        pixels[rng.random((n, 28, 28)) < 0.81] = 0
        return torch.from_numpy(pixels)

    dataset = {
        "train_images": images(60_000),
        "train_labels": torch.from_numpy(rng.integers(0, 10, 60_000)),
        "test_images": images(10_000),
        "test_labels": torch.from_numpy(rng.integers(0, 10, 10_000)),
    }
    paths = _saved(tmp_path, dataset, 5_000, 1)
    _assert_same_data(data.load_array_data(*paths), data.load_tensor_data(*paths))


@pytest.mark.parametrize("seed", range(20))
def test_normalisation_rounds_as_torch_does_for_every_pixel_value(seed):
    """Every pixel value 0..255 under random statistics in float64 (PyTorch rounds them to float32
    before the float32 operations): the same bits."""
    rng = np.random.default_rng(seed)
    mean, std = float(rng.uniform(0.0, 1.0)), float(rng.uniform(0.01, 1.0))
    pixels = np.arange(256, dtype=np.uint8).reshape(2, 128)
    got = data._normalise_array(pixels, mean, std)
    expected = data._normalise(torch.from_numpy(pixels), mean, std).numpy()
    assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), expected.view(np.uint32))


# --- arrays and tensors in safetensors files (lottery.io)

ARRAYS = {
    "fc1.weight": np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32),
    "fc1.bias": np.zeros(3, dtype=np.float32),
    "train_indices": np.arange(7, dtype=np.int64),
    "mean": np.array(0.1307, dtype=np.float64),  # 0-d, as a split's statistics
    "train_images": np.arange(24, dtype=np.uint8).reshape(2, 3, 4),
    "empty": np.zeros((0, 5), dtype=np.float32),
    "flags": np.array([True, False, True]),
}


def test_arrays_are_written_to_the_bytes_their_tensors_are(tmp_path):
    """save_tensors of numpy arrays (without PyTorch) writes the file the equal tensors write, so that
    either reads what the other wrote, and files written before still verify."""
    tensors = {name: torch.from_numpy(a) for name, a in ARRAYS.items()}
    assert io.content_digest(ARRAYS) == io.content_digest(tensors)
    io.save_tensors(tmp_path / "a.safetensors", ARRAYS, metadata={"seed": 3})
    io.save_tensors(tmp_path / "t.safetensors", tensors, metadata={"seed": 3})
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "t.safetensors").read_bytes()
    # a non-contiguous array is written as its contiguous copy, as a tensor is
    transposed = {"w": ARRAYS["fc1.weight"].T}
    io.save_tensors(tmp_path / "n.safetensors", transposed)
    io.save_tensors(tmp_path / "m.safetensors", {"w": torch.from_numpy(ARRAYS["fc1.weight"]).t()})
    assert (tmp_path / "n.safetensors").read_bytes() == (tmp_path / "m.safetensors").read_bytes()
    loaded, metadata = io.load_arrays_with_metadata(tmp_path / "t.safetensors")
    assert metadata == {"seed": 3} and set(loaded) == set(ARRAYS)
    for name, array in ARRAYS.items():
        assert type(loaded[name]) is np.ndarray and loaded[name].dtype == array.dtype
        assert loaded[name].shape == array.shape and np.array_equal(loaded[name], array)
    assert torch.equal(io.load_tensors(tmp_path / "a.safetensors")["fc1.weight"], tensors["fc1.weight"])


def test_a_digest_differs_with_any_change():
    digest = io.content_digest(ARRAYS)
    changed = [
        ARRAYS | {"fc1.bias": np.ones(3, dtype=np.float32)},
        ARRAYS | {"fc1.bias": np.zeros(3, dtype=np.float64)},
        ARRAYS | {"fc1.bias": np.zeros((1, 3), dtype=np.float32)},
        {("fc9.bias" if n == "fc1.bias" else n): a for n, a in ARRAYS.items()},
    ]
    assert all(io.content_digest(c) != digest for c in changed)
    with pytest.raises(TypeError, match="no PyTorch equivalent"):
        io.content_digest({"names": np.array(["a"])})


@pytest.mark.parametrize("load", [io.load_arrays, io.load_tensors])
def test_an_altered_or_foreign_file_is_refused_by_either_reader(tmp_path, load):
    path = tmp_path / "w.safetensors"
    io.save_tensors(path, ARRAYS)
    content = bytearray(path.read_bytes())
    content[-1] ^= 1  # the last byte of the data
    path.write_bytes(bytes(content))
    with pytest.raises(
        ValueError, match=r"w\.safetensors: its tensors do not match the digest .* altered since"
    ):
        load(path)
    from safetensors.numpy import save_file

    save_file({"x": np.zeros(2, dtype=np.float32)}, str(path))
    with pytest.raises(
        ValueError, match=r"w\.safetensors: has no content digest \(not written by this workflow\)"
    ):
        load(path)
    path.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=r"w\.safetensors: cannot read tensors \(.*\); make it again"):
        load(path)


def _sample_with(tmp_path, key: str, change) -> dict:
    """The committed sample's files, with ``change`` applied to the decoded tensor ``key``."""
    files = {k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()}
    tensor = data.read_idx_file(files[key], 3 if key.endswith("images") else 1)
    change(tensor)
    files[key] = tmp_path / f"{key}.gz"
    files[key].write_bytes(gzip.compress(data.encode_idx(tensor), mtime=0))
    return files


@pytest.mark.parametrize(
    "key, index, value, message",
    [
        (
            "train_labels",
            7,
            12,
            r"train_labels\.gz: label 12 \(example 7\) but no example of class\(es\) \[10, 11\]",
        ),
        (
            "test_labels",
            3,
            200,
            r"test_labels\.gz: label 200 \(example 3\) is not a class of the training set \(0\.\.9\)",
        ),
    ],
)
def test_labels_out_of_range_are_refused_at_decode(tmp_path, key, index, value, message):
    files = _sample_with(tmp_path, key, lambda t: t.__setitem__(index, value))
    with pytest.raises(DataError, match=message):
        data.decode_dataset(files)


@pytest.mark.parametrize(
    "arch, validation_size, batch_size, message",
    [
        (dict(input_size=100), 200, 60, r"model\.input_size is 100 but the images of sample have 784 pixels"),
        (dict(num_classes=5), 200, 60, r"model\.num_classes is 5 but sample has 10 classes"),
        ({}, 1000, 60, r"data\.validation_size is 1000, not below the 1000 training images of sample"),
        ({}, 200, 801, r"training\.batch_size is 801, above the 800 training examples of sample"),
    ],
)
def test_an_experiment_that_does_not_fit_the_data_is_refused_before_training(
    arch, validation_size, batch_size, message
):
    from lottery.desc import Architecture

    dataset = data.decode_dataset({k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()})
    with pytest.raises(DataError, match=message):
        data.check_fits(dataset, "sample", Architecture(**arch), validation_size, batch_size)
    data.check_fits(dataset, "sample", Architecture(), 200, 800)  # fits


def test_a_permanent_http_error_is_not_retried(tmp_path):
    """404 moves to the next mirror at once; a 503 is worth asking again."""
    payload = _labels_gz()
    calls = []

    def read(source, name, timeout):
        calls.append(source)
        code = 404 if "a.example" in source else 503
        if code == 503 and calls.count(source) == 2:
            return payload
        raise urllib.error.HTTPError(source + name, code, "nope", {}, None)

    used = fetch.fetch_file(NAME, fetch.sha256(gzip.decompress(payload)), ["https://a.example/", "https://b.example/"],
                           tmp_path / NAME, retries=3, backoff=0.0, read=read)  # fmt: skip
    assert used == "https://b.example/"
    assert calls == ["https://a.example/"] + ["https://b.example/"] * 2


def test_a_cached_file_replaced_after_its_fetch_is_refused_at_decode(tmp_path):
    """Another valid gzip in place of a verified download: decode checks the checksum again."""
    files = _sample_with(tmp_path, "train_labels", lambda t: t.__setitem__(0, (int(t[0]) + 1) % 10))
    sums = {key: spec for key, spec in SAMPLE_SUMS.items()}
    with pytest.raises(
        DataError, match=r"train_labels\.gz: sha256 of decompressed content is .* changed since"
    ):
        data.decode_dataset(files, sums)
    original = {k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()}
    assert data.decode_dataset(original, sums)["train_labels"].shape == (1000,)


# --- input that would exhaust the machine ---


@functools.cache
def gzip_bomb(header: bytes, size: int = 2**31) -> bytes:
    """A valid gzip file (about 2 MB) whose content is ``header`` and zeros up to about ``size``
    bytes: one 1 MiB block of zeros compressed once and repeated (each block starts afresh after a
    full flush), so that neither this nor the test ever holds the inflated content."""
    chunk = bytes(1 << 20)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = deflate.compress(header) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    n = (size - len(header)) // len(chunk)
    crc = zlib.crc32(header)
    for _ in range(n):
        crc = zlib.crc32(chunk, crc)
    trailer = struct.pack("<II", crc, (len(header) + n * len(chunk)) & 0xFFFFFFFF)
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + first + block * n + deflate.flush() + trailer


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_gzip_bomb_is_refused_at_the_size_its_header_announces(tmp_path):
    """2 MB that inflate to 2 GiB, announcing the sample's 1000 x 28 x 28 images: refused after
    784,017 bytes, naming the file, in fetch and in decode, and without the memory to hold it."""
    name = "train-images-idx3-ubyte.gz"
    header = gzip.decompress((SAMPLE / name).read_bytes())[:16]
    bomb = gzip_bomb(header)
    assert len(bomb) < 3_000_000
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / name).write_bytes(bomb)
    before = _peak_rss_mb()
    message = f"{name}: the decompressed content holds more than the 784016 bytes its IDX header announces"
    with pytest.raises(DataError, match=message):
        fetch.inflate(bomb, name)
    with pytest.raises(DataError, match=f"could not fetch {name}; sources tried:\n  .*mirror: {message}"):
        fetch.fetch_file(name, SAMPLE_SUMS["train_images"], [str(tmp_path / "mirror")], tmp_path / name)
    assert not (tmp_path / name).exists()
    with pytest.raises(DataError, match=f"mirror/{message}"):
        data.read_idx_file(tmp_path / "mirror" / name, 3, SAMPLE_SUMS["train_images"])
    assert _peak_rss_mb() - before < 200  # MB: the content is never held whole


def test_a_header_announcing_more_than_the_maximum_is_refused_before_inflating():
    huge = gzip.compress(b"\0\0\x08\x03" + struct.pack(">III", 60000, 1000, 1000) + bytes(1000))
    with pytest.raises(DataError, match=r"x\.gz: IDX header announces shape \[60000, 1000, 1000\] "
                       r"\(60000000016 bytes\), above the maximum of 2147483648"):  # fmt: skip
        fetch.inflate(huge, "x.gz")
    with pytest.raises(DataError, match=r"x\.gz: not IDX content \(it starts with 0x68656c6c"):
        fetch.inflate(gzip.compress(b"hello" + bytes(10**6)), "x.gz")


def test_gzip_members_and_padding_inflate_as_gzip_does():
    content = data.encode_idx(torch.arange(200, dtype=torch.uint8))
    two_members = gzip.compress(content[:50]) + gzip.compress(content[50:]) + b"\0" * 8
    assert fetch.inflate(two_members, "x") == (content, fetch.sha256(content))
    with pytest.raises(DataError, match=r"x: truncated or corrupt gzip data .*not another gzip member"):
        fetch.inflate(two_members + b"junk", "x")
    with pytest.raises(DataError, match="x: truncated or corrupt gzip data"):
        fetch.inflate(gzip.compress(content)[:-4], "x")
    assert fetch.inflate(content, "x")[0] == content  # plain content: unchanged


@pytest.mark.parametrize("shape", [(0, 28, 28), (3, 0, 28)])
def test_an_idx_file_with_a_zero_dimension_is_refused_naming_it(tmp_path, shape):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(data.encode_idx(torch.zeros(shape, dtype=torch.uint8))))
    with pytest.raises(
        DataError,
        match=rf"{path.name}: IDX header announces shape \[{shape[0]}, {shape[1]}, 28\], with a zero dimension",
    ):
        data.read_idx_file(path, 3)


def test_the_pause_between_attempts_is_capped():
    assert [fetch.pause(2.0, attempt) for attempt in (1, 2, 3, 7, 8, 10)] == [1, 2, 4, 60, 60, 60]
    assert fetch.pause(1e10, 10**6) == fetch.MAX_BACKOFF  # no overflow
