"""Tests for jgan.objectives.variational against closed forms and float64 references.

The central model is a linear-Gaussian VAE, whose every quantity is known exactly:
p(z) = N(0, I_L), p(x | z) = N(W z + b, sigma^2 I_D), q(z | x) = N(A x + c, diag s^2), with

  E_q log p(x | z) = -1/2 (D log 2 pi sigma^2 + (|x - W mu - b|^2 + tr(W diag(s^2) W^T)) / sigma^2)
  log p(x)         = log N(x; b, W W^T + sigma^2 I)
  p(z | x)         = N(Sigma W^T (x - b) / sigma^2, Sigma),  Sigma = (I + W^T W / sigma^2)^-1.

W has orthogonal columns, so the true posterior is diagonal and q can equal it: then
every importance weight is p(x), and the importance-weighted bound is log p(x) for any
k and any key. Expected values are computed in numpy float64 (and scipy), never through
jgan; Monte-Carlo comparisons allow five standard errors.
"""
from __future__ import annotations

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from jgan.objectives import variational


def _f32(*arrays):
    return tuple(jnp.asarray(a, jnp.float32) for a in arrays)


# ----------------------------------------------------------- the linear-Gaussian model


class LinearGaussian:
    """A linear-Gaussian VAE with D = 4, L = 2 and B = 3 examples, in float64."""

    def __init__(self, seed: int = 0, scales=(1.5, 0.8), sigma: float = 0.7,
                 batch_size: int = 3):
        rng = np.random.default_rng(seed)
        basis, _ = np.linalg.qr(rng.standard_normal((4, len(scales))))
        self.w = basis * np.asarray(scales)        # orthogonal columns: W^T W diagonal
        self.b = rng.standard_normal(4)
        self.sigma = sigma
        self.x = self.b + 1.5 * rng.standard_normal((batch_size, 4))

    @property
    def dims(self):
        return self.w.shape

    def log_marginal(self) -> np.ndarray:
        cov = self.w @ self.w.T + self.sigma ** 2 * np.eye(self.dims[0])
        return stats.multivariate_normal(self.b, cov).logpdf(self.x)

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """The exact p(z | x): means `[B, L]` and variances `[B, L]`."""
        cov = np.linalg.inv(np.eye(self.dims[1]) + self.w.T @ self.w / self.sigma ** 2)
        np.testing.assert_allclose(cov, np.diag(np.diag(cov)), atol=1e-12)
        mean = (self.x - self.b) @ self.w @ cov / self.sigma ** 2
        return mean, np.broadcast_to(np.diag(cov), mean.shape).copy()

    def expected_log_likelihood(self, mean, var) -> np.ndarray:
        d = self.dims[0]
        residual = self.x - mean @ self.w.T - self.b
        trace = np.array([np.trace(self.w @ np.diag(v) @ self.w.T) for v in var])
        return -0.5 * (d * np.log(2 * np.pi * self.sigma ** 2)
                       + (np.sum(residual ** 2, axis=-1) + trace) / self.sigma ** 2)

    def elbo(self, mean, var) -> np.ndarray:
        return self.expected_log_likelihood(mean, var) - reference_kl(mean, var)

    def params(self):
        """(W, b, x, log sigma) in float32: the arguments of `linear_log_likelihood`."""
        return _f32(self.w, self.b, self.x, np.log(self.sigma))

    def log_joint(self, z) -> np.ndarray:
        """log p(x, z) for z `[n, B, L]`, float64."""
        mean = z @ self.w.T + self.b
        log_lik = stats.norm(mean, self.sigma).logpdf(self.x).sum(-1)
        return log_lik + stats.norm(0.0, 1.0).logpdf(z).sum(-1)


def reference_kl(mean, var) -> np.ndarray:
    """KL(N(m, S) || N(0, I)) = (tr S + m^T m - L - log det S) / 2 with S = diag(var)."""
    out = []
    for m, v in zip(np.asarray(mean, np.float64), np.asarray(var, np.float64)):
        cov = np.diag(v)
        out.append(0.5 * (np.trace(cov) + m @ m - len(m) - np.linalg.slogdet(cov)[1]))
    return np.array(out)


