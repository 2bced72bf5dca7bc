"""ACGAN (Odena, Olah and Shlens 2017): the discriminator also classifies.

G(z, c) draws an image of class c; D(x) returns a source logit (real or fake) and class
logits. D maximizes L_S + L_C and G maximizes L_C - L_S (`jgan.objectives.auxiliary_losses`), on the
shared step machinery of `jgan.core.steps`.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import ml_collections

from jgan.core.game import Game, Networks
from jgan.families.adversarial import (DISCRIMINATOR, GENERATOR, discriminator_metrics, gan_game,
                                       gan_inputs, sample_latent)
from jgan.families.conditional import (labeled_batch, labeled_networks, require_classes,
                                       sample_labels)
from jgan.families.penalty_terms import PenaltySettings, add_penalties
from jgan.families.gan_config import gan_family
from jgan.families.registry import register
from jgan.models.conditioning import AuxiliaryClassifierDiscriminator
from jgan.objectives import auxiliary_losses, losses


def _class_accuracy(class_logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean((jnp.argmax(class_logits, axis=-1) == labels).astype(jnp.float32))


def acgan_game(*, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
               num_classes: int, generator_optimizer: optax.GradientTransformation,
               discriminator_optimizer: optax.GradientTransformation,
               loss_type: str = "minimax", class_loss_weight: float = 1.0,
               fake_class_loss: bool = True,
               gradient_penalty_weight: float = 0.0, r1_gamma: float = 0.0,
               r2_gamma: float = 0.0, ema_decay: float | None = None,
               data_key: str = "image", label_key: str = "label") -> Game:
    """A `Game` for ACGAN.

    Discriminator loss: `auxiliary_losses.acgan_discriminator_loss` on D(x) and
      D(G(z, c)), c uniform, + penalties on the source logit (`penalty_terms`).
    Generator loss: `auxiliary_losses.acgan_generator_loss` on D(G(z, c)).
    `loss_type="minimax"` is the paper's game; "non_saturating" its usual practice.

    Args:
      generator: module `(z [B, latent_dim], c [B] int32) -> x [B, ...]`.
      discriminator: module `x [B, ...] -> (source logits [B], class logits [B, K])`,
        e.g. `jgan.models.AuxiliaryClassifierDiscriminator`.
      latent_dim: size of z ~ N(0, I).
      num_classes: K.
      generator_optimizer, discriminator_optimizer: optax transformations.
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`, for the source part.
      class_loss_weight: weight of L_C in both players' losses.
      fake_class_loss: whether D's class loss includes generated images (the paper: yes).
      gradient_penalty_weight, r1_gamma, r2_gamma: see `penalty_terms.PenaltySettings`.
      ema_decay: decay of the generator's EMA weights, or None.
      data_key, label_key: keys of the real data and labels in a batch.
    Returns:
      The game, ready for `jgan.core.steps.make_step`.
    """
    losses.check_loss_type(loss_type)
    if num_classes < 2:
        raise ValueError(f"ACGAN needs num_classes >= 2, got {num_classes}.")
    penalty_settings = PenaltySettings(gradient_penalty_weight=gradient_penalty_weight,
                                       r1_gamma=r1_gamma, r2_gamma=r2_gamma)

    def real_batch(batch):
        return labeled_batch(batch, data_key=data_key, label_key=label_key, family="ACGAN")

    def fakes(nets: Networks, rng, n):
        z_rng, c_rng = jax.random.split(rng)
        c = sample_labels(c_rng, n, num_classes)
        return nets(GENERATOR, sample_latent(z_rng, n, latent_dim), c), c

    def discriminator_loss(nets: Networks, batch, rng):
        real, y_real = real_batch(batch)
        fake_rng, gp_rng = jax.random.split(rng)
        fake, y_fake = fakes(nets, fake_rng, real.shape[0])
        real_logits, real_classes = nets(DISCRIMINATOR, real)
        fake_logits, fake_classes = nets(DISCRIMINATOR, fake)
        loss = auxiliary_losses.acgan_discriminator_loss(
            real_logits=real_logits, fake_logits=fake_logits, real_class_logits=real_classes,
            fake_class_logits=fake_classes, real_labels=y_real, fake_labels=y_fake,
            loss_type=loss_type, class_weight=class_loss_weight, fake_class_loss=fake_class_loss)
        metrics = discriminator_metrics(real_logits, fake_logits, loss_type=loss_type)
        metrics["d_class_acc_real"] = _class_accuracy(real_classes, y_real)
        metrics["d_class_acc_fake"] = _class_accuracy(fake_classes, y_fake)
        critic = lambda x: nets(DISCRIMINATOR, x, update_collections=False)[0]
        return add_penalties(loss, metrics, critic=critic, real=real, fake=fake, rng=gp_rng,
                             settings=penalty_settings)

    def generator_loss(nets: Networks, batch, rng):
        real, _ = real_batch(batch)
        fake, c = fakes(nets, rng, real.shape[0])
        fake_logits, fake_classes = nets(DISCRIMINATOR, fake)
        loss = auxiliary_losses.acgan_generator_loss(
            fake_logits=fake_logits, fake_class_logits=fake_classes, fake_labels=c,
            loss_type=loss_type, class_weight=class_loss_weight)
        return loss, {"g_class_acc": _class_accuracy(fake_classes, c)}

    def example_inputs(batch):
        real, _ = real_batch(batch)
        return {GENERATOR: (jnp.zeros((1, latent_dim), jnp.float32), jnp.zeros((1,), jnp.int32)),
                DISCRIMINATOR: (jnp.zeros((1,) + real.shape[1:], jnp.float32),)}

    return gan_game(generator_team={GENERATOR: generator},
                    discriminator_team={DISCRIMINATOR: discriminator},
                    generator_loss=generator_loss, discriminator_loss=discriminator_loss,
                    generator_optimizer=generator_optimizer,
                    discriminator_optimizer=discriminator_optimizer,
                    example_inputs=example_inputs, ema_decay=ema_decay)


def _networks_from_config(config: ml_collections.ConfigDict):
    # G takes labels; D is the unconditional trunk with a source and a class head.
    generator, trunk = labeled_networks(config, condition_discriminator=False)
    return generator, AuxiliaryClassifierDiscriminator(
        trunk=trunk, num_classes=config.model.num_classes,
        spectral_norm=config.model.spectral_norm)


def config_section() -> ml_collections.ConfigDict:
    """The family's config section `config.acgan`, at its defaults."""
    c = ml_collections.ConfigDict()
    c.class_loss_weight = 1.0  # weight of the class loss L_C
    c.fake_class_loss = True   # D's L_C includes generated images (the paper)
    return c


def _game_from_config(config: ml_collections.ConfigDict, **common) -> Game:
    a = config.acgan
    return acgan_game(latent_dim=config.model.latent_dim, num_classes=config.model.num_classes,
                      class_loss_weight=a.class_loss_weight, fake_class_loss=a.fake_class_loss,
                      r2_gamma=config.game.r2_gamma, **common)


FAMILY = register(gan_family(
    name="acgan", build_networks=_networks_from_config, build_game=_game_from_config,
    generator_inputs=lambda config: gan_inputs(config, "acgan", kind="labels"), section=config_section,
    validate=require_classes, reads=("game.r2_gamma",)))
