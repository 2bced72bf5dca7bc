"""Evaluating a saved run: samples from its latest checkpoint through `jgan.eval.suite`."""
from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from jgan.data.mixtures import mixture_of
from jgan.eval import suite
from jgan.families import evaluation as family_eval
from jgan.train import builders
from jgan.runs.load import load_run
from jgan.train.run_evaluation import mixture_modes


def sample_batches(game, state, sampler, *, batch_size: int, seed: int, use_ema: bool,
                   generate=None):
    """An endless iterator of generated image batches `(batch_size, R, R, C)` in [-1, 1].

    Batch i comes from `sampler.random(fold_in(fold_in(PRNGKey(seed), 4), i))` (z from
    the run's prior, with labels or codes for conditional and InfoGAN runs), the inputs
    the trainer evaluates with (for seed = the run's seed), so a checkpoint evaluated
    here reproduces the numbers logged during training. `generate`: the
    `sampler.jitted_generate(game, use_ema=use_ema)` to reuse (None builds one).
    """
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 4)
    generate = functools.partial(generate or sampler.jitted_generate(game, use_ema=use_ema),
                                 key=key)
    i = 0
    while True:
        yield np.asarray(generate(state, sampler.random(jax.random.fold_in(key, i), batch_size)))
        i += 1


def _asked_metrics(overrides: dict | None, eval_config) -> str:
    """The sample metrics asked for: the override's, else the eval section's."""
    return (overrides or {}).get("metrics", eval_config.metrics)


def _sampling(config, game, state, use_ema: bool):
    """`(use_ema, sampler, state)`: EMA where asked and kept, the run's generator inputs,
    and the state prepared for sampling (`builders.build_sampling_state`)."""
    use_ema = use_ema and config.game.ema_decay is not None
    sampler = builders.build_generator_inputs(config)
    return use_ema, sampler, builders.build_sampling_state(config, game, sampler,
                                                           use_ema=use_ema)(state)


def _evaluate_mixture_run(workdir, config, game, state, overrides, eval_config, *, seed: int,
                          use_ema: bool) -> dict:
    """The mode statistics of a 2-D mixture run, as its eval.json holds them."""
    asked = _asked_metrics(overrides, eval_config or config.eval)
    if asked:
        raise suite.EvalError(f"This run trains on a 2-D mixture ({config.data.name}): it is "
                              f"scored by its modes and high-quality share (no --metrics), "
                              f"not by {asked!r}, which need images.")
    use_ema, sampler, state = _sampling(config, game, state, use_ema)
    # The trainer's generator key, so that the run's seed reproduces its eval.json.
    generate = functools.partial(sampler.jitted_generate(game, use_ema=use_ema),
                                 key=jax.random.fold_in(jax.random.PRNGKey(seed), 2))
    stats, _ = mixture_modes(mixture_of(config), state, generate, sampler, seed)
    return {"workdir": str(Path(workdir).resolve()), "step": int(state.step), "ema": use_ema,
            "seed": seed, **stats}


def evaluate_run(workdir: str | Path, *, eval_config=None, overrides: dict | None = None,
                 seed: int | None = None, use_ema: bool = True,
                 standing_stats: int | None = None, step: int | None = None) -> dict:
    """Evaluates `workdir`'s latest checkpoint (or the one at `step`); returns the
    JSON-able results.

    A 2-D mixture run gets its mode statistics (modes, high_quality, mode_counts, ...:
    `jgan.train.run_evaluation.mixture_modes`), as in its eval.json. Conditional and
    InfoGAN runs with a classifier (`classifier_workdir`) also get the
    family's metrics (`jgan.families.evaluation`) under "family_metrics", as in the
    trainer's eval.json. A family with its own evaluation (`Family.evaluation`: the
    encoder families' probes and reconstruction scores, a VAE's bounds) gets it under
    "family_metrics" too, with the same eval settings; asked for no sample metric, it
    gets that alone, as the trainer wrote it.

    Args:
      workdir: a GAN run's workdir.
      eval_config: an `eval` ConfigDict replacing the run's, or None.
      overrides: `EvalSettings` fields to override (e.g. {"metrics": "fid,kid"}).
      seed: seed of the latents; None = the run's seed (the latents training used).
      use_ema: sample from the EMA generator when the run keeps one.
      standing_stats: batches of standing batch-norm statistics for the generator
        (`eval.standing_stats`); None = the run's setting.
      step: the checkpoint's step (a kept one: `checkpoints_kept`); None = the latest.
    """
    config, game, state = load_run(workdir, step=step)
    seed = config.seed if seed is None else seed
    if config.data.kind == "mixture":
        return _evaluate_mixture_run(workdir, config, game, state, overrides, eval_config,
                                     seed=seed, use_ema=use_ema)
    if eval_config is not None:
        config.eval = eval_config
    if "eval" not in config:  # saved before runs had an eval section
        config.eval = suite.default_eval_config()
    if standing_stats is not None:
        config.eval.standing_stats = standing_stats
    # The family's own evaluation (Family.evaluation) reads the config's eval section:
    # the same settings as the sample metrics.
    family_evaluation = builders.build_family_evaluation(
        _with_eval_overrides(config, overrides), game)
    if family_evaluation is not None and not _asked_metrics(overrides, config.eval):
        return {"workdir": str(Path(workdir).resolve()), "step": int(state.step),
                "family_metrics": family_evaluation(state)}
    settings = suite.EvalSettings.from_config(config, **(overrides or {}))
    if not settings.metrics:
        raise suite.EvalError("No metrics: pass --metrics=... or set eval.metrics in the config.")
    use_ema, sampler, state = _sampling(config, game, state, use_ema)
    evaluator = suite.Evaluator(settings)
    generate = sampler.jitted_generate(game, use_ema=use_ema)
    batches = sample_batches(game, state, sampler, batch_size=settings.batch_size, seed=seed,
                             use_ema=use_ema, generate=generate)
    results = {"workdir": str(Path(workdir).resolve()), "step": int(state.step), "ema": use_ema,
               "seed": seed, "standing_stats": config.eval.get("standing_stats", 0),
               "metrics": evaluator.evaluate(batches)}
    rng = jax.random.PRNGKey(seed)
    family_evaluator = family_eval.FamilyEvaluator.create(
        game, sampler, evaluator, seed_key=jax.random.fold_in(rng, 5),
        generate=functools.partial(generate, key=jax.random.fold_in(rng, 2)))  # the trainer's
    if family_evaluator is not None:
        results["family_metrics"] = family_evaluator(state)
    if family_evaluation is not None:   # as the trainer's eval.json: both, merged
        results["family_metrics"] = {**results.get("family_metrics", {}),
                                     **family_evaluation(state)}
    return results


# `EvalSettings` fields that are `eval` keys of another name, and `data` keys.
_EVAL_KEYS = {"split": "reference_split"}
_DATA_KEYS = ("data_dir",)


def _with_eval_overrides(config, overrides: dict | None):
    """A copy of `config` whose `eval` (and `data.data_dir`) hold `overrides`, the
    `EvalSettings` fields `evaluate_run` was given."""
    config = config.copy_and_resolve_references()
    for name, value in (overrides or {}).items():
        if name in _DATA_KEYS:
            config.data[name] = value
        else:
            config.eval[_EVAL_KEYS.get(name, name)] = value
    return config