def misspecified_posterior(model: LinearGaussian):
    """q near p(z | x) but not equal: shifted means, overdispersed variances (so the
    importance weights are bounded and their averages converge quickly)."""
    mean, var = model.posterior()
    return mean + 0.4 * np.sqrt(var) * np.array([1.0, -1.0]), 1.8 * var


# Jitted once for the whole file: eager calls would compile every random op separately.
_reparameterize = jax.jit(variational.reparameterize, static_argnames=("num_samples",))


def linear_log_likelihood(params):
    """z `[B, L]` -> log N(x; W z + b, sigma^2 I) `[B]`: the family's `log_likelihood_fn`."""
    w, b, x, log_sigma = params
    return lambda z: variational.gaussian_log_likelihood(x, mean=z @ w.T + b,
                                                         log_scale=log_sigma)


# ----------------------------------------------------------- gaussian_kl


def test_gaussian_kl_matches_closed_form_and_monte_carlo():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 3))
    log_var = rng.normal(size=(5, 3))
    kl = jax.jit(variational.gaussian_kl)(mean=jnp.float32(mean), log_var=jnp.float32(log_var))
    chex.assert_shape(kl, (5,))
    chex.assert_trees_all_close(kl, jnp.float32(reference_kl(mean, np.exp(log_var))),
                                rtol=1e-5)
    # Monte Carlo: KL = E_q[log q(z) - log p(z)].
    std = np.exp(0.5 * log_var)
    z = mean + std * rng.standard_normal((200_000, 5, 3))
    log_ratio = (stats.norm(mean, std).logpdf(z) - stats.norm(0, 1).logpdf(z)).sum(-1)
    standard_error = log_ratio.std(0) / np.sqrt(len(z))
    assert np.all(np.abs(log_ratio.mean(0) - np.asarray(kl)) < 5 * standard_error)


def test_gaussian_kl_zero_at_prior_and_leading_axes():
    zeros = jnp.zeros((2, 4, 3))
    kl = variational.gaussian_kl(mean=zeros, log_var=zeros)
    chex.assert_shape(kl, (2, 4))
    chex.assert_trees_all_equal(kl, jnp.zeros((2, 4)))


def test_gaussian_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"log_var \(4, 2\)"):
        variational.gaussian_kl(mean=jnp.zeros((4, 3)), log_var=jnp.zeros((4, 2)))


# ----------------------------------------------------------- reparameterize, densities


def test_reparameterize_moments_and_pathwise_gradient():
    mean = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    log_var = jnp.array([[0.0, -1.0], [1.0, 2.0]])
    key = jax.random.key(1)
    z = _reparameterize(
        key, mean=mean, log_var=log_var, num_samples=100_000)
    chex.assert_shape(z, (100_000, 2, 2))
    std = np.exp(0.5 * np.asarray(log_var))
    np.testing.assert_allclose(np.mean(z, 0), mean, atol=5 * std.max() / np.sqrt(1e5))
    np.testing.assert_allclose(np.std(z, 0), std, rtol=0.01)
    # z is a differentiable function of (mean, log_var): dz/dmean = 1,
    # dz/dlog_var = (z - mean) / 2.
    def first(m, lv):
        return jnp.sum(variational.reparameterize(key, mean=m, log_var=lv, num_samples=3)[1])
    d_mean, d_log_var = jax.jit(jax.grad(first, argnums=(0, 1)))(mean, log_var)
    chex.assert_trees_all_close(d_mean, jnp.ones_like(mean))
    chex.assert_trees_all_close(d_log_var, 0.5 * (z[1] - mean), rtol=1e-5)


def test_reparameterize_sample_i_does_not_depend_on_num_samples():
    mean, log_var = jnp.zeros((3, 2)), jnp.zeros((3, 2))
    key = jax.random.key(7)
    one = _reparameterize(key, mean=mean, log_var=log_var)
    five = _reparameterize(key, mean=mean, log_var=log_var, num_samples=5)
    hundred = _reparameterize(key, mean=mean, log_var=log_var, num_samples=100)
    chex.assert_shape(one, (3, 2))
    chex.assert_trees_all_equal(one, five[0])
    chex.assert_trees_all_equal(five, hundred[:5])
    assert not np.allclose(hundred[0], hundred[1])


