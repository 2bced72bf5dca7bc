"""BiGAN / ALI and BigBiGAN losses (jgan.objectives.bidirectional) against the papers'
formulas on hand-computed scores, under jit."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.objectives.bidirectional import (PairScores, bigan_discriminator_loss,
                                           bigan_encoder_generator_loss,
                                           bigbigan_discriminator_loss,
                                           bigbigan_encoder_generator_loss)

ENCODER = PairScores(x=jnp.array([2.0, 0.5]), z=jnp.array([-1.0, 3.0]), xz=jnp.array([0.2, 1.5]))
GENERATOR = PairScores(x=jnp.array([-2.0, 0.5]), z=jnp.array([0.0, -0.5]),
                       xz=jnp.array([1.0, -3.0]))

# h(t) = max(0, 1 - t), by hand: encoder pairs h(s), generator pairs h(-s), means over 2.
D_TERMS = {"x": 0.25 + 0.75, "z": 1.0 + 0.75, "xz": 0.4 + 1.0}
# mean s(x, E(x)) - mean s(G(z), z), by hand.
EG_TERMS = {"x": 1.25 + 0.75, "z": 1.0 + 0.25, "xz": 0.85 + 1.0}


@pytest.mark.parametrize("unary_x,unary_z", [(True, True), (False, True), (True, False),
                                             (False, False)])
def test_bigbigan_losses_are_the_papers_sums(unary_x, unary_z):
    used = ["xz"] + (["x"] if unary_x else []) + (["z"] if unary_z else [])
    kwargs = dict(unary_x=unary_x, unary_z=unary_z)
    d = jax.jit(lambda e, g: bigbigan_discriminator_loss(
        encoder_scores=e, generator_scores=g, **kwargs))(ENCODER, GENERATOR)
    eg = jax.jit(lambda e, g: bigbigan_encoder_generator_loss(
        encoder_scores=e, generator_scores=g, **kwargs))(ENCODER, GENERATOR)
    np.testing.assert_allclose(d, sum(D_TERMS[k] for k in used), rtol=1e-6)
    np.testing.assert_allclose(eg, sum(EG_TERMS[k] for k in used), rtol=1e-6)


def test_bigbigan_without_unaries_is_bigan_in_the_hinge_game():
    kwargs = dict(encoder_logits=ENCODER.xz, generator_logits=GENERATOR.xz, loss_type="hinge")
    off = dict(encoder_scores=ENCODER, generator_scores=GENERATOR, unary_x=False, unary_z=False)
    np.testing.assert_allclose(bigbigan_discriminator_loss(**off),
                               bigan_discriminator_loss(**kwargs), rtol=1e-6)
    np.testing.assert_allclose(bigbigan_encoder_generator_loss(**off),
                               bigan_encoder_generator_loss(**kwargs), rtol=1e-6)


def test_bigan_losses_swap_the_encoders_labels():
    e, g = np.array([0.3, -1.2, 2.0]), np.array([-0.4, 0.9, 0.0])
    sigmoid = lambda t: 1 / (1 + np.exp(-t))
    loss = lambda kind, fn: float(jax.jit(lambda a, b: fn(encoder_logits=a, generator_logits=b,
                                                          loss_type=kind))(e, g))
    # D: -E log D(x, E(x)) - E log(1 - D(G(z), z)), the encoder's pairs real.
    d = -np.mean(np.log(sigmoid(e))) - np.mean(np.log(1 - sigmoid(g)))
    np.testing.assert_allclose(loss("non_saturating", bigan_discriminator_loss), d, rtol=1e-5)
    # EG, non-saturating: -E log D(G(z), z) - E log(1 - D(x, E(x))).
    eg = -np.mean(np.log(sigmoid(g))) - np.mean(np.log(1 - sigmoid(e)))
    np.testing.assert_allclose(loss("non_saturating", bigan_encoder_generator_loss), eg,
                               rtol=1e-5)
    # EG, minimax: the value itself, E log D(x, E(x)) + E log(1 - D(G(z), z)) = -L_D.
    np.testing.assert_allclose(loss("minimax", bigan_encoder_generator_loss), -d, rtol=1e-5)
    np.testing.assert_allclose(loss("wasserstein", bigan_encoder_generator_loss),
                               e.mean() - g.mean(), rtol=1e-5)


def test_bidirectional_errors_are_named():
    with pytest.raises(ValueError, match="loss_type must be one of.*'least_squares'"):
        bigan_encoder_generator_loss(encoder_logits=ENCODER.xz, generator_logits=GENERATOR.xz,
                                     loss_type="least_squares")
    wide = ENCODER._replace(z=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"PairScores.z must be one score per pair \[B\]"):
        bigbigan_discriminator_loss(encoder_scores=wide, generator_scores=GENERATOR)
