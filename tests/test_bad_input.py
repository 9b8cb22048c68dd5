"""Bad input through the workflow: each bad config value or data file makes `snakemake` exit non-zero
before any network is trained, with a message naming the key or the file. Run alone with
`pytest -m faults`."""

from __future__ import annotations

import gzip
import hashlib
import math
from pathlib import Path

import pytest
import torch
import yaml

from lottery.data import encode_idx, parse_idx

from .test_data import gzip_bomb
from .test_faults import SMALL, run, small_workdir
from .test_workflow import RESULTS

pytestmark = pytest.mark.faults

# (config changes merged over the small experiment, a substring the output must hold)
BAD_CONFIG = {
    "iterations zero": ({"training": {"iterations": 0}}, "invalid configuration: training.iterations = "),
    "iterations a word": (
        {"training": {"iterations": "many"}},
        "invalid configuration: training.iterations = ",
    ),
    "iterations 10^12": (
        {"training": {"iterations": 10**12}},
        "invalid configuration: training.iterations = ",
    ),
    "negative learning rate": (
        {"training": {"learning_rate": -0.1}},
        "invalid configuration: training.learning_rate = ",
    ),
    "infinite learning rate": ({"training": {"learning_rate": math.inf}}, "training.learning_rate"),
    "batch size zero": ({"training": {"batch_size": 0}}, "invalid configuration: training.batch_size = "),
    "batch larger than the data": ({"training": {"batch_size": 5000}}, "training.batch_size is 5000"),
    "evaluation never": ({"training": {"eval_every": 0}}, "invalid configuration: training.eval_every = "),
    "test curve round past the last": (
        {"training": {"test_curve_rounds": [5]}},
        "training.test_curve_rounds",
    ),
    "unknown training key": ({"training": {"lerning_rate": 0.1}}, "lerning_rate"),
    "unknown top-level key": ({"traning": {"iterations": 10}}, "traning"),
    "rewinding past the end": ({"variants": {"rewind_iterations": [200]}}, "variants.rewind_iterations"),
    "unknown rounds word": ({"variants": {"rounds": "some"}}, "invalid configuration: variants.rounds = "),
    "sweep without rounds": ({"pruning": {"sweep": {"ratios": [0.5], "rounds": []}}}, "pruning.sweep"),
    "pruning rate above 1": (
        {"pruning": {"schedules": [{"rate": 1.5, "rounds": 2}]}},
        "invalid configuration: pruning.schedules[0].rate = ",
    ),
    "zero rounds": (
        {"pruning": {"schedules": [{"rate": 0.2, "rounds": 0}]}},
        "invalid configuration: pruning.schedules[0].rounds = ",
    ),
    "unknown schedule key": ({"pruning": {"schedules": [{"rate": 0.2, "rounds": 2, "rats": 1}]}}, "rats"),
    "experiment ..": ({"experiment": ".."}, "invalid configuration: experiment = "),
    "experiment .": ({"experiment": "."}, "invalid configuration: experiment = "),
    "dataset name ..": ({"data": {"name": ".."}}, "invalid configuration: data.name = "),
    "seed above 2^63": ({"seeds": {"split": 0, "init": [2**63]}}, "invalid configuration: seeds.init[0] = "),
    "negative split seed": ({"seeds": {"split": -1, "init": [1]}}, "invalid configuration: seeds.split = "),
    "no seeds": ({"seeds": {"split": 0, "init": []}}, "invalid configuration: seeds.init = "),
    "no hidden layer": ({"model": {"hidden": [0]}}, "invalid configuration: model.hidden[0] = "),
    "input size not the images'": ({"model": {"input_size": 100}}, "model.input_size is 100"),
    "fewer classes than labels": ({"model": {"num_classes": 5}}, "model.num_classes is 5"),
    "validation as big as the data": ({"data": {"validation_size": 1000}}, "data.validation_size is 1000"),
    "bootstrap too small": ({"analysis": {"bootstrap": 5}}, "invalid configuration: analysis.bootstrap = "),
    # documented maxima (issue 25): what drives memory, time or the number of jobs
    "a million draws": (
        {"variants": {"draws": {"random": 10**6}}},
        "invalid configuration: variants.draws.random = 1000000: 1000000 is greater than the maximum of 100",
    ),
    "bootstrap 10^9": (
        {"analysis": {"bootstrap": 10**9}},
        "invalid configuration: analysis.bootstrap = 1000000000: 1000000000 is greater than the maximum of "
        "100000",
    ),
    "hidden layers 100000 wide": (
        {"model": {"hidden": [100000, 100000]}},
        "is greater than the maximum of 10000; model.hidden is: Widths of mlp's hidden layers",
    ),
    "11 hidden layers": (
        {"model": {"hidden": [10] * 11}},
        "11 entries, more than the maximum of 10; model.hidden is: ",
    ),
    "input size 10^6": (
        {"model": {"input_size": 10**6}},
        "invalid configuration: model.input_size = 1000000: ",
    ),
    "1000 classes": ({"model": {"num_classes": 1000}}, "invalid configuration: model.num_classes = 1000: "),
    "5000 seeds": (
        {"seeds": {"split": 0, "init": list(range(1, 5001))}},
        "5000 entries, more than the maximum of 1000; seeds.init is: ",
    ),
    "1001 data orders": (
        {"seeds": {"split": 0, "init": [1], "data_order": list(range(1001))}},
        "1001 entries, more than the maximum of 1000; seeds.data_order is: ",
    ),
    "a million retries": (
        {"data": {"download": {"retries": 10**6}}},
        "invalid configuration: data.download.retries = 1000000: 1000000 is greater than the maximum of 10",
    ),
    "timeout of 11 days": (
        {"data": {"download": {"timeout": 10**6}}},
        "invalid configuration: data.download.timeout = 1000000: 1000000 is greater than the maximum of 3600",
    ),
    "1000 rounds": (
        {"pruning": {"schedules": [{"rate": 0.2, "rounds": 1000}]}},
        "invalid configuration: pruning.schedules[0].rounds = 1000: ",
    ),
    "101 schedules": (
        {"pruning": {"schedules": [{"rate": 0.2, "rounds": 2}] * 101}},
        "invalid configuration: pruning.schedules = ",
    ),
    "sweep of 1000 rounds": (
        {"pruning": {"sweep": {"ratios": [0.5], "rounds": [1000]}}},
        "invalid configuration: pruning.sweep.rounds[0] = 1000: ",
    ),
    "101 sweep ratios": (
        {"pruning": {"sweep": {"ratios": [i / 200 for i in range(101)], "rounds": [1]}}},
        "101 entries, more than the maximum of 100; pruning.sweep.ratios is: ",
    ),
    "101 rewind iterations": (
        {"variants": {"rewind_iterations": list(range(1, 102))}},
        "101 entries, more than the maximum of 100; variants.rewind_iterations is: ",
    ),
    # numbers that are not finite, at any key
    "max ratio NaN": (
        {"analysis": {"max_ratio": math.nan}},
        "invalid configuration: analysis.max_ratio = NaN: not a finite number; analysis.max_ratio is: ",
    ),
    "timeout NaN": (
        {"data": {"download": {"timeout": math.nan}}},
        "invalid configuration: data.download.timeout = NaN: not a finite number",
    ),
    "timeout infinite": (
        {"data": {"download": {"timeout": math.inf}}},
        "invalid configuration: data.download.timeout = Infinity: inf is greater than the maximum of 3600",
    ),
    "learning rate NaN": (
        {"training": {"learning_rate": math.nan}},
        "invalid configuration: training.learning_rate = NaN: not a finite number",
    ),
    "sparse density NaN": (
        {"training": {"sparse_max_density": math.nan}},
        "invalid configuration: training.sparse_max_density = NaN: not a finite number",
    ),
    "pruning rate NaN": (
        {"pruning": {"schedules": [{"rate": math.nan, "rounds": 2}]}},
        "invalid configuration: pruning.schedules[0].rate = NaN: not a finite number",
    ),
    "output rate factor NaN": (
        {"pruning": {"output_rate_factor": math.nan}},
        "invalid configuration: pruning.output_rate_factor = NaN: not a finite number",
    ),
    # schedules whose folders would be one, rounds given twice
    "rates that print alike": (
        {"pruning": {"schedules": [{"rate": 0.2, "rounds": 2}, {"rate": 0.2000001, "rounds": 2}]}},
        "invalid configuration: pruning.schedules[1] and pruning.schedules[0] have rates 0.2000001 and "
        "0.2, which share the folder rate-0.2 (6 significant digits): give rates that differ there, or "
        "equal ones",
    ),
    "ratios that print alike": (
        {
            "pruning": {
                "schedules": [{"ratio": 0.5, "rounds": 2}],
                "sweep": {"ratios": [0.5000001], "rounds": [2]},
            }
        },
        "invalid configuration: pruning.sweep's {ratio: 0.5000001, rounds: 2} and pruning.schedules[0] "
        "have ratios 0.5000001 and 0.5, which share the folder ratio-0.5-rounds-2",
    ),
    "instability rounds twice": (
        {"analysis": {"instability": {"enabled": True, "rounds": [0, 2, 2]}}},
        "invalid configuration: analysis.instability.rounds = [0, 2, 2]: 2 given more than once",
    ),
    "instability rewinding twice": (
        {"analysis": {"instability": {"enabled": True, "rounds": [0], "rewind_iterations": [0, 50, 50]}}},
        "invalid configuration: analysis.instability.rewind_iterations = [0, 50, 50]: 50 given more than once",
    ),
    "pixel-map rounds twice": (
        {"analysis": {"pixel_map": {"enabled": True, "rounds": [1, 1, 2]}}},
        "invalid configuration: analysis.pixel_map.rounds = [1, 1, 2]: 1 given more than once",
    ),
    "control rewinding twice": (
        {"variants": {"rewind_iterations": [50, 50]}},
        "invalid configuration: variants.rewind_iterations = [50, 50]: 50 given more than once",
    ),
}


