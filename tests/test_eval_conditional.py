"""Conditional-sample metrics and InfoGAN code metrics (jgan.eval.conditional), against
hand-made cases, closed forms and brute force; a linear stand-in plays the classifier."""
from __future__ import annotations

import itertools
import json

import jax
import numpy as np
import pytest
import scipy.linalg

from jgan.eval.classifier import classifier_frechet_distance
from jgan.eval.conditional import (
    categorical_code_accuracy,
    class_conditional_latents,
    continuous_code_recovery,
    evaluate_conditional_samples,
    infogan_code_samples,
)
from jgan.families.infogan import InfoGANCodes


class LinearClassifier:
    """Images [N, 1, 1, D] -> logits = the first K pixels, features = pixels @ W (jitted)."""

    def __init__(self, num_classes: int, dim: int, seed: int = 0):
        self.num_classes = num_classes
        w = np.random.default_rng(seed).normal(size=(dim, dim)).astype(np.float32)
        self.w = w
        self._apply = jax.jit(lambda x: (x.reshape(len(x), -1)[:, :num_classes],
                                         x.reshape(len(x), -1) @ w))

    def logits_and_features(self, images):
        logits, features = self._apply(np.asarray(images, np.float32))
        return np.asarray(logits), np.asarray(features)


def _images(pixels) -> np.ndarray:
    return np.asarray(pixels, np.float32)[:, None, None, :]


def _exact_moments(rng, n: int, mean, cov) -> np.ndarray:
    """n samples whose sample mean and (N - 1) covariance are exactly `mean` and `cov`."""
    x = rng.normal(size=(n, len(mean)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T
    return x @ np.linalg.cholesky(cov).T + mean


def test_accuracy_on_hand_made_logits():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2], np.int32)
    predicted = np.array([0, 1, 0, 1, 1, 2, 0, 0, 0])  # class 0: 2/3, 1: 2/2, 2: 1/4
    pixels = np.full((9, 5), -0.5, np.float32)
    pixels[np.arange(9), predicted] = 0.9
    result = evaluate_conditional_samples(_images(pixels), labels, classifier=LinearClassifier(4, 5))
    assert result["accuracy"] == pytest.approx(5 / 9)
    np.testing.assert_allclose(result["per_class_accuracy"][:3], [2 / 3, 1.0, 0.25])
    assert np.isnan(result["per_class_accuracy"][3])  # nothing generated for class 3
    assert not any(k in result for k in ("classifier_fd", "fid", "per_class_fid"))
    protocol = result["protocol"]
    assert protocol["generated_per_class"] == [3, 2, 4, 0] and protocol["num_generated"] == 9
    assert protocol["num_real"] is None and protocol["measured"] == ["accuracy", "per_class_accuracy"]


def test_per_class_classifier_fd_is_zero_for_identical_sets_and_a_mean_shift_otherwise():
    k, dim = 3, 4
    rng = np.random.default_rng(1)
    classifier = LinearClassifier(k, dim)
    real_labels = rng.permutation(np.repeat(np.arange(k), 40)).astype(np.int32)
    real = rng.uniform(-0.5, 0.5, (120, dim)).astype(np.float32)
    same = evaluate_conditional_samples(_images(real), real_labels, classifier=classifier,
                                        real_images=_images(real), real_labels=real_labels)
    np.testing.assert_allclose(same["per_class_classifier_fd"], 0.0, atol=1e-6)
    assert same["classifier_fd"] == pytest.approx(0.0, abs=1e-6)

    # Class c's samples are its real images shifted by delta_c: equal covariances, so
    # d^2 = |delta_c W|^2 in the feature space x -> x W.
    deltas = rng.uniform(-0.3, 0.3, (k, dim)).astype(np.float32)
    fake = real + deltas[real_labels]
    result = evaluate_conditional_samples(_images(fake), real_labels, classifier=classifier,
                                          real_images=_images(real), real_labels=real_labels)
    expected = np.sum((deltas @ classifier.w) ** 2, axis=1)
    np.testing.assert_allclose(result["per_class_classifier_fd"], expected, rtol=1e-4)
    # The overall distance pools the classes: the same as the library's on all features.
    overall = classifier_frechet_distance(fake @ classifier.w, real @ classifier.w)
    assert result["classifier_fd"] == pytest.approx(overall, rel=1e-5)
    assert result["protocol"]["real_per_class"] == [40, 40, 40]
    json.dumps(result)  # the whole result is JSON-serializable


