"""The autoencoder and VAE families (jgan.families.autoencoder, jgan.families.vae) on
their own, without data files: the VAE family's loss on a linear-Gaussian model against
its closed-form ELBO, dynamic binarization inside the jitted step, the autoencoder's
losses against numpy, and the named errors of their configs.

The closed forms (q(z | x) = N(m, diag v), p(x | z) = N(W z + b, sigma^2 I), p(z) = N(0, I)):

  E_q log p(x | z) = -1/2 (D log 2 pi sigma^2 + (|x - W m - b|^2 + tr(W diag(v) W^T)) / sigma^2)
  KL(q || p(z))    = 1/2 sum_j (v_j + m_j^2 - 1 - log v_j)

computed in numpy float64, never through jgan.
"""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.errors import ConfigError
from jgan.families import autoencoder, vae
from jgan.families.encoder_decoder import DECODER, ENCODER
from jgan.train import builders
from tests.helpers import load_config

NUM_KEYS = 4000


def linear_vae_config(beta: float = 1.0):
    """vae.py:mixture,runlocal with linear encoder and decoder (hidden=()), L = D = 2."""
    config = load_config("vae", "mixture,runlocal")
    config.vae.hidden = ()
    config.vae.beta = beta
    builders.validate(config)
    return config


def linear_state(game, config, rng):
    """The game's state with q(z | x) = N(A x + c, diag v) and p(x | z) = N(W z + b,
    sigma^2 I) written into its parameters; returns (state, (A, c, v, W, b, sigma))."""
    state = jax.jit(game.init)(jax.random.key(0), {"image": jnp.zeros((1, 2), jnp.float32)})
    a, c = rng.normal(size=(2, 2)) * 0.5, rng.normal(size=2) * 0.3
    v = np.array([0.3, 0.6])
    w, b, sigma = rng.normal(size=(2, 2)), rng.normal(size=2), 0.8
    params = {
        ENCODER: {"mean": {"kernel": a, "bias": c},
                  "log_var": {"kernel": np.zeros((2, 2)), "bias": np.log(v)}},
        DECODER: {"output": {"kernel": w.T, "bias": b}},   # flax: x @ kernel
        vae.LOG_SCALE: {"log_scale": np.log(sigma)},
    }
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    chex.assert_trees_all_equal_shapes(params, state.teams["vae"].params)
    team = state.teams["vae"].replace(params=params)
    return state.replace_team("vae", team), (a, c, v, w, b, sigma)


def closed_form(x, a, c, v, w, b, sigma):
    """Per-example (E_q log p(x | z), KL) of the module docstring, float64."""
    m = x @ a + c                       # flax Dense: x @ kernel + bias
    d = x.shape[1]
    residual = x - m @ w.T - b
    trace = np.trace(w @ np.diag(v) @ w.T)
    log_likelihood = -0.5 * (d * np.log(2 * np.pi * sigma ** 2)
                             + (np.sum(residual ** 2, -1) + trace) / sigma ** 2)
    kl = 0.5 * np.sum(v + m ** 2 - 1.0 - np.log(v), -1)
    return log_likelihood, kl


@pytest.mark.parametrize("beta", [1.0, 4.0])
def test_vae_family_loss_is_minus_the_closed_form_elbo_of_a_linear_gaussian_vae(beta):
    config = linear_vae_config(beta)
    game = builders.build_game(config)
    rng = np.random.default_rng(1)
    state, model = linear_state(game, config, rng)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    loss_fn = game.teams["vae"].loss

    @jax.jit
    def losses(keys):
        def one(key):
            nets = game.bind(state, train=True, rng=key)
            return loss_fn(nets, {"image": jnp.asarray(x)}, key)
        return jax.vmap(one)(keys)

    loss, metrics = losses(jax.random.split(jax.random.key(2), NUM_KEYS))
    log_likelihood, kl = closed_form(x.astype(np.float64), *model)
    expected = -np.mean(log_likelihood - beta * kl)
    estimate = np.asarray(loss, np.float64)
    standard_error = estimate.std() / np.sqrt(NUM_KEYS)
    assert abs(estimate.mean() - expected) < 5 * standard_error, (estimate.mean(), expected)
    # The KL is analytic: the same for every key; the logged ELBO has beta = 1.
    np.testing.assert_allclose(metrics["vae_kl"], np.mean(kl), rtol=1e-5)
    np.testing.assert_allclose(metrics["vae_elbo"],
                               metrics["vae_log_likelihood"] - metrics["vae_kl"], rtol=1e-5)
    np.testing.assert_allclose(loss, -(metrics["vae_log_likelihood"] - beta * metrics["vae_kl"]),
                               rtol=1e-5)


