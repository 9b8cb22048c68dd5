"""The compiled kernels give the same bits from every build flavour (``$LOTTERY_MARCH``) and on every
machine: no fused multiply-add, exp and log of their own, sums in a fixed order (sparse_kernels.c).

Each flavour this CPU can run is built into a cache of its own and trains, in a process of its own
(``kernels.load`` is cached per process), two networks on the committed ``.test`` MNIST sample:

- ``sparse``: LeNet-300-100 pruned to round 12 of the paper's schedule (magnitude pruning of θ0), every
  layer on the sparse path: all of its arithmetic is the kernels';
- ``round0``: the dense network, its first layer dense-nonblank, fc2 and fc3 the CSR matrices of
  all their weights: all of its arithmetic is the kernels' too.

The final weights' sha256 must be the same for every flavour, and both must be the ones committed in
``tests/golden/digests.json`` (made on another machine, perhaps): so the suite, run on any kind of
machine, checks identity across kinds. So do θ0's digest and the sample split's indices and
statistics, which PyTorch's generator and reductions make (what every network starts from). To remake that file (only where a change of the
kernels' arithmetic is meant), run ``python -c "from tests.test_flavours import write_golden;
write_golden()"`` from the repository root, and say on which machine in the commit.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lottery import kernels

from .conftest import HUNG

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "digests.json"
BASELINE = "x86-64"
INIT_SEED, SPLIT_SEED, DATA_ORDER_SEED = 1, 0, 2
STEPS, BATCH = 100, 60
N_TRAIN, N_VAL = 600, 100
SPARSE_ROUND = 12  # of the paper's schedule: fc1 and fc2 6.9%, fc3 28.2% remaining


def runnable(flavour: str) -> bool:
    try:
        kernels.flavour(flavour)
    except kernels.Unusable:
        return False
    return True


HERE = [f for f in kernels.FLAVOURS if runnable(f)]


# ---------------------------------------------------------------------- the worker (a process each)


def _sample_data():
    import torch

    from lottery import data, fetch
    from tests.conftest import SAMPLE

    dataset = data.decode_dataset({k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()})
    split = data.make_split(dataset, N_VAL, SPLIT_SEED)
    mean, std = float(split["mean"]), float(split["std"])
    dataset = {key: torch.from_numpy(array) for key, array in dataset.items()}
    train, val = torch.from_numpy(split["train_indices"][:N_TRAIN]), torch.from_numpy(split["val_indices"])
    images = dataset["train_images"]
    return data.TensorData(
        train_x=data._normalise(images[train], mean, std),
        train_y=dataset["train_labels"][train].contiguous(),
        val_x=data._normalise(images[val], mean, std),
        val_y=dataset["train_labels"][val].contiguous(),
        test_x=data._normalise(dataset["test_images"][:100], mean, std),
        test_y=dataset["test_labels"][:100].contiguous(),
        background=float(data._normalise(images[:1] * 0, mean, std)[0, 0]),
    )


def _split_record() -> dict[str, str]:
    """The sample's split: its indices' sha256 and its statistics (float.hex), as the workflow makes
    them (PyTorch's permutation and float64 reductions, by numpy: lottery.order, lottery.reductions),
    which must not depend on the machine."""
    from lottery import data, fetch
    from tests.conftest import SAMPLE

    dataset = data.decode_dataset({k: SAMPLE / name for k, (name, _) in fetch.MNIST_FILES.items()})
    split = data.make_split(dataset, N_VAL, SPLIT_SEED)
    indices = np.concatenate([np.asarray(split["train_indices"]), np.asarray(split["val_indices"])])
    return {
        "indices_sha256": hashlib.sha256(indices.astype(np.int64).tobytes()).hexdigest(),
        "mean": float(split["mean"]).hex(),
        "std": float(split["std"]).hex(),
    }


def _digest(state) -> str:
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode() + b"\0")
        h.update(np.ascontiguousarray(np.asarray(state[name])).tobytes())
    return h.hexdigest()


def worker(contract: str = "off", define: str = "") -> None:
    """Train both networks with the kernels of ``$LOTTERY_MARCH`` (built with ``-ffp-contract=<contract>``:
    ``fast`` only to show that the comparison sees fused multiply-adds; ``define``: a ``-D`` flag more);
    print a JSON line."""
    import torch

    from lottery import pruning
    from lottery.desc import Architecture, Schedule, TrainingHparams
    from lottery.model import glorot_normal_init, prunable
    from lottery.training import make_trainer

    torch.set_num_threads(1)
    if contract != "off":
        kernels.FLAGS = tuple(
            f"-ffp-contract={contract}" if f.startswith("-ffp-contract") else f for f in kernels.FLAGS
        )
    if define:
        kernels.FLAGS = (*kernels.FLAGS, define)
    lib = kernels.load()
    assert lib is not None, kernels.unavailable_reason
    data = _sample_data()
    init = glorot_normal_init(Architecture(), INIT_SEED)
    dense = pruning.dense_masks(prunable(init))
    sizes = {name: w.numel() for name, w in prunable(init).items()}
    keep = pruning.layer_keep_counts(sizes, Schedule(rate=0.2, rounds=SPARSE_ROUND), SPARSE_ROUND)
    masks = {"sparse": pruning.prune_layerwise(prunable(init), dense, keep), "round0": dense}
    hp = TrainingHparams(iterations=STEPS, batch_size=BATCH, eval_every=STEPS)
    out = {
        "flavour": kernels.flavour_of(lib),
        "library": Path(lib._name).name,
        "path": lib._name,
        "networks": {},
    }
    for name, mask in masks.items():
        trainer, paths = make_trainer(init, mask, data, hp, DATA_ORDER_SEED)
        trainer.run(STEPS)
        val = trainer.evaluate(trainer.evaluation_inputs(data.val_x), data.val_y)
        out["networks"][name] = {
            "paths": {k.removesuffix(".weight"): v for k, v in paths.items()},
            "weights_sha256": _digest(trainer.state_dict()),
            "val_loss": val.loss.hex(),
        }
    out["theta0_sha256"] = _digest(init)  # PyTorch's generator: the same on every machine?
    out["split"] = _split_record()
    print(json.dumps(out))


def run_flavour(flavour: str, cache: Path, contract: str = "off", define: str = "") -> dict:
    env = {**os.environ, "LOTTERY_MARCH": flavour, "LOTTERY_KERNEL_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", f"from tests.test_flavours import worker; worker({contract!r}, {define!r})"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HUNG,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine() -> dict:
    from lottery.provenance import cpu

    info = cpu()
    flags = kernels.cpu_flags() or set()
    info["avx512f"] = "avx512f" in flags
    return info


def write_golden() -> None:
    """Write :data:`GOLDEN` from this machine's native build (see the module's docstring)."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        got = run_flavour("native", Path(tmp) / "cache")
    GOLDEN.parent.mkdir(exist_ok=True)
    record = {
        "about": (
            f"sha256 of LeNet-300-100's weights after {STEPS} steps of Adam (batch {BATCH}) on the first "
            f"{N_TRAIN} training examples of .test/data/mnist-sample (split seed {SPLIT_SEED}, {N_VAL} "
            f"validation examples), theta0 glorot_normal_init seed {INIT_SEED}, data order seed "
            f"{DATA_ORDER_SEED}; val_loss: float.hex of the validation loss after training; the native "
            f"trainer. 'sparse': magnitude-pruned theta0 at round {SPARSE_ROUND} of the paper's schedule, "
            "every layer on the sparse path. 'round0': the dense network, fc1 dense-nonblank, fc2 and fc3 "
            "sparse (the CSR matrices of all their weights). All arithmetic in sparse_kernels.c: both "
            "checked on every machine. theta0_sha256: LeNet-300-100's theta0 (glorot_normal_init, seed "
            f"{INIT_SEED}); split: the sample's split (seed {SPLIT_SEED}, {N_VAL} validation examples), its "
            "indices' sha256 and its mean and std (float.hex): checked on every machine."
        ),
        "made_on": {
            **machine(),
            "torch": torch.__version__,
            "flavour": got["flavour"],
            "library": got["library"],
        },
        "sparse": got["networks"]["sparse"],
        "round0": got["networks"]["round0"],
        "theta0_sha256": got["theta0_sha256"],
        "split": got["split"],
    }
    GOLDEN.write_text(json.dumps(record, indent=2) + "\n")


