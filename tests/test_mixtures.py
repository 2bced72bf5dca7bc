"""2-D mixtures and the PacGAN mode-coverage protocol."""
import math

import chex
import jax
import numpy as np
import pytest

from jgan.data.mixtures import get_mixture, grid, ring
from jgan.eval.modes import mode_statistics


def test_published_constants():
    r = ring()
    np.testing.assert_allclose(np.linalg.norm(r.means, axis=1), 1.0, atol=1e-6)
    angles = np.sort(np.mod(np.arctan2(r.means[:, 1], r.means[:, 0]), 2 * math.pi))
    np.testing.assert_allclose(np.diff(angles), 2 * math.pi / 8, atol=1e-6)
    assert r.std == 0.01
    g = grid()
    assert g.num_modes == 25 and g.std == 0.05
    assert sorted(set(g.means[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_samples_match_the_mixture(name):
    m = get_mixture(name)
    x = np.asarray(jax.jit(m.sample, static_argnums=1)(jax.random.PRNGKey(0), 20000))
    chex.assert_shape(x, (20000, 2))
    nearest = np.argmin(np.linalg.norm(x[:, None] - m.means[None], axis=-1), axis=1)
    counts = np.bincount(nearest, minlength=m.num_modes)
    np.testing.assert_allclose(counts / len(x), 1 / m.num_modes, atol=0.02)
    residual = x - m.means[nearest]
    np.testing.assert_allclose(residual.std(axis=0), m.std, rtol=0.05)


@pytest.mark.parametrize("name", ["ring", "grid"])
def test_real_data_covers_every_mode_at_the_analytic_quality_share(name):
    m = get_mixture(name)
    stats = mode_statistics(np.asarray(m.sample(jax.random.PRNGKey(1), 2500)), m.means, m.std)
    assert stats["modes"] == m.num_modes
    # A 2-D standard normal lies within radius 3 with probability 1 - exp(-9/2).
    assert abs(stats["high_quality"] - (1 - math.exp(-4.5))) < 0.01
    assert stats["kl_to_uniform"] < 0.02


def test_collapsed_and_off_mode_samples():
    m = ring()
    collapsed = np.tile(m.means[3], (100, 1))
    stats = mode_statistics(collapsed, m.means, m.std)
    assert stats["modes"] == 1 and stats["high_quality"] == 1.0
    np.testing.assert_allclose(stats["kl_to_uniform"], math.log(8))
    far = np.zeros((50, 2))  # the ring's centre is 100 std from every mode
    stats = mode_statistics(far, m.means, m.std)
    assert stats["modes"] == 0 and stats["high_quality"] == 0.0 and stats["kl_to_uniform"] is None


def test_threshold_is_in_standard_deviations():
    m = ring()
    just_in = m.means[:1] + np.array([[2.99 * m.std, 0.0]])
    just_out = m.means[:1] + np.array([[3.01 * m.std, 0.0]])
    assert mode_statistics(just_in, m.means, m.std)["high_quality"] == 1.0
    assert mode_statistics(just_out, m.means, m.std)["high_quality"] == 0.0


def test_bad_shapes_and_names():
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        mode_statistics(np.zeros((4, 3)), ring().means, 0.01)
    with pytest.raises(ValueError, match="spiral"):
        get_mixture("spiral")


def test_scale_multiplies_means_and_std_and_leaves_the_protocol_invariant():
    from jgan.data.mixtures import mixture_of
    from experiments.configs import mixture as mixture_configs

    base, big = get_mixture("grid"), get_mixture("grid", scale=10.0)
    np.testing.assert_allclose(big.means, 10 * base.means)
    assert big.std == pytest.approx(10 * base.std)
    # Scaled samples, measured against the scaled mixture, score as the unscaled ones do.
    x = np.asarray(base.sample(jax.random.PRNGKey(2), 2500))
    assert mode_statistics(10 * x, big.means, big.std) == mode_statistics(x, base.means, base.std)
    config = mixture_configs.get_config("grid,non_saturating")
    config.data.mixture_scale = 10.0
    np.testing.assert_allclose(mixture_of(config).means, big.means)
    with pytest.raises(ValueError, match="scale"):
        get_mixture("ring", scale=0.0)


def test_a_non_positive_mixture_scale_is_a_config_error():
    from experiments.configs import mixture as mixture_configs
    from jgan.train import builders

    config = mixture_configs.get_config("ring,non_saturating,runlocal")
    config.data.mixture_scale = -1.0
    with pytest.raises(builders.ConfigError, match="data.mixture_scale"):
        builders.validate(config)
