"""The experiment's typed pieces - training hyperparameters, architecture, pruning schedule, replicate,
and the network a job trains - with one serialisation each way. No PyTorch, pandas or NumPy: the
workflow reads these when it builds its DAG.

A piece travels from the config to the trainer in this one form: ``common.smk`` builds it, a rule's
``params:`` holds :func:`to_params` of it, the job's script hands it over and :func:`from_params`
gives the same object back. :func:`to_params` leaves out every field equal to its default, so that
adding a field with a default changes no finished job's params (Snakemake reruns a job whose params
change). The defaults equal the config schema's (``workflow/schemas/config.schema.yaml``, tested).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


def _plain(value: Any) -> Any:
    """JSON-able form of a field's value: tuples become lists, nested pieces their params."""
    if dataclasses.is_dataclass(value):
        return to_params(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def to_params(piece: Any) -> dict[str, Any]:
    """The fields of ``piece`` that differ from their defaults, as plain JSON values, keys sorted."""
    out = {}
    for f in dataclasses.fields(piece):
        value = getattr(piece, f.name)
        if f.default is not dataclasses.MISSING and value == f.default:
            continue
        out[f.name] = _plain(value)
    return dict(sorted(out.items()))


def plain(piece: Any) -> dict[str, Any]:
    """Every field of ``piece``, defaults too, as plain JSON values, keys sorted (what a replicate's
    record keeps: lottery.record) - except a field added after records were first written
    (:func:`_added`) at its default, so that those records still describe their experiments."""
    return {
        f.name: _plain(getattr(piece, f.name))
        for f in sorted(dataclasses.fields(piece), key=lambda f: f.name)
        if not (f.metadata.get("added") and getattr(piece, f.name) == f.default)
    }


def from_params(cls: type[T], params: Mapping[str, Any]) -> T:
    """The piece :func:`to_params` described; an unknown key is an error that names it."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown fields {unknown}; expected some of {sorted(fields)}")
    return cls(**{name: _coerce(fields[name].type, value) for name, value in params.items()})


def _coerce(kind: str, value: Any) -> Any:
    """A config or JSON value as the field's annotated type (``from __future__ import annotations``
    makes it a string): YAML's ``1`` for a float field is ``1.0``, a list for a tuple field a tuple."""
    if value is None or isinstance(value, bool):
        return value
    if kind.startswith("float") and isinstance(value, int):
        return float(value)
    if kind.startswith("tuple"):
        return tuple(value)
    return value


def derived_seed(key: str) -> int:
    """A 63-bit seed from a text key, independent of Python's hash randomisation."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") >> 1


def recorded(piece: Any) -> dict[str, Any]:
    """The fields marked ``record`` (``field(metadata={"record": True})``): what metrics.json keeps."""
    return {f.name: getattr(piece, f.name) for f in dataclasses.fields(piece) if f.metadata.get("record")}


def _record(default: Any = dataclasses.MISSING) -> Any:
    """A field whose value every network's ``metrics.json`` records (see :func:`recorded`)."""
    return field(default=default, metadata={"record": True})


def _added(default: Any) -> Any:
    """A field added after results were committed: left out of :func:`plain` (a replicate's record)
    at its default, as :func:`to_params` leaves every default out of a rule's params."""
    return field(default=default, metadata={"added": True})


BACKENDS = ("native", "torch", "autograd")  # lottery.training's trainers
DEVICES = ("cpu", "cuda")  # where the autograd trainer runs (training.device)