# ---------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def lib():
    built = kernels.load()
    assert built is not None, kernels.unavailable_reason
    return built


@pytest.fixture(scope="module")
def flavours(tmp_path_factory) -> dict[str, dict]:
    """Each flavour this CPU can run: its build's training results."""
    return {f: run_flavour(f, tmp_path_factory.mktemp(f) / "cache") for f in HERE}


def _array(lib, fn: str, x) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    getattr(lib, fn)(len(x), x.ctypes.data, y.ctypes.data)
    return y


def test_exp_is_correctly_rounded_but_for_ties_within_1e_16(lib):
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [rng.uniform(-87, 88.7, 100_000), rng.uniform(-20, 0, 100_000), rng.uniform(-1e-3, 1e-3, 10_000)]
    ).astype(np.float32)
    got = _array(lib, "lt_expf_array", x).astype(np.float64)
    want = np.array([math.exp(float(v)) for v in x])
    assert np.max(np.abs(got - want) / want) < 5.97e-8  # half a float ulp: 2^-24 = 5.9605e-8
    assert (got == want.astype(np.float32)).all()  # correctly rounded, here
    special = _array(lib, "lt_expf_array", [np.nan, -np.inf, np.inf, -200.0, 200.0, 0.0])
    assert np.isnan(special[0]) and list(special[1:]) == [0.0, np.inf, 0.0, np.inf, 1.0]


