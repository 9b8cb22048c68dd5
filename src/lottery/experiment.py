"""An experiment's configuration as one typed description (:class:`Experiment`): its replicates,
pruning schedules, training hyperparameters, architecture and control variants, and which networks
it trains. ``common.smk`` builds it once from the validated config and names its jobs from it.
No PyTorch or pandas: a dry run imports neither.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lottery import layout, variants
from lottery.desc import (
    Architecture,
    Instability,
    Pai,
    PixelMap,
    Replicate,
    Schedule,
    TrainingHparams,
    from_params,
    reference_schedule_name,
)
from lottery.logs import Explained


class ConfigError(Explained, ValueError):
    """A configuration value is invalid; the message names the key."""


# The analyses of what the tickets are (lottery.ticket_analyses), in the report's order: each reads
# the masks and weights of the reference schedule (Experiment.reference_schedule).
TICKET_ANALYSES = ("instability", "supermasks", "mask_overlap", "pixel_map")
# Those that evaluate the fully connected network's weights (lottery.ticket_analyses' evaluation)
# or map its first layer onto the pixels: model.name mlp only. mask_overlap reads masks of any model.
MLP_ONLY_ANALYSES = ("instability", "supermasks", "pixel_map")


def replicates(config: Mapping[str, Any]) -> list[Replicate]:
    seeds = config["seeds"]
    init, order = list(seeds["init"]), seeds.get("data_order")
    order = init if order is None else list(order)
    if len(order) != len(init):
        raise ConfigError(
            f"seeds.data_order has {len(order)} entries but seeds.init has {len(init)}: "
            "they pair one to one (or leave seeds.data_order null to reuse seeds.init)"
        )
    if len(set(init)) != len(init):
        raise ConfigError(f"seeds.init has repeated values {init}: each names one replicate")
    offset = int(seeds.get("controls_offset", 10_000))
    return [Replicate(i, o, int(seeds["split"]), offset) for i, o in zip(init, order, strict=True)]


def schedule_entries(pruning: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``pruning.schedules`` plus one ``{ratio, rounds}`` entry per combination of ``pruning.sweep``."""
    sweep = pruning.get("sweep") or {}
    swept = [{"ratio": p, "rounds": n} for p in sweep.get("ratios", []) for n in sweep.get("rounds", [])]
    return [*pruning.get("schedules", []), *swept]


def _entry_key(i: int, entry: Mapping[str, Any], pruning: Mapping[str, Any]) -> str:
    """The config key of :func:`schedule_entries`' entry ``i``: a schedule, or a combination of the sweep."""
    given = len(pruning.get("schedules", []))
    if i < given:
        return f"pruning.schedules[{i}]"
    return f"pruning.sweep's {{ratio: {entry['ratio']}, rounds: {entry['rounds']}}}"


def schedules(config: Mapping[str, Any]) -> dict[str, Schedule]:
    """Schedules by directory name. Fixed-rate entries of equal rate (and kind: iterative or one-shot)
    share rounds (the longest wins); entries of different rates (or ratios) whose folder names are
    the same (``rate-0.2`` for 0.2 and 0.2000001: 6 significant digits) are a ConfigError."""
    pruning = config["pruning"]
    factor = float(pruning["output_rate_factor"])
    conv = float(pruning.get("conv_rate_factor", 0.5))
    found: dict[str, Schedule] = {}
    first: dict[str, int] = {}  # the entry that named each folder first
    entries = schedule_entries(pruning)
    if not entries:
        raise ConfigError("no pruning schedule: give pruning.schedules or pruning.sweep")
    for i, entry in enumerate(entries):
        has_rate, has_ratio = "rate" in entry, "ratio" in entry
        if has_rate == has_ratio:
            raise ConfigError(
                f"pruning.schedules[{i}] = {dict(entry)}: give either 'rate' (pruned per round) "
                "or 'ratio' (total pruned), with 'rounds'"
            )
        try:
            if has_rate:
                oneshot = bool(entry.get("oneshot", False))
                schedule = Schedule(
                    float(entry["rate"]), int(entry["rounds"]), factor, oneshot=oneshot, conv_rate_factor=conv
                )
            elif entry.get("oneshot"):
                raise ValueError("'oneshot' goes with 'rate': {ratio, rounds: 1} is one-shot already")
            else:
                schedule = Schedule.from_ratio(float(entry["ratio"]), int(entry["rounds"]), factor, conv)
        except (ValueError, KeyError) as e:
            raise ConfigError(f"pruning.schedules[{i}] = {dict(entry)}: {e}") from e
        previous = found.get(schedule.name)
        if previous is not None and _identity(previous) != _identity(schedule):
            j = first[schedule.name]
            what = "rate" if schedule.ratio is None else "ratio"
            raise ConfigError(
                f"{_entry_key(i, entry, pruning)} and {_entry_key(j, entries[j], pruning)} have "
                f"{what}s {_identity(schedule)[0]!r} and {_identity(previous)[0]!r}, which share the "
                f"folder {schedule.name} (6 significant digits): give {what}s that differ there, or "
                "equal ones"
            )
        first.setdefault(schedule.name, i)
        if previous is None or previous.rounds < schedule.rounds:
            found[schedule.name] = schedule
    return found


