"""Lottery Ticket Hypothesis experiments on MNIST (Frankle & Carbin, ICLR 2019).

The package holds the logic (data, model, pruning, training, run tables); the Snakemake workflow in
``workflow/`` only wires its functions to files.
"""

__version__ = "0.1.0"