@dataclass(frozen=True)
class TrainingHparams:
    """How every network is trained: Adam, minibatches, the evaluation grid (the paper's protocol)."""

    learning_rate: float = _record(1.2e-3)
    batch_size: int = _record(60)
    iterations: int = 50_000
    eval_every: int = _record(100)
    test_every: int = 0  # 0: test accuracy only at the early-stop iteration and at the end
    sparse_max_density: float = _record(0.5)  # a first layer more dense reads only non-blank inputs
    backend: str = _record("native")  # "native" (lottery.native), "torch" (the MLP reference) or "autograd"
    device: str = _added("cpu")  # the autograd trainer's device, "cpu" or "cuda"; never recorded

    def __post_init__(self) -> None:
        for key in ("batch_size", "iterations", "eval_every"):
            if getattr(self, key) < 1:
                raise ValueError(f"training.{key} must be at least 1, got {getattr(self, key)}")
        if self.test_every < 0:
            raise ValueError(f"training.test_every must be >= 0, got {self.test_every}")
        if not 0 <= self.sparse_max_density <= 1:
            raise ValueError(f"training.sparse_max_density must be in [0, 1], got {self.sparse_max_density}")
        if self.backend not in BACKENDS:
            raise ValueError(f"training.backend must be one of {list(BACKENDS)}, got {self.backend!r}")
        if self.device not in DEVICES:
            raise ValueError(f"training.device must be one of {list(DEVICES)}, got {self.device!r}")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError(f"training.learning_rate must be positive and finite, got {self.learning_rate}")

    def eval_iterations(self, start: int = 0) -> list[int]:
        """Iterations after which the validation set is evaluated (always including the last).

        ``start`` > 0 resumes at that iteration (rewinding to θk): evaluation continues on the same grid.
        """
        first = (start // self.eval_every + 1) * self.eval_every
        points = list(range(first, self.iterations + 1, self.eval_every))
        if not points or points[-1] != self.iterations:
            points.append(self.iterations)
        return points


@dataclass(frozen=True)
class Architecture:
    """The model (``name``, a key of :data:`lottery.models.REGISTRY`) and its sizes: the inputs
    (``channels`` images of ``input_size / channels`` square pixels), the hidden widths of ``mlp``
    (LeNet-300-100 by default), the classes."""

    input_size: int = 784
    hidden: tuple[int, ...] = (300, 100)
    num_classes: int = 10
    name: str = _added("mlp")
    channels: int = _added(1)

    def __post_init__(self) -> None:
        widths = (self.input_size, *self.hidden, self.num_classes)
        if any(int(w) != w or w < 1 for w in widths):
            raise ValueError(f"layer widths must be positive integers, got {widths}")
        if int(self.channels) != self.channels or self.channels < 1:
            raise ValueError(f"model.channels must be a positive integer, got {self.channels}")
        if self.name != "mlp" and self.hidden != Architecture.hidden:
            raise ValueError(f"model.hidden is mlp's widths; model.name {self.name} has its own layers")
        self.weight_shapes()  # an unknown model.name, or inputs that do not fit it: a clear error now

    @property
    def widths(self) -> tuple[int, ...]:
        """The inputs, ``mlp``'s hidden widths and the classes."""
        return (self.input_size, *self.hidden, self.num_classes)

    @property
    def layer_names(self) -> list[str]:
        return [name.removesuffix(".weight") for name in self.weight_shapes()]

    @property
    def weight_names(self) -> list[str]:
        return list(self.weight_shapes())

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The model's prunable weights and their shapes, in network order (:mod:`lottery.models`)."""
        from lottery import models  # imports no PyTorch

        return models.get(self.name).weight_shapes(self)

    @property
    def prunable_count(self) -> int:
        return sum(math.prod(shape) for shape in self.weight_shapes().values())


def compound_rate(ratio: float, rounds: int) -> float:
    """Per-round rate r with 1 - (1 - r) ** rounds == ratio."""
    return 1.0 - (1.0 - ratio) ** (1.0 / rounds)


PAPER_SCHEDULE = "rate-0.2"  # the paper's iterative schedule: 20% of the hidden weights a round


def reference_schedule_name(rounds: Mapping[str, int]) -> str | None:
    """The reference schedule among the iterative fixed-rate ones (``rate-<r>`` names and their
    rounds): the paper's ``rate-0.2`` where there is one, else the one with the most rounds (the first
    by name among equals); None where there is none. The paper's claims and figures (read from
    runs.csv) and the ticket analyses (read from the experiment's description) both ask this one
    rule, so that they read the same tickets."""
    if not rounds:
        return None
    if PAPER_SCHEDULE in rounds:
        return PAPER_SCHEDULE
    return min(rounds, key=lambda name: (-rounds[name], name))


@dataclass(frozen=True)
class Schedule:
    """A pruning schedule: ``rounds`` rounds, each pruning ``rate`` of the surviving hidden weights.

    Built either from a fixed per-round rate (the paper: 20% a round) or from a requested total ratio p
    over n rounds, in which case the per-round rate is the compound rate r = 1 - (1 - p) ** (1 / n).
    The output layer is pruned at ``rate * output_rate_factor`` (the paper: half the rate).

    A ``oneshot`` schedule has the levels of the fixed-rate one but reaches each level k in one step
    from the dense network (train, prune to level k, rewind, train): the paper's one-shot tickets at the
    iterative tickets' Pm, layer by layer.
    """

    rate: float
    rounds: int
    output_rate_factor: float = 0.5
    ratio: float | None = None
    oneshot: bool = False
    conv_rate_factor: float = _added(0.5)  # conv layers at this fraction of the rate (paper: 10% of 20%)

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate < 1.0:
            raise ValueError(f"pruning rate must be in [0, 1), got {self.rate}")
        if self.rounds < 1:
            raise ValueError(f"a schedule needs at least one round, got rounds={self.rounds}")
        if not 0.0 <= self.output_rate_factor <= 1.0:
            raise ValueError(f"output_rate_factor must be in [0, 1], got {self.output_rate_factor}")
        if not 0.0 <= self.conv_rate_factor <= 1.0:
            raise ValueError(f"conv_rate_factor must be in [0, 1], got {self.conv_rate_factor}")
        if self.oneshot and self.ratio is not None:
            raise ValueError("oneshot goes with a fixed rate: {ratio, rounds: 1} is one-shot already")

    @classmethod
    def from_ratio(
        cls, ratio: float, rounds: int, output_rate_factor: float = 0.5, conv_rate_factor: float = 0.5
    ) -> Schedule:
        """The schedule that prunes a total ``ratio`` of the hidden weights in ``rounds`` rounds."""
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"prune ratio must be in [0, 1), got {ratio}")
        if rounds < 1:
            raise ValueError(f"a schedule needs at least one round, got rounds={rounds}")
        rate = compound_rate(ratio, rounds)
        return cls(rate, rounds, output_rate_factor, ratio, conv_rate_factor=conv_rate_factor)

    @property
    def name(self) -> str:
        """Directory name of the schedule: ``rate-0.2``, ``oneshot-rate-0.2`` or ``ratio-0.9-rounds-5``."""
        if self.ratio is None:
            return f"oneshot-rate-{self.rate:g}" if self.oneshot else f"rate-{self.rate:g}"
        return f"ratio-{self.ratio:g}-rounds-{self.rounds}"

    def up_to(self, round_: int) -> Schedule:
        """What round ``round_``'s job depends on: a fixed-rate schedule's round k is the same whatever
        rounds follow it, so its job sees ``rounds = k`` (adding rounds reruns no finished round); a
        ``{ratio, rounds}`` schedule's rate depends on all its rounds."""
        if not 1 <= round_ <= self.rounds:
            raise ValueError(f"{self.name} has rounds 1..{self.rounds}, not {round_}")
        return self if self.ratio is not None else dataclasses.replace(self, rounds=round_)

    def layer_rate(self, is_output: bool) -> float:
        return self.rate * self.output_rate_factor if is_output else self.rate

    def rate_of(self, kind: str) -> float:
        """The per-round rate of a layer of ``kind``: ``fc`` at the rate, ``output`` and ``conv`` at
        their factors of it (the paper's conv nets: conv 10-15%, fc 20%, output 10%)."""
        factors = {"fc": 1.0, "output": self.output_rate_factor, "conv": self.conv_rate_factor}
        if kind not in factors:
            raise ValueError(f"a layer's kind is one of {sorted(factors)}, not {kind!r}")
        return self.rate * factors[kind]

    def requested_ratio(self, round_: int) -> float:
        """Fraction of the hidden weights requested to be pruned after ``round_`` rounds."""
        return round(1.0 - (1.0 - self.rate) ** round_, 12)  # no float noise such as 0.19999999999999996