@pytest.mark.parametrize("num_samples", [0, -1, 2.0, True, jnp.int32(3)])
def test_reparameterize_rejects_bad_num_samples(num_samples):
    with pytest.raises(ValueError, match="num_samples"):
        variational.reparameterize(jax.random.key(0), mean=jnp.zeros((1, 2)),
                                   log_var=jnp.zeros((1, 2)), num_samples=num_samples)


def test_gaussian_and_prior_log_densities_match_scipy():
    rng = np.random.default_rng(2)
    mean, log_var = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    z = rng.normal(size=(6, 4, 3))
    log_q = jax.jit(variational.gaussian_log_density)(*_f32(z), mean=jnp.float32(mean),
                                                       log_var=jnp.float32(log_var))
    chex.assert_shape(log_q, (6, 4))
    expected = np.array([[stats.multivariate_normal(m, np.diag(np.exp(v))).logpdf(zi)
                          for zi, m, v in zip(zs, mean, log_var)] for zs in z])
    chex.assert_trees_all_close(log_q, jnp.float32(expected), rtol=1e-5)
    log_p = jax.jit(variational.standard_normal_log_density)(jnp.float32(z))
    chex.assert_trees_all_close(
        log_p, jnp.float32(stats.multivariate_normal(np.zeros(3)).logpdf(z)), rtol=1e-5)
    with pytest.raises(ValueError, match=r"z \(6, 4, 2\)"):
        variational.gaussian_log_density(jnp.zeros((6, 4, 2)), mean=jnp.float32(mean),
                                         log_var=jnp.float32(log_var))


# ----------------------------------------------------------- likelihoods


def _reference_bernoulli(x, logits):
    x, logits = np.asarray(x, np.float64), np.asarray(logits, np.float64)
    log_p, log_not_p = -np.logaddexp(0.0, -logits), -np.logaddexp(0.0, logits)
    return (x * log_p + (1 - x) * log_not_p).reshape(len(x), -1).sum(-1)


def test_bernoulli_log_likelihood_matches_reference_at_large_logits():
    rng = np.random.default_rng(3)
    logits = rng.choice([-1e4, -200.0, -30.0, -1.0, 0.0, 2.0, 40.0, 300.0, 1e4],
                        size=(5, 6, 6, 1))
    binary = rng.integers(0, 2, size=logits.shape).astype(np.float64)
    soft = rng.uniform(size=logits.shape)
    fn = jax.jit(variational.bernoulli_log_likelihood)
    for x in (binary, soft):
        got = fn(jnp.float32(x), logits=jnp.float32(logits))
        chex.assert_shape(got, (5,))
        chex.assert_tree_all_finite(got)
        chex.assert_trees_all_close(got, jnp.float32(_reference_bernoulli(x, logits)),
                                    rtol=1e-5, atol=1e-3)
    grad = jax.jit(jax.grad(lambda l: variational.bernoulli_log_likelihood(
        jnp.float32(binary), logits=l).sum()))(jnp.float32(logits))
    chex.assert_tree_all_finite(grad)
    # d/dl = x - sigmoid(l).
    chex.assert_trees_all_close(grad, jnp.float32(binary - special.expit(logits)),
                                atol=1e-6)
    # Perfectly confident, correct logits: log-likelihood 0; confident and wrong: -|l|.
    chex.assert_trees_all_close(
        fn(jnp.float32([[1.0, 0.0]]), logits=jnp.float32([[1e4, -1e4]])), jnp.float32([0.0]))
    chex.assert_trees_all_close(
        fn(jnp.float32([[0.0]]), logits=jnp.float32([[1e4]])), jnp.float32([-1e4]))


def test_bernoulli_log_likelihood_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"logits \(2, 784\)"):
        variational.bernoulli_log_likelihood(jnp.zeros((2, 28, 28, 1)), logits=jnp.zeros((2, 784)))


