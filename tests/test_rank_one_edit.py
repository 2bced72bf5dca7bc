"""Tests for jgan.rank_one_edit: the constrained, C-weighted edit of Bau et al. (2020).

The update is checked against the KKT system of min tr(dW C dW^T) s.t. dW K*^T = R
solved by numpy, against least squares for the rank-one "mean" edit, and against the
properties the paper relies on: the edited keys map to their values, keys C^{-1}-orthogonal
to them do not move, and the rest of the key distribution moves by 1 / (k*^T C^{-1} k*)
of k*'s change on average. The convolution helpers are checked against lax and Flax.
All JAX calls are jitted; the file runs in float64 (one test in float32).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.rank_one_edit import (accumulate_keys, edit_directions, extract_patches,
                                init_key_statistics, kernel_to_matrix, key_covariance,
                                key_statistics, matrix_to_kernel, rank_one_update)

DIN, DOUT = 6, 4
update = jax.jit(rank_one_update, static_argnames="directions")
statistics = jax.jit(key_statistics)


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def _keys(rng, n, din=DIN):
    # Anisotropic and off-centre, so C is far from a multiple of the identity.
    mix = rng.normal(size=(din, din)) * np.geomspace(3.0, 0.1, din)[:, None]
    return rng.normal(size=(n, din)) @ mix + 0.5, mix


def _problem(m, seed=0, n=4000):
    """A layer W0, the covariance of n keys, m fresh keys K* and random values V*."""
    rng = np.random.default_rng(seed)
    keys, mix = _keys(rng, n)
    k_star = rng.normal(size=(m, DIN)) @ mix + 0.5
    return dict(w0=rng.normal(size=(DOUT, DIN)), keys=keys, cov=keys.T @ keys / n,
                k_star=k_star, v_star=3.0 * rng.normal(size=(m, DOUT)))


def _kkt(cov, k_star, residual):
    """min tr(dW C dW^T) s.t. dW K*^T = R, row by row: [2C K*^T; K* 0][w; mu] = [0; r]."""
    din, m = cov.shape[0], k_star.shape[0]
    system = np.block([[2.0 * cov, k_star.T], [k_star, np.zeros((m, m))]])
    rhs = np.concatenate([np.zeros((din, residual.shape[0])), residual.T])
    return np.linalg.solve(system, rhs)[:din].T


def _ridged(cov, ridge):
    return cov + ridge * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])


@pytest.mark.parametrize("m", [1, 2])
@pytest.mark.parametrize("ridge", [0.0, 0.3])
def test_per_key_is_the_kkt_solution(m, ridge):
    p = _problem(m)
    w1, diag = update(p["w0"], p["cov"], p["k_star"], p["v_star"], ridge=ridge)
    residual = p["v_star"].T - p["w0"] @ p["k_star"].T
    expected = _kkt(_ridged(p["cov"], ridge), p["k_star"], residual)
    np.testing.assert_allclose(np.asarray(w1) - p["w0"], expected, rtol=1e-9, atol=1e-10)
    assert int(diag.rank) == m
    np.testing.assert_allclose(diag.initial_residual, np.linalg.norm(residual), rtol=1e-12)
    np.testing.assert_allclose(diag.cost, np.trace(expected @ p["cov"] @ expected.T), rtol=1e-9)


def test_large_ridge_tends_to_the_euclidean_minimum_norm_edit():
    p = _problem(2)
    w1, _ = update(p["w0"], p["cov"], p["k_star"], p["v_star"], ridge=1e9)
    residual = p["v_star"].T - p["w0"] @ p["k_star"].T
    np.testing.assert_allclose(np.asarray(w1) - p["w0"], residual @ np.linalg.pinv(p["k_star"].T),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("m", [2, 3])
def test_mean_is_the_least_squares_rank_one_change_along_d(m):
    p = _problem(m, seed=1)
    w1, diag = update(p["w0"], p["cov"], p["k_star"], p["v_star"], directions="mean", ridge=0.0)
    delta = np.asarray(w1) - p["w0"]
    d = np.linalg.solve(p["cov"], p["k_star"].mean(axis=0))
    assert int(diag.rank) == 1 and np.linalg.matrix_rank(delta) == 1
    # Its rows lie along d = C^{-1} mean(K*): nothing is left orthogonal to d ...
    np.testing.assert_allclose(delta - np.outer(delta @ d / (d @ d), d), 0.0, atol=1e-10)
    # ... and its column lambda is numpy's least-squares fit of lambda (K* d)^T to R.
    residual = p["v_star"].T - p["w0"] @ p["k_star"].T
    lam = np.linalg.lstsq((p["k_star"] @ d)[:, None], residual.T, rcond=None)[0][0]
    np.testing.assert_allclose(delta, np.outer(lam, d), rtol=1e-9, atol=1e-10)
    left = residual - np.outer(lam, p["k_star"] @ d)
    np.testing.assert_allclose(diag.residual, np.linalg.norm(left), rtol=1e-9)


def test_mean_and_per_key_agree_for_one_key_and_solve_the_paper_equation():
    p = _problem(1, seed=2)
    per_key, _ = update(p["w0"], p["cov"], p["k_star"], p["v_star"], ridge=0.0)
    mean, _ = update(p["w0"], p["cov"], p["k_star"], p["v_star"], directions="mean", ridge=0.0)
    k, v = p["k_star"][0], p["v_star"][0]
    d = np.linalg.solve(p["cov"], k)
    paper = p["w0"] + np.outer((v - p["w0"] @ k) / (d @ k), d)  # W0 + Lambda (C^-1 k*)^T
    np.testing.assert_allclose(per_key, paper, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mean, paper, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("m,directions",
                         [(1, "per_key"), (2, "per_key"), (3, "per_key"), (1, "mean")])
def test_edited_keys_map_to_their_values(m, directions):
    p = _problem(m, seed=3)
    w1, diag = update(p["w0"], p["cov"], p["k_star"], p["v_star"], directions=directions)
    np.testing.assert_allclose(np.asarray(w1) @ p["k_star"].T, p["v_star"].T, atol=1e-9)
    assert float(diag.residual) < 1e-9 * float(diag.initial_residual)


@pytest.mark.parametrize("ridge", [0.0, 1e-2])
def test_keys_c_inverse_orthogonal_to_the_edit_do_not_move(ridge):
    p = _problem(2, seed=4)
    w1, _ = update(p["w0"], p["cov"], p["k_star"], p["v_star"], ridge=ridge)
    dirs = np.asarray(jax.jit(edit_directions)(p["cov"], p["k_star"], ridge=ridge))
    # k^T C_r^{-1} k*_j = 0 means k orthogonal to the directions D = C_r^{-1} K*^T.
    q, _ = np.linalg.qr(dirs)
    others = np.random.default_rng(5).normal(size=(DIN, 20))
    others -= q @ (q.T @ others)
    np.testing.assert_allclose(others.T @ np.linalg.solve(_ridged(p["cov"], ridge), p["k_star"].T),
                               0.0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(w1) @ others, p["w0"] @ others, atol=1e-10)


def test_the_key_distribution_moves_little_compared_to_a_rare_key():
    """Mean ||dW k||^2 over C's keys = ||dW k*||^2 / (k*^T C^{-1} k*), exactly.

    With k* at Mahalanobis norm^2 100 (a rare key, along C's weakest direction), keys
    drawn afresh from the same distribution move by about 1 % of k*'s squared change
    on average, and 99 % of them by less than a third of k*'s change.
    """
    p = _problem(1, seed=6)
    evals, evecs = np.linalg.eigh(p["cov"])
    k_star = 10.0 * np.sqrt(evals[0]) * evecs[:, 0] + 0.3 * p["k_star"][0]
    mahalanobis = k_star @ np.linalg.solve(p["cov"], k_star)
    w1, diag = update(p["w0"], p["cov"], k_star, p["v_star"][0], ridge=0.0)
    delta = np.asarray(w1) - p["w0"]
    target = np.sum((delta @ k_star) ** 2)
    on_sample = np.mean(np.sum((p["keys"] @ delta.T) ** 2, axis=1))
    np.testing.assert_allclose(on_sample, target / mahalanobis, rtol=1e-9)
    np.testing.assert_allclose(diag.cost, on_sample, rtol=1e-9)
    assert 90 < mahalanobis < 130
    fresh, _ = _keys(np.random.default_rng(6), 20000)  # seed 6: _problem's mixing
    fresh = fresh[4000:]  # past the 4000 keys that built C
    change = np.linalg.norm(fresh @ delta.T, axis=1) / np.sqrt(target)
    assert np.mean(change ** 2) < 2.0 / mahalanobis
    assert np.quantile(change, 0.99) < 0.35


def test_strength_zero_is_the_identity_and_one_half_goes_halfway():
    p = _problem(2, seed=7)
    args = (p["w0"], p["cov"], p["k_star"], p["v_star"])
    w_zero, diag_zero = update(*args, strength=0.0)
    np.testing.assert_array_equal(np.asarray(w_zero), p["w0"])
    assert int(diag_zero.rank) == 0 and float(diag_zero.cost) == 0.0
    w_half, diag_half = update(*args, strength=0.5)
    before = p["w0"] @ p["k_star"].T
    np.testing.assert_allclose(np.asarray(w_half) @ p["k_star"].T,
                               before + 0.5 * (p["v_star"].T - before), atol=1e-9)
    np.testing.assert_allclose(diag_half.residual, 0.5 * diag_half.initial_residual, rtol=1e-9)
    with pytest.raises(ValueError, match="strength"):
        rank_one_update(*args, strength=1.5)


CONVS = [  # kernel (kh, kw), strides, dilation, padding
    ((3, 3), (1, 1), (1, 1), "SAME"),
    ((1, 1), (1, 1), (1, 1), "SAME"),
    ((2, 2), (1, 1), (1, 1), "SAME"),   # even: one more zero after than before
    ((4, 3), (2, 3), (1, 1), "SAME"),
    ((3, 2), (1, 1), (2, 1), "SAME"),
    ((3, 3), (1, 1), (1, 1), "VALID"),
]


@pytest.mark.parametrize("kernel_size,strides,dilation,padding", CONVS)
def test_patches_times_matrix_is_the_convolution(kernel_size, strides, dilation, padding):
    rng = np.random.default_rng(8)
    x = rng.normal(size=(2, 7, 6, 3))
    kernel = rng.normal(size=(*kernel_size, 3, 5))
    conv = jax.lax.conv_general_dilated(
        x, kernel, strides, padding, rhs_dilation=dilation,
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST)
    patches = jax.jit(lambda x: extract_patches(x, kernel_size, strides=strides, dilation=dilation,
                                                padding=padding))(x)
    assert patches.shape == (*conv.shape[:3], kernel_size[0] * kernel_size[1] * 3)
    np.testing.assert_allclose(patches @ kernel_to_matrix(kernel).T, conv, rtol=1e-12, atol=1e-12)


def test_matrix_form_of_flax_conv_and_dense_kernels():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(1, 5, 5, 3))
    conv = nn.Conv(4, (3, 3), padding="SAME")
    params = {"kernel": rng.normal(size=(3, 3, 3, 4)), "bias": rng.normal(size=4)}
    flax_shapes = jax.eval_shape(conv.init, jax.random.PRNGKey(0), x)["params"]
    assert flax_shapes["kernel"].shape == (3, 3, 3, 4)  # HWIO, as kernel_to_matrix reads it
    w = kernel_to_matrix(params["kernel"])
    assert w.shape == (4, 27)
    np.testing.assert_allclose(extract_patches(x, (3, 3)) @ w.T + params["bias"],
                               conv.apply({"params": params}, x), rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(matrix_to_kernel(w, params["kernel"].shape), params["kernel"])
    dense = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(kernel_to_matrix(dense), dense.T)
    np.testing.assert_array_equal(matrix_to_kernel(dense.T, (3, 4)), dense)


def test_editing_a_conv_layer_rewrites_the_chosen_pixel():
    rng = np.random.default_rng(10)
    x, _ = _keys(rng, 2 * 8 * 8, din=3)
    x = x.reshape(2, 8, 8, 3)
    kernel = rng.normal(size=(3, 3, 3, 4))
    keys = extract_patches(x, (3, 3)).reshape(-1, 27)
    k_star, v_star = extract_patches(x, (3, 3))[1, 4, 5], rng.normal(size=4)
    w1, _ = update(kernel_to_matrix(kernel), statistics(keys), k_star, v_star)
    out = jax.lax.conv_general_dilated(x, matrix_to_kernel(w1, kernel.shape), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(out[1, 4, 5], v_star, atol=1e-9)


def test_streaming_statistics_equal_the_one_shot_covariance():
    keys, _ = _keys(np.random.default_rng(11), 50)
    stats = init_key_statistics(DIN, jnp.float64)
    step = jax.jit(accumulate_keys)
    for lo, hi in [(0, 7), (7, 8), (8, 38), (38, 50)]:
        stats = step(stats, keys[lo:hi].astype(np.float32))
    assert int(stats.count) == 50 and stats.total.dtype == jnp.float64
    # float32 keys are exact in a float64 sum: only their own rounding differs.
    expected = keys.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(jax.jit(key_covariance)(stats), expected.T @ expected / 50,
                               rtol=1e-12)
    np.testing.assert_allclose(statistics(keys), keys.T @ keys / 50, rtol=1e-12)


def test_float32_without_x64():
    p = _problem(2, seed=12)
    with jax.enable_x64(False):
        args = [np.asarray(p[k], np.float32) for k in ("w0", "cov", "k_star", "v_star")]
        w1, diag = update(*args)
        assert w1.dtype == jnp.float32
        assert float(diag.residual) < 1e-4 * float(diag.initial_residual)


def test_rejects_bad_arguments():
    p = _problem(2)
    args = (p["w0"], p["cov"], p["k_star"], p["v_star"])
    with pytest.raises(ValueError, match="directions"):
        rank_one_update(*args, directions="svd")
    with pytest.raises(ValueError, match="values"):
        rank_one_update(p["w0"], p["cov"], p["k_star"], p["v_star"][:, :3])
    with pytest.raises(ValueError, match="padding"):
        extract_patches(np.zeros((1, 4, 4, 1)), (3, 3), padding="CIRCULAR")
