"""The evaluation a conditional or InfoGAN run adds to its final `eval.json` (and, as
headline scalars, to metrics.jsonl at every `eval.every`).

Class-conditional runs (cGAN, projection, ACGAN): `eval.num_samples` samples, an equal
share per class, scored by the classifier of `eval.classifier_workdir`: its accuracy on
the requested labels (overall and per class) and the Frechet distance in its feature
space per class and overall, against the first `eval.num_real` images of the
reference split (`jgan.eval.conditional`). With `fid` among `eval.metrics`, FID per
class and overall too.

InfoGAN runs: the first categorical code's accuracy against the classifier's digit
after the best one-to-one matching of code values to classes (Hungarian), and how well
Q recovers each continuous code (Pearson r, R^2). Images come from the run's sampling
weights (EMA when kept), their noise from the run's prior. Also Q's first categorical
code as an unsupervised classifier of the first `eval.num_real` real images, matched to
their labels the same way: the measure behind InfoGAN's "5% error rate in classifying
MNIST digits" (Chen et al. 2016, sec. 7.1), which reads Q, not G. Q is read with the
live weights of its head and of the discriminator's trunk, which were trained together.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jgan.data.in_memory import load_examples
from jgan.eval import conditional as cond_eval
from jgan.eval import suite
from jgan.families import representation
from jgan.families.network_names import Q_HEAD
from jgan.sharding import to_host


def _batched(fn, inputs: dict, batch_size: int) -> np.ndarray:
    n = len(next(iter(inputs.values())))
    out = [np.asarray(to_host(fn({k: v[i:i + batch_size] for k, v in inputs.items()})))
           for i in range(0, n, batch_size)]
    return np.concatenate(out)


def _model_input(images: np.ndarray) -> np.ndarray:
    """Real images as the networks take them: float32 in [-1, 1]."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return images


def _pool3(evaluator: suite.Evaluator, images: np.ndarray) -> np.ndarray:
    images = _model_input(images)
    bs = evaluator.settings.batch_size
    return np.concatenate([evaluator.inception(images[i:i + bs])["pool3"]
                           for i in range(0, len(images), bs)])


def _real_images_and_labels(settings: suite.EvalSettings):
    source = suite._real_source(settings)
    arrays = load_examples(source, resolution=settings.resolution, channels=settings.channels,
                           resize=settings.data_resize)
    n = min(settings.num_real, len(arrays["label"]))
    images = arrays["image"][:n]
    if images.dtype != np.uint8:  # resized: floats in [-1, 1] already
        images = np.clip(images, -1.0, 1.0)
    return images, arrays["label"][:n]