def test_gaussian_log_likelihood_matches_scipy():
    rng = np.random.default_rng(4)
    x, mean = rng.normal(size=(3, 5, 2)), rng.normal(size=(3, 5, 2))
    log_var = rng.normal(size=(3, 5, 2))
    fn = jax.jit(variational.gaussian_log_likelihood)
    got = fn(jnp.float32(x), mean=jnp.float32(mean), log_var=jnp.float32(log_var))
    chex.assert_shape(got, (3,))
    expected = stats.norm(mean, np.exp(0.5 * log_var)).logpdf(x).sum((1, 2))
    chex.assert_trees_all_close(got, jnp.float32(expected), rtol=1e-5)
    # One scalar log sigma, as log_scale or as log_var = 2 log sigma; per-pixel broadcast.
    expected = stats.norm(mean, np.exp(-0.3)).logpdf(x).sum((1, 2))
    for kwargs in ({"log_scale": -0.3}, {"log_var": jnp.float32(-0.6)},
                   {"log_var": jnp.full((5, 2), -0.6)}):
        chex.assert_trees_all_close(fn(jnp.float32(x), mean=jnp.float32(mean), **kwargs),
                                    jnp.float32(expected), rtol=1e-5)


def test_gaussian_log_likelihood_rejects_bad_arguments():
    x = jnp.zeros((3, 4))
    with pytest.raises(ValueError, match="exactly one of log_var and log_scale; got both"):
        variational.gaussian_log_likelihood(x, mean=x, log_var=0.0, log_scale=0.0)
    with pytest.raises(ValueError, match="got neither"):
        variational.gaussian_log_likelihood(x, mean=x)
    with pytest.raises(ValueError,
                       match=r"log_var must broadcast to x's shape \(3, 4\); got \(3,\)"):
        variational.gaussian_log_likelihood(x, mean=x, log_var=jnp.zeros(3))
    with pytest.raises(ValueError, match=r"log_scale must broadcast.*got \(3, 4, 1\)"):
        variational.gaussian_log_likelihood(x, mean=x, log_scale=jnp.zeros((3, 4, 1)))
    with pytest.raises(ValueError, match=r"mean \(3, 5\)"):
        variational.gaussian_log_likelihood(x, mean=jnp.zeros((3, 5)), log_scale=0.0)


# ----------------------------------------------------------- the ELBO


# The model's arrays are traced arguments, so every test shares each compilation.
@functools.partial(jax.jit, static_argnames=("num_samples",))
def _elbo(key, mean, log_var, params, beta=1.0, *, num_samples=1):
    return variational.elbo(key, mean=mean, log_var=log_var,
                            log_likelihood_fn=linear_log_likelihood(params),
                            num_samples=num_samples, beta=beta)


NUM_KEYS = 20_000


@jax.jit
def _elbos_over_keys(keys, mean, log_var, params, beta):
    return jax.vmap(lambda key: variational.elbo(
        key, mean=mean, log_var=log_var, log_likelihood_fn=linear_log_likelihood(params),
        beta=beta))(keys)


def elbos_over_keys(model, mean, var, *, beta=1.0):
    """One-sample ELBO estimates under NUM_KEYS keys: `ELBOTerms` of `[NUM_KEYS, B]`."""
    keys = jax.random.split(jax.random.key(0), NUM_KEYS)
    return _elbos_over_keys(keys, *_f32(mean, np.log(var)), model.params(), jnp.float32(beta))


def test_closed_forms_of_the_linear_gaussian_model():
    """The test's own closed forms: ELBO <= log p(x), with equality at the posterior."""
    model = LinearGaussian()
    exact = model.elbo(*model.posterior())
    np.testing.assert_allclose(exact, model.log_marginal(), rtol=1e-12)
    assert np.all(model.elbo(*misspecified_posterior(model)) < model.log_marginal() - 0.05)


