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
    """One trial: its θ0 seed, its minibatch-order seed and the (shared) split seed.

    The control variants draw their randomness from seeds of their own, offset from the init seed:
    ``reinit_seed`` for the reinitialisation, ``random_mask_seed`` for random pruning.
    """

    init_seed: int
    data_order_seed: int
    split_seed: int
    controls_offset: int = 10_000

    @property
    def reinit_seed(self) -> int:
        return self.init_seed + self.controls_offset

    @property
    def random_mask_seed(self) -> int:
        return self.init_seed + 2 * self.controls_offset

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
