"""What both trainers share, below both (:mod:`lottery.native`, :mod:`lottery.torch_trainer`) and
below the training loop above them (:mod:`lottery.training`): Adam's constants and the record of an
evaluation. Neither trainer imports the loop."""

from __future__ import annotations

from dataclasses import dataclass

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8  # per example: the trainers' losses are sums, so Adam's eps is this times the batch


@dataclass
class Evaluation:
    """A set's mean cross-entropy loss and accuracy."""

    loss: float
    accuracy: float
