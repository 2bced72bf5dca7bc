"""Losses of bidirectional GANs: a discriminator on (x, z) pairs, an encoder E beside G.

Pairs come from two joint distributions: the encoder's (x, E(x)), x ~ P_x, labelled
y = +1, and the generator's (G(z), z), z ~ P_z, labelled y = -1. The encoder and the
generator are one team (EG) against the discriminator.

BiGAN / ALI (Donahue, Krahenbuhl and Darrell 2017; Dumoulin et al. 2017): one score
s(x, z) per pair, any GAN game of `jgan.objectives.losses` with the encoder's pairs as
"real" and the generator's as "fake":

  L_D  = discriminator_loss(real = s(x, E(x)), fake = s(G(z), z))
  L_EG = generator_loss(fake = s(G(z), z)) + generator_loss(fake = -s(x, E(x)))

The second term of L_EG is the generator loss with the labels swapped: the encoder
wants its pairs taken for the generator's. For the non-saturating game that is
-log sigmoid(s(G(z), z)) - log sigmoid(-s(x, E(x))); for the minimax game
log(1 - D(G(z), z)) + log D(x, E(x)), the minimax value itself; for the hinge game
-s(G(z), z) + s(x, E(x)), BigBiGAN's L_EG with its unary terms off. Negating a score
swaps its label only in games symmetric under s -> -s (`BIGAN_LOSS_TYPES`), so
least squares is refused.

BigBiGAN (Donahue and Simonyan 2019, eq. 2-4): three scores per pair,
s_x = theta_x^T F(x), s_z = theta_z^T H(z), s_xz = theta_xz^T J(F(x), H(z)), and

  L_D  = E_enc[h(s_x) + h(s_z) + h(s_xz)] + E_gen[h(-s_x) + h(-s_z) + h(-s_xz)],
         h(t) = max(0, 1 - t)
  L_EG = E_enc[s_x + s_z + s_xz] - E_gen[s_x + s_z + s_xz]       (y s, no hinge)

each expectation a mean over its batch. `unary_x=False` / `unary_z=False` drop the s_x /
s_z terms from both losses; with both off, BigBiGAN's losses are BiGAN's in the hinge
game.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jgan.objectives import losses


BIGAN_LOSS_TYPES = ("minimax", "non_saturating", "wasserstein", "hinge")


class PairScores(NamedTuple):
    """A BigBiGAN discriminator's scores of a batch of pairs, each `[B]`.

    Attributes:
      x: the unary score of the image, theta_x^T F(x).
      z: the unary score of the latent, theta_z^T H(z).
      xz: the joint score, theta_xz^T J(F(x), H(z)).
    """
    x: jax.Array
    z: jax.Array
    xz: jax.Array


def _used(scores: PairScores, unary_x: bool, unary_z: bool) -> list[jax.Array]:
    for name, score in scores._asdict().items():
        if jnp.ndim(score) != 1:
            raise ValueError(f"PairScores.{name} must be one score per pair [B], got shape "
                             f"{jnp.shape(score)}.")
    return [s for s, on in ((scores.x, unary_x), (scores.z, unary_z), (scores.xz, True)) if on]


def bigbigan_discriminator_loss(*, encoder_scores: PairScores, generator_scores: PairScores,
                                unary_x: bool = True, unary_z: bool = True) -> jax.Array:
    """BigBiGAN's discriminator loss (module docstring):
    L_D = sum over the scores used of mean h(s(x, E(x))) + mean h(-s(G(z), z)),
    h(t) = max(0, 1 - t).

    Args:
      encoder_scores: scores of the encoder's pairs (x, E(x)), each `[B]`.
      generator_scores: scores of the generator's pairs (G(z), z), each `[B']`.
      unary_x, unary_z: keep the unary terms s_x, s_z.
    Returns:
      Scalar loss.
    """
    return sum(losses.hinge_discriminator_loss(real_logits=e, fake_logits=g)
               for e, g in zip(_used(encoder_scores, unary_x, unary_z),
                               _used(generator_scores, unary_x, unary_z)))


def bigbigan_encoder_generator_loss(*, encoder_scores: PairScores,
                                    generator_scores: PairScores, unary_x: bool = True,
                                    unary_z: bool = True) -> jax.Array:
    """BigBiGAN's encoder-generator loss (module docstring):
    L_EG = sum over the scores used of mean s(x, E(x)) - mean s(G(z), z).

    Args and returns: as `bigbigan_discriminator_loss`.
    """
    return sum(jnp.mean(e.astype(jnp.float32)) - jnp.mean(g.astype(jnp.float32))
               for e, g in zip(_used(encoder_scores, unary_x, unary_z),
                               _used(generator_scores, unary_x, unary_z)))


def bigan_discriminator_loss(*, encoder_logits: jax.Array, generator_logits: jax.Array,
                             loss_type: str) -> jax.Array:
    """BiGAN's discriminator loss: `losses.discriminator_loss` with the encoder's pairs
    as real, L_D = discriminator_loss(real = s(x, E(x)), fake = s(G(z), z)).

    Args:
      encoder_logits: s(x, E(x)) `[B]`.
      generator_logits: s(G(z), z) `[B']`.
      loss_type: one of `losses.LOSS_TYPES`.
    Returns:
      Scalar loss.
    """
    return losses.discriminator_loss(real_logits=encoder_logits, fake_logits=generator_logits,
                                     loss_type=loss_type)


def bigan_encoder_generator_loss(*, encoder_logits: jax.Array, generator_logits: jax.Array,
                                 loss_type: str) -> jax.Array:
    """BiGAN's encoder-generator loss, the generator loss on both sides with the encoder's
    labels swapped: L_EG = generator_loss(s(G(z), z)) + generator_loss(-s(x, E(x))).

    Args and returns: as `bigan_discriminator_loss`.
    Raises:
      ValueError: a `loss_type` outside `BIGAN_LOSS_TYPES`.
    """
    if loss_type not in BIGAN_LOSS_TYPES:
        raise ValueError(f"BiGAN's encoder loss swaps labels by negating scores, which only "
                         f"games symmetric under s -> -s allow: loss_type must be one of "
                         f"{BIGAN_LOSS_TYPES}, got {loss_type!r}.")
    return (losses.generator_loss(fake_logits=generator_logits, loss_type=loss_type)
            + losses.generator_loss(fake_logits=-encoder_logits, loss_type=loss_type))
