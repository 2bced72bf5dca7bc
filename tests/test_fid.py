"""Tests for jgan.eval.fid: streamed Gaussian statistics and the Frechet distance.

Expected values come from numpy's mean/cov, from closed forms (commuting covariances,
the 2x2 trace-of-square-root identity, samples of N(mu, I)), and from the eigenvalues
of S_1 S_2 by scipy's general (non-symmetric) eigensolver, a route neither of jgan's
two methods takes.
"""
from __future__ import annotations

import dataclasses

import chex
import numpy as np
import pytest
import scipy.linalg
import scipy.stats

from jgan.eval.fid import GaussianStats, fid, fid_of_features, frechet_distance

METHODS = ("sqrtm", "eigh")


def _random_features(seed, n, dim, shift=0.0):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return rng.standard_normal((n, dim)) @ mixing + shift + 0.5


def _random_spd(rng, dim):
    a = rng.standard_normal((dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


def _trace_sqrt_by_eigvals(sigma1, sigma2):
    """Tr((S1 S2)^{1/2}) = sum of square roots of the (real, >= 0) eigenvalues of S1 S2."""
    eigenvalues = scipy.linalg.eigvals(sigma1 @ sigma2)
    return np.sum(np.sqrt(np.clip(eigenvalues.real, 0, None)))


# --------------------------------------------------------------- GaussianStats


def test_streamed_statistics_equal_all_at_once_and_numpy():
    features = _random_features(0, 1000, 16).astype(np.float32)
    stats = GaussianStats.empty(16)
    for start, stop in [(0, 1), (1, 300), (300, 301), (301, 1000)]:
        stats = stats.update(features[start:stop])
    whole = GaussianStats.from_features(features)
    assert stats.count == whole.count == 1000
    chex.assert_trees_all_close((stats.sum, stats.sum_outer), (whole.sum, whole.sum_outer),
                                rtol=1e-12, atol=1e-10)
    reference = features.astype(np.float64)
    chex.assert_trees_all_close(stats.mean, reference.mean(axis=0), rtol=0, atol=1e-10)
    chex.assert_trees_all_close(stats.covariance, np.cov(reference, rowvar=False),
                                rtol=0, atol=1e-10)


def test_merge_equals_update_with_both_sets_and_is_pure():
    a, b = _random_features(1, 200, 8), _random_features(2, 150, 8, shift=1.0)
    stats_a = GaussianStats.from_features(a)
    before = stats_a.sum.copy()
    merged = stats_a.merge(GaussianStats.from_features(b))
    both = GaussianStats.from_features(np.concatenate([a, b]))
    assert merged.count == 350
    chex.assert_trees_all_close((merged.mean, merged.covariance), (both.mean, both.covariance),
                                rtol=0, atol=1e-10)
    chex.assert_trees_all_equal(stats_a.sum, before)
    assert stats_a.count == 200


def test_statistics_reject_bad_input():
    stats = GaussianStats.empty(4)
    with pytest.raises(ValueError, match="dimension 5"):
        stats.update(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        stats.update(np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        stats.update(np.array([[0.0, np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="at least 2"):
        _ = stats.update(np.ones((1, 4))).covariance
    with pytest.raises(ValueError, match="at least 1"):
        _ = stats.mean
    with pytest.raises(ValueError, match="merge"):
        stats.merge(GaussianStats.empty(3))
    with pytest.raises(ValueError, match="dimension"):
        fid(GaussianStats.from_features(np.eye(3)), GaussianStats.from_features(np.eye(4)))


def test_save_load_round_trip(tmp_path):
    features = _random_features(3, 300, 12)
    stats = dataclasses.replace(GaussianStats.from_features(features),
                                metadata={"split": "test", "n": 300})
    path = tmp_path / "sub" / "stats.npz"
    stats.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["stats.npz"]  # no temporary left.
    with np.load(path) as data:
        assert {"mu", "sigma", "count", "metadata"} <= set(data.files)
        chex.assert_trees_all_close(data["sigma"], np.cov(features, rowvar=False), atol=1e-12)
    loaded = GaussianStats.load(path)
    assert loaded.count == 300 and loaded.metadata == {"split": "test", "n": 300}
    chex.assert_trees_all_close((loaded.mean, loaded.covariance, loaded.sum_outer),
                                (stats.mean, stats.covariance, stats.sum_outer),
                                rtol=1e-12, atol=1e-10)
    # Rebuilt running sums keep accumulating correctly.
    more = _random_features(4, 50, 12)
    chex.assert_trees_all_close(
        loaded.update(more).covariance,
        np.cov(np.concatenate([features, more]), rowvar=False), rtol=0, atol=1e-10)


def test_load_rejects_foreign_file(tmp_path):
    path = tmp_path / "pytorch_fid_style.npz"
    np.savez(path, mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(ValueError, match=r"lacks \['count'\]"):
        GaussianStats.load(path)


# ------------------------------------------------------------- Frechet distance


@pytest.mark.parametrize("method", METHODS)
def test_fid_of_a_set_with_itself_is_zero_and_fid_is_symmetric(method):
    stats_a = GaussianStats.from_features(_random_features(5, 500, 32))
    stats_b = GaussianStats.from_features(_random_features(6, 400, 32, shift=0.3))
    assert abs(fid(stats_a, stats_a, method=method)) < 1e-8
    ab, ba = fid(stats_a, stats_b, method=method), fid(stats_b, stats_a, method=method)
    assert ab > 0.5
    np.testing.assert_allclose(ab, ba, rtol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_commuting_covariances_match_closed_form(method):
    rng = np.random.default_rng(7)
    dim = 16
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    a, b = rng.uniform(0.1, 3.0, dim), rng.uniform(0.1, 3.0, dim)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    np.testing.assert_allclose(frechet_distance(mu1, np.diag(a), mu2, np.diag(b), method=method),
                               expected, rtol=1e-10)
    # Same eigenvectors, not diagonal: the covariances still commute.
    rotation = scipy.stats.special_ortho_group.rvs(dim, random_state=8)
    sigma1, sigma2 = rotation @ np.diag(a) @ rotation.T, rotation @ np.diag(b) @ rotation.T
    np.testing.assert_allclose(frechet_distance(mu1, sigma1, mu2, sigma2, method=method),
                               expected, rtol=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_two_by_two_matches_trace_of_square_root_identity(method):
    # For M with eigenvalues l1, l2 >= 0: Tr M^{1/2} = sqrt(l1) + sqrt(l2) = sqrt(Tr M + 2 sqrt(det M)).
    sigma1 = np.array([[2.0, 0.7], [0.7, 1.0]])
    sigma2 = np.array([[0.5, -0.2], [-0.2, 1.5]])
    product = sigma1 @ sigma2
    assert not np.allclose(product, product.T)  # they do not commute.
    trace_sqrt = np.sqrt(np.trace(product) + 2 * np.sqrt(np.linalg.det(product)))
    mu1, mu2 = np.array([1.0, -1.0]), np.array([0.0, 0.5])
    expected = 1.0 + 2.25 + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    np.testing.assert_allclose(frechet_distance(mu1, sigma1, mu2, sigma2, method=method),
                               expected, rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_non_commuting_covariances_match_general_eigenvalues(method):
    rng = np.random.default_rng(9)
    dim = 48
    sigma1, sigma2 = _random_spd(rng, dim), _random_spd(rng, dim)
    mu1, mu2 = rng.standard_normal(dim), rng.standard_normal(dim)
    expected = (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
                - 2 * _trace_sqrt_by_eigvals(sigma1, sigma2))
    np.testing.assert_allclose(frechet_distance(mu1, sigma1, mu2, sigma2, method=method),
                               expected, rtol=1e-9)


def test_eigh_route_agrees_with_sqrtm_on_rank_deficient_covariances():
    # 20 samples in 32 dimensions: singular covariances, as with few samples of 2048-d features.
    stats_a = GaussianStats.from_features(_random_features(10, 20, 32))
    stats_b = GaussianStats.from_features(_random_features(11, 20, 32, shift=0.2))
    by_sqrtm, by_eigh = fid(stats_a, stats_b, method="sqrtm"), fid(stats_a, stats_b, method="eigh")
    assert by_eigh > 0
    np.testing.assert_allclose(by_eigh, by_sqrtm, rtol=1e-4)


def test_sqrtm_route_offsets_the_diagonal_when_the_square_root_is_not_finite(monkeypatch):
    # Older scipy returned inf/nan for singular S1 S2; pytorch-fid then retries with 1e-6 I added.
    calls = []
    real_sqrtm = scipy.linalg.sqrtm

    def failing_once(matrix):
        calls.append(matrix)
        return np.full_like(matrix, np.nan) if len(calls) == 1 else real_sqrtm(matrix)

    monkeypatch.setattr(scipy.linalg, "sqrtm", failing_once)
    sigma1, sigma2 = np.diag([1.0, 0.0]), np.diag([0.0, 4.0])
    value = frechet_distance(np.zeros(2), sigma1, np.zeros(2), sigma2)
    offset = 1e-6 * np.eye(2)
    assert len(calls) == 2
    chex.assert_trees_all_close(calls[1], (sigma1 + offset) @ (sigma2 + offset), rtol=0, atol=0)
    expected = 5.0 - 2 * (np.sqrt((1 + 1e-6) * 1e-6) + np.sqrt(1e-6 * (4 + 1e-6)))
    np.testing.assert_allclose(value, expected, rtol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_fid_of_unit_gaussian_samples_approaches_squared_mean_distance(method):
    rng = np.random.default_rng(12)
    dim, n = 4, 100_000
    mu1 = rng.standard_normal(dim)
    mu2 = mu1 + np.array([0.6, 0.0, -0.8, 0.0])  # ||mu1 - mu2||^2 = 1.
    stats1 = GaussianStats.from_features(rng.standard_normal((n, dim)) + mu1)
    stats2 = GaussianStats.from_features(rng.standard_normal((n, dim)) + mu2)
    # Sampling error: std 2 sqrt(2/n) ~ 0.009 from the means, O(D^2/n) from the covariances.
    np.testing.assert_allclose(fid(stats1, stats2, method=method), 1.0, atol=0.04)


def test_frechet_distance_rejects_bad_input():
    with pytest.raises(ValueError, match="mu1 and mu2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(3))
    with pytest.raises(ValueError, match="sigma1 and sigma2"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(3), np.eye(4))
    with pytest.raises(ValueError, match="sigma2 contains NaN"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="method"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.eye(2), method="svd")
    with pytest.raises(ValueError, match="imaginary"):
        # Not PSD: S1 S2 = -I has no real square root.
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))


@pytest.mark.parametrize("sizes", [(5, 7), (3, 300), (300, 4), (200, 150)])
def test_fid_of_features_equals_fid_of_their_statistics(sizes):
    """The sample-space route (fewer vectors than the 64 dimensions) and the full one."""
    rng = np.random.default_rng(sum(sizes))
    mixing = rng.normal(size=(64, 64))
    a = rng.normal(size=(sizes[0], 64)) @ mixing
    b = rng.normal(size=(sizes[1], 64)) @ mixing * 0.7 + 0.3
    expected = fid(GaussianStats.from_features(a), GaussianStats.from_features(b), method="eigh")
    # eigh adds the square roots of rounding-level eigenvalues: 1e-7 relative here.
    np.testing.assert_allclose(fid_of_features(a, b), expected, rtol=1e-6)
    assert fid_of_features(a, a) == pytest.approx(0.0, abs=1e-6 * expected)
    with pytest.raises(ValueError, match="features_b needs at least 2"):
        fid_of_features(a, b[:1])