def _identity(schedule: Schedule) -> tuple:
    """What makes two schedules of one folder the same: the rate (rounds merge: the longest wins) or
    the ratio and its rounds."""
    if schedule.ratio is None:
        return (schedule.rate, schedule.oneshot)
    return (schedule.ratio, schedule.rounds)


def _piece(cls: type, section: Mapping[str, Any], key: str) -> Any:
    """The typed piece ``cls`` from a config section's keys that are its fields; a bad value is a
    ConfigError naming the section."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return from_params(cls, {name: value for name, value in section.items() if name in names})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key}: {e}") from e


def architecture(config: Mapping[str, Any]) -> Architecture:
    """The ``model:`` section's network, its inputs those of the dataset ``data.name`` names
    (lottery.datasets): ``channels`` its images' channels, ``input_size`` (null: the dataset's) its
    C x H x W values."""
    from lottery import datasets

    data = datasets.resolve(config.get("data", {}))  # a ConfigError for an unknown name, bad files
    shape = datasets.image_shape(data["name"])
    model = dict(config["model"])
    if model.get("input_size") is None:
        model["input_size"] = shape[0] * shape[1] * shape[2]
    model["channels"] = shape[0]
    return _piece(Architecture, model, "model")


def training_hparams(config: Mapping[str, Any]) -> TrainingHparams:
    """The ``training:`` section's hyperparameters (``test_curve_rounds`` is the experiment's)."""
    return _piece(TrainingHparams, config["training"], "training")


@dataclass(frozen=True)
class Experiment:
    """The whole experiment, from the validated config."""

    name: str
    architecture: Architecture
    training: TrainingHparams
    test_curve_rounds: tuple[int, ...] | None  # None: every network records the test curve
    method: str
    schedules: dict[str, Schedule]
    replicates: dict[str, Replicate]  # by folder, seed-<s>
    controls: tuple[str, ...]  # the control folders: reinit, reinit-draw-2, random, rewind-<k>...
    control_rounds_mode: str  # variants.rounds: auto, final or every
    draws: Mapping[str, int]  # variants.draws: networks per ticket of each drawn variant
    analysis: Mapping[str, Any]  # the runs table's statistics (analysis.max_ratio, bootstrap, ...)
    # What the tickets are (lottery.ticket_analyses), each an analysis.<name>.enabled switch
    instability: Instability = dataclasses.field(default_factory=Instability)
    supermasks: bool = False
    mask_overlap: bool = False
    pixel_map: PixelMap = dataclasses.field(default_factory=PixelMap)
    pai: Pai = dataclasses.field(default_factory=Pai)  # pruning at initialisation (pai: ...)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Experiment:
        """The experiment of a config the schema validated; values the schema accepts one by one but
        that cannot go together are a ConfigError naming the keys, before any job runs."""
        sweep = config["pruning"].get("sweep") or {}
        if bool(sweep.get("ratios")) != bool(sweep.get("rounds")):
            raise ConfigError(
                f"pruning.sweep has ratios {list(sweep.get('ratios', []))} and rounds "
                f"{list(sweep.get('rounds', []))}: the sweep is every ratio x every number of rounds, "
                "so give both or neither"
            )
        rounds = config["training"].get("test_curve_rounds")
        analysis = config["analysis"]
        experiment = cls(
            name=config["experiment"],
            architecture=architecture(config),
            training=training_hparams(config),
            test_curve_rounds=None if rounds is None else tuple(rounds),
            method=config["pruning"]["method"],
            schedules=schedules(config),
            replicates={r.name: r for r in replicates(config)},
            controls=tuple(variants.enabled_directories(config["variants"])),
            control_rounds_mode=config["variants"]["rounds"],
            draws={name: int(n) for name, n in (config["variants"].get("draws") or {}).items()},
            analysis={key: value for key, value in analysis.items() if key not in TICKET_ANALYSES},
            instability=_piece(Instability, analysis["instability"], "analysis.instability"),
            supermasks=bool(analysis["supermasks"]["enabled"]),
            mask_overlap=bool(analysis["mask_overlap"]["enabled"]),
            pixel_map=_piece(PixelMap, analysis["pixel_map"], "analysis.pixel_map"),
            pai=_piece(Pai, config.get("pai") or {}, "pai"),
        )
        experiment._check(config)
        return experiment

    def _check(self, config: Mapping[str, Any]) -> None:
        iterations = self.training.iterations
        for k in config["variants"]["rewind_iterations"]:
            if k >= iterations:
                raise ConfigError(
                    f"variants.rewind_iterations has {k}, not below training.iterations {iterations}: "
                    "a rewound network trains from iteration k to the end"
                )
        self._check_ticket_analyses()
        self._check_pai()
        longest = self.longest_rounds
        for r in self.test_curve_rounds or ():
            if r > longest:
                raise ConfigError(
                    f"training.test_curve_rounds has round {r}, but the longest schedule has {longest} "
                    "rounds (0 is the dense network)"
                )

    def _check_pai(self) -> None:
        if not self.pai.methods:
            return
        from lottery import methods

        unknown = [m for m in self.pai.methods if m not in methods.REGISTRY]
        if unknown:
            raise ConfigError(
                f"pai.methods has {unknown}: the pruning methods are {sorted(methods.REGISTRY)}"
            )
        reference = self.reference_schedule
        if reference is None:
            raise ConfigError(
                "pai.methods prune θ0 to the Pm of the iterative ticket's rounds, and pruning.schedules "
                "has no iterative fixed-rate schedule: add one such as {rate: 0.2, rounds: 20}"
            )
        for key in ("levels", "sanity_levels"):
            late = [k for k in getattr(self.pai, key) if not 1 <= k <= reference.rounds]
            if late:
                raise ConfigError(
                    f"pai.{key} has {late}, not rounds of {reference.name} (1..{reference.rounds})"
                )

    def pai_networks(self) -> list[tuple[str, str, int]]:
        """(method, check, level) of the pruning-at-initialisation networks (:class:`Pai`)."""
        if not self.pai.methods:
            return []
        from lottery import methods

        invertible = {name: getattr(m, "invertible", True) for name, m in methods.REGISTRY.items()}
        return self.pai.networks(self.reference_schedule.rounds, invertible)

    def pai_dirs(self, replicate: str | None = None) -> list[str]:
        return [
            layout.pai_dir(r, method, check, level)
            for r in self._replicates(replicate)
            for method, check, level in self.pai_networks()
        ]

    def _check_ticket_analyses(self) -> None:
        wanted = self.ticket_analyses
        if not wanted:
            return
        reference = self.reference_schedule
        if reference is None:
            raise ConfigError(
                f"analysis.{wanted[0]} reads the tickets of an iterative fixed-rate schedule, and "
                "pruning.schedules has none: add one such as {rate: 0.2, rounds: 20}"
            )
        mlp_only = [name for name in MLP_ONLY_ANALYSES if name in wanted]
        if mlp_only and self.architecture.name != "mlp":
            raise ConfigError(
                f"analysis.{mlp_only[0]} evaluates or maps a fully connected network's weights, and "
                f"model.name is {self.architecture.name!r}: set analysis.{mlp_only[0]}.enabled to false "
                f"(analyses for any model: {sorted(set(TICKET_ANALYSES) - set(MLP_ONLY_ANALYSES))})"
            )
        if "pixel_map" in wanted and self.architecture.channels != 1:
            raise ConfigError(
                f"analysis.pixel_map maps one channel's pixels, and the images have "
                f"{self.architecture.channels} channels: set analysis.pixel_map.enabled to false"
            )
        in_range = {"instability": self.instability.rounds, "pixel_map": self.pixel_map.rounds}
        for name, rounds in in_range.items():
            late = [r for r in rounds if r > reference.rounds]
            if name in wanted and late:
                raise ConfigError(
                    f"analysis.{name}.rounds has {late}, but {reference.name} has {reference.rounds} rounds"
                )
        iterations = self.training.iterations
        late = [k for k in self.instability.rewind_iterations if k >= iterations]
        if "instability" in wanted and late:
            raise ConfigError(
                f"analysis.instability.rewind_iterations has {late}, not below training.iterations "
                f"{iterations}: the copies train from iteration k to the end"
            )

    @property
    def ticket_analyses(self) -> list[str]:
        """The analyses of what the tickets are that this experiment runs (:data:`TICKET_ANALYSES`)."""
        on = {
            "instability": self.instability.enabled,
            "supermasks": self.supermasks,
            "mask_overlap": self.mask_overlap,
            "pixel_map": self.pixel_map.enabled,
        }
        return [name for name in TICKET_ANALYSES if on[name]]

    @property
    def reference_schedule(self) -> Schedule | None:
        """The iterative fixed-rate schedule whose tickets the analyses of :data:`TICKET_ANALYSES`
        read (:func:`lottery.desc.reference_schedule_name`: the paper's 20% a round where there is
        one), None if there is none."""
        iterative = {s.name: s for s in self.schedules.values() if s.ratio is None and not s.oneshot}
        name = reference_schedule_name({n: s.rounds for n, s in iterative.items()})
        return None if name is None else iterative[name]

    @property
    def oneshot_reference(self) -> Schedule | None:
        """The one-shot schedule at the reference schedule's levels, if the experiment has one."""
        reference = self.reference_schedule
        if reference is None:
            return None
        return next((s for s in self.schedules.values() if s.oneshot and s.rate == reference.rate), None)

    def ticket_mask(self, replicate: str, round_: int, schedule: Schedule | None = None) -> str:
        """The mask of a ticket round of the reference (or given) schedule; round 0: all ones."""
        if round_ == 0:
            return layout.mask_file(layout.dense_dir(replicate))
        name = (schedule or self.reference_schedule).name  # type: ignore[union-attr]
        return layout.mask_file(layout.ticket_dir(replicate, name, round_))

    def instability_dir(self, replicate: str, variant: str, round_: int, k: int, copy: str) -> str:
        """The folder of a copy the instability analysis trains."""
        name = self.reference_schedule.name  # type: ignore[union-attr]
        return layout.instability_dir(replicate, name, variant, round_, k, copy)

    def instability_first_copy(self, replicate: str, variant: str, round_: int, k: int) -> str:
        """The first copy's folder: the network the experiment trains anyway where there is one (k = 0:
        the dense network, the ticket round, a control trained at that round), else a copy of its own
        (trained with the replicate's data order, as that network would be)."""
        reference = self.reference_schedule
        assert reference is not None
        if k == 0:
            if round_ == 0:
                return layout.dense_dir(replicate)
            if variant == "ticket":
                return layout.ticket_dir(replicate, reference.name, round_)
            if variant in self.controls and round_ in self.control_rounds(reference):
                return layout.round_dir(replicate, reference.name, variant, round_)
        return self.instability_dir(replicate, variant, round_, k, "a")

    def instability_training(self) -> TrainingHparams:
        """How the copies train: as every network, without a test curve (only their final weights
        are read)."""
        return dataclasses.replace(self.training, test_every=0)

    def instability_pairs(self, replicate: str | None = None) -> list[dict[str, Any]]:
        """Every tested network of every replicate (or of one) with its two copies' folders."""
        return [
            {
                "replicate": r, "variant": variant, "round": round_, "k": k,
                "a": self.instability_first_copy(r, variant, round_, k),
                "b": self.instability_dir(r, variant, round_, k, "b"),
            }
            for r in self._replicates(replicate)
            for variant, round_, k in self.instability.networks()
        ]  # fmt: skip

    def control_rounds(self, schedule: Schedule) -> list[int]:
        """Rounds at which the controls are trained: every round of an iterative fixed-rate schedule
        (each is a level of the paper's plots), the last of a {ratio, rounds} schedule (its target) and
        none of a one-shot schedule (its levels' controls are the iterative ones'), unless
        variants.rounds says 'final' or 'every' for all."""
        mode = self.control_rounds_mode
        if mode == "auto" and schedule.oneshot:
            return []
        every = mode == "every" or (mode == "auto" and schedule.ratio is None)
        return list(range(1, schedule.rounds + 1)) if every else [schedule.rounds]

    def curve_rounds(self) -> set[int]:
        """Rounds whose networks record a test curve (none when training.test_every is 0)."""
        if not self.training.test_every:
            return set()
        if self.test_curve_rounds is None:
            return set(range(self.longest_rounds + 1))
        return set(self.test_curve_rounds)

    def training_at(self, round_: int) -> TrainingHparams:
        """The training of a round-``round_`` network (0: the dense one): ``test_every`` holds only at
        ``test_curve_rounds``, 0 elsewhere - a test curve makes training much slower."""
        rounds = self.test_curve_rounds
        if rounds is not None and round_ not in rounds:
            return dataclasses.replace(self.training, test_every=0)
        return self.training

    @property
    def longest_rounds(self) -> int:
        return max(s.rounds for s in self.schedules.values())

    @property
    def has_oneshot(self) -> bool:
        return any(s.oneshot for s in self.schedules.values())

    def iterative_rounds(self) -> int:
        """The number of rounds of the sweep's 'iterative' panel (5 if swept)."""
        rounds = sorted({s.rounds for s in self.schedules.values() if s.ratio is not None})
        return 5 if 5 in rounds else max([r for r in rounds if r > 1], default=5)

    def analysis_params(self) -> dict[str, Any]:
        """The analyses' settings, keys sorted, with the iterative panel's rounds."""
        return dict(sorted({**self.analysis, "iterative_rounds": self.iterative_rounds()}.items()))

    # The networks: folders under results/<experiment>/, each with metrics.json and curve.csv; of
    # every replicate, or of the one named (a job's inputs: a cost linear in the replicates).
    def _replicates(self, replicate: str | None) -> list[str]:
        return list(self.replicates) if replicate is None else [replicate]

    def ticket_dirs(self, replicate: str | None = None) -> list[str]:
        return [
            layout.ticket_dir(r, name, k)
            for r in self._replicates(replicate)
            for name, s in self.schedules.items()
            for k in range(1, s.rounds + 1)
        ]

    def control_dirs(self, replicate: str | None = None) -> list[str]:
        return [
            layout.round_dir(r, name, control, k)
            for r in self._replicates(replicate)
            for name, s in self.schedules.items()
            for control in self.controls
            for k in self.control_rounds(s)
        ]

    def dense_dirs(self, replicate: str | None = None) -> list[str]:
        return [layout.dense_dir(r) for r in self._replicates(replicate)]

    def network_dirs(self, replicate: str) -> list[str]:
        """A replicate's networks in the runs table: the dense one, its tickets and controls."""
        return (
            self.dense_dirs(replicate)
            + self.ticket_dirs(replicate)
            + self.control_dirs(replicate)
            + self.pai_dirs(replicate)
        )

    def trained_dirs(self, replicate: str) -> list[str]:
        """Every network a replicate trains: those of :meth:`network_dirs` and the instability
        analysis's own copies (its provenance covers them all)."""
        copies = []
        if self.instability.enabled:
            for pair in self.instability_pairs(replicate):
                copies += [c for c in (pair["a"], pair["b"]) if layout.is_instability_copy(c)]
        return self.network_dirs(replicate) + copies

    def curve_dirs(self, replicate: str | None = None) -> list[str]:
        """The networks with a test curve (of one replicate, or of all), in the order of the
        test-curve table's inputs."""
        rounds = self.curve_rounds()
        replicates = self._replicates(replicate)
        dirs = [layout.dense_dir(r) for r in replicates if 0 in rounds]
        for replicate in replicates:
            for name, s in self.schedules.items():
                dirs += [layout.ticket_dir(replicate, name, k) for k in range(1, s.rounds + 1) if k in rounds]
                dirs += [
                    layout.round_dir(replicate, name, control, k)
                    for control in self.controls
                    for k in self.control_rounds(s)
                    if k in rounds
                ]
        return dirs
