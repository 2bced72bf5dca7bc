"""Claim 3: the saturating generator loss has vanishing gradients when D wins (jgan.dynamics).

References: the analytic derivatives of log(1 - sigmoid(l)) and -log sigmoid(l), in
numpy; the per-example chain rule through the full Jacobian dl_i / dtheta_G; and the
measured trace of a run whose discriminator is pre-trained against a frozen generator.
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.objectives import losses
from jgan.data.mixtures import ring
from jgan.dynamics.saturation import (
    generator_gradient_norms,
    non_saturating_logit_derivative,
    saturating_logit_derivative,
    saturation_run,
)
from jgan.families.adversarial import DISCRIMINATOR, GENERATOR, adversarial_game
from jgan.models.mlp import MLPDiscriminator, MLPGenerator

LOGITS = np.linspace(-30.0, 30.0, 121)


def per_example_grad(loss_fn):
    return jax.jit(jax.vmap(jax.grad(lambda l: loss_fn(fake_logits=l[None]))))


def test_logit_derivatives_are_the_gradients_of_the_library_losses():
    sigmoid = 1.0 / (1.0 + np.exp(-LOGITS))
    logits = jnp.asarray(LOGITS, jnp.float32)
    saturating = jax.jit(saturating_logit_derivative)(logits)
    non_saturating = jax.jit(non_saturating_logit_derivative)(logits)
    chex.assert_shape([saturating, non_saturating], LOGITS.shape)
    np.testing.assert_allclose(saturating, -sigmoid, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(non_saturating, -(1.0 - sigmoid), rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(per_example_grad(losses.minimax_generator_loss)(logits),
                               saturating, rtol=1e-5, atol=1e-10)
    np.testing.assert_allclose(per_example_grad(losses.non_saturating_generator_loss)(logits),
                               non_saturating, rtol=1e-5, atol=1e-10)


def test_saturating_weight_vanishes_as_d_rejects_and_non_saturating_tends_to_one():
    rejected = jnp.asarray([-5.0, -10.0, -20.0, -30.0])
    saturating = np.abs(saturating_logit_derivative(rejected))
    non_saturating = np.abs(non_saturating_logit_derivative(rejected))
    assert np.all(np.diff(saturating) < 0) and saturating[-1] < 1e-12
    np.testing.assert_allclose(saturating, np.exp(np.asarray(rejected)), rtol=1e-2)
    np.testing.assert_allclose(non_saturating, 1.0, atol=7e-3)
    # Where D is undecided (l = 0) the two weights are equal.
    np.testing.assert_allclose(saturating_logit_derivative(0.0),
                               non_saturating_logit_derivative(0.0))


def test_gradient_norms_match_the_per_example_chain_rule():
    game = adversarial_game(generator=MLPGenerator(hidden=(8,), output_dim=2),
                            discriminator=MLPDiscriminator(hidden=(8,)), latent_dim=2,
                            loss_type="non_saturating", generator_optimizer=optax.sgd(0.1),
                            discriminator_optimizer=optax.sgd(0.1))
    state = game.init(jax.random.key(0), {"image": jnp.zeros((1, 2))})
    z = jax.random.normal(jax.random.key(1), (16, 2))
    measured = jax.jit(generator_gradient_norms, static_argnums=0)(game, state, z)

    def logits_of(params):
        g = game.teams["generator"].networks[GENERATOR].apply({"params": params[GENERATOR]}, z)
        return game.teams["discriminator"].networks[DISCRIMINATOR].apply(
            {"params": state.teams["discriminator"].params[DISCRIMINATOR]}, g)

    logits = logits_of(state.teams["generator"].params)
    jacobian = jax.jacrev(logits_of)(state.teams["generator"].params)         # leaves [16, ...]
    for derivative, norm in ((saturating_logit_derivative, measured.saturating),
                             (non_saturating_logit_derivative, measured.non_saturating)):
        weights = derivative(logits) / z.shape[0]
        grads = jax.tree.map(functools.partial(jnp.tensordot, weights, axes=1), jacobian)
        np.testing.assert_allclose(norm, optax.tree.norm(grads), rtol=1e-4)
    np.testing.assert_allclose(measured.d_fake, jnp.mean(jax.nn.sigmoid(logits)), rtol=1e-5)
    np.testing.assert_allclose(measured.d_fake_max, jnp.max(jax.nn.sigmoid(logits)), rtol=1e-5)


def test_saturating_gradient_is_an_order_of_magnitude_smaller_once_d_wins():
    # D trained alone (G frozen by a zero learning rate) against the initial generator,
    # on Metz et al.'s ring, which the initial fakes are far from.
    trace = saturation_run(ring(radius=2.0, std=0.02), num_steps=200, pretrain_steps=200,
                           d_steps=5, discriminator_learning_rate=3e-3, seed=0)
    g = trace.gradients
    chex.assert_shape(list(g), (201,))
    chex.assert_tree_all_finite(g)
    ratio = g.saturating / g.non_saturating
    # Step 0, D undecided (D(G(z)) ~ 1/2): both losses weigh every fake ~equally.
    assert 0.4 < g.d_fake[0] < 0.6 and 0.5 < ratio[0] < 2.0
    # Steps 100-200, D wins: measured mean D(G(z)) <= 0.0022, ratio <= 0.050 (median
    # 0.013), while the non-saturating norm grew from 0.56 to >= 11.
    wins = slice(100, None)
    assert np.all(g.d_fake[wins] < 0.05)
    assert np.all(ratio[wins] < 0.1) and np.median(ratio[wins]) < 0.05
    assert np.all(g.non_saturating[wins] > 5 * g.non_saturating[0])
    assert np.all(trace.d_real[wins] > 0.9)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="generator_loss"):
        saturation_run(ring(), num_steps=1, generator_loss="wasserstein")
    with pytest.raises(ValueError, match="pretrain_steps"):
        saturation_run(ring(), num_steps=1, pretrain_steps=2)
