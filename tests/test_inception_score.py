"""Tests for jgan.eval.inception_score against analytic values and a direct formula.

Analytic: uniform predictions give IS = 1; confident one-hot predictions over k
balanced classes give IS = k. Direct: probabilities by exp / sum and the KL by
scipy.stats.entropy, as in Salimans et al.'s code.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from jgan.eval.inception_score import inception_score


def _inception_score_direct(logits, num_splits):
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    size = len(logits) // num_splits
    scores = []
    for i in range(num_splits):
        part = probs[i * size:(i + 1) * size]
        marginal = part.mean(axis=0)
        scores.append(np.exp(np.mean([scipy.stats.entropy(p, marginal) for p in part])))
    return np.mean(scores), np.std(scores)


def test_uniform_predictions_score_one():
    rng = np.random.default_rng(0)
    # A constant per row softmaxes to uniform too.
    logits = np.zeros((200, 10)) + rng.standard_normal((200, 1))
    result = inception_score(logits, num_splits=10)
    np.testing.assert_allclose(result["mean"], 1.0, rtol=0, atol=1e-12)
    assert result["std"] < 1e-12 and result["num_splits"] == 10 and result["num_samples"] == 200


@pytest.mark.parametrize("k", [1, 4, 10])
def test_confident_predictions_over_k_balanced_classes_score_k(k):
    labels = np.arange(400) % k  # every split of 40 holds each class equally often.
    logits = 100.0 * np.eye(10)[labels]
    result = inception_score(logits, num_splits=10)
    np.testing.assert_allclose(result["mean"], k, rtol=1e-10)
    assert result["std"] < 1e-9


def test_matches_direct_formula_and_stays_within_one_and_k():
    rng = np.random.default_rng(1)
    logits = 3.0 * rng.standard_normal((500, 7))
    result = inception_score(logits, num_splits=5)
    mean, std = _inception_score_direct(logits, 5)
    np.testing.assert_allclose([result["mean"], result["std"]], [mean, std], rtol=1e-10)
    assert 1.0 < result["mean"] < 7.0


def test_leaves_out_the_remainder_like_the_reference():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((105, 6))
    result = inception_score(logits, num_splits=10)
    assert result["num_samples"] == 100
    assert result == inception_score(logits[:100], num_splits=10)


def test_huge_logits_stay_finite():
    rng = np.random.default_rng(3)
    logits = 1e4 * rng.standard_normal((100, 5))
    result = inception_score(logits, num_splits=2)
    assert np.isfinite(result["mean"]) and 1.0 <= result["mean"] <= 5.0 + 1e-9


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="num_splits = 10"):
        inception_score(np.zeros((9, 3)), num_splits=10)
    with pytest.raises(ValueError, match=r"\[N, K\]"):
        inception_score(np.zeros(9))
    with pytest.raises(ValueError, match="NaN"):
        inception_score(np.full((10, 3), np.nan), num_splits=2)
    with pytest.raises(ValueError, match="num_splits must be"):
        inception_score(np.zeros((10, 3)), num_splits=0)