@dataclass(frozen=True)
class Replicate:
    """One trial: its θ0 seed, its minibatch-order seed and the (shared) split seed.

    The control variants draw their randomness from seeds of their own, offset from the init seed:
    ``reinit_seed`` for the reinitialisation, ``random_mask_seed`` for random pruning.
    """

    init_seed: int = _record()
    data_order_seed: int = _record()
    split_seed: int = _record()
    controls_offset: int = 10_000

    @property
    def reinit_seed(self) -> int:
        return self.init_seed + self.controls_offset

    def reinit_draw_seed(self, draw: int) -> int:
        """The seed of the reinit control's ``draw``-th initialisation: :attr:`reinit_seed` for the
        first, a hash of it and the draw for the others (no other seed of the experiment is hit)."""
        if draw < 1:
            raise ValueError(f"draws are numbered from 1, got {draw}")
        return self.reinit_seed if draw == 1 else derived_seed(f"{self.reinit_seed}/draw-{draw}")

    @property
    def random_mask_seed(self) -> int:
        return self.init_seed + 2 * self.controls_offset

    @property
    def second_copy_data_order_seed(self) -> int:
        """The data order of the instability analysis's second copies (:class:`Instability`)."""
        return self.data_order_seed + 3 * self.controls_offset

    @property
    def name(self) -> str:
        """The replicate's folder, ``seed-<init seed>``."""
        return f"seed-{self.init_seed}"


