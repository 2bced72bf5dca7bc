"""Claim 2: D* = p_data / (p_data + p_g) and V(D*, G) = 2 JSD - log 4 (jgan.dynamics).

References: closed forms (uniform densities, Gaussians with a linear log-ratio),
scipy (the mixture density, Jensen-Shannon divergence, Kolmogorov-Smirnov test) and a
Monte Carlo estimate of the value, independent of the quadrature grid.
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from jgan.data.mixtures import Mixture, ring
from jgan.dynamics.optimal_discriminator import (
    MixtureGenerator,
    QuadratureGrid,
    discriminator_error,
    game_value,
    jensen_shannon_divergence,
    mixture_log_density,
    optimal_discriminator,
    optimal_discriminator_logit,
    train_discriminator_for_fixed_generator,
)

LOG4 = np.log(4.0)
DATA_1D = Mixture(means=np.array([[-2.0], [1.5]], np.float32), std=0.5)
GENERATOR_1D = Mixture(means=np.array([[0.0]], np.float32), std=1.0)
GRID_1D = QuadratureGrid(low=-6.0, high=6.0, num_per_axis=600, dim=1)
DATA_2D = ring(num_modes=8, radius=2.0, std=0.25)
GENERATOR_2D = Mixture(means=1.4 * np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32),
                       std=0.5)
GRID_2D = QuadratureGrid(low=-4.0, high=4.0, num_per_axis=200, dim=2)


def log_densities(data: Mixture, generator: Mixture, grid: QuadratureGrid):
    points = grid.points
    return (np.asarray(mixture_log_density(data, points), np.float64),
            np.asarray(mixture_log_density(generator, points), np.float64))


def log_uniform(x: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.where((x >= low) & (x <= high), -np.log(high - low), -np.inf)


def test_mixture_log_density_matches_scipy_and_integrates_to_one():
    x = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32) * 2
    expected = np.log(np.mean([stats.multivariate_normal(m, GENERATOR_2D.std**2).pdf(x)
                               for m in GENERATOR_2D.means], axis=0))
    log_density = jax.jit(lambda points: mixture_log_density(GENERATOR_2D, points))
    np.testing.assert_allclose(log_density(x), expected, rtol=1e-5)
    for data, generator, grid in ((DATA_1D, GENERATOR_1D, GRID_1D),
                                  (DATA_2D, GENERATOR_2D, GRID_2D)):
        for log_p in log_densities(data, generator, grid):
            np.testing.assert_allclose(np.exp(log_p).sum() * grid.cell_volume, 1.0, atol=1e-4)
    with pytest.raises(ValueError, match="x must be"):
        mixture_log_density(GENERATOR_2D, np.zeros((3, 1)))


def test_mixture_generator_samples_follow_its_mixture():
    module = MixtureGenerator.of(DATA_1D)
    z = jax.random.normal(jax.random.key(1), (20000, module.latent_dim))
    params = module.init(jax.random.key(0), z[:1])
    x = np.asarray(jax.jit(module.apply)(params, z))[:, 0]
    chex.assert_shape(x, (20000,))

    def mixture_cdf(v):
        return np.mean([stats.norm.cdf(v, m, DATA_1D.std) for m in DATA_1D.means[:, 0]], axis=0)
    assert stats.kstest(x, mixture_cdf).pvalue > 1e-3
    # The sample is far from the generator's own (unimodal) law: the KS test can reject.
    assert stats.kstest(x, stats.norm(0, 1).cdf).pvalue < 1e-6


def test_optimal_discriminator_closed_form():
    rng = np.random.default_rng(0)
    log_p, log_q = rng.normal(size=100), rng.normal(size=100)
    p, q = np.exp(log_p), np.exp(log_q)
    np.testing.assert_allclose(optimal_discriminator(log_p, log_q), p / (p + q), rtol=1e-12)
    # Equal densities: D* = 1/2, whether positive or both vanishing.
    np.testing.assert_allclose(optimal_discriminator(log_p, log_p), 0.5)
    np.testing.assert_allclose(optimal_discriminator([-np.inf], [-np.inf]), 0.5)
    np.testing.assert_allclose(optimal_discriminator([0.0, -np.inf], [-np.inf, 0.0]), [1, 0])
    # N(-1, 1) against N(1, 1): log p - log q = -2x, so D*(x) = sigmoid(-2x).
    x = np.linspace(-3, 3, 13)
    log_p, log_q = stats.norm.logpdf(x, -1, 1), stats.norm.logpdf(x, 1, 1)
    np.testing.assert_allclose(optimal_discriminator_logit(log_p, log_q), -2 * x, atol=1e-12)
    np.testing.assert_allclose(optimal_discriminator(log_p, log_q), 1 / (1 + np.exp(2 * x)),
                               rtol=1e-12)
    with pytest.raises(ValueError, match="at the same points"):
        optimal_discriminator(np.zeros(3), np.zeros(4))


def test_value_is_minus_log_4_when_the_generator_matches_the_data():
    log_p, _ = log_densities(DATA_2D, GENERATOR_2D, GRID_2D)
    logits = optimal_discriminator_logit(log_p, log_p)
    np.testing.assert_allclose(logits, 0.0)
    np.testing.assert_allclose(game_value(logits, log_p, log_p, GRID_2D.cell_volume), -LOG4,
                               rtol=1e-4)
    assert jensen_shannon_divergence(log_p, log_p) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("generator_support, jsd", [
    ((2.0, 3.0), np.log(2.0)),         # disjoint supports: JSD = log 2, V(D*) = 0
    ((0.5, 1.5), 0.5 * np.log(2.0)),   # half overlap: JSD = log(2) / 2, V(D*) = -log 2
])
def test_value_and_jsd_of_uniform_densities(generator_support, jsd):
    # Cells of width 1/100 whose edges fall on the supports' ends.
    grid = QuadratureGrid(low=-1.0, high=4.0, num_per_axis=500, dim=1)
    x = grid.axis
    log_p, log_q = log_uniform(x, 0.0, 1.0), log_uniform(x, *generator_support)
    value = game_value(optimal_discriminator_logit(log_p, log_q), log_p, log_q,
                       grid.cell_volume)
    assert jensen_shannon_divergence(log_p, log_q) == pytest.approx(jsd, rel=1e-9)
    assert value == pytest.approx(2 * jsd - LOG4, abs=1e-9)


@pytest.mark.parametrize("case", ["1d", "2d"])
def test_value_at_the_optimum_is_2_jsd_minus_log_4_and_the_maximum(case):
    data, generator, grid = {"1d": (DATA_1D, GENERATOR_1D, GRID_1D),
                             "2d": (DATA_2D, GENERATOR_2D, GRID_2D)}[case]
    log_p, log_q = log_densities(data, generator, grid)
    optimum = optimal_discriminator_logit(log_p, log_q)
    value = game_value(optimum, log_p, log_q, grid.cell_volume)
    # scipy's JSD of the cell masses, independent of game_value's integrand.
    jsd = jensenshannon(np.exp(log_p), np.exp(log_q)) ** 2
    assert 0.1 < jsd < np.log(2) - 0.1
    assert value == pytest.approx(2 * jsd - LOG4, abs=1e-6)

    # Monte Carlo: V(D*) = E_data[log D*] + E_g[log(1 - D*)], no grid.
    n = 200_000
    x_data = data.sample(jax.random.key(0), n)
    x_gen = generator.sample(jax.random.key(1), n)
    log_d = -np.logaddexp(0, -optimal_discriminator_logit(
        mixture_log_density(data, x_data), mixture_log_density(generator, x_data)))
    log_1md = -np.logaddexp(0, optimal_discriminator_logit(
        mixture_log_density(data, x_gen), mixture_log_density(generator, x_gen)))
    standard_error = np.sqrt((log_d.var() + log_1md.var()) / n)
    assert abs(log_d.mean() + log_1md.mean() - value) < 5 * standard_error

    # D* maximizes V: every perturbed discriminator does worse.
    rng = np.random.default_rng(0)
    for scale in (0.01, 0.3, 3.0):
        perturbed = optimum + scale * rng.normal(size=optimum.shape)
        assert game_value(perturbed, log_p, log_q, grid.cell_volume) < value
    assert game_value(np.zeros_like(optimum), log_p, log_q, grid.cell_volume) == \
        pytest.approx(-LOG4, abs=1e-4)


@functools.cache
def trained_1d():
    return train_discriminator_for_fixed_generator(
        DATA_1D, GENERATOR_1D, grid=GRID_1D, num_steps=1500, batch_size=256,
        learning_rate=1e-2, hidden=(64, 64), seed=0)


def test_trained_discriminator_approaches_d_star_and_the_value_2_jsd_minus_log_4():
    fit = trained_1d()
    chex.assert_shape([fit.d, fit.d_star], (GRID_1D.num_per_axis,))
    chex.assert_tree_all_finite((fit.d, fit.d_loss))
    # Measured (seeds 0-3): max 0.048-0.064, mean 0.008-0.009 where m >= 5 % of its max;
    # V* - V = 0.0019-0.0025 nats. An untrained D (D = 1/2) is 0.56 nats below.
    error = discriminator_error(fit.d, fit.d_star, fit.log_p_data, fit.log_p_g,
                                relative_threshold=0.05)
    assert error.max < 0.15 and error.mean < 0.025, error
    assert fit.optimal_value == pytest.approx(2 * fit.jsd - LOG4, abs=1e-6)
    assert fit.value <= fit.optimal_value + 1e-9
    assert fit.optimal_value - fit.value < 0.01
    # The batch loss estimates -V(D, G) and ends near -V(D*, G).
    assert abs(fit.d_loss[-200:].mean() + fit.optimal_value) < 0.02
    assert fit.d_loss[0] > -fit.optimal_value + 0.1


def test_the_generator_stays_fixed_during_training():
    fit = trained_1d()
    np.testing.assert_array_equal(fit.state.teams["generator"].params["generator"]["means"],
                                  GENERATOR_1D.means)
    chex.assert_trees_all_equal(fit.state.step, jnp.asarray(1500, jnp.int32))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="holds"):
        train_discriminator_for_fixed_generator(
            DATA_1D, GENERATOR_1D, grid=QuadratureGrid(-1.0, 1.0, 100, 1), num_steps=1)
    with pytest.raises(ValueError, match="one dimension"):
        train_discriminator_for_fixed_generator(DATA_2D, GENERATOR_1D, grid=GRID_1D,
                                                num_steps=1)
    with pytest.raises(ValueError, match="high > low"):
        QuadratureGrid(1.0, 1.0, 10, 1)
    with pytest.raises(ValueError, match="d_logits"):
        game_value(np.zeros(3), np.zeros(4), np.zeros(4), 1.0)
