"""Tests for jgan.eval.precision_recall against hand counts and whole-matrix references.

References: a 1-D example counted by hand; the formulas of Kynkaanniemi et al. and
Naeem et al. evaluated on full scipy `cdist` matrices with fully sorted rows; and, when
installed, the `prdc` package of Naeem et al. (optional, never a jgan dependency).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.spatial.distance

from jgan.eval.precision_recall import density_coverage, prdc, precision_recall


def _prdc_full_matrices(real, fake, k_pr, k_dc):
    real_radii = np.sort(scipy.spatial.distance.cdist(real, real), axis=1)
    fake_radii = np.sort(scipy.spatial.distance.cdist(fake, fake), axis=1)[:, k_pr]
    cross = scipy.spatial.distance.cdist(real, fake)  # [N, M]
    in_pr_balls = cross <= real_radii[:, k_pr, None]
    in_dc_balls = cross < real_radii[:, k_dc, None]
    return {
        "precision": in_pr_balls.any(axis=0).mean(),
        "recall": (cross <= fake_radii[None, :]).any(axis=1).mean(),
        "density": in_dc_balls.sum() / (k_dc * fake.shape[0]),
        "coverage": (cross.min(axis=1) < real_radii[:, k_dc]).mean(),
    }


def _metrics(result):
    return {name: result[name] for name in ("precision", "recall", "density", "coverage")}


def test_hand_counted_one_dimensional_example():
    real = np.array([0.0, 1.0, 3.0, 7.0, 30.0, 31.0])[:, None]
    fake = np.array([0.5, 2.5, 4.5, 9.0, 12.0])[:, None]
    # Nearest-neighbour (k = 1) radii: real 1, 1, 2, 4, 1, 1; fake 2, 2, 2, 3, 3.
    # Precision: 0.5 (ball of 0), 2.5 and 4.5 (ball of 3), 9 (ball of 7) inside; 12 not -> 4/5.
    # Recall: 0, 1, 3 (fake 0.5 / 2.5 within 2), 7 (fake 9 within 3) inside; 30, 31 not -> 4/6.
    # Density: fakes in real balls: 0.5 -> {0, 1}, 2.5 -> {3}, 4.5 -> {3, 7}, 9 -> {7}, 12 -> {}:
    # 6 / (1 * 5). Coverage: balls of 0, 1, 3, 7 hold a fake, those of 30, 31 don't -> 4/6.
    result = prdc(real, fake, k_pr=1, k_dc=1)
    np.testing.assert_allclose(
        [result["precision"], result["recall"], result["density"], result["coverage"]],
        [4 / 5, 4 / 6, 6 / 5, 4 / 6], rtol=1e-12)
    assert result["num_real"] == 6 and result["num_fake"] == 5


def test_points_on_a_ball_boundary_follow_each_reference():
    # Real 0 and 2 have radius 2 (k = 1); fake 4 lies on the boundary of the ball of 2.
    real, fake = np.array([[0.0], [2.0]]), np.array([[4.0], [10.0]])
    assert precision_recall(real, fake, k=1)["precision"] == 0.5  # closed ball (<=).
    assert density_coverage(real, fake, k=1)["coverage"] == 0.0  # open ball (<).


def test_identical_sets_are_perfect():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((300, 8))
    result = prdc(real, real.copy(), k_pr=3, k_dc=5, batch_size=64)
    assert result["precision"] == 1.0 and result["recall"] == 1.0 and result["coverage"] == 1.0
    # Each open ball holds its centre and the k - 1 nearer neighbours, so exactly k fakes.
    np.testing.assert_allclose(result["density"], 1.0, rtol=1e-12)


def test_metrics_fall_monotonically_as_the_fake_set_shifts():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((400, 8))
    direction = np.ones(8) / np.sqrt(8)
    shifts = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    results = [prdc(real, real + shift * direction) for shift in shifts]
    for name in ("precision", "recall", "coverage"):
        values = [r[name] for r in results]
        assert values[0] == 1.0 and values[-1] < 0.05, (name, values)
        assert all(a >= b for a, b in itertools.pairwise(values)), (name, values)
        assert values[shifts.index(2.0)] < 0.9, (name, values)
    # Density is not bounded by 1: a small shift carries k-th neighbours off the open balls'
    # boundaries into them. It falls once the shift is about a ball's radius.
    density = [r["density"] for r in results]
    assert density[0] == pytest.approx(1.0)
    far = density[shifts.index(1.0):]
    assert all(a > b for a, b in itertools.pairwise(far)) and far[-1] < 0.05, density


@pytest.mark.parametrize("batch_size", [7, 1024])
def test_matches_full_matrix_formulas(batch_size):
    rng = np.random.default_rng(2)
    real = rng.standard_normal((90, 5))
    fake = 1.2 * rng.standard_normal((70, 5)) + 0.3
    result = prdc(real, fake, k_pr=3, k_dc=5, batch_size=batch_size)
    assert _metrics(result) == pytest.approx(_prdc_full_matrices(real, fake, 3, 5), rel=1e-12)
    assert result["k_pr"] == 3 and result["k_dc"] == 5
    alone = {**precision_recall(real, fake, k=3, batch_size=batch_size),
             **density_coverage(real, fake, k=5, batch_size=batch_size)}
    assert _metrics(alone) == _metrics(result)


def test_float32_features_match_float64_on_generic_data():
    rng = np.random.default_rng(3)
    real, fake = rng.random((200, 16)), rng.random((150, 16)) + 0.05
    single = prdc(real.astype(np.float32), fake.astype(np.float32), batch_size=50)
    assert _metrics(single) == _metrics(prdc(real, fake))


def test_matches_the_prdc_package():
    import prdc as prdc_package  # the reference implementation (the "test" extra installs it)
    rng = np.random.default_rng(4)
    real = rng.standard_normal((120, 6)).astype(np.float32)
    fake = (rng.standard_normal((100, 6)) + 0.4).astype(np.float32)
    expected = prdc_package.compute_prdc(real, fake, nearest_k=4)
    result = prdc(real, fake, k_pr=4, k_dc=4)
    assert _metrics(result) == pytest.approx({k: float(v) for k, v in expected.items()}, rel=1e-9)


def test_rejects_bad_input():
    real = np.zeros((5, 2))
    with pytest.raises(ValueError, match="k_pr = 5 needs more than 5 real"):
        precision_recall(real, np.ones((9, 2)), k=5)
    with pytest.raises(ValueError, match="k_pr = 3 needs more than 3 fake"):
        precision_recall(np.ones((9, 2)), np.zeros((3, 2)), k=3)
    with pytest.raises(ValueError, match="dimension"):
        prdc(real, np.zeros((5, 3)), k_pr=1, k_dc=1)
    with pytest.raises(ValueError, match="fake contains NaN"):
        density_coverage(real, np.full((5, 2), np.nan), k=1)
    with pytest.raises(ValueError, match=r"real must be \[N, D\]"):
        density_coverage(np.zeros(5), real, k=1)
    with pytest.raises(ValueError, match="batch_size"):
        prdc(np.random.default_rng(0).random((8, 2)), real, k_pr=1, k_dc=1, batch_size=0)
    with pytest.raises(ValueError, match="k must|k_dc must"):
        density_coverage(real, real, k=0)
