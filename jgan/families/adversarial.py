"""The unconditional adversarial game: G maps noise to data, D tells real from fake.

One family covers the minimax, non-saturating, Wasserstein, hinge and least-squares
games, with optional gradient penalties (WGAN-GP, R1, R2) and PacGAN packing: it is a
pair of loss functions for the shared step machinery in `jgan.core.steps`.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import ml_collections

from jgan.core.game import Game, LossFn, Metrics, Networks, Team
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.families.networks_from_config import unconditional_networks
from jgan.families.penalty_terms import PenaltySettings, add_penalties
from jgan.families.gan_config import gan_family
from jgan.families.registry import register
from jgan.families.sampling import GeneratorInputs
from jgan.models.packing import PackedDiscriminator, pack_samples, unpack_samples
from jgan.objectives import losses


def gan_game(*, generator_team: dict[str, nn.Module], discriminator_team: dict[str, nn.Module],
             generator_loss: LossFn, discriminator_loss: LossFn,
             generator_optimizer: optax.GradientTransformation,
             discriminator_optimizer: optax.GradientTransformation, example_inputs,
             ema_decay: float | None = None) -> Game:
    """The two-team game of a GAN: teams "discriminator" (updated first) and "generator".

    Metrics are prefixed "d_" and "g_"; EMA weights, if any, are the generator team's.

    Args:
      generator_team, discriminator_team: `{network name: module}` of each team.
      generator_loss, discriminator_loss: each team's `(nets, batch, rng) -> (loss,
        metrics)`.
      generator_optimizer, discriminator_optimizer: each team's optax transformation.
      example_inputs: `batch -> {network name: args tuple}`.
      ema_decay: decay of the generator team's EMA weights, or None.
    """
    return Game(teams={
        DISCRIMINATOR: Team(networks=discriminator_team, loss=discriminator_loss,
                            optimizer=discriminator_optimizer, metrics_prefix="d"),
        GENERATOR: Team(networks=generator_team, loss=generator_loss,
                        optimizer=generator_optimizer, ema_decay=ema_decay,
                        metrics_prefix="g"),
    }, example_inputs=example_inputs)


def sample_latent(rng: jax.Array, batch_size: int, latent_dim: int) -> jax.Array:
    """z ~ N(0, I): `[batch_size, latent_dim]` float32."""
    return jax.random.normal(rng, (batch_size, latent_dim), jnp.float32)


def discriminator_metrics(real_logits: jax.Array, fake_logits: jax.Array, *,
                          loss_type: str) -> Metrics:
    """D(x), D(G(z)) and the discriminator's accuracy on each, as scalars.

    For the probabilistic games D = sigmoid(logit) and a prediction is "real" when
    logit > 0; for least squares the raw output is compared with 0.5 (targets 0 and 1);
    for the Wasserstein and hinge games the raw output is reported, thresholded at 0.
    """
    real = real_logits.reshape(-1).astype(jnp.float32)
    fake = fake_logits.reshape(-1).astype(jnp.float32)
    if loss_type in losses.PROBABILISTIC_LOSS_TYPES:
        d_real, d_fake, threshold = jax.nn.sigmoid(real), jax.nn.sigmoid(fake), 0.0
    else:
        d_real, d_fake = real, fake
        threshold = 0.5 if loss_type == "least_squares" else 0.0
    return {
        "d_real": jnp.mean(d_real),
        "d_fake": jnp.mean(d_fake),
        "d_acc_real": jnp.mean((real > threshold).astype(jnp.float32)),
        "d_acc_fake": jnp.mean((fake <= threshold).astype(jnp.float32)),
    }


def adversarial_game(*, generator: nn.Module, discriminator: nn.Module, latent_dim: int,
                     loss_type: str, generator_optimizer: optax.GradientTransformation,
                     discriminator_optimizer: optax.GradientTransformation,
                     gradient_penalty_weight: float = 0.0,
                     gradient_penalty_one_sided: bool = False,
                     gradient_penalty_target: float = 1.0,
                     r1_gamma: float = 0.0, r2_gamma: float = 0.0,
                     ema_decay: float | None = None, data_key: str = "image",
                     pack: int = 1) -> Game:
    """A `Game` for an unconditional GAN.

    Discriminator loss: `losses.discriminator_loss(loss_type)` on D(x) and D(G(z)),
      + gradient_penalty_weight * GP (on interpolates)
      + r1_gamma / 2 * R1 (on real data) + r2_gamma / 2 * R2 (on fakes).
    Generator loss: `losses.generator_loss(loss_type)` on D(G(z)).
    With `pack = m > 1` (PacGAN, Lin et al. 2018) D judges packs of m samples, m real
    or m generated (`jgan.models.packing`): the logits are `[B / m]`, and the gradient
    penalties are taken per pack, on D's packed input.

    Args:
      generator: module `z [B, latent_dim] -> x [B, ...]`, networks named "generator".
      discriminator: module `x [B, ...] -> logits [B]`, named "discriminator".
      latent_dim: size of z ~ N(0, I).
      loss_type: one of `jgan.objectives.losses.LOSS_TYPES`.
      generator_optimizer, discriminator_optimizer: optax transformations.
      gradient_penalty_weight: lambda of WGAN-GP (10 in the paper); 0 disables.
      gradient_penalty_one_sided, gradient_penalty_target: see `penalties.gradient_penalty`.
      r1_gamma, r2_gamma: weights of the R1 / R2 penalties; 0 disables.
      ema_decay: decay of the generator's EMA weights, or None.
      data_key: key of the real data in a batch.
      pack: m, samples per discriminator input (PacGAN); the discriminator network,
        still named "discriminator", becomes `PackedDiscriminator(discriminator, m)`, and
        every batch the losses see must hold a multiple of m examples.
    Returns:
      The game, ready for `jgan.core.steps.make_step`.
    """
    losses.check_loss_type(loss_type)
    if pack < 1:
        raise ValueError(f"pack must be >= 1, got {pack}.")
    penalty_settings = PenaltySettings(
        gradient_penalty_weight=gradient_penalty_weight,
        gradient_penalty_one_sided=gradient_penalty_one_sided,
        gradient_penalty_target=gradient_penalty_target, r1_gamma=r1_gamma, r2_gamma=r2_gamma)
    if pack > 1:
        discriminator = PackedDiscriminator(discriminator=discriminator, pack=pack)

    def batch_data(batch):
        if data_key not in batch:
            raise KeyError(f"The batch has no {data_key!r}; it has {sorted(batch)}.")
        return batch[data_key]

    def real_data(batch):
        real = batch_data(batch)
        if real.shape[0] % pack:
            raise ValueError(f"A batch of {real.shape[0]} examples does not split into "
                             f"PacGAN packs of pack={pack}.")
        return real

    def discriminator_loss(nets: Networks, batch, rng):
        real = real_data(batch)
        z_rng, gp_rng = jax.random.split(rng)
        # No stop_gradient on the fakes: the step rules differentiate this loss with
        # respect to D's params only, and the unrolled generator loss (jgan.core.unrolled)
        # needs the gradient of D's update with respect to G's params through them.
        fake = nets(GENERATOR, sample_latent(z_rng, real.shape[0], latent_dim))
        real_logits = nets(DISCRIMINATOR, real)
        fake_logits = nets(DISCRIMINATOR, fake)
        loss = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                         loss_type=loss_type)
        metrics = discriminator_metrics(real_logits, fake_logits, loss_type=loss_type)
        critic = lambda x: nets(DISCRIMINATOR, x, update_collections=False)
        penalty_real, penalty_fake = real, fake
        if pack > 1:
            # D's examples are packs: penalize the gradient with respect to a whole pack.
            critic = lambda p: nets(DISCRIMINATOR, unpack_samples(p, pack),
                                    update_collections=False)
            penalty_real, penalty_fake = pack_samples(real, pack), pack_samples(fake, pack)
        return add_penalties(loss, metrics, critic=critic, real=penalty_real,
                             fake=penalty_fake, rng=gp_rng, settings=penalty_settings)

    def generator_loss(nets: Networks, batch, rng):
        batch_size = real_data(batch).shape[0]
        fake_logits = nets(DISCRIMINATOR, nets(GENERATOR, sample_latent(rng, batch_size, latent_dim)))
        return losses.generator_loss(fake_logits=fake_logits, loss_type=loss_type), {}

    def example_inputs(batch):
        return {GENERATOR: (jnp.zeros((1, latent_dim), jnp.float32),),
                DISCRIMINATOR: (jnp.zeros((pack,) + batch_data(batch).shape[1:], jnp.float32),)}

    return gan_game(generator_team={GENERATOR: generator},
                discriminator_team={DISCRIMINATOR: discriminator},
                generator_loss=generator_loss, discriminator_loss=discriminator_loss,
                generator_optimizer=generator_optimizer,
                discriminator_optimizer=discriminator_optimizer,
                    example_inputs=example_inputs, ema_decay=ema_decay)


def _game_from_config(config: ml_collections.ConfigDict, **common) -> Game:
    g = config.game
    return adversarial_game(latent_dim=config.model.latent_dim, pack=g.pack,
                            r2_gamma=g.r2_gamma,
                            gradient_penalty_one_sided=g.gradient_penalty_one_sided, **common)


def gan_inputs(config: ml_collections.ConfigDict, family: str,
               kind: str = "latent") -> GeneratorInputs:
    """The `GeneratorInputs` of a GAN family's run: z, with labels for `kind="labels"`."""
    return GeneratorInputs(family=family, latent_dim=config.model.latent_dim,
                           num_classes=config.model.num_classes, kind=kind)


FAMILY = register(gan_family(
    name="gan", build_networks=unconditional_networks, build_game=_game_from_config,
    generator_inputs=lambda config: gan_inputs(config, "gan"),
    reads=("game.r2_gamma", "game.gradient_penalty_one_sided"),
    takes_pack_and_unroll=True, sets_discriminator_width=True))
