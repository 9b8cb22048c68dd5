"""``layerwise``: magnitude pruning within each layer, the paper's method - each layer keeps the
largest-magnitude survivors at its own rate (conv, fc and output rates: :meth:`lottery.desc.
Schedule.rate_of`)."""

from lottery.methods.base import LAYER, Scorer, magnitudes

METHOD = Scorer(
    "layerwise", LAYER, magnitudes, "each layer loses its own fraction of surviving weights (the paper)"
)
