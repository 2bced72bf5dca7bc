"""Tests for jgan.eval.kid: the unbiased MMD^2 with the cubic polynomial kernel.

The reference is a direct double sum over pairs written with Python loops, and the
population MMD^2 of small discrete distributions, computed over their supports.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from jgan.eval.kid import kernel_inception_distance


def _kernel(x, y):
    return (np.dot(x, y) / len(x) + 1.0) ** 3


def _mmd2_unbiased_by_loops(a, b):
    """Binkowski et al. 2018, eq. 3, term by term (m = n = len(a) = len(b))."""
    m = len(a)
    same = sum(_kernel(a[i], a[j]) + _kernel(b[i], b[j])
               for i, j in itertools.product(range(m), repeat=2) if i != j)
    cross = sum(_kernel(a[i], b[j]) for i, j in itertools.product(range(m), repeat=2))
    return same / (m * (m - 1)) - 2 * cross / m**2


def _mmd2_of_sets(a, b, *, unbiased):
    """MMD^2 between the uniform distributions on the rows of a and of b (any sizes)."""
    def mean_kernel(x, y, drop_diagonal):
        values = [_kernel(x[i], y[j]) for i in range(len(x)) for j in range(len(y))
                  if not (drop_diagonal and i == j)]
        return np.mean(values)
    return (mean_kernel(a, a, unbiased) + mean_kernel(b, b, unbiased)
            - 2 * mean_kernel(a, b, False))


def test_whole_set_subsets_equal_the_double_sum():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)) + 0.5
    result = kernel_inception_distance(a, b, num_subsets=3, subset_size=7, seed=1)
    # Each subset is a permutation of the whole set, and the estimator ignores order.
    np.testing.assert_allclose(result["mean"], _mmd2_unbiased_by_loops(a, b), rtol=1e-12)
    assert result["std"] < 1e-12
    assert result["num_subsets"] == 3 and result["subset_size"] == 7


def test_subset_estimates_average_to_the_whole_set_u_statistic():
    # Drawn without replacement, pairs i != j of a subset are distinct points of the set, so
    # the subset estimate's expectation is the U-statistic over all of both sets.
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((10, 4)), rng.standard_normal((12, 4)) * 1.3
    result = kernel_inception_distance(a, b, num_subsets=4000, subset_size=3, seed=3)
    expected = _mmd2_of_sets(a, b, unbiased=True)
    assert abs(result["mean"] - expected) < 4 * result["std"] / np.sqrt(4000)


def test_expectation_is_the_population_mmd():
    # P and Q uniform on 5 points each; samples of 4 drawn with replacement, many times.
    rng = np.random.default_rng(4)
    support_p, support_q = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)) + 0.4
    population = _mmd2_of_sets(support_p, support_q, unbiased=False)
    trials = 3000
    estimates = np.array([
        kernel_inception_distance(support_p[rng.integers(5, size=4)],
                                  support_q[rng.integers(5, size=4)],
                                  num_subsets=1, subset_size=4)["mean"]
        for _ in range(trials)])
    tolerance = 4 * estimates.std() / np.sqrt(trials)
    assert abs(estimates.mean() - population) < tolerance
    # The test can tell: the biased (V-statistic) estimator misses by far more.
    rng = np.random.default_rng(5)
    biased = np.mean([_mmd2_of_sets(support_p[rng.integers(5, size=4)],
                                    support_q[rng.integers(5, size=4)], unbiased=False)
                      for _ in range(300)])
    assert abs(biased - population) > 5 * tolerance


def test_near_zero_for_one_distribution_and_positive_for_shifted():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((1000, 16)), rng.standard_normal((1000, 16))
    same = kernel_inception_distance(a, b, num_subsets=30, subset_size=250)
    # Subsets of the same two sets are correlated: their std, not std / sqrt(30), bounds the mean.
    assert abs(same["mean"]) < 3 * same["std"]
    shifted = kernel_inception_distance(a, b + 0.3, num_subsets=30, subset_size=250)
    assert shifted["mean"] > 4 * shifted["std"] > 0
    assert shifted["mean"] > 20 * abs(same["mean"])


def test_subset_size_is_clipped_and_seed_reproduces():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((50, 5)), rng.standard_normal((80, 5))
    result = kernel_inception_distance(a, b, num_subsets=5, subset_size=1000, seed=11)
    assert result["subset_size"] == 50 and result["num_a"] == 50 and result["num_b"] == 80
    again = kernel_inception_distance(a, b, num_subsets=5, subset_size=1000, seed=11)
    other = kernel_inception_distance(a, b, num_subsets=5, subset_size=1000, seed=12)
    assert again == result and other["mean"] != result["mean"]


def test_float32_features_agree_with_float64():
    rng = np.random.default_rng(8)
    a, b = rng.random((300, 64)), rng.random((300, 64)) + 0.05
    exact = kernel_inception_distance(a, b, num_subsets=10, subset_size=200)
    single = kernel_inception_distance(a.astype(np.float32), b.astype(np.float32),
                                       num_subsets=10, subset_size=200)
    np.testing.assert_allclose(single["mean"], exact["mean"], rtol=1e-4)


def test_rejects_bad_input():
    ok = np.zeros((5, 3))
    with pytest.raises(ValueError, match="dimension"):
        kernel_inception_distance(ok, np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"features_b must be \[N, D\]"):
        kernel_inception_distance(ok, np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        kernel_inception_distance(ok, np.full((5, 3), np.nan))
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(ok, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="num_subsets"):
        kernel_inception_distance(ok, ok, num_subsets=0)