def test_elbo_matches_closed_form_within_monte_carlo_error():
    model = LinearGaussian()
    mean, var = misspecified_posterior(model)
    terms = elbos_over_keys(model, mean, var)
    chex.assert_shape(terms.elbo, (NUM_KEYS, 3))
    estimate = np.asarray(terms.elbo, np.float64)
    standard_error = estimate.std(0) / np.sqrt(len(estimate))
    expected = model.elbo(mean, var)
    assert np.all(np.abs(estimate.mean(0) - expected) < 5 * standard_error), (
        estimate.mean(0), expected, standard_error)
    assert np.all(estimate.mean(0) < model.log_marginal())
    # The parts: KL analytic (no noise), the likelihood term its Monte-Carlo estimate.
    chex.assert_trees_all_close(terms.kl[0], jnp.float32(reference_kl(mean, var)), rtol=1e-5)
    chex.assert_trees_all_close(terms.elbo, terms.expected_log_likelihood - terms.kl)
    # beta weighs the KL only.
    beta_terms = elbos_over_keys(model, mean, var, beta=4.0)
    chex.assert_trees_all_close(beta_terms.elbo,
                                beta_terms.expected_log_likelihood - 4.0 * beta_terms.kl,
                                rtol=1e-6)


def test_elbo_without_variance_equals_closed_form_for_any_key():
    """Zero-variance cases of the estimator: when p(x | z) ignores z (W = 0) the whole
    estimate is exact; when q is (nearly) a point mass, so is the likelihood term."""
    model = LinearGaussian()
    mean, var = misspecified_posterior(model)
    model.w = np.zeros_like(model.w)
    terms = elbos_over_keys(model, mean, var)
    chex.assert_trees_all_close(terms.elbo, jnp.float32(np.broadcast_to(
        model.elbo(mean, var), (NUM_KEYS, 3))), rtol=1e-5)
    model = LinearGaussian()
    point = np.full_like(var, np.exp(-30.0))
    terms = elbos_over_keys(model, mean, point)
    chex.assert_trees_all_close(terms.expected_log_likelihood, jnp.float32(np.broadcast_to(
        model.expected_log_likelihood(mean, point), (NUM_KEYS, 3))), rtol=1e-5)


def test_elbo_num_samples_averages_the_same_samples():
    model = LinearGaussian()
    mean, log_var = _f32(*misspecified_posterior(model))
    params = model.params()
    key = jax.random.key(3)
    terms = _elbo(key, mean, log_var, params, num_samples=5)
    z = np.asarray(_reparameterize(key, mean=mean, log_var=log_var, num_samples=5), np.float64)
    log_likelihood = model.log_joint(z) - stats.norm(0.0, 1.0).logpdf(z).sum(-1)
    chex.assert_trees_all_close(terms.expected_log_likelihood,
                                jnp.float32(log_likelihood.mean(0)), rtol=1e-5)
    # Sample 0 is the one-sample estimate's sample.
    chex.assert_trees_all_close(_elbo(key, mean, log_var, params).elbo,
                                jnp.float32(log_likelihood[0]) - terms.kl, rtol=1e-5)


def test_elbo_reparameterization_gradient_matches_closed_form_gradient():
    model = LinearGaussian()
    mean, var = misspecified_posterior(model)
    mean, log_var = _f32(mean, np.log(var))
    w, b, x = _f32(model.w, model.b, model.x)
    sigma2 = model.sigma ** 2

    def closed_form(m, lv):  # the module docstring's formula, written in jnp
        residual = x - m @ w.T - b
        trace = jnp.exp(lv) @ jnp.sum(w ** 2, axis=0)
        likelihood = -0.5 * (4 * jnp.log(2 * jnp.pi * sigma2)
                             + (jnp.sum(residual ** 2, -1) + trace) / sigma2)
        kl = 0.5 * jnp.sum(jnp.exp(lv) + m ** 2 - 1 - lv, -1)
        return jnp.sum(likelihood - kl)

    fn = linear_log_likelihood(model.params())
    estimate = jax.jit(jax.grad(lambda m, lv: jnp.sum(variational.elbo(
        jax.random.key(5), mean=m, log_var=lv, log_likelihood_fn=fn,
        num_samples=50_000).elbo), argnums=(0, 1)))(mean, log_var)
    exact = jax.grad(closed_form, argnums=(0, 1))(mean, log_var)
    chex.assert_trees_all_close(estimate, exact, atol=0.05)
    np.testing.assert_allclose(closed_form(mean, log_var), model.elbo(
        *misspecified_posterior(model)).sum(), rtol=1e-5)


