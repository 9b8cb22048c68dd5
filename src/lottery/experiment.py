"""An experiment's configuration as typed objects: replicates (seeds) and pruning schedules.

The workflow's ``common.smk`` uses these to name its jobs; keeping them here makes them testable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lottery.model import Architecture
from lottery.pruning import Schedule
from lottery.training import TrainingHparams


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key."""


@dataclass(frozen=True)
class Replicate:
    """One trial: its θ0 seed, its minibatch-order seed and the (shared) split seed."""

    init_seed: int
    data_order_seed: int
    split_seed: int

    @property
    def name(self) -> str:
        return f"seed-{self.init_seed}"


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
    return [Replicate(i, o, int(seeds["split"])) for i, o in zip(init, order, strict=True)]


def schedules(config: Mapping[str, Any]) -> dict[str, Schedule]:
    """Schedules by directory name. Fixed-rate entries of equal rate share rounds (the longest wins)."""
    pruning = config["pruning"]
    factor = float(pruning["output_rate_factor"])
    found: dict[str, Schedule] = {}
    for i, entry in enumerate(pruning["schedules"]):
        has_rate, has_ratio = "rate" in entry, "ratio" in entry
        if has_rate == has_ratio:
            raise ConfigError(
                f"pruning.schedules[{i}] = {dict(entry)}: give either 'rate' (pruned per round) "
                "or 'ratio' (total pruned), with 'rounds'"
            )
        try:
            if has_rate:
                schedule = Schedule(float(entry["rate"]), int(entry["rounds"]), factor)
            else:
                schedule = Schedule.from_ratio(float(entry["ratio"]), int(entry["rounds"]), factor)
        except (ValueError, KeyError) as e:
            raise ConfigError(f"pruning.schedules[{i}] = {dict(entry)}: {e}") from e
        previous = found.get(schedule.name)
        if previous is None or previous.rounds < schedule.rounds:
            found[schedule.name] = schedule
    return found


def architecture(config: Mapping[str, Any]) -> Architecture:
    m = config["model"]
    return Architecture(int(m["input_size"]), tuple(int(h) for h in m["hidden"]), int(m["num_classes"]))


def training_hparams(config: Mapping[str, Any]) -> TrainingHparams:
    t = config["training"]
    try:
        return TrainingHparams(
            learning_rate=float(t["learning_rate"]),
            batch_size=int(t["batch_size"]),
            iterations=int(t["iterations"]),
            eval_every=int(t["eval_every"]),
            test_every=int(t["test_every"]),
        )
    except ValueError as e:
        raise ConfigError(str(e)) from e