def trained(workdir: Path) -> list[Path]:
    """What a training job would have left: weights and metrics of any network."""
    results = workdir / RESULTS
    return sorted(results.rglob("metrics.json")) + sorted(results.rglob("final.safetensors"))


def merged(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = (
            merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
        )
    return out


@pytest.mark.parametrize("case", sorted(BAD_CONFIG))
def test_a_bad_config_value_is_refused_before_any_training(case, tmp_path):
    changes, message = BAD_CONFIG[case]
    workdir = small_workdir(tmp_path)
    (workdir / "config" / "small.yaml").write_text(yaml.safe_dump(merged(SMALL, changes)))
    result = run(workdir)
    assert result.returncode != 0, f"{case}: accepted"
    assert message in result.stdout + result.stderr, (result.stdout + result.stderr)[-3000:]
    assert not trained(workdir), f"{case}: a network was trained before the refusal"


# --- bad data files: (file, what is done to its decompressed content or its bytes, message) ---


def _content(path: Path) -> bytes:
    return gzip.decompress(path.read_bytes())


def _with_header(content: bytes, **changes: int) -> bytes:
    """IDX content with its magic number or first dimension replaced."""
    data = bytearray(content)
    if "magic" in changes:
        data[0:4] = changes["magic"].to_bytes(4, "big")
    if "count" in changes:
        data[4:8] = changes["count"].to_bytes(4, "big")
    return bytes(data)


def _relabelled(content: bytes, index: int, label: int) -> bytes:
    labels = parse_idx(content, "labels", 1)
    labels[index] = label
    return encode_idx(labels)


def _images_of_shape(content: bytes, rows: int, cols: int) -> bytes:
    images = parse_idx(content, "images", 3)
    return encode_idx(images[:, :rows, :cols])


# name -> (file, what is done to it: None truncates it, "missing" deletes it, else a function of its
#          decompressed content giving its new bytes; a part of the error message)
BAD_DATA = {
    "truncated gzip": ("train-images-idx3-ubyte.gz", None, "truncated or corrupt gzip"),
    "not gzip": (
        "train-labels-idx1-ubyte.gz",
        lambda c: b"not a gzip file at all",
        "sha256 of decompressed content",
    ),
    "empty": ("t10k-images-idx3-ubyte.gz", lambda c: b"", ""),
    "missing": ("t10k-labels-idx1-ubyte.gz", "missing", "t10k-labels-idx1-ubyte.gz"),
    "another file's content": (
        "train-labels-idx1-ubyte.gz",
        lambda c: gzip.compress(c[:-1] + b"\x00", mtime=0),
        "sha256 of decompressed content",
    ),
    "wrong magic number": ("train-images-idx3-ubyte.gz", lambda c: _with_header(c, magic=0x0803 + 0x100), ""),
    "more images than data": ("t10k-images-idx3-ubyte.gz", lambda c: _with_header(c, count=201), ""),
    "training label 12": ("train-labels-idx1-ubyte.gz", lambda c: _relabelled(c, 7, 12), "12"),
    "test label 200": ("t10k-labels-idx1-ubyte.gz", lambda c: _relabelled(c, 3, 200), "200"),
    "labels fewer than images": (
        "train-labels-idx1-ubyte.gz",
        lambda c: encode_idx(parse_idx(c, "l", 1)[:999]),
        "",
    ),
    "labels as images": (
        "train-images-idx3-ubyte.gz",
        lambda c: encode_idx(torch.zeros(1000, dtype=torch.uint8)),
        "",
    ),
    "test images of another size": ("t10k-images-idx3-ubyte.gz", lambda c: _images_of_shape(c, 28, 27), ""),
    # 2 MB that inflate to 2 GiB, the header the sample's (the checksum stays the sample's: the file
    # is refused at the size its header announces, before its hash is complete)
    "gzip bomb": (
        "train-images-idx3-ubyte.gz",
        lambda c: gzip_bomb(c[:16]),
        "train-images-idx3-ubyte.gz: the decompressed content holds more than the 784016 bytes its IDX "
        "header announces",
    ),
    "no test images": (
        "t10k-images-idx3-ubyte.gz",
        lambda c: encode_idx(torch.zeros(0, 28, 28, dtype=torch.uint8)),
        "t10k-images-idx3-ubyte.gz: IDX header announces shape [0, 28, 28], with a zero dimension: no data",
    ),
}
# the cases that replace a file by content of the right checksum (as a user's own dataset would
# have): they reach the checks after the checksum
CHECKSUM_UPDATED = {
    "wrong magic number", "more images than data", "training label 12", "test label 200",
    "labels fewer than images", "labels as images", "test images of another size", "no test images",
}  # fmt: skip
KEY_OF = {
    "train-images-idx3-ubyte.gz": "train_images",
    "train-labels-idx1-ubyte.gz": "train_labels",
    "t10k-images-idx3-ubyte.gz": "test_images",
    "t10k-labels-idx1-ubyte.gz": "test_labels",
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_a_bad_data_file_is_refused_before_any_training_naming_it(case, tmp_path):
    name, change, message = BAD_DATA[case]
    workdir = small_workdir(tmp_path)
    path = workdir / "data" / "mnist-sample" / name
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    if change is None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif change == "missing":
        path.unlink()
    else:
        new = change(_content(path))
        if case in CHECKSUM_UPDATED:
            config["data"]["files"][KEY_OF[name]]["sha256"] = hashlib.sha256(new).hexdigest()
            new = gzip.compress(new, mtime=0)
        path.write_bytes(new)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run(workdir)
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"{case}: accepted"
    assert any("DataError" in line and name in line for line in output.splitlines()), output[-3000:]
    assert message in output, output[-3000:]
    assert not trained(workdir), f"{case}: a network was trained before the refusal"


def test_a_failed_fetch_says_how_to_use_a_local_copy_without_a_traceback(tmp_path):
    """No network (here: mirrors that do not exist): the job's log holds every attempt and ends with
    one line on data.source; an expected failure shows no traceback, in the log or on the terminal."""
    workdir = small_workdir(tmp_path)
    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    config["data"]["source"] = None
    config["data"]["mirrors"] = [(tmp_path / "no-such-mirror").as_uri() + "/"]
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    result = run(workdir)
    assert result.returncode != 0
    log = (workdir / "logs" / "mnist-sample" / "fetch_dataset.log").read_text()
    assert "-idx3-ubyte.gz; sources tried:\n  file://" in log
    assert log.rstrip().splitlines()[-1].startswith("Without a network, use a local copy:")
    assert 'data={"source": "/path/to/folder"}' in log
    assert "Traceback" not in log and "Traceback" not in result.stdout + result.stderr
