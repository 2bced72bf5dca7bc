"""Evaluating a saved run: samples from its latest checkpoint through `jgan.eval.suite`."""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from jgan.eval import suite
from jgan.train import builders
from jgan.train.runs import load_run


def sample_batches(game, state, *, latent_dim: int, batch_size: int, seed: int, use_ema: bool):
    """An endless iterator of generated image batches `(batch_size, R, R, C)` in [-1, 1].

    Batch i comes from z ~ N(0, I) drawn with `fold_in(fold_in(PRNGKey(seed), 4), i)`, the
    latents the trainer evaluates with (for seed = the run's seed), so a checkpoint
    evaluated here reproduces the numbers logged during training.
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 4)

    @jax.jit
    def generate(state, z):
        return game.bind(state, train=False, rng=key, use_ema=use_ema)("generator", z)

    i = 0
    while True:
        z = jax.random.normal(jax.random.fold_in(key, i), (batch_size, latent_dim))
        yield np.asarray(generate(state, z))
        i += 1


def evaluate_run(workdir: str | Path, *, eval_config=None, overrides: dict | None = None,
                 seed: int | None = None, use_ema: bool = True) -> dict:
    """Evaluates `workdir`'s latest checkpoint; returns the JSON-able results.

    Args:
      workdir: a GAN run's workdir.
      eval_config: an `eval` ConfigDict replacing the run's, or None.
      overrides: `EvalSettings` fields to override (e.g. {"metrics": "fid,kid"}).
      seed: seed of the latents; None = the run's seed (the latents training used).
      use_ema: sample from the EMA generator when the run keeps one.
    """
    config, game, state = load_run(workdir)
    seed = config.seed if seed is None else seed
    if eval_config is not None:
        config.eval = eval_config
    settings = suite.EvalSettings.from_config(config, **(overrides or {}))
    if not settings.metrics:
        raise suite.EvalError("No metrics: pass --metrics=... or set eval.metrics in the config.")
    use_ema = use_ema and config.game.ema_decay is not None
    sampler = builders.build_generator_inputs(config)
    state = jax.jit(builders.build_sampling_state(config, game, sampler, use_ema=use_ema))(state)
    evaluator = suite.Evaluator(settings)
    batches = sample_batches(game, state, latent_dim=config.model.latent_dim,
                             batch_size=settings.batch_size, seed=seed, use_ema=use_ema)
    results = evaluator.evaluate(batches)
    return {"workdir": str(Path(workdir).resolve()), "step": int(state.step), "ema": use_ema,
            "seed": seed, "metrics": results}