@dataclass(frozen=True)
class Instability:
    """The instability analysis (linear mode connectivity, Frankle et al., ICML 2020): for each
    ``variants`` network at each of ``rounds`` started at each of ``rewind_iterations``, two copies
    trained with different data orders, and the test error at ``points`` points between them."""

    enabled: bool = False
    rounds: tuple[int, ...] = (0, 3, 7, 12, 15, 18)
    rewind_iterations: tuple[int, ...] = (0, 500)
    variants: tuple[str, ...] = ("ticket", "reinit", "random")
    points: int = 25

    def networks(self) -> list[tuple[str, int, int]]:
        """The tested networks as (variant, round, k): round 0 is the dense network (as 'ticket');
        a reinitialised network has no θk, so it is tested at k = 0 only."""
        return [
            (variant, round_, k)
            for round_ in self.rounds
            for variant in (self.variants if round_ else ("ticket",))
            for k in self.rewind_iterations
            if not (variant == "reinit" and k)
        ]


TICKET = "ticket"  # the iterative ticket, whose sanity checks the pruning-at-initialisation rule trains
FOUND = "found"  # a method's own mask (no sanity check)
CHECKS = ("shuffled", "reinit", "inverted")  # the sanity checks (Frankle et al. 2021; Su et al. 2020)


