"""The paper's protocol for LeNet-300-100 (``../shared/reference/paper-protocol.md``) and the ways a
configuration departs from it. No PyTorch or pandas: the workflow lists the deviations when it builds
its DAG.

The schema's defaults are the paper's protocol (an empty config runs it), so its training, split,
architecture and pruning values are read from there; only what the schema cannot default (a test
curve every 100 iterations, the trial counts) is written here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lottery import schema


def _protocol() -> dict[str, Any]:
    d = schema.defaults()
    (paper_schedule,) = d["pruning"]["schedules"]
    return {
        **{key: d["training"][key] for key in ("iterations", "batch_size", "learning_rate", "eval_every")},
        "validation_size": d["data"]["validation_size"],
        "hidden": d["model"]["hidden"],
        "rate": paper_schedule["rate"],
        "rounds": paper_schedule["rounds"],
        "output_rate_factor": d["pruning"]["output_rate_factor"],
        "test_every": 100,
        "ticket_trials": 5,
        "reinits_per_ticket": 3,
        "random_trials": 10,
    }


PROTOCOL = _protocol()


def protocol_deviations(config: Mapping[str, Any]) -> list[str]:
    """How an experiment's configuration departs from the paper's protocol, one sentence each."""
    p, t, pruning = PROTOCOL, config["training"], config["pruning"]
    out = []
    for key in ("iterations", "batch_size", "learning_rate", "eval_every"):
        if t[key] != p[key]:
            out.append(f"training.{key} is {t[key]} (the paper: {p[key]}).")
    if t["test_every"] != p["test_every"]:
        out.append(
            f"training.test_every is {t['test_every']} (the paper: a test curve every 100 iterations)."
        )
    elif t.get("test_curve_rounds") is not None:
        out.append(
            f"The test curve is recorded only at rounds {list(t['test_curve_rounds'])} (the levels of the "
            "paper's test-curve figure); other networks evaluate the test set at their early-stop "
            "iteration and at the end, which is all their metrics need."
        )
    if config["data"]["validation_size"] != p["validation_size"]:
        out.append(f"data.validation_size is {config['data']['validation_size']} (the paper: 5,000).")
    if list(config["model"]["hidden"]) != p["hidden"]:
        out.append(f"model.hidden is {list(config['model']['hidden'])} (the paper: LeNet-300-100).")
    if pruning["method"] != "layerwise" or pruning["output_rate_factor"] != p["output_rate_factor"]:
        out.append(f"pruning is {pruning['method']} with output_rate_factor {pruning['output_rate_factor']} "
                   "(the paper: layer-wise, output layer at half rate).")  # fmt: skip
    fixed = [s for s in pruning.get("schedules", []) if "rate" in s and not s.get("oneshot")]
    if not any(s["rate"] == p["rate"] and s["rounds"] >= p["rounds"] for s in fixed):
        out.append("No iterative schedule of 20 rounds at 20% per round (the paper: Pm down to 1.2%).")
    if not any(s.get("oneshot") for s in pruning.get("schedules", [])):
        out.append("No one-shot tickets at the iterative levels.")
    seeds = len(config["seeds"]["init"])
    if seeds != p["ticket_trials"]:
        out.append(f"{seeds} seed(s) (the paper: 5 trials of winning tickets).")
    variants = config["variants"]
    draws = variants.get("draws") or {}
    reinits, randoms = int(draws.get("reinit", 1)), int(draws.get("random", 1))
    if not variants["reinit"]:
        out.append("No randomly reinitialised tickets.")
    elif reinits != p["reinits_per_ticket"]:
        out.append(f"{reinits} random reinitialisation(s) per ticket and seed (the paper: "
                   f"{p['reinits_per_ticket']}).")  # fmt: skip
    if not variants["random"]:
        out.append("No randomly pruned networks.")
    elif randoms * seeds != p["random_trials"]:
        out.append(
            f"{randoms} random pruning mask(s) per level and seed, {randoms * seeds} in all (the paper: "
            f"{p['random_trials']} random sparse networks)."
        )
    out.append(
        "Inputs are normalised with the training split's mean and standard deviation (the paper does "
        "not say how it scaled them)."
    )
    return out