def test_log_is_correctly_rounded_but_for_ties_within_1e_16(lib):
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [
            rng.uniform(1, 10, 100_000),
            np.exp(rng.uniform(-80, 80, 100_000)),
            1 + rng.uniform(-1e-3, 1e-3, 10_000),
        ]
    ).astype(np.float32)
    got = _array(lib, "lt_logf_array", x).astype(np.float64)
    want = np.array([math.log(float(v)) for v in x])
    nonzero = want != 0
    assert np.max(np.abs(got - want)[nonzero] / np.abs(want[nonzero])) < 5.97e-8
    assert (got == want.astype(np.float32)).all()
    special = _array(lib, "lt_logf_array", [np.nan, -1.0, 0.0, np.inf, 1.0])
    assert np.isnan(special[:2]).all() and list(special[2:]) == [-np.inf, np.inf, 0.0]


def test_adams_powers_are_correctly_rounded(lib):
    for b in (0.9, 0.999, 0.99):
        for n in (0, 1, 2, 3, 7, 100, 503, 2904, 5000):
            exact = Fraction(b) ** n
            got = lib.lt_pow_test(b, n)
            nearest = float(exact) if exact >= Fraction(2) ** -200 else 0.0  # as 1 - b^n needs it
            assert got == nearest, (b, n)  # Fraction to float rounds correctly
    assert (
        lib.lt_pow_test(0.9, 10**6) == 0.0
        and lib.lt_pow_test(0.0, 3) == 0.0
        and lib.lt_pow_test(1.0, 9) == 1.0
    )


def test_the_kernels_call_nothing_from_libm(lib):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    symbols = subprocess.run([nm, "-D", "--undefined-only", lib._name], capture_output=True, text=True).stdout
    names = {line.split()[-1].split("@")[0] for line in symbols.splitlines() if line.strip()}
    maths = {n for n in names if re.fullmatch(r"(exp|exp2|log|log2|pow|fma|sqrt|sin|cos|tanh?)[fl]?", n)}
    assert not maths, f"the kernels call {sorted(maths)}: libm picks their code by CPU"


def test_an_unknown_flavour_falls_back_saying_why(monkeypatch, tmp_path):
    monkeypatch.setenv("LOTTERY_MARCH", "skylake")
    monkeypatch.setenv("LOTTERY_KERNEL_CACHE", str(tmp_path / "cache"))
    kernels.load.cache_clear()
    try:
        assert kernels.load() is None
        reason = kernels.unavailable_reason
        assert "LOTTERY_MARCH='skylake'" in reason
        assert all(f in reason for f in kernels.FLAVOURS)
        assert not (tmp_path / "cache").exists()  # refused before anything is built
    finally:
        kernels.load.cache_clear()