@dataclass(frozen=True)
class Pai:
    """Pruning at initialisation: each of ``methods`` (:data:`lottery.methods.REGISTRY`) prunes θ0
    once to the Pm of each of ``levels`` (rounds of the reference schedule; empty: all of them) and
    its survivors are trained from θ0; at ``sanity_levels``, the ``checks`` of every method and of
    the iterative ticket: the mask shuffled within each layer, θ0 redrawn (the reinit seed), and the
    mask inverted (the lowest scores kept at the same per-layer counts; not for methods without a
    ranking of their own, such as ``random`` and ``erk``)."""

    methods: tuple[str, ...] = ()
    levels: tuple[int, ...] = ()
    sanity_levels: tuple[int, ...] = (3, 7, 12, 15, 18)
    checks: tuple[str, ...] = CHECKS

    def __post_init__(self) -> None:
        unknown = [c for c in self.checks if c not in CHECKS]
        if unknown:
            raise ValueError(f"pai.checks has {unknown}: the checks are {list(CHECKS)}")
        if TICKET in self.methods:
            raise ValueError(f"pai.methods: {TICKET!r} is the iterative ticket, always compared")

    def networks(self, rounds: int, invertible: Mapping[str, bool]) -> list[tuple[str, str, int]]:
        """(method, check, level) of every network, the ticket's checks included (``rounds``: the
        reference schedule's; ``invertible``: whether each method ranks the weights itself)."""
        levels = self.levels or tuple(range(1, rounds + 1))
        out = [(m, FOUND, k) for m in self.methods for k in levels]
        if self.methods:
            for k in self.sanity_levels:
                for method in (*self.methods, TICKET):
                    for check in self.checks:
                        if check != "inverted" or invertible.get(method, True):
                            out.append((method, check, k))
        return out


@dataclass(frozen=True)
class PixelMap:
    """The pixel map: the first layer's surviving weights per input pixel at ``rounds``."""

    enabled: bool = False
    rounds: tuple[int, ...] = (3, 7, 12, 18)


@dataclass(frozen=True)
class Network:
    """Which network a training job makes: the dense one (no schedule), a ticket round, or a control
    variant of a ticket round (:mod:`lottery.variants`) with the seed or rewinding point it used."""

    variant: str = "dense"
    schedule: Schedule | None = None
    round: int = 0
    method: str | None = None  # how the mask was chosen: layerwise, global or random
    rewind_iteration: int | None = None
    reinit_seed: int | None = None
    mask_seed: int | None = None
    draw: int | None = None  # which draw of a random control (reinit, random): 1, 2, ...

    # The identity's columns in runs.csv, in the order of the table (see lottery.runs).
    SCHEDULE_COLUMNS = ("variant", "method", "schedule", "rate", "output_rate", "schedule_ratio",
                        "schedule_rounds", "round", "requested_ratio")  # fmt: skip
    CONTROL_COLUMNS = ("rewind_iteration", "reinit_seed", "mask_seed", "draw")

    @classmethod
    def ticket(cls, schedule: Schedule, round_: int, method: str) -> Network:
        """The ticket of ``round_`` on ``schedule``, as its job sees it (:meth:`Schedule.up_to`)."""
        return cls(variant="ticket", schedule=schedule.up_to(round_), round=round_, method=method)

    def identity(self) -> dict[str, Any]:
        """What ``metrics.json`` and ``runs.csv`` say the network is."""
        if self.schedule is None:
            return {"variant": self.variant, "schedule": "dense", "round": 0, "requested_ratio": 0.0}
        s = self.schedule
        out: dict[str, Any] = {
            "variant": self.variant,
            "method": self.method,
            "schedule": s.name,
            "rate": s.rate,
            "output_rate": s.layer_rate(is_output=True),
            "schedule_ratio": s.ratio,
            "schedule_rounds": s.rounds if s.ratio is not None else None,
            "round": self.round,
            "requested_ratio": s.requested_ratio(self.round),
        }
        out.update(
            {key: getattr(self, key) for key in self.CONTROL_COLUMNS if getattr(self, key) is not None}
        )
        return out


def network_from_params(params: Mapping[str, Any]) -> Network:
    """A :class:`Network` from :func:`to_params` of one (its schedule nested)."""
    params = dict(params)
    if params.get("schedule") is not None:
        params["schedule"] = from_params(Schedule, params["schedule"])
    return from_params(Network, params)
