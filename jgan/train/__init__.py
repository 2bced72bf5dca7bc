"""Training loop, input, checkpoints and logging for the experiment runner."""
