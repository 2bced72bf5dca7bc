"""A saved GAN run reopened from its workdir: its state (`load_run`) and its evaluation
(`evaluate_run`).

This package sits above `jgan.train` (it rebuilds a run's game with the trainer's
builders) and `jgan.eval` (it scores the run's samples), so that neither of those two
imports the other's way back.
"""
from jgan.runs.evaluation import evaluate_run, sample_batches
from jgan.runs.load import example_batch, initial_state, load_run

__all__ = ["evaluate_run", "example_batch", "initial_state", "load_run", "sample_batches"]
