"""A run's evaluations: every `eval.every` steps into metrics.jsonl, and at the end
into eval.json.

The metrics `config.eval.metrics` names (`jgan.eval.suite`) are computed on samples of
the same latents at every evaluation, so that successive numbers differ only by the
generator; families add their own (`jgan.families.evaluation`, and a family's
`Family.evaluation` at the end). Mixture runs also get PacGAN's mode coverage at the end.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jgan.eval import suite
from jgan.eval.modes import PROTOCOL_NUM_SAMPLES, mode_statistics
from jgan.families import evaluation as family_eval
from jgan.train import builders, writers
from jgan.train.input import MixtureInput
from jgan.train.loop import LoopEnd
from jgan.train.samples import Sampling
from jgan.sharding import to_host


class RunEvaluation:
    """Evaluates a run's state; `rng` is the run's key."""

    def __init__(self, config: ml_collections.ConfigDict, game, inp, sampling: Sampling,
                 rng: jax.Array):
        self._config = config
        self._inp = inp
        self._sampling = sampling
        self._rng = rng
        self.evaluator = (suite.Evaluator(suite.EvalSettings.from_config(config))
                          if config.eval.metrics else None)
        # The family's own evaluation (Family.evaluation: a test ELBO, ...), into eval.json.
        self.family_evaluation = builders.build_family_evaluation(config, game)
        self.family_evaluator = family_eval.FamilyEvaluator.create(
            game, sampling.sampler, self.evaluator, generate=sampling.generate,
            seed_key=jax.random.fold_in(rng, 5))

    def _batches(self, state):
        # The same latents at every evaluation, so successive numbers differ only by G.
        key = jax.random.fold_in(self._rng, 4)
        for i in itertools.count():
            inputs = self._sampling.sampler.random(jax.random.fold_in(key, i),
                                                   self.evaluator.settings.batch_size)
            yield np.asarray(to_host(self._sampling.generate(state, inputs)))

    def during_training(self, state, step: int, writer: writers.RunWriter) -> None:
        """The "eval" event: the metrics into metrics.jsonl (the last step's are final)."""
        if step >= self._config.num_steps:
            return
        view = self._sampling.view(state)
        writer.write_scalars(step, suite.scalar_summary(self.evaluator.evaluate(self._batches(view))))
        if self.family_evaluator is not None:
            writer.write_scalars(step, family_eval.summary(self.family_evaluator(view)))

    def final(self, end: LoopEnd, workdir: Path, writer: writers.RunWriter) -> dict:
        """eval.json: the final step's evaluation, with the last logged means."""
        config = self._config
        view = self._sampling.view(end.state)
        result = final_metrics(config, view, self._inp, workdir, self._sampling.generate,
                               end.last_logged, self._sampling.sampler)
        if end.out_of_time and end.step < config.num_steps:
            result["stopped_by_max_train_seconds"] = float(config.get("max_train_seconds", 0.0))
        if self.evaluator is not None:
            result["metrics"] = self.evaluator.evaluate(self._batches(view))
            writer.write_scalars(end.step, suite.scalar_summary(result["metrics"]), replace=True)
            if self.family_evaluator is not None:
                result["family_metrics"] = self.family_evaluator(view)
                writer.write_scalars(end.step, family_eval.summary(result["family_metrics"]),
                                     replace=True)
        if self.family_evaluation is not None:
            result["family_metrics"] = {**result.get("family_metrics", {}),
                                        **self.family_evaluation(view)}
        if jax.process_index() == 0:
            (workdir / "eval.json").write_text(json.dumps(result, indent=2))
        return result


def headline(result: dict) -> dict:
    """The numbers of eval.json a person looks at first: the mixture's modes and
    high-quality share, the metrics' and the family's headline scalars."""
    out = {k: result[k] for k in ("modes", "high_quality") if k in result}
    out.update(suite.scalar_summary(result.get("metrics", {})))
    out.update(family_eval.summary(result.get("family_metrics")))
    return out


def final_metrics(config, state, inp, workdir: Path, generate, last_logged: dict, sampler) -> dict:
    """Mode coverage for mixtures and the last logged metrics.

    The metrics that `config.eval.metrics` names are added by the caller under "metrics".
    """
    result = {"step": int(to_host(state.step)),
              "ema": config.game.ema_decay is not None,
              "final_metrics": last_logged}
    if config.eval.get("standing_stats", 0):
        result["standing_stats"] = config.eval.standing_stats
    if getattr(inp, "num_skipped", 0):
        result["skipped_files"] = inp.num_skipped
    if isinstance(inp, MixtureInput):
        stats, samples = mixture_modes(inp.mixture, state, generate, sampler, config.seed)
        result.update(stats)
        if jax.process_index() == 0:
            writers.scatter_plot(samples, inp.mixture.means, workdir / "samples" / "final.png",
                                 title=f"{stats['modes']}/{inp.mixture.num_modes} modes, "
                                       f"{100 * stats['high_quality']:.1f}% high quality")
    return result


def mixture_modes(mixture, state, generate, sampler, seed: int) -> tuple[dict, np.ndarray]:
    """The PacGAN protocol's mode statistics of a 2-D mixture run (`mode_statistics`,
    with its "protocol" line) and the samples `[PROTOCOL_NUM_SAMPLES, 2]` they count:
    the latents of key fold_in(PRNGKey(seed), 3), through `generate(state, inputs)`."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 3)
    samples = np.asarray(generate(state, sampler.random(key, PROTOCOL_NUM_SAMPLES)))
    stats = mode_statistics(samples, mixture.means, mixture.std)
    stats["protocol"] = (f"Lin et al. 2018 (PacGAN): {PROTOCOL_NUM_SAMPLES} samples, "
                         f"nearest mode, high quality within {stats['threshold']:g} std "
                         f"(std={mixture.std}); a mode is covered by >= 1 such sample.")
    return stats, samples
