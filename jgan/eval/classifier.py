"""Metrics from a trained MNIST / Fashion-MNIST classifier: fast evaluation on CPU.

`load_classifier(workdir)` restores a classifier that `experiments.main` trained
(`experiments/configs/classifier_*.py`). Its logits score generated images:

* `conditional_accuracy` -- how often a conditional sample is classified as the class
  it was asked for (the "classification accuracy" of Odena et al. 2017, "Conditional
  Image Synthesis with Auxiliary Classifier GANs", with the GAN's own dataset
  classifier in place of Inception).
* `class_histogram` -- how a set of unconditional samples spreads over the classes,
  and its KL divergence to the uniform distribution (the mode-collapse measure of
  Metz et al. 2017, "Unrolled GANs", and Srivastava et al. 2017, "VEEGAN").

Its penultimate features give `classifier_frechet_distance`: the Frechet distance of
FID (Heusel et al. 2017) in the classifier's feature space instead of Inception's,
which is cheap to compute and sensitive to the dataset's own structure.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jgan.checkpoints import RunCheckpoints
from jgan.errors import ConfigError, MissingFileError
from jgan.eval import classifier_state
from jgan.eval.fid import GaussianStats, fid
from jgan.models.classifier import DigitClassifier
from jgan.saved_configs import upgrade_config
from jgan.sharding import to_host

# Float images may overshoot [-1, 1] by this much (rounding); more means another range.
_RANGE_TOLERANCE = 1e-3


@functools.partial(jax.jit, static_argnums=0)
def _apply(model: DigitClassifier, variables: dict, images: jax.Array):
    return model.apply(variables, images, train=False)


@dataclasses.dataclass(frozen=True)
class TrainedClassifier:
    """A trained `DigitClassifier` with its config, in inference mode.

    Attributes:
      config: the run's config (from `workdir/config.json`).
      model: the network.
      variables: `{'params': ..., 'batch_stats': ...}` of the latest checkpoint.
      step: the training step of that checkpoint.
      workdir: where the run lives.
    """
    config: ml_collections.ConfigDict
    model: DigitClassifier
    variables: dict
    step: int
    workdir: Path

    @property
    def num_classes(self) -> int:
        """K, the number of classes (logits)."""
        return self.config.model.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(R, R, C) of the images the classifier takes."""
        d = self.config.data
        return (d.resolution, d.resolution, d.channels)

    def logits_and_features(self, images, *, batch_size: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """Images `(N, R, R, C)` -> `(logits (N, K), features (N, F))` as float32 numpy.

        Args:
          images: uint8 in [0, 255] (converted like the training data: x / 127.5 - 1),
            or floats in [-1, 1] (a GAN generator's tanh output).
          batch_size: images per jitted call; the last batch is padded, so one
            compilation serves every N.
        Raises:
          ValueError: a shape other than (N, R, R, C), float values outside [-1, 1] or
            not finite, or a batch_size < 1.
        """
        x = self._as_model_input(images)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        logits, features = [], []
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            n = len(batch)
            if n < batch_size:
                batch = np.concatenate([batch, np.zeros((batch_size - n, *batch.shape[1:]),
                                                        batch.dtype)])
            batch_logits, batch_features = to_host(_apply(self.model, self.variables, batch))
            logits.append(batch_logits[:n])
            features.append(batch_features[:n])
        if not logits:
            return (np.zeros((0, self.num_classes), np.float32),
                    np.zeros((0, self.model.features), np.float32))
        return np.concatenate(logits), np.concatenate(features)

    def _as_model_input(self, images) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[1:] != self.image_shape:
            raise ValueError(f"images must be (N, {', '.join(map(str, self.image_shape))}) for the "
                             f"classifier in {self.workdir}, got shape {images.shape}.")
        if images.dtype == np.uint8:
            return images.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be uint8 or float in [-1, 1], got dtype {images.dtype}.")
        images = images.astype(np.float32)
        if images.size and not np.all(np.isfinite(images)):
            raise ValueError("images contain NaN or infinite values.")
        if images.size and (images.min() < -1 - _RANGE_TOLERANCE or images.max() > 1 + _RANGE_TOLERANCE):
            raise ValueError(f"float images must lie in [-1, 1], got values in "
                             f"[{images.min():g}, {images.max():g}].")
        return images


def load_classifier(workdir: str | Path) -> TrainedClassifier:
    """The classifier of the latest checkpoint of a classifier run in `workdir`.

    Raises:
      MissingFileError: no `config.json` or no checkpoint in `workdir` (names it).
      ConfigError: `workdir` holds a run of another task (e.g. a GAN).
    """
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.exists():
        raise MissingFileError(f"{config_path} not found: is {workdir} the workdir of a "
                               "classifier run (experiments/configs/classifier_*.py)?")
    config = ml_collections.ConfigDict(json.loads(config_path.read_text()))
    if config.get("task") != classifier_state.TASK:
        raise ConfigError(f"{workdir} holds a run of task {config.get('task')!r}, not a classifier.")
    config = upgrade_config(config)
    ckpts = RunCheckpoints(workdir / "checkpoints")
    try:
        step = ckpts.latest_step()
        if step is None:
            raise MissingFileError(f"No checkpoint in {workdir / 'checkpoints'}: has the "
                                   "classifier run saved one?")
        abstract = jax.eval_shape(lambda rng: classifier_state.create_state(config, rng),
                                  jax.random.PRNGKey(0))
        state = ckpts.restore_state(step, abstract)
    finally:
        ckpts.close()
    return TrainedClassifier(config=config, model=classifier_state.build_model(config),
                             variables={"params": state.params, "batch_stats": state.batch_stats},
                             step=int(step), workdir=workdir)


def _check_logits(logits, num_classes: int) -> np.ndarray:
    logits = np.asarray(logits)
    if logits.ndim != 2 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must be (N, num_classes={num_classes}), got shape {logits.shape}.")
    return logits


def conditional_accuracy(logits, labels, num_classes: int) -> dict:
    """Accuracy of the classifier on conditional samples, against the requested classes.

    overall = (1/N) sum_i [argmax_k logits_ik = y_i], and per class c the same mean
    over the samples with y_i = c (NaN for a class with no samples). Odena et al. 2017
    (AC-GAN), "classification accuracy" of conditional samples.

    Args:
      logits: `(N, K)` classifier logits of the samples.
      labels: `(N,)` integer classes the samples were generated for, in [0, K).
      num_classes: K.
    Returns:
      `{"overall": float, "per_class": list of K floats}`.
    """
    logits = _check_logits(logits, num_classes)
    labels = np.asarray(labels)
    if labels.shape != logits.shape[:1] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({logits.shape[0]},) to match logits, "
                         f"got {labels.dtype} {labels.shape}.")
    if labels.size == 0:
        raise ValueError("conditional_accuracy needs at least one sample.")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}].")
    correct = np.argmax(logits, axis=1) == labels
    per_class_count = np.bincount(labels, minlength=num_classes)
    per_class_correct = np.bincount(labels, weights=correct, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = per_class_correct / per_class_count
    return {"overall": float(correct.mean()), "per_class": [float(a) for a in per_class]}


def class_histogram(logits, num_classes: int) -> dict:
    """How unconditional samples spread over the classes (by argmax of the logits).

    With fractions p_k = counts_k / N, kl_to_uniform = KL(p || U_K) = sum_k p_k log(K p_k)
    = log K - H(p) in nats (0 log 0 = 0): 0 for balanced classes, log K when every
    sample falls in one. Metz et al. 2017 (Unrolled GANs) and Srivastava et al. 2017
    (VEEGAN) report this KL on Stacked MNIST.

    Args:
      logits: `(N, K)` classifier logits, N >= 1.
      num_classes: K.
    Returns:
      `{"counts": list of K ints, "fractions": list of K floats, "kl_to_uniform": float,
      "num_classes_seen": int}`.
    """
    logits = _check_logits(logits, num_classes)
    if len(logits) == 0:
        raise ValueError("class_histogram needs at least one sample.")
    counts = np.bincount(np.argmax(logits, axis=1), minlength=num_classes)
    fractions = counts / counts.sum()
    seen = fractions > 0
    kl = float(np.sum(fractions[seen] * np.log(num_classes * fractions[seen])))
    return {"counts": [int(c) for c in counts], "fractions": [float(f) for f in fractions],
            "kl_to_uniform": kl, "num_classes_seen": int(seen.sum())}


def classifier_frechet_distance(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two sets of classifier features.

    d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}), the formula of FID
    (Heusel et al. 2017) on the classifier's penultimate features instead of
    Inception pool3 features; numbers are comparable only between the same classifier.

    Args:
      features_a: `(N_a, F)`, N_a >= 2.
      features_b: `(N_b, F)`, N_b >= 2.
    """
    shapes = (np.shape(features_a), np.shape(features_b))
    if any(len(s) != 2 for s in shapes) or shapes[0][1] != shapes[1][1]:
        raise ValueError(f"features must be (N_a, F) and (N_b, F) with the same F, got {shapes}.")
    return fid(GaussianStats.from_features(features_a), GaussianStats.from_features(features_b))