def test_elbo_rejects_a_likelihood_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"log_likelihood_fn must map .* got \(3, 4\)"):
        variational.elbo(jax.random.key(0), mean=jnp.zeros((3, 2)), log_var=jnp.zeros((3, 2)),
                         log_likelihood_fn=lambda z: jnp.zeros((3, 4)))


# ----------------------------------------------------------- the importance-weighted bound


@functools.partial(jax.jit, static_argnames=("num_samples", "chunk_size"))
def _iwae(key, mean, log_var, params, *, num_samples, chunk_size=None):
    return variational.importance_weighted_bound(
        key, mean=mean, log_var=log_var, log_likelihood_fn=linear_log_likelihood(params),
        num_samples=num_samples, chunk_size=chunk_size)


# (k, chunk_size) of the bounds taken over many keys.
BOUNDS = ((1, None), (10, None), (100, None), (1000, 100))


@functools.partial(jax.jit, static_argnames=("num_samples", "chunk_size"))
def _iwae_over_keys(keys, mean, log_var, params, *, num_samples, chunk_size):
    return jax.vmap(lambda key: _iwae(key, mean, log_var, params, num_samples=num_samples,
                                      chunk_size=chunk_size))(keys)


def iwae_over_keys(model, mean, var):
    """L_k under 256 keys for each (k, chunk_size) of BOUNDS: `{k: [256, B]}`, float64."""
    keys = jax.random.split(jax.random.key(0), 256)
    return {k: np.asarray(_iwae_over_keys(keys, *_f32(mean, np.log(var)), model.params(),
                                          num_samples=k, chunk_size=chunk), np.float64)
            for k, chunk in BOUNDS}


def test_iwae_with_the_true_posterior_is_log_marginal_for_any_k():
    """q = p(z | x) makes every weight p(x, z) / q(z | x) = p(x): zero variance, so
    L_k = log p(x) for every k and every one of the 256 keys."""
    model = LinearGaussian()
    bounds = iwae_over_keys(model, *model.posterior())
    for k, _ in BOUNDS:
        np.testing.assert_allclose(bounds[k], np.broadcast_to(model.log_marginal(), (256, 3)),
                                   atol=2e-5, err_msg=f"k={k}")


def test_iwae_tightens_with_k_towards_log_marginal():
    """E[L_1] = ELBO <= E[L_10] <= E[L_100] <= E[L_1000] <= log p(x) (Burda et al. 2016,
    Theorem 1), checked on means over 256 keys within their standard errors."""
    model = LinearGaussian()
    mean, var = misspecified_posterior(model)
    bounds = iwae_over_keys(model, mean, var)
    means = np.array([bounds[k].mean(0) for k, _ in BOUNDS])                 # [4, B]
    errors = np.array([bounds[k].std(0) / np.sqrt(256) for k, _ in BOUNDS])
    log_marginal, elbo = model.log_marginal(), model.elbo(mean, var)
    assert np.all(np.abs(means[0] - elbo) < 5 * errors[0])
    for i in range(len(BOUNDS) - 1):
        assert np.all(means[i + 1] > means[i] - 3 * (errors[i] + errors[i + 1])), means
    assert np.all(means[1] > elbo)                # a strict improvement already at k = 10
    assert np.all(means[-1] <= log_marginal + 5 * errors[-1])
    # At k = 1000 nearly all of the gap log p(x) - ELBO is closed.
    assert np.all(log_marginal - means[-1] < 0.05 * (log_marginal - elbo)), (
        means[-1], log_marginal, elbo)