def test_per_class_fid_matches_the_closed_form_for_gaussians():
    """Features with exact moments N(mu, diag(a)) vs N(nu, diag(b)) per class:
    d^2 = |mu - nu|^2 + sum_j (sqrt(a_j) - sqrt(b_j))^2."""
    k, dim, per_class = 3, 6, 200
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(k), per_class).astype(np.int32)
    real_labels = np.repeat(np.arange(k), per_class + 50).astype(np.int32)
    fake, real, expected = [], [], []
    for _ in range(k):
        mu, nu = rng.normal(size=dim), rng.normal(size=dim)
        a, b = rng.uniform(0.2, 2.0, dim), rng.uniform(0.2, 2.0, dim)
        fake.append(_exact_moments(rng, per_class, mu, np.diag(a)))
        real.append(_exact_moments(rng, per_class + 50, nu, np.diag(b)))
        expected.append(np.sum((mu - nu) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    fake, real = np.concatenate(fake), np.concatenate(real)
    images = _images(np.zeros((len(labels), k)))
    result = evaluate_conditional_samples(images, labels, classifier=LinearClassifier(k, k),
                                          inception_features=fake, real_inception_features=real,
                                          real_labels=real_labels)
    np.testing.assert_allclose(result["per_class_fid"], expected, rtol=1e-8)
    # The pooled FID against numpy moments and scipy's sqrtm (the reference codes' route).
    s1, s2 = np.cov(fake, rowvar=False), np.cov(real, rowvar=False)
    pooled = (np.sum((fake.mean(0) - real.mean(0)) ** 2) + np.trace(s1 + s2)
              - 2 * np.trace(scipy.linalg.sqrtm(s1 @ s2).real))
    assert result["fid"] == pytest.approx(pooled, rel=1e-6)
    assert "classifier_fd" not in result and result["protocol"]["num_real"] == 750


def test_evaluate_conditional_samples_errors_name_the_argument():
    classifier = LinearClassifier(2, 3)
    images, labels = _images(np.zeros((6, 3))), np.array([0, 0, 0, 1, 1, 1], np.int32)
    feats = np.zeros((6, 5))
    call = lambda **kw: evaluate_conditional_samples(**{"images": images, "labels": labels,
                                                       "classifier": classifier, **kw})
    with pytest.raises(ValueError, match="labels has 5 entries, images has 6"):
        call(labels=labels[:5])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        call(labels=labels + 1)
    with pytest.raises(ValueError, match="real_labels .* needed"):
        call(real_images=images)
    with pytest.raises(ValueError, match="real_labels were given without"):
        call(real_labels=labels)
    with pytest.raises(ValueError, match="real_images has 6 entries, real_labels has 5"):
        call(real_images=images, real_labels=labels[:5])
    with pytest.raises(ValueError, match="given together"):
        call(inception_features=feats, real_labels=labels)
    with pytest.raises(ValueError, match="inception_features has 4 entries, labels has 6"):
        call(inception_features=feats[:4], real_inception_features=feats, real_labels=labels)
    with pytest.raises(ValueError, match=r"^labels: .*\{1: 1\}"):
        call(labels=np.array([0, 0, 0, 0, 0, 1], np.int32), real_images=images, real_labels=labels)
    with pytest.raises(ValueError, match=r"^real_labels: .*\{0: 0\}"):
        call(real_images=images, real_labels=np.ones(6, np.int32))


def test_categorical_matching_recovers_a_permuted_labelling():
    rng = np.random.default_rng(3)
    perm = rng.permutation(10)
    codes = rng.integers(0, 10, 500)
    result = categorical_code_accuracy(codes, perm[codes], num_codes=10, num_classes=10)
    assert result["accuracy"] == 1.0 and result["mapping"] == perm.tolist()
    assert np.array_equal(np.array(result["confusion"]).sum(1), np.bincount(codes, minlength=10))


@pytest.mark.parametrize("num_codes,num_classes", [(4, 4), (3, 5), (5, 3)])
def test_categorical_matching_equals_brute_force(num_codes, num_classes):
    rng = np.random.default_rng(num_codes * 10 + num_classes)
    codes = rng.integers(0, num_codes, 300)
    noisy = rng.random(300) < 0.5
    predicted = np.where(noisy, rng.integers(0, num_classes, 300), codes % num_classes)
    result = categorical_code_accuracy(codes, predicted, num_codes=num_codes,
                                       num_classes=num_classes)
    # Every one-to-one partial map: the classes (or None) assigned to codes 0..C-1.
    slots = list(range(num_classes)) + [None] * max(num_codes - num_classes, 0)
    best = max(sum(np.sum((codes == c) & (predicted == m)) for c, m in enumerate(assign)
                   if m is not None)
               for assign in set(itertools.permutations(slots, num_codes)))
    assert result["accuracy"] == pytest.approx(best / 300)
    mapping = result["mapping"]
    matched = [m for m in mapping if m is not None]
    assert len(matched) == min(num_codes, num_classes) == len(set(matched))
    hits = sum(np.sum((codes == c) & (predicted == m)) for c, m in enumerate(mapping) if m is not None)
    assert hits == best  # the mapping reported is the one scored
    with pytest.raises(ValueError, match="predicted_classes has 299 entries, codes has 300"):
        categorical_code_accuracy(codes, predicted[1:], num_codes=num_codes, num_classes=num_classes)
    with pytest.raises(ValueError, match="codes must lie"):
        categorical_code_accuracy(codes + num_codes, predicted, num_codes=num_codes,
                                  num_classes=num_classes)


def test_continuous_code_recovery_exact_affine_and_noisy():
    rng = np.random.default_rng(4)
    t = rng.uniform(-1, 1, (1000, 3))
    exact = continuous_code_recovery(t, t)
    np.testing.assert_allclose(exact["pearson"] + exact["r2"], 1.0)
    # p = 2 t - 0.1: r = 1, but R^2 = 1 - sum (t - 0.1)^2 / SST scores the distortion.
    affine = continuous_code_recovery(t, 2 * t - 0.1)
    np.testing.assert_allclose(affine["pearson"], 1.0)
    sst = np.sum((t - t.mean(0)) ** 2, 0)
    np.testing.assert_allclose(affine["r2"], 1 - np.sum((t - 0.1) ** 2, 0) / sst)
    p = t + rng.normal(scale=[0.1, 0.5, 2.0], size=t.shape)
    noisy = continuous_code_recovery(t, p)
    r = [np.corrcoef(t[:, j], p[:, j])[0, 1] for j in range(3)]
    r2 = 1 - np.mean((p - t) ** 2, 0) / np.var(t, 0)
    np.testing.assert_allclose(noisy["pearson"], r, rtol=1e-12)
    np.testing.assert_allclose(noisy["r2"], r2, rtol=1e-12)
    assert noisy["mean_pearson"] == pytest.approx(np.mean(r)) and noisy["r2"][2] < 0
    assert continuous_code_recovery(t[:, 0], t[:, 0])["r2"] == [1.0]  # [N] = one code
    collapsed = continuous_code_recovery(t[:, 0], np.zeros(1000))  # a Q head that ignores x
    assert np.isnan(collapsed["pearson"][0]) and collapsed["r2"][0] < 0
    with pytest.raises(ValueError, match="one shape"):
        continuous_code_recovery(t, t[:, :2])
    with pytest.raises(ValueError, match=r"codes \[1\] are constant"):
        continuous_code_recovery(np.stack([t[:, 0], np.ones(1000)], 1), t[:, :2])


def test_class_conditional_latents_are_fixed_and_standard_normal():
    z, labels = class_conditional_latents(num_classes=10, per_class=500, latent_dim=8, seed=0)
    assert z.shape == (5000, 8) and z.dtype == np.float32 and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 500))
    again, _ = class_conditional_latents(num_classes=10, per_class=500, latent_dim=8, seed=0)
    other, _ = class_conditional_latents(num_classes=10, per_class=500, latent_dim=8, seed=1)
    np.testing.assert_array_equal(z, again)
    assert not np.allclose(z, other)
    np.testing.assert_allclose(z.mean(0), 0, atol=0.06)  # 5 standard errors at N = 5000
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(8), atol=0.1)
    with pytest.raises(ValueError, match="per_class"):
        class_conditional_latents(num_classes=10, per_class=0, latent_dim=8, seed=0)


