"""Mode collapse on the 2-D mixtures: several seeds trained at once, quality over time.

The lab's claims 4-6 are statements about runs, not about one run: that the
generator's loss need not fall while its samples improve, that a stable run keeps the
discriminator's accuracy away from 100 %, and which games cover the 25-grid's modes
over seeds. `train_seeds` trains one experiment config (`experiments/configs/mixture.py`)
for several seeds in a single jitted `lax.scan` over `jax.vmap`ped steps of the shared
machinery (`jgan.core.steps.make_step`), and measures the PacGAN protocol
(`jgan.eval.modes`) every `eval_every` steps.

Seed s here is the run `experiments.main` trains with `--config.seed=s`: the same
initialization key, the same data keys `fold_in(fold_in(PRNGKey(s), 1), step)` and the
same evaluation latents `fold_in(PRNGKey(s), 3)`; only the order of floating-point
reductions may differ under vmap.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan.data.mixtures import mixture_of
from jgan.eval.modes import PROTOCOL_NUM_SAMPLES, mode_statistics
from jgan.families.adversarial import GENERATOR
from jgan.train import builders


class SeedRuns(NamedTuple):
    """Trajectories of several seeds of one config.

    Attributes:
      seeds: the S seeds.
      steps: `[T]` the steps at which the runs were measured.
      metrics: `{name: [S, T]}` step metrics (losses, D(x), D(G(z)), accuracies, gradient
        norms), each averaged over the steps since the previous measurement.
      modes: `[S, T]` modes covered (PacGAN protocol, 2,500 samples).
      high_quality: `[S, T]` share of high-quality samples.
      kl_to_uniform: `[S, T]` KL of the high-quality samples' mode histogram from uniform
        (nan when no sample is high quality).
      samples: `[S, 2500, 2]` the final samples (EMA weights when the config keeps them).
      final: per seed, `mode_statistics` of the final samples.
    """
    seeds: tuple[int, ...]
    steps: np.ndarray
    metrics: dict[str, np.ndarray]
    modes: np.ndarray
    high_quality: np.ndarray
    kl_to_uniform: np.ndarray
    samples: np.ndarray
    final: list[dict]


def train_seeds(config: ml_collections.ConfigDict, seeds: Sequence[int], *,
                eval_every: int, num_eval_samples: int = PROTOCOL_NUM_SAMPLES,
                progress=None) -> SeedRuns:
    """Trains `config` (a 2-D mixture GAN) for every seed at once and measures it.

    Args:
      config: an experiment config with `data.kind == "mixture"`; `config.seed` is
        ignored in favour of `seeds`, and `config.num_steps` is the length of each run.
      seeds: the seeds, S of them.
      eval_every: steps between measurements; must divide `config.num_steps`.
      num_eval_samples: generated points per measurement (2,500 in the protocol).
      progress: optional callable `(step, SeedRuns-so-far dict)` called after each
        measurement, for printing.
    Returns:
      `SeedRuns`.
    Raises:
      builders.ConfigError: an invalid config, or one that is not a mixture run.
      ValueError: `eval_every` does not divide `num_steps`, or no seeds.
    """
    builders.validate(config)
    if config.data.kind != "mixture":
        raise builders.ConfigError(f"config.data.kind: train_seeds runs 2-D mixtures, got "
                                   f"{config.data.kind!r}.")
    if not seeds:
        raise ValueError("train_seeds needs at least one seed.")
    if eval_every < 1 or config.num_steps % eval_every:
        raise ValueError(f"eval_every={eval_every} must divide num_steps={config.num_steps}.")
    mixture = mixture_of(config)
    game = builders.build_game(config)
    step_fn = builders.build_step(config, game)
    examples_per_step = config.batch_size * config.game.d_steps
    use_ema = config.game.ema_decay is not None
    latent_dim = config.model.latent_dim

    base_keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    data_keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(base_keys)
    sample_keys = jax.vmap(lambda k: jax.random.fold_in(k, 2))(base_keys)
    eval_z = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 3),
                                                  (num_eval_samples, latent_dim)))(base_keys)
    example = {"image": mixture.sample(data_keys[0], examples_per_step)}
    states = jax.jit(jax.vmap(lambda k: game.init(k, example)))(base_keys)

    def one_step(state, data_key):
        batch = {"image": mixture.sample(jax.random.fold_in(data_key, state.step),
                                         examples_per_step)}
        return step_fn(state, batch)

    @jax.jit
    def run_chunk(states):
        def body(states, _):
            return jax.vmap(one_step)(states, data_keys)
        states, metrics = jax.lax.scan(body, states, None, length=eval_every)
        return states, jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)

    @jax.jit
    def generate(states):
        def one(state, key, z):
            return game.bind(state, train=False, rng=key, use_ema=use_ema)(GENERATOR, z)
        return jax.vmap(one)(states, sample_keys, eval_z)

    steps, metric_rows, stats_rows = [], [], []
    for done in range(eval_every, config.num_steps + 1, eval_every):
        states, metrics = run_chunk(states)
        samples = np.asarray(jax.device_get(generate(states)))
        stats = [mode_statistics(s, mixture.means, mixture.std) for s in samples]
        steps.append(done)
        metric_rows.append({k: np.asarray(v) for k, v in jax.device_get(metrics).items()})
        stats_rows.append(stats)
        if progress is not None:
            progress(done, stats, metric_rows[-1])
    names = sorted(metric_rows[0])
    kl = [[np.nan if s["kl_to_uniform"] is None else s["kl_to_uniform"] for s in row]
          for row in stats_rows]
    return SeedRuns(
        seeds=tuple(int(s) for s in seeds),
        steps=np.asarray(steps),
        metrics={k: np.stack([row[k] for row in metric_rows], axis=1) for k in names},
        modes=np.array([[s["modes"] for s in row] for row in stats_rows]).T,
        high_quality=np.array([[s["high_quality"] for s in row] for row in stats_rows]).T,
        kl_to_uniform=np.array(kl, np.float64).T,
        samples=samples,
        final=stats_rows[-1])


def summarize_seeds(runs: SeedRuns) -> dict:
    """Mean and standard deviation over seeds of the final modes and high-quality share.

    Returns:
      dict with `modes_mean`, `modes_std`, `high_quality_mean`, `high_quality_std`
      (shares in [0, 1]; population std over seeds) and `per_seed` (list of
      `(seed, modes, high_quality)`).
    """
    modes = np.array([s["modes"] for s in runs.final], np.float64)
    hq = np.array([s["high_quality"] for s in runs.final], np.float64)
    return {"modes_mean": float(modes.mean()), "modes_std": float(modes.std()),
            "high_quality_mean": float(hq.mean()), "high_quality_std": float(hq.std()),
            "per_seed": [(seed, int(m), float(h)) for seed, m, h in zip(runs.seeds, modes, hq)]}
