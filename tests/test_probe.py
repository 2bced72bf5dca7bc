"""Linear probe and k-NN accuracy on frozen features."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
import scipy.special

from jgan.eval.probe import encode_source, knn_accuracy, linear_probe, probe_encoder


def gaussian_blobs(rng, num, num_classes, dim, separation, noise=1.0):
    means = rng.normal(size=(num_classes, dim)) * separation
    labels = rng.integers(0, num_classes, num)
    return means[labels] + noise * rng.normal(size=(num, dim)), labels, means


def test_separable_blobs_are_probed_perfectly():
    rng = np.random.default_rng(0)
    x, y, means = gaussian_blobs(rng, 1500, 5, 16, separation=4.0)
    test_y = rng.integers(0, 5, 500)
    test_x = means[test_y] + rng.normal(size=(500, 16))
    result = linear_probe(x, y, test_x, test_y)
    assert result["top1"] >= 0.99 and result["train_top1"] >= 0.99
    assert result["converged"] and result["num_classes"] == 5


def test_labels_independent_of_features_give_chance():
    rng = np.random.default_rng(1)
    x, test_x = rng.normal(size=(2000, 32)), rng.normal(size=(2000, 32))
    y, test_y = rng.integers(0, 10, 2000), rng.integers(0, 10, 2000)
    result = linear_probe(x, y, test_x, test_y)
    # Test labels are uniform and independent of everything: top1 ~ Binomial(2000, 0.1) / 2000.
    assert abs(result["top1"] - 0.1) < 5 * np.sqrt(0.1 * 0.9 / 2000)
    assert abs(knn_accuracy(x, y, test_x, test_y) - 0.1) < 5 * np.sqrt(0.1 * 0.9 / 2000)


def test_linear_probe_reaches_the_scipy_optimum():
    rng = np.random.default_rng(2)
    x, y, means = gaussian_blobs(rng, 300, 3, 5, separation=1.0)  # overlapping classes
    test_y = rng.integers(0, 3, 200)
    test_x = means[test_y] + rng.normal(size=(200, 5))
    l2 = 1e-2
    result = linear_probe(x, y, test_x, test_y, l2=l2)

    # Reference: the same objective in float64, minimized by scipy's L-BFGS-B.
    mean, std = x.mean(0), x.std(0)
    z, test_z = (x - mean) / std, (test_x - mean) / std

    def objective(theta):
        w, b = theta[:15].reshape(5, 3), theta[15:]
        logits = z @ w + b
        ce = np.mean(scipy.special.logsumexp(logits, axis=1) - logits[np.arange(300), y])
        return ce + 0.5 * l2 * np.sum(w ** 2)

    reference = scipy.optimize.minimize(objective, np.zeros(18), method="L-BFGS-B",
                                        options={"gtol": 1e-10, "ftol": 1e-14})
    np.testing.assert_allclose(result["train_objective"], reference.fun, rtol=1e-5)
    w, b = reference.x[:15].reshape(5, 3), reference.x[15:]
    reference_top1 = np.mean(np.argmax(test_z @ w + b, axis=1) == test_y)
    assert abs(result["top1"] - reference_top1) <= 1 / 200  # at most one borderline point


def test_linear_probe_errors_name_the_argument():
    x, y = np.zeros((4, 3)), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="train_labels"):
        linear_probe(x, y[:3], x, y)
    with pytest.raises(ValueError, match="test_features"):
        linear_probe(x, y, np.zeros((4, 2)), y)
    with pytest.raises(ValueError, match="num_classes"):
        linear_probe(x, y, x, y, num_classes=1)


def test_knn_hand_built_example_cosine_and_l2_differ():
    train = np.array([[10.0, 0.0], [1.0, 1.0]])
    labels = np.array([0, 1])
    query = np.array([[1.0, 0.1]])
    # Euclidean: |q - (1, 1)| = 0.9 < |q - (10, 0)| = 9.0 -> class 1.
    assert knn_accuracy(train, labels, query, [1], k=1, metric="l2") == 1.0
    # Cosine: cos(q, (10, 0)) = 0.995 > cos(q, (1, 1)) = 0.774 -> class 0.
    assert knn_accuracy(train, labels, query, [0], k=1, metric="cosine") == 1.0


def test_knn_weighted_vote_differs_from_majority():
    # The query's three neighbours: one of class 0 at distance 0.1, two of class 1 at 1.0.
    train = np.array([[0.1, 0.0], [0.0, 1.0], [0.0, -1.0], [50.0, 50.0]])
    labels = np.array([0, 1, 1, 0])
    query = np.zeros((1, 2))
    assert knn_accuracy(train, labels, query, [1], k=3, metric="l2", temperature=None) == 1.0
    # Weights exp(-d / 0.1): e^-1 for class 0 against 2 e^-10 for class 1.
    assert knn_accuracy(train, labels, query, [0], k=3, metric="l2", temperature=0.1) == 1.0


def _knn_reference(train, labels, queries, k, metric, temperature):
    if metric == "cosine":
        train = train / np.linalg.norm(train, axis=1, keepdims=True)
        queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        similarity = queries @ train.T
    else:
        similarity = -np.linalg.norm(queries[:, None] - train[None], axis=-1)
    predictions = []
    for row in similarity:
        nearest = np.argsort(-row)[:k]
        weights = np.ones(k) if temperature is None else np.exp(row[nearest] / temperature)
        predictions.append(np.argmax(np.bincount(labels[nearest], weights, minlength=4)))
    return np.array(predictions)


@pytest.mark.parametrize("metric,temperature", [("cosine", 0.07), ("cosine", None),
                                                ("l2", None), ("l2", 0.5)])
def test_knn_matches_brute_force_at_any_batch_size(metric, temperature):
    rng = np.random.default_rng(3)
    x, y, _ = gaussian_blobs(rng, 200, 4, 6, separation=0.7)
    test_x, test_y, _ = gaussian_blobs(rng, 57, 4, 6, separation=0.7)
    expected = np.mean(_knn_reference(x, y, test_x, 5, metric, temperature) == test_y)
    for batch_size in (57, 10, 1000):
        accuracy = knn_accuracy(x, y, test_x, test_y, k=5, metric=metric,
                                temperature=temperature, batch_size=batch_size)
        assert accuracy == pytest.approx(expected, abs=1e-12)


def test_knn_rejects_bad_arguments():
    x, y = np.ones((3, 2)), np.array([0, 1, 0])
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(x, y, x, y, k=4)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(x, y, x, y, k=1, metric="manhattan")


def test_probe_encoder_maps_a_jitted_encoder_over_sources():
    rng = np.random.default_rng(4)

    def make_source(num):
        labels = rng.integers(0, 3, num)
        # Class c: pixel intensity around 60 c + 40 plus noise.
        images = np.clip(60 * labels[:, None, None, None] + 40
                         + rng.normal(0, 8, (num, 4, 4, 1)), 0, 255).astype(np.uint8)
        return [{"image": im, "label": int(lab)} for im, lab in zip(images, labels)]

    train, test = make_source(70), make_source(33)
    seen_shapes = []

    @jax.jit
    def encode(images):
        seen_shapes.append(images.shape)  # runs when traced: once per input shape
        return jnp.stack([images.mean(axis=(1, 2, 3)), images.std(axis=(1, 2, 3))], axis=-1)

    features, labels = encode_source(encode, test, batch_size=16)
    chex.assert_shape(features, (33, 2))
    np.testing.assert_array_equal(labels, [r["label"] for r in test])
    expected_mean = np.array([r["image"].mean() for r in test]) / 127.5 - 1.0
    np.testing.assert_allclose(features[:, 0], expected_mean, rtol=1e-5, atol=1e-6)
    assert seen_shapes == [(16, 4, 4, 1)]  # the padded last batch reused the compiled shape

    result = probe_encoder(encode, train, test, batch_size=16, k=5)
    assert result["num_train"] == 70 and result["num_test"] == 33 and result["feature_dim"] == 2
    assert result["linear"]["top1"] == 1.0 and result["knn_top1"] == 1.0


def test_bn_crelu_readout_standardizes_then_splits_signs():
    from jgan.eval.probe import readout
    train = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
    test = np.array([[3.0, 12.0], [7.0, 8.0]])
    train_r, test_r = readout(train, test, "bn_crelu")
    std = np.sqrt(8 / 3)   # of (1, 3, 5); the constant dimension keeps scale 1
    np.testing.assert_allclose(test_r, [[0, 2, 0, 0], [4 / std, 0, 0, 2]], rtol=1e-6)
    np.testing.assert_allclose(train_r[:, 0] - train_r[:, 2], (train[:, 0] - 3) / std, rtol=1e-6)
    pooled = readout(train, test, "pooled")
    np.testing.assert_array_equal(pooled[1], test.astype(np.float32))
    with pytest.raises(ValueError, match="readout must be one of"):
        readout(train, test, "bn")
