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

from lottery import variants
from lottery.desc import Architecture, Replicate, Schedule, TrainingHparams, from_params
from lottery.logs import Explained


class ConfigError(Explained, ValueError):
    """A configuration value is invalid; the message names the key."""


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


def schedules(config: Mapping[str, Any]) -> dict[str, Schedule]:
    """Schedules by directory name. Fixed-rate entries of equal rate (and kind: iterative or one-shot)
    share rounds (the longest wins)."""
    pruning = config["pruning"]
    factor = float(pruning["output_rate_factor"])
    found: dict[str, Schedule] = {}
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
                schedule = Schedule(float(entry["rate"]), int(entry["rounds"]), factor, oneshot=oneshot)
            elif entry.get("oneshot"):
                raise ValueError("'oneshot' goes with 'rate': {ratio, rounds: 1} is one-shot already")
            else:
                schedule = Schedule.from_ratio(float(entry["ratio"]), int(entry["rounds"]), factor)
        except (ValueError, KeyError) as e:
            raise ConfigError(f"pruning.schedules[{i}] = {dict(entry)}: {e}") from e
        previous = found.get(schedule.name)
        if previous is None or previous.rounds < schedule.rounds:
            found[schedule.name] = schedule
    return found


def _piece(cls: type, section: Mapping[str, Any], key: str) -> Any:
    """The typed piece ``cls`` from a config section's keys that are its fields; a bad value is a
    ConfigError naming the section."""
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return from_params(cls, {name: value for name, value in section.items() if name in names})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{key}: {e}") from e


def architecture(config: Mapping[str, Any]) -> Architecture:
    return _piece(Architecture, config["model"], "model")


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
    controls: tuple[str, ...]  # the control folders: reinit, random, rewind-<k>...
    control_rounds_mode: str  # variants.rounds: auto, final or every
    analysis: Mapping[str, Any]

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
            analysis=dict(config["analysis"]),
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
        longest = self.longest_rounds
        for r in self.test_curve_rounds or ():
            if r > longest:
                raise ConfigError(
                    f"training.test_curve_rounds has round {r}, but the longest schedule has {longest} "
                    "rounds (0 is the dense network)"
                )

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

    # The networks: folders under results/<experiment>/, each with metrics.json and curve.csv.
    def ticket_dirs(self) -> list[str]:
        return [
            f"{replicate}/{name}/ticket/round-{k}"
            for replicate in self.replicates
            for name, s in self.schedules.items()
            for k in range(1, s.rounds + 1)
        ]

    def control_dirs(self) -> list[str]:
        return [
            f"{replicate}/{name}/{control}/round-{k}"
            for replicate in self.replicates
            for name, s in self.schedules.items()
            for control in self.controls
            for k in self.control_rounds(s)
        ]

    def dense_dirs(self) -> list[str]:
        return [f"{replicate}/dense" for replicate in self.replicates]

    def curve_dirs(self) -> list[str]:
        """The networks with a test curve, in the order of the test-curve table's inputs."""
        rounds = self.curve_rounds()
        dirs = [f"{replicate}/dense" for replicate in self.replicates if 0 in rounds]
        for replicate in self.replicates:
            for name, s in self.schedules.items():
                dirs += [
                    f"{replicate}/{name}/ticket/round-{k}" for k in range(1, s.rounds + 1) if k in rounds
                ]
                dirs += [
                    f"{replicate}/{name}/{control}/round-{k}"
                    for control in self.controls
                    for k in self.control_rounds(s)
                    if k in rounds
                ]
        return dirs
