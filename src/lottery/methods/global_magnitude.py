"""``global``: magnitude pruning over all layers together - the smallest-magnitude survivors of the
whole network go, at the schedule's rate (no per-kind factor)."""

from lottery.methods.base import GLOBAL, Scorer, magnitudes

METHOD = Scorer(
    "global", GLOBAL, magnitudes,
    "the smallest-magnitude surviving weights over all layers together (no output-layer factor)",
)  # fmt: skip
