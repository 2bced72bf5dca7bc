"""Metrics of conditional GANs (cGAN, AC-GAN, projection) and InfoGAN's latent codes.

* `evaluate_conditional_samples` -- samples generated for requested classes: how often
  the classifier agrees with the request (AC-GAN's "classification accuracy", Odena et
  al. 2017), overall and per class, and the Frechet distance per class ("intra-FID",
  Miyato & Koyama 2018, "cGANs with Projection Discriminator"): class k's samples
  against class k's real images, in the classifier's and in Inception's feature space.
* `categorical_code_accuracy` -- InfoGAN (Chen et al. 2016) reports how well its
  categorical code captures the digit class after the best one-to-one matching of
  code values to classes; `continuous_code_recovery` scores the Q head's estimates
  of the continuous codes.
* `class_conditional_latents`, `infogan_code_samples` -- fixed, seeded inputs for both.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from jgan.eval.classifier import classifier_frechet_distance, conditional_accuracy
from jgan.eval.fid import fid_of_features
from jgan.eval.protocol import protocol_record

__all__ = ["categorical_code_accuracy", "class_conditional_latents", "continuous_code_recovery",
           "evaluate_conditional_samples", "infogan_code_samples"]

# Per-class Inception covariances are rank deficient (far fewer samples per class than
# 2048 dimensions), where sqrtm needs its 1e-6 I offset; per-class FID is the exact
# symmetric value (fid's method="eigh"), computed in sample space by fid_of_features.
_FID_METHOD = "eigh"


def _labels(labels, name: str, num_classes: int, length: int | None = None,
            of: str = "") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array, got {labels.dtype} {labels.shape}.")
    if length is not None and len(labels) != length:
        raise ValueError(f"{name} has {len(labels)} entries, {of} has {length}: they must "
                         "match one to one.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got "
                         f"[{labels.min()}, {labels.max()}].")
    return labels


def _check_length(array, name: str, length: int, of: str):
    if len(array) != length:
        raise ValueError(f"{name} has {len(array)} entries, {of} has {length}: they must "
                         "match one to one.")


def _require_two_per_class(labels: np.ndarray, name: str, num_classes: int):
    counts = np.bincount(labels, minlength=num_classes)
    short = {int(k): int(counts[k]) for k in np.flatnonzero(counts < 2)}
    if short:
        raise ValueError(f"{name}: a per-class Frechet distance needs >= 2 samples of every "
                         f"class; {{class: count}} = {short}.")


def evaluate_conditional_samples(images, labels, *, classifier, real_images=None,
                                 real_labels=None, inception_features=None,
                                 real_inception_features=None, protocol: dict | None = None) -> dict:
    """Class-conditional samples scored against the classes they were generated for.

    accuracy = (1/N) sum_i [argmax_k c(x_i)_k = y_i] (`conditional_accuracy`). For each
    feature space (the classifier's penultimate features; Inception pool3), the Frechet
    distance d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}) of all samples
    against all real images, and per class k of {x_i : y_i = k} against the real images
    of class k (intra-FID, Miyato & Koyama 2018). Per-class distances are biased upwards
    at small counts, so compare them only at equal counts (the protocol records them).

    Args:
      images: `[N, H, W, C]` generated images in [-1, 1].
      labels: `[N]` integer classes they were generated for, in [0, K).
      classifier: has `num_classes` (K) and `logits_and_features(images)` ->
        `(logits [N, K], features [N, F])`, e.g. a `TrainedClassifier`.
      real_images, real_labels: `[M, H, W, C]` real images and their `[M]` classes;
        together, for `classifier_fd` and `per_class_classifier_fd`.
      inception_features: `[N, 2048]` pool3 features of `images` (from
        `jgan.eval.features.InceptionFeatures`), and real_inception_features `[M, 2048]`
        of the real images labelled `real_labels`: together, for `fid` and `per_class_fid`.
      protocol: extra protocol fields (e.g. reference, weights_sha256, resize_method).
    Returns:
      `{"accuracy": float, "per_class_accuracy": [K] (NaN for a class without samples),
      "classifier_fd", "per_class_classifier_fd", "fid", "per_class_fid" (when their
      inputs are given), "protocol": dict}`.
    Raises:
      ValueError: naming the argument, for mismatched lengths, a real set without its
        labels (or the reverse), or a class with < 2 samples for a per-class distance.
    """
    num_classes = int(classifier.num_classes)
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got shape {images.shape}.")
    labels = _labels(labels, "labels", num_classes, len(images), "images")
    if (inception_features is None) != (real_inception_features is None):
        raise ValueError("inception_features and real_inception_features must be given together.")
    if real_labels is None and (real_images is not None or real_inception_features is not None):
        raise ValueError("real_labels (the classes of the real images) are needed with "
                         "real_images or real_inception_features.")
    if real_labels is not None and real_images is None and real_inception_features is None:
        raise ValueError("real_labels were given without real_images or real_inception_features.")
    if real_labels is not None:
        real_labels = _labels(real_labels, "real_labels", num_classes)
        # Checked before any network runs, so a bad request fails at once.
        _require_two_per_class(labels, "labels", num_classes)
        _require_two_per_class(real_labels, "real_labels", num_classes)
        if real_images is not None:
            _check_length(real_images, "real_images", len(real_labels), "real_labels")
        if inception_features is not None:
            _check_length(inception_features, "inception_features", len(labels), "labels")
            _check_length(real_inception_features, "real_inception_features",
                          len(real_labels), "real_labels")

    def per_class(fake, real, distance) -> list[float]:
        return [distance(fake[labels == k], real[real_labels == k]) for k in range(num_classes)]

    logits, features = classifier.logits_and_features(images)
    accuracy = conditional_accuracy(logits, labels, num_classes)
    result = {"accuracy": accuracy["overall"], "per_class_accuracy": accuracy["per_class"]}
    measured = ["accuracy", "per_class_accuracy"]
    if real_images is not None:
        _, real_features = classifier.logits_and_features(real_images)
        result["classifier_fd"] = classifier_frechet_distance(features, real_features)
        result["per_class_classifier_fd"] = per_class(features, real_features,
                                                      classifier_frechet_distance)
        measured += ["classifier_fd", "per_class_classifier_fd"]
    if inception_features is not None:
        fake, real = np.asarray(inception_features), np.asarray(real_inception_features)
        result["fid"] = fid_of_features(fake, real)
        result["per_class_fid"] = per_class(fake, real, fid_of_features)
        measured += ["fid", "per_class_fid"]

    record = {"reference": "unspecified", "resize_method": "none", "weights_sha256": None}
    if getattr(classifier, "workdir", None) is not None:  # a TrainedClassifier, not a stand-in
        record.update(classifier_workdir=str(classifier.workdir),
                      classifier_step=int(classifier.step))
    record.update(protocol or {})
    result["protocol"] = protocol_record(
        metric="conditional_samples", num_generated=len(labels),
        num_real=None if real_labels is None else len(real_labels), num_classes=num_classes,
        measured=measured, accuracy="argmax of the classifier's logits == requested label",
        fd_sqrt_method={"classifier_fd": "sqrtm", "fid": _FID_METHOD},
        generated_per_class=np.bincount(labels, minlength=num_classes).tolist(),
        real_per_class=(None if real_labels is None else
                        np.bincount(real_labels, minlength=num_classes).tolist()),
        **record)
    return result


def categorical_code_accuracy(codes, predicted_classes, *, num_codes: int, num_classes: int) -> dict:
    """Accuracy of a categorical latent code as a class label, under the best matching.

    With the confusion matrix C[c, k] = #{i : code_i = c, class_i = k}, the one-to-one
    map m of codes to classes maximizing sum_c C[c, m(c)] (Hungarian algorithm,
    `scipy.optimize.linear_sum_assignment`) gives accuracy = sum_c C[c, m(c)] / N. With
    num_codes != num_classes only min(num_codes, num_classes) pairs are matched; samples
    of an unmatched code count as wrong. InfoGAN (Chen et al. 2016) reports
    this for its 10-way code on MNIST (5% error).

    Args:
      codes: `[N]` integer code values in [0, num_codes) the samples were generated with.
      predicted_classes: `[N]` integer classes a classifier gives the samples, in
        [0, num_classes).
    Returns:
      `{"accuracy": float, "mapping": [num_codes] class per code (None if unmatched),
      "confusion": [num_codes][num_classes] counts}`.
    """
    codes = _labels(codes, "codes", num_codes)
    predicted = _labels(predicted_classes, "predicted_classes", num_classes, len(codes), "codes")
    if len(codes) == 0:
        raise ValueError("categorical_code_accuracy needs at least one sample.")
    confusion = np.zeros((num_codes, num_classes), np.int64)
    np.add.at(confusion, (codes, predicted), 1)
    rows, cols = scipy.optimize.linear_sum_assignment(confusion, maximize=True)
    mapping = [None] * num_codes
    for code, cls in zip(rows, cols):
        mapping[int(code)] = int(cls)
    return {"accuracy": float(confusion[rows, cols].sum() / len(codes)), "mapping": mapping,
            "confusion": confusion.tolist()}


def continuous_code_recovery(true_codes, predicted) -> dict:
    """How well predicted continuous codes (InfoGAN's Q head) recover the true ones.

    Per code j: Pearson r_j = cov(t_j, p_j) / (std(t_j) std(p_j)), and the coefficient
    of determination R^2_j = 1 - SSE/SST = 1 - sum_i (p_ij - t_ij)^2 / sum_i (t_ij - mean t_j)^2
    of the prediction as it stands (no refitting: r = 1 with R^2 < 1 means an affine
    distortion). r_j is NaN for a constant prediction.

    Args:
      true_codes: `[N, k]` (or `[N]`) codes the samples were generated with, N >= 2.
      predicted: the same shape, the estimates.
    Returns:
      `{"pearson": [k], "r2": [k], "mean_pearson": float, "mean_r2": float}`.
    """
    t = np.asarray(true_codes, np.float64)
    p = np.asarray(predicted, np.float64)
    t, p = (t[:, None] if t.ndim == 1 else t), (p[:, None] if p.ndim == 1 else p)
    if t.ndim != 2 or t.shape != p.shape:
        raise ValueError(f"true_codes and predicted must be [N, k] of one shape, got "
                         f"{np.shape(true_codes)} and {np.shape(predicted)}.")
    if len(t) < 2 or not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
        raise ValueError(f"true_codes and predicted need N >= 2 finite rows, got N = {len(t)}.")
    tc, pc = t - t.mean(0), p - p.mean(0)
    sst = np.sum(tc ** 2, axis=0)
    if np.any(sst == 0):
        raise ValueError(f"true_codes: codes {np.flatnonzero(sst == 0).tolist()} are constant; "
                         "R^2 and r are undefined.")
    with np.errstate(invalid="ignore", divide="ignore"):
        pearson = np.sum(tc * pc, axis=0) / np.sqrt(sst * np.sum(pc ** 2, axis=0))
    r2 = 1 - np.sum((p - t) ** 2, axis=0) / sst
    return {"pearson": pearson.tolist(), "r2": r2.tolist(),
            "mean_pearson": float(np.mean(pearson)), "mean_r2": float(np.mean(r2))}


@functools.partial(jax.jit, static_argnums=(1, 2))
def _normal(key, n: int, dim: int) -> jax.Array:
    return jax.random.normal(key, (n, dim), jnp.float32)


def class_conditional_latents(*, num_classes: int, per_class: int, latent_dim: int,
                              seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of latents for class-conditional evaluation.

    Returns:
      `z [K * per_class, latent_dim]` float32 ~ N(0, I) from `PRNGKey(seed)` (fresh z for
      every sample), and `labels [K * per_class]` int32 = repeat(arange(K), per_class).
    """
    for name, value in (("num_classes", num_classes), ("per_class", per_class),
                        ("latent_dim", latent_dim)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}.")
    n = num_classes * per_class
    z = np.asarray(_normal(jax.random.PRNGKey(seed), n, latent_dim))
    return z, np.repeat(np.arange(num_classes, dtype=np.int32), per_class)


def infogan_code_samples(*, noise_dim: int, categorical: tuple[int, ...], continuous: int,
                         per_value: int, seed: int, sample_noise) -> dict:
    """InfoGAN inputs that sweep the first categorical code, the rest random.

    N = categorical[0] * per_value; code 0 is repeat(arange(categorical[0]), per_value),
    codes j > 0 are uniform on [0, categorical[j]), the continuous codes U(-1, 1) and
    the noise from the run's prior, all from `PRNGKey(seed)`. `sample_noise(key, n)`
    draws the `[n, noise_dim]` noise: the run's own `InfoGANCodes.sample_noise`, so
    that the prior is the one the generator was trained with (z from another one, for
    instance N(0, I), variance 1, into a generator trained on U(-1, 1), variance 1/3,
    is out of its training distribution).

    Returns:
      `{"noise": [N, noise_dim] float32, "categorical": [N, len(categorical)] int32,
      "continuous": [N, continuous] float32}`.
    """
    categorical = tuple(int(c) for c in categorical)
    if not categorical or min(categorical) < 1:
        raise ValueError(f"categorical must name >= 1 code of >= 1 values, got {categorical}.")
    if per_value < 1 or noise_dim < 0 or continuous < 0:
        raise ValueError(f"need per_value >= 1 and noise_dim, continuous >= 0, got "
                         f"{per_value}, {noise_dim}, {continuous}.")
    n = categorical[0] * per_value
    k_noise, k_cat, k_cont = jax.random.split(jax.random.PRNGKey(seed), 3)
    others = [np.asarray(jax.random.randint(k, (n,), 0, c, jnp.int32))
              for k, c in zip(jax.random.split(k_cat, max(len(categorical) - 1, 1)), categorical[1:])]
    codes = np.stack([np.repeat(np.arange(categorical[0], dtype=np.int32), per_value), *others], 1)
    cont = jax.random.uniform(k_cont, (n, continuous), jnp.float32, -1.0, 1.0)
    return {"noise": np.asarray(sample_noise(k_noise, n)), "categorical": codes,
            "continuous": np.asarray(cont)}