def _noise(noise_dim: int, noise: str = "normal"):
    """The run's prior draw, as `jgan.families.evaluation` hands it over."""
    return InfoGANCodes(noise_dim=noise_dim, noise=noise).sample_noise


def test_infogan_code_samples_sweep_the_first_code():
    out = infogan_code_samples(noise_dim=5, categorical=(10, 3), continuous=2, per_value=300, seed=0,
                               sample_noise=_noise(5))
    assert out["noise"].shape == (3000, 5) and out["noise"].dtype == np.float32
    assert out["categorical"].shape == (3000, 2) and out["categorical"].dtype == np.int32
    assert out["continuous"].shape == (3000, 2) and out["continuous"].dtype == np.float32
    np.testing.assert_array_equal(out["categorical"][:, 0], np.repeat(np.arange(10), 300))
    counts = np.bincount(out["categorical"][:, 1], minlength=3)
    assert counts.sum() == 3000 and len(counts) == 3 and counts.min() > 900
    c = out["continuous"]
    assert c.min() >= -1 and c.max() <= 1
    np.testing.assert_allclose(c.var(0), 1 / 3, atol=0.03)  # Var U(-1, 1) = 1/3
    again = infogan_code_samples(noise_dim=5, categorical=(10, 3), continuous=2, per_value=300, seed=0,
                                 sample_noise=_noise(5))
    assert all(np.array_equal(out[k], again[k]) for k in out)
    single = infogan_code_samples(noise_dim=0, categorical=(4,), continuous=0, per_value=2, seed=1,
                                  sample_noise=_noise(0))
    assert single["categorical"].tolist() == [[0], [0], [1], [1], [2], [2], [3], [3]]
    with pytest.raises(ValueError, match="categorical"):
        infogan_code_samples(noise_dim=5, categorical=(), continuous=2, per_value=3, seed=0,
                             sample_noise=_noise(5))