class FamilyEvaluator:
    """The family's own metrics of a run's state; built once per run, so its jitted
    functions (which take the state as an argument) compile once for every evaluation.

    Call `FamilyEvaluator.create`, which gives None for runs whose generator takes z
    alone (or that have none) or without a classifier.
    """

    def __init__(self, game, sampler, evaluator: suite.Evaluator, *, generate,
                 seed_key: jax.Array):
        self.sampler = sampler
        self.evaluator = evaluator
        self.generate = generate
        self.seed = int(jax.random.randint(seed_key, (), 0, 2**31 - 1))
        self._real = None
        self._real_pool3 = None  # the real images' Inception features, computed once

        def q(state, x):
            # Q's head reads the discriminator's current trunk, which has no EMA copy:
            # the head trained against that trunk is the one to read it with (the EMA
            # head lags the trunk and scored R^2 down to -4 on runs whose live Q was fine).
            nets = game.bind(state, train=False, rng=seed_key, use_ema=False)
            return nets(Q_HEAD, nets("discriminator", x, features=True))
        self.q_mean = jax.jit(lambda state, x: q(state, x)["continuous_mean"])
        self.q_code = jax.jit(lambda state, x: jnp.argmax(q(state, x)["categorical"][0], -1))

    @classmethod
    def create(cls, game, sampler, evaluator: suite.Evaluator | None, *, generate,
               seed_key: jax.Array) -> "FamilyEvaluator | None":
        """Args:
          game: the run's game.
          sampler: its `jgan.families.sampling.GeneratorInputs`.
          evaluator: the run's `suite.Evaluator` (its classifier and Inception network
            are reused), or None.
          generate: jitted `(state, inputs) -> images` (the trainer's, EMA weights
            when the run keeps them).
          seed_key: key of the fixed evaluation latents, the same at every evaluation.
        """
        if (sampler is None or sampler.kind == "latent" or evaluator is None
                or not evaluator.settings.classifier_workdir):
            return None
        return cls(game, sampler, evaluator, generate=generate, seed_key=seed_key)

    def real_images_and_labels(self):
        if self._real is None:
            self._real = _real_images_and_labels(self.evaluator.settings)
        return self._real

    def __call__(self, state) -> dict:
        """The metrics of `state` (see the module docstring)."""
        settings = self.evaluator.settings
        classifier = self.evaluator.classifier
        sampler = self.sampler
        generate = lambda inputs: self.generate(state, inputs)
        if sampler.conditional:
            k = sampler.num_classes
            z, labels = cond_eval.class_conditional_latents(
                num_classes=k, per_class=max(2, settings.num_samples // k),
                latent_dim=sampler.latent_dim, seed=self.seed)
            images = _batched(generate, {"z": jnp.asarray(z), "labels": jnp.asarray(labels)},
                              settings.batch_size)
            real, real_labels = self.real_images_and_labels()
            kwargs = {}
            if "fid" in settings.metrics:
                if self._real_pool3 is None:
                    self._real_pool3 = _pool3(self.evaluator, real)
                kwargs = dict(inception_features=_pool3(self.evaluator, images),
                              real_inception_features=self._real_pool3)
            return cond_eval.evaluate_conditional_samples(
                images, labels, classifier=classifier, real_images=real,
                real_labels=real_labels, **kwargs)
        codes = sampler.codes
        inputs = cond_eval.infogan_code_samples(
            noise_dim=codes.noise_dim, categorical=codes.categorical,
            continuous=codes.continuous,
            per_value=max(2, settings.num_samples // max(codes.categorical or (1,))),
            seed=self.seed, sample_noise=codes.sample_noise)
        inputs = {k: jnp.asarray(v) for k, v in inputs.items()}
        images = _batched(generate, inputs, settings.batch_size)
        result = {}
        if codes.categorical:
            predicted = np.argmax(classifier.logits_and_features(images)[0], axis=-1)
            result["categorical_code"] = cond_eval.categorical_code_accuracy(
                np.asarray(inputs["categorical"][:, 0]), predicted,
                num_codes=codes.categorical[0], num_classes=classifier.num_classes)
            real, real_labels = self.real_images_and_labels()
            q_codes = _batched(lambda b: self.q_code(state, b["x"]),
                               {"x": _model_input(real)}, settings.batch_size)
            result["categorical_code_real"] = cond_eval.categorical_code_accuracy(
                q_codes, real_labels, num_codes=codes.categorical[0],
                num_classes=classifier.num_classes)
        if codes.continuous:
            predicted = _batched(lambda b: self.q_mean(state, b["x"]),
                                 {"x": jnp.asarray(images)}, settings.batch_size)
            result["continuous_codes"] = cond_eval.continuous_code_recovery(
                np.asarray(inputs["continuous"]), predicted)
        return result


def summary(result: dict | None) -> dict:
    """Headline scalars of `evaluate_family`'s result for metrics.jsonl."""
    if not result:
        return {}
    out = {}
    for key in ("accuracy", "classifier_fd", "fid"):
        if key in result:
            out[f"eval/conditional_{key}"] = float(result[key])
    if "categorical_code" in result:
        out["eval/infogan_code_accuracy"] = float(result["categorical_code"]["accuracy"])
    if "categorical_code_real" in result:
        out["eval/infogan_q_real_accuracy"] = float(result["categorical_code_real"]["accuracy"])
    if "continuous_codes" in result:
        out["eval/infogan_continuous_r2"] = float(result["continuous_codes"]["mean_r2"])
    for key in ("test_elbo", "test_nll_iwae", "test_mse", "test_loss",  # autoencoder, VAE
                "reconstruction_mse", "cluster_test_error"):
        if key in result:
            out[f"eval/{key}"] = float(result[key])
    out.update(representation.summary(result))
    return out
