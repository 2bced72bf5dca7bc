"""Evaluation: metrics that make results comparable."""
from jgan.eval.modes import mode_statistics

__all__ = ["mode_statistics"]
