"""The class-conditional adversarial game (cGAN, Mirza & Osindero 2014; projection
discriminator, Miyato & Koyama 2018): G(z, y) draws an example of class y, D(x, y)
judges whether x is a real example of class y.

The losses are the unconditional game's (`jgan.objectives.losses`, any `loss_type`) with the
label passed to both networks; how a network uses the label (concatenated one-hot
inputs, conditional batch norm, a projection term) is the network's business
(`jgan.models.conditioning`, `jgan.models.resnet`).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import ml_collections

from jgan.core.game import Game, Networks
from jgan.errors import require
from jgan.families.adversarial import (DISCRIMINATOR, GENERATOR, discriminator_metrics, gan_game,
                                       gan_inputs, sample_latent)
from jgan.families.networks_from_config import unconditional_networks
from jgan.families.penalty_terms import PenaltySettings, add_penalties
from jgan.families.gan_config import gan_family
from jgan.families.registry import register
from jgan.models import resnet
from jgan.models.conditioning import LabelConditionedDiscriminator, LabelConditionedGenerator
from jgan.objectives import losses

FAKE_LABELS = ("uniform", "real")


def sample_labels(rng: jax.Array, batch_size: int, num_classes: int) -> jax.Array:
    """y ~ Uniform{0, ..., num_classes - 1}: `[batch_size]` int32."""
    return jax.random.randint(rng, (batch_size,), 0, num_classes, jnp.int32)


def labeled_batch(batch, *, data_key: str, label_key: str, family: str):
    """`(data, int32 labels)` of a batch; a missing key is named with the family."""
    for key in (data_key, label_key):
        if key not in batch:
            raise KeyError(f"The {family} game needs {key!r} in the batch; it has {sorted(batch)}.")
    return batch[data_key], batch[label_key].astype(jnp.int32)


def conditional_game(*, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                     num_classes: int, loss_type: str,
                     generator_optimizer: optax.GradientTransformation,
                     discriminator_optimizer: optax.GradientTransformation,
                     fake_labels: str = "uniform",
                     gradient_penalty_weight: float = 0.0,
                     gradient_penalty_one_sided: bool = False,
                     gradient_penalty_target: float = 1.0,
                     r1_gamma: float = 0.0, r2_gamma: float = 0.0,
                     ema_decay: float | None = None, data_key: str = "image",
                     label_key: str = "label") -> Game:
    """A `Game` for a class-conditional GAN.

    With y_r the real labels and y_f the fakes' labels:
    Discriminator loss: `losses.discriminator_loss(loss_type)` on D(x, y_r) and
      D(G(z, y_f), y_f), + the penalties of `jgan.families.penalty_terms` (WGAN-GP's
      interpolates and R1 judged under y_r, R2 under y_f).
    Generator loss: `losses.generator_loss(loss_type)` on D(G(z, y_f), y_f).

    Args:
      generator: module `(z [B, latent_dim], y [B] int32) -> x [B, ...]`.
      discriminator: module `(x [B, ...], y [B] int32) -> logits [B]`.
      latent_dim: size of z ~ N(0, I).
      num_classes: labels are in `[0, num_classes)`.
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`.
      generator_optimizer, discriminator_optimizer: optax transformations.
      fake_labels: "uniform": y_f drawn uniformly (Miyato & Koyama 2018); "real": y_f =
        y_r, so every real example has a generated counterpart of its class (the
        class frequencies of the data).
      gradient_penalty_weight, gradient_penalty_one_sided, gradient_penalty_target,
        r1_gamma, r2_gamma: see `jgan.families.penalty_terms.PenaltySettings`.
      ema_decay: decay of the generator's EMA weights, or None.
      data_key, label_key: keys of the real data and labels in a batch.
    Returns:
      The game, ready for `jgan.core.steps.make_step`.
    """
    losses.check_loss_type(loss_type)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    if fake_labels not in FAKE_LABELS:
        raise ValueError(f"fake_labels must be one of {FAKE_LABELS}, got {fake_labels!r}.")
    penalty_settings = PenaltySettings(
        gradient_penalty_weight=gradient_penalty_weight,
        gradient_penalty_one_sided=gradient_penalty_one_sided,
        gradient_penalty_target=gradient_penalty_target, r1_gamma=r1_gamma, r2_gamma=r2_gamma)

    def real_batch(batch):
        return labeled_batch(batch, data_key=data_key, label_key=label_key, family="conditional")

    def fake_batch(nets: Networks, rng, real_labels):
        z_rng, y_rng = jax.random.split(rng)
        n = real_labels.shape[0]
        y = real_labels if fake_labels == "real" else sample_labels(y_rng, n, num_classes)
        return nets(GENERATOR, sample_latent(z_rng, n, latent_dim), y), y

    def discriminator_loss(nets: Networks, batch, rng):
        real, y_real = real_batch(batch)
        fake_rng, gp_rng = jax.random.split(rng)
        # No stop_gradient on the fakes, as in jgan.families.adversarial (unrolled G loss).
        fake, y_fake = fake_batch(nets, fake_rng, y_real)
        real_logits = nets(DISCRIMINATOR, real, y_real)
        fake_logits = nets(DISCRIMINATOR, fake, y_fake)
        loss = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                         loss_type=loss_type)
        metrics = discriminator_metrics(real_logits, fake_logits, loss_type=loss_type)
        return add_penalties(
            loss, metrics, real=real, fake=fake, rng=gp_rng, settings=penalty_settings,
            critic=lambda x: nets(DISCRIMINATOR, x, y_real, update_collections=False),
            fake_critic=lambda x: nets(DISCRIMINATOR, x, y_fake, update_collections=False))

    def generator_loss(nets: Networks, batch, rng):
        _, y_real = real_batch(batch)
        fake, y_fake = fake_batch(nets, rng, y_real)
        fake_logits = nets(DISCRIMINATOR, fake, y_fake)
        return losses.generator_loss(fake_logits=fake_logits, loss_type=loss_type), {}

    def example_inputs(batch):
        real, _ = real_batch(batch)
        y = jnp.zeros((1,), jnp.int32)
        return {GENERATOR: (jnp.zeros((1, latent_dim), jnp.float32), y),
                DISCRIMINATOR: (jnp.zeros((1,) + real.shape[1:], jnp.float32), y)}

    return gan_game(generator_team={GENERATOR: generator},
                    discriminator_team={DISCRIMINATOR: discriminator},
                    generator_loss=generator_loss, discriminator_loss=discriminator_loss,
                    generator_optimizer=generator_optimizer,
                    discriminator_optimizer=discriminator_optimizer,
                    example_inputs=example_inputs, ema_decay=ema_decay)


def labeled_networks(config: ml_collections.ConfigDict, *, condition_discriminator: bool):
    """`(generator, discriminator)` of `config.model` for a generator that takes labels.

    ResNets: conditional batch norm in G and, with `condition_discriminator`, a
    projection D. MLP and DCGAN networks: the one-hot label concatenated to G's z and,
    with `condition_discriminator`, to D's input (cGAN). Widths as
    `jgan.families.networks_from_config.unconditional_networks`.
    """
    m = config.model
    k = m.num_classes
    if m.kind == "resnet":
        generator = resnet.ResNetGenerator(num_classes=k, width=2 * m.width,
                                           latent_dim=m.latent_dim,
                                           resolution=config.data.resolution,
                                           channels=config.data.channels)
        return generator, resnet.ResNetDiscriminator(
            num_classes=k if condition_discriminator else None, width=m.width,
            spectral_norm=m.spectral_norm)
    generator, discriminator = unconditional_networks(config)
    generator = LabelConditionedGenerator(generator=generator, num_classes=k)
    if condition_discriminator:
        discriminator = LabelConditionedDiscriminator(discriminator=discriminator, num_classes=k)
    return generator, discriminator


def require_classes(config: ml_collections.ConfigDict) -> None:
    """`model.num_classes` >= 2, as a family whose generator takes labels needs."""
    require(config.model.num_classes >= 2, "model.num_classes", "must be >= 2.")


def config_section() -> ml_collections.ConfigDict:
    """The family's config section `config.conditional`, at its defaults."""
    c = ml_collections.ConfigDict()
    c.fake_labels = "uniform"  # the fakes' labels: uniform | real (the batch's labels)
    return c


def _validate(config: ml_collections.ConfigDict) -> None:
    require_classes(config)
    require(config.conditional.fake_labels in FAKE_LABELS, "conditional.fake_labels",
            f"{config.conditional.fake_labels!r} is not one of {FAKE_LABELS}.")


def _game_from_config(config: ml_collections.ConfigDict, **common) -> Game:
    g = config.game
    return conditional_game(latent_dim=config.model.latent_dim,
                            num_classes=config.model.num_classes,
                            fake_labels=config.conditional.fake_labels,
                            r2_gamma=g.r2_gamma,
                            gradient_penalty_one_sided=g.gradient_penalty_one_sided, **common)


FAMILY = register(gan_family(
    name="conditional",
    build_networks=lambda config: labeled_networks(config, condition_discriminator=True),
    build_game=_game_from_config,
    generator_inputs=lambda config: gan_inputs(config, "conditional", kind="labels"),
    section=config_section, validate=_validate,
    reads=("game.r2_gamma", "game.gradient_penalty_one_sided")))