def test_dynamic_binarization_draws_fresh_binary_images_every_step(monkeypatch):
    """Inside the jitted step, each step's targets are binary, follow the pixels'
    probabilities (0 and 1 exactly where x is -1 and 1), differ between steps on the
    same batch, and are the same when a step is repeated from the same state."""
    seen = []
    original = vae.binarize

    def recording(key, x):
        t = original(key, x)
        jax.debug.callback(lambda a: seen.append(np.asarray(a)), t)
        return t
    monkeypatch.setattr(vae, "binarize", recording)
    config = load_config("vae", "mnist,runlocal")
    config.vae.network = "mlp"           # a small network: nothing here is about its shape
    config.vae.hidden = (8,)
    game = builders.build_game(config)
    step = jax.jit(builders.build_step(config, game))
    p = np.linspace(0.0, 1.0, 28 * 28).reshape(1, 28, 28, 1)
    images = jnp.asarray(np.repeat(p, 64, axis=0) * 2 - 1, jnp.float32)  # x = 2 p - 1
    batch = {"image": images, "label": jnp.zeros((64,), jnp.int32)}
    state = jax.jit(game.init)(jax.random.key(0), batch)
    after_one, _ = step(state, batch)
    step(after_one, batch)
    step(state, batch)                   # step 0 again
    jax.effects_barrier()
    assert len(seen) == 3
    first, second, repeated = seen
    for t in seen:
        assert set(np.unique(t)) <= {0.0, 1.0}
        assert np.all(t[..., 0, 0, 0] == 0.0) and np.all(t[..., -1, -1, 0] == 1.0)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, repeated)
    # Over the 2 x 64 draws each pixel's frequency is its probability p.
    frequency = np.concatenate([first, second]).mean(0)
    assert np.abs(frequency - p[0]).max() < 5 * 0.5 / np.sqrt(128)


def test_autoencoder_losses_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(3, 4, 4, 1)).astype(np.float32)
    out = rng.normal(size=(3, 4, 4, 1)).astype(np.float32) * 3
    fn = jax.jit(autoencoder.reconstruction_loss, static_argnums=2)
    mse = np.mean((out.astype(np.float64) - x) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(fn(x, out, "mse"), mse, rtol=1e-5)
    t, q = (x + 1.0) / 2.0, 1.0 / (1.0 + np.exp(-out.astype(np.float64)))
    bce = -np.sum(t * np.log(q) + (1 - t) * np.log(1 - q), axis=(1, 2, 3))
    np.testing.assert_allclose(fn(x, out, "bernoulli"), bce, rtol=1e-5)
    np.testing.assert_allclose(autoencoder.to_images(out, "bernoulli"), 2 * q - 1, rtol=1e-5,
                               atol=1e-6)
    assert float(jnp.max(jnp.abs(autoencoder.to_images(out, "mse")))) <= 1.0
    with pytest.raises(ValueError, match=r"Images \(3, 4, 4, 1\) and the decoder's output"):
        autoencoder.reconstruction_loss(x, out[:, :2], "mse")


@pytest.mark.parametrize("name,arg,change,message", [
    ("vae", "mnist,runlocal", lambda c: c.vae.__setitem__("no_such_key", 1),
     r"config\.vae\.no_such_key: not a key of the vae family"),
    ("autoencoder", "mnist,runlocal", lambda c: c.autoencoder.__setitem__("beta", 1.0),
     r"config\.autoencoder\.beta: not a key of the autoencoder family"),
    ("vae", "mnist,runlocal", lambda c: c.__setitem__("autoencoder", c.vae),
     r"config\.autoencoder: is the autoencoder family's section; family 'vae' would ignore"),
    ("vae", "mnist,runlocal", lambda c: c.vae.__setitem__("likelihood", "poisson"),
     r"config\.vae\.likelihood: 'poisson' is not one of"),
    ("vae", "mixture,runlocal", lambda c: c.vae.__setitem__("likelihood", "bernoulli"),
     r"config\.vae\.likelihood: a Bernoulli likelihood needs images"),
    ("vae", "mnist,runlocal", lambda c: c.vae.__setitem__("objective", "iwae"),
     None),
    ("vae", "mnist,runlocal", lambda c: (c.vae.__setitem__("objective", "iwae"),
                                         c.vae.__setitem__("beta", 2.0)),
     r"config\.vae\.beta: the iwae objective"),
    ("vae", "mixture,runlocal", lambda c: c.vae.__setitem__("network", "conv"),
     r"config\.vae\.network: conv takes images"),
    ("autoencoder", "mnist,runlocal", lambda c: c.optimizer.__setitem__(
        "generator", c.optimizer.autoencoder),
     r"config\.optimizer\.generator: the autoencoder family has one team"),
    ("autoencoder", "mnist,runlocal", lambda c: c.eval.__setitem__("metrics", "fid"),
     r"config\.eval\.metrics: the autoencoder family draws no samples"),
    ("vae", "mnist,runlocal", lambda c: c.game.__setitem__("d_steps", 5),
     r"config\.game: d_steps, gradient_penalty_weight and r1_gamma are GAN keys"),
])
def test_config_errors_name_the_key(name, arg, change, message):
    config = load_config(name, arg)
    builders.validate(config)
    change(config)
    if message is None:
        builders.validate(config)   # a valid change
        return
    with pytest.raises(ConfigError, match=message):
        builders.validate(config)