def test_infogan_code_samples_draw_noise_from_the_runs_prior():
    normal = infogan_code_samples(noise_dim=6, categorical=(10,), continuous=0, per_value=200,
                                  seed=0, sample_noise=_noise(6))["noise"]
    uniform = infogan_code_samples(noise_dim=6, categorical=(10,), continuous=0, per_value=200,
                                   seed=0, sample_noise=_noise(6, "uniform"))["noise"]
    np.testing.assert_allclose(normal.var(), 1.0, atol=0.05)
    assert uniform.dtype == np.float32 and uniform.shape == (2000, 6)
    assert uniform.min() >= -1 and uniform.max() <= 1
    np.testing.assert_allclose(uniform.var(), 1 / 3, atol=0.02)   # Var U(-1, 1)
    np.testing.assert_allclose(uniform.mean(), 0.0, atol=0.02)


@pytest.mark.parametrize("noise,variance", [("normal", 1.0), ("uniform", 1 / 3)])
def test_infogan_family_evaluation_feeds_the_generator_its_training_prior(noise, variance):
    # The evaluation once drew N(0, I) noise for every run, so generators trained on
    # InfoGAN's released Uniform(-1, 1) prior were scored on inputs they never saw.
    from types import SimpleNamespace

    from jgan.families.infogan import InfoGANCodes
    from jgan.families.sampling import GeneratorInputs
    from jgan.families.evaluation import FamilyEvaluator

    codes = InfoGANCodes(noise_dim=6, categorical=(10,), continuous=0, noise=noise)
    sampler = GeneratorInputs("infogan", latent_dim=6, codes=codes)
    seen = []

    def generate(state, inputs):
        seen.append(np.asarray(inputs["noise"]))
        # A generator whose image encodes its code value, for a classifier that reads it.
        return np.repeat(np.asarray(inputs["categorical"][:, :1], np.float32), 4, axis=1)

    classifier = SimpleNamespace(
        num_classes=10,
        logits_and_features=lambda x: (np.eye(10)[(9 - x[:, 0]).astype(int)], None))
    settings = SimpleNamespace(num_samples=2000, batch_size=500, classifier_workdir="c")
    evaluator = FamilyEvaluator(game=None, sampler=sampler,
                                evaluator=SimpleNamespace(settings=settings, classifier=classifier),
                                generate=generate, seed_key=jax.random.PRNGKey(0))
    # Real data and a Q that reads it: Q's code for an image of digit y is (y + 3) mod 10,
    # except for digit 0, which it calls code 4 like the 1s.
    real_labels = np.arange(500) % 10
    real = np.repeat(real_labels[:, None], 4, axis=1).astype(np.uint8)
    evaluator._real = (real, real_labels)
    def q_code(state, x):
        digit = np.round((x[:, 0] + 1) * 127.5).astype(np.int32)
        return np.where(digit == 0, 4, (digit + 3) % 10)
    evaluator.q_code = q_code
    result = evaluator(state=None)
    assert result["categorical_code"]["accuracy"] == 1.0   # code c drawn as class 9 - c
    assert result["categorical_code"]["mapping"] == list(range(9, -1, -1))
    # Q on real digits: nine of ten classes recovered under the matching 4 -> 1, c -> c - 3.
    assert result["categorical_code_real"]["accuracy"] == pytest.approx(0.9)
    assert result["categorical_code_real"]["mapping"][5:] == [2, 3, 4, 5, 6]
    from jgan.families.evaluation import summary
    assert summary(result)["eval/infogan_q_real_accuracy"] == pytest.approx(0.9)
    z = np.concatenate(seen)
    assert z.shape == (2000, 6)
    np.testing.assert_allclose(z.var(), variance, rtol=0.06)
    if noise == "uniform":
        assert np.abs(z).max() <= 1.0
