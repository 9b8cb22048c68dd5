"""Snakemake adapter: train one network, dense or pruned (lottery.pipeline.train_network).

Pins PyTorch to the job's ``threads`` so that ``--cores N`` runs N jobs side by side without
oversubscribing the CPU.
"""

import torch

from lottery.experiment import Replicate, training_hparams
from lottery.pipeline import setup_logging, train_network
from lottery.pruning import Schedule

snakemake = globals()["snakemake"]
setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)

mask = snakemake.input.get("mask")
if mask is None:
    identity = {"variant": "dense", "schedule": "dense", "round": 0, "requested_ratio": 0.0}
else:
    s = snakemake.params.schedule
    round_ = int(snakemake.wildcards.round)
    schedule = Schedule(s["rate"], round_, s["output_rate_factor"], s["ratio"])
    identity = {
        "variant": "ticket",
        "method": snakemake.params.method,
        "schedule": s["name"],
        "rate": s["rate"],
        "output_rate": schedule.layer_rate(is_output=True),
        "schedule_ratio": s["ratio"],
        "schedule_rounds": s["rounds"],
        "round": round_,
        "requested_ratio": schedule.requested_ratio(round_),
    }

train_network(
    init=snakemake.input.init,
    mask=mask,
    dataset=snakemake.input.dataset,
    split=snakemake.input.split,
    hparams=training_hparams({"training": snakemake.params.training}),
    replicate=Replicate(**snakemake.params.replicate),
    identity=identity,
    outputs=dict(snakemake.output.items()),
)