def test_a_flavour_this_cpu_cannot_run_falls_back_saying_why(monkeypatch, tmp_path):
    monkeypatch.setenv("LOTTERY_MARCH", "x86-64-v3")
    monkeypatch.setenv("LOTTERY_KERNEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "cpu_flags", lambda: {"sse2", "avx", "fma"})  # an old CPU
    monkeypatch.setattr(kernels.platform, "machine", lambda: "x86_64")
    kernels.load.cache_clear()
    try:
        assert kernels.load() is None  # never built, so never run (no SIGILL)
        reason = kernels.unavailable_reason
        assert "LOTTERY_MARCH=x86-64-v3" in reason and "cannot run" in reason and "avx2" in reason
        assert "popcnt" in reason  # v3 needs v2 too
    finally:
        kernels.load.cache_clear()
    assert kernels.flavour_needs("x86-64-v4")[-1] == "avx512vl" and kernels.flavour_needs("x86-64") == ()


def test_each_flavour_has_its_own_build():
    keys = {kernels.build_flags(f) for f in kernels.FLAVOURS}
    assert len(keys) == len(kernels.FLAVOURS)
    for flags in keys:
        assert "-ffp-contract=off" in flags and not any("fast-math" in f for f in flags)


@pytest.mark.skipif(BASELINE not in HERE, reason="not an x86-64 CPU")
def test_every_flavour_gives_the_same_bits(flavours):
    """The x86-64 baseline (SSE2), v2, v3 (AVX2), v4 (AVX-512, where the CPU has it) and native
    builds train both networks to the same bytes."""
    assert len({r["library"] for r in flavours.values()}) == len(flavours)  # a build each
    base = flavours[BASELINE]["networks"]
    assert set(base["sparse"]["paths"].values()) == {"sparse"}
    assert base["round0"]["paths"] == {"fc1": "dense-nonblank", "fc2": "sparse", "fc3": "sparse"}
    for flavour, result in flavours.items():
        assert result["flavour"] == flavour
        for network in ("sparse", "round0"):
            assert result["networks"][network] == base[network], (
                f"{flavour} differs from {BASELINE}: {network}"
            )


@pytest.mark.parametrize("network", ["sparse", "round0"])
def test_the_networks_give_the_committed_digests(flavours, network):
    """On whatever machine runs the suite: the digests made on the machine named in the file."""
    golden = json.loads(GOLDEN.read_text())
    for flavour, result in flavours.items():
        got = result["networks"][network]
        assert got["weights_sha256"] == golden[network]["weights_sha256"], (
            f"{flavour} on {machine()['model_name']} gives other {network} weights than "
            f"{golden['made_on']['model_name']}"
        )
        assert got == golden[network]


def test_theta0_and_the_split_are_the_committed_ones(flavours):
    """θ0 (PyTorch's normal draws) and the split's indices and statistics, on whatever machine runs the
    suite: what every network starts from and is normalised by, made on the machine named in the file."""
    golden = json.loads(GOLDEN.read_text())
    for result in flavours.values():
        assert result["theta0_sha256"] == golden["theta0_sha256"]
        assert result["split"] == golden["split"]


@pytest.mark.skipif("x86-64-v3" not in HERE, reason="the CPU cannot run x86-64-v3")
def test_the_comparison_would_see_fused_multiply_adds(flavours, tmp_path):
    """With GCC contracting a * b + c into FMAs (-ffp-contract=fast), v3 gives other bytes than the
    baseline (which has no FMA): the comparison above would catch a contraction."""
    objdump = shutil.which("objdump")
    fused = run_flavour("x86-64-v3", tmp_path / "cache", contract="fast")
    if objdump:

        def fmas(library: str) -> int:
            return subprocess.run([objdump, "-d", library], capture_output=True, text=True).stdout.count(
                "vfmadd"
            )

        assert fmas(fused["path"]) > 0
        assert all(fmas(result["path"]) == 0 for result in flavours.values())  # the real builds have none
    assert (
        fused["networks"]["sparse"]["weights_sha256"]
        != flavours[BASELINE]["networks"]["sparse"]["weights_sha256"]
    )


def test_rows_side_by_side_give_the_same_bits(flavours, tmp_path):
    """The forward pass and the input gradient run two rows (columns) side by side where a tile is
    few registers (AVX-512: ``PAIRS``), one at a time elsewhere: both orders of work, built here with
    the other choice than this flavour's, give the committed weights."""
    flavour = "x86-64-v3" if "x86-64-v3" in HERE else BASELINE
    source = (ROOT / "src" / "lottery" / "sparse_kernels.c").read_text()
    assert "#define PAIRS (VW == 16)" in source
    other = run_flavour(flavour, tmp_path / "cache", define="-DLT_PAIRS=1")
    golden = json.loads(GOLDEN.read_text())
    for network in ("sparse", "round0"):
        assert other["networks"][network] == golden[network]
        assert other["networks"][network] == flavours[flavour]["networks"][network]


def test_the_trainer_records_the_flavour_in_the_provenance_only(tiny_data, lib):
    from lottery import provenance
    from lottery.desc import Architecture, TrainingHparams
    from lottery.model import glorot_normal_init, prunable
    from lottery.training import train

    init = glorot_normal_init(Architecture(input_size=20, hidden=(16, 8), num_classes=4), seed=0)
    masks = {n: (w.abs() > 0.3).float() for n, w in prunable(init).items()}
    result = train(init, masks, tiny_data, TrainingHparams(iterations=20, batch_size=30, eval_every=10), 0)
    assert result.kernel_flavour == kernels.flavour() and "kernel_flavour" not in result.metrics()
    made = provenance.network_provenance(
        "2026-01-01T00:00:00+00:00", 1.0, result.paths, result.kernel_flavour, result.backend
    )
    assert made["kernel_flavour"] == kernels.flavour() and made["backend"] == "native"
    dense = train(init, masks, tiny_data, TrainingHparams(iterations=20, batch_size=30, backend="torch"), 0)
    assert dense.kernel_flavour is None