def test_iwae_equals_a_float64_reference_on_the_same_samples():
    """L_k = logsumexp_i(log w_i) - log k on the samples of `reparameterize(key, k)`
    (here in chunks of 7, the last one padded), and on those samples L_k >= their mean
    log weight (Jensen), key by key."""
    model = LinearGaussian()
    mean, var = misspecified_posterior(model)
    mean32, log_var32 = _f32(mean, np.log(var))
    key = jax.random.key(11)
    z = np.asarray(_reparameterize(key, mean=mean32, log_var=log_var32, num_samples=100),
                   np.float64)
    log_weights = model.log_joint(z) - stats.norm(mean, np.sqrt(var)).logpdf(z).sum(-1)
    bound = _iwae(key, mean32, log_var32, model.params(), num_samples=100, chunk_size=7)
    chex.assert_shape(bound, (3,))
    expected = np.logaddexp.reduce(log_weights, axis=0) - np.log(100)
    chex.assert_trees_all_close(bound, jnp.float32(expected), atol=2e-5)
    assert np.all(np.asarray(bound) >= log_weights.mean(0))


def test_iwae_chunked_equals_unchunked_for_the_same_key():
    model = LinearGaussian()
    mean, log_var = _f32(*misspecified_posterior(model))
    params = model.params()
    key = jax.random.key(2)
    whole = _iwae(key, mean, log_var, params, num_samples=100)
    # 7 does not divide 100: the last chunk is padded.
    chex.assert_trees_all_close(_iwae(key, mean, log_var, params, num_samples=100, chunk_size=7),
                                whole, atol=1e-5)
    # And so are the gradients (the padded samples get none).
    def grads(chunk):
        return jax.jit(jax.grad(lambda m, lv: jnp.sum(variational.importance_weighted_bound(
            key, mean=m, log_var=lv, log_likelihood_fn=linear_log_likelihood(params),
            num_samples=10, chunk_size=chunk)), argnums=(0, 1)))(mean, log_var)
    reference = grads(None)
    chex.assert_tree_all_finite(reference)
    chex.assert_trees_all_close(grads(4), reference, atol=1e-5)


def test_iwae_with_5000_samples_in_chunks_needs_memory_of_one_chunk():
    model = LinearGaussian()
    mean, log_var = _f32(*misspecified_posterior(model))
    args = (jax.random.key(4), mean, log_var, model.params())

    def compiled(chunk):
        return _iwae.lower(*args, num_samples=5000, chunk_size=chunk).compile()
    chunked = compiled(250)
    bound = chunked(*args)
    chex.assert_tree_all_finite(bound)
    assert np.all(np.abs(np.asarray(bound) - model.log_marginal()) < 0.05)
    memory_chunked = chunked.memory_analysis()
    memory_whole = compiled(None).memory_analysis()
    assert memory_chunked is not None and memory_whole is not None  # XLA:CPU reports it
    assert memory_chunked.temp_size_in_bytes * 5 < memory_whole.temp_size_in_bytes, (
        memory_chunked.temp_size_in_bytes, memory_whole.temp_size_in_bytes)


@pytest.mark.parametrize("kwargs, message", [
    ({"num_samples": 0}, "num_samples must be a positive Python int"),
    ({"num_samples": 10, "chunk_size": 0}, "chunk_size must be a positive Python int"),
    ({"num_samples": 10, "chunk_size": 2.5}, "chunk_size must be"),
    ({"num_samples": jnp.int32(10)}, "num_samples must be"),
])
def test_iwae_rejects_bad_sample_counts(kwargs, message):
    with pytest.raises(ValueError, match=message):
        variational.importance_weighted_bound(
            jax.random.key(0), mean=jnp.zeros((2, 3)), log_var=jnp.zeros((2, 3)),
            log_likelihood_fn=lambda z: jnp.zeros(z.shape[0]), **kwargs)


@pytest.mark.parametrize("bound", ["elbo", "importance_weighted_bound"])
@pytest.mark.parametrize("mean_shape, log_var_shape", [((2, 3), (3, 2)), ((4, 2, 3), (4, 2, 3))])
def test_bounds_reject_posteriors_not_of_shape_batch_by_latent(bound, mean_shape,
                                                               log_var_shape):
    message = re.escape(f"mean {mean_shape} and log_var {log_var_shape}")
    with pytest.raises(ValueError, match=message):
        getattr(variational, bound)(
            jax.random.key(0), mean=jnp.zeros(mean_shape), log_var=jnp.zeros(log_var_shape),
            log_likelihood_fn=lambda z: jnp.zeros(z.shape[0]), num_samples=4)
