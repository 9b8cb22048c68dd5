"""The name :func:`train_and_save` where ``benchmarks/train_speed.py`` imports it; the rules' steps are
:mod:`lottery.jobs`, one function per rule (this module goes once that benchmark imports from there)."""

from lottery.jobs import train_and_save

__all__ = ["train_and_save"]
