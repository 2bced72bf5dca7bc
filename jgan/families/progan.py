"""Progressive growing of GANs (Karras et al. 2018, "Progressive Growing of GANs for
Improved Quality, Stability, and Variation"): one stage per resolution, 4x4 up to
`data.resolution`.

Stage l (level l, 2^(l+2) px) trains `progan.stage_steps` steps. From stage 1 on, the
new blocks fade in over the first `progan.fade_fraction` of the stage: alpha rises
linearly from 0 to 1 (`fade_alpha`), G's output and D's input blend the new level
with the upsampled / downsampled previous one (`jgan.models.progressive`), and the
real images blend in the same way (the reference's `process_reals`): the stage's
reals are the dataset's images average-pooled to 2^(l+2) px, and during the fade
lerp(up2(down2(x)), x, alpha).

Losses (the paper's): WGAN with the gradient penalty (lambda = 10, target 1) and the
drift term epsilon_drift E[D(x)^2] (0.001) that keeps the critic's output near zero.
Networks: equalized learning rate, pixel-wise feature normalization in G, minibatch
standard deviation in D. Every level's parameters exist from the first stage, so the
state's tree is the same in every stage: `jgan.core.stages.carry_state` carries the
networks and their EMA, and each stage starts fresh Adam moments (the reference's
`reset_opt_for_new_lod`). Alpha is a function of the state's step, so a run stopped at
any step, mid-fade included, resumes exactly.

Small data sets: `progan.augment` (`jgan.families.discriminator_augmentation`) augments
every image D sees, the stage's reals and G's fakes in both losses, by DiffAugment's
policy with a fixed or ADA-tuned probability; the gradient penalty is taken on the
augmented images (those D is trained on). Off by default.
"""
from __future__ import annotations

import math

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from jgan.core.game import Game, Networks
from jgan.core.stages import Stage
from jgan.errors import require
from jgan.families.discriminator_augmentation import (Augmenter, augment_section,
                                                      validate_section)
from jgan.families.adversarial import discriminator_metrics, gan_game, sample_latent
from jgan.families.network_names import DISCRIMINATOR, GENERATOR
from jgan.families.registry import Family, register
from jgan.families.sampling import GeneratorInputs
from jgan.models.progressive import (ProgressiveDiscriminator, ProgressiveGenerator,
                                     downscale2d, upscale2d)
from jgan.objectives import losses, penalties
from jgan.optimizers import build_optimizer

TEAMS = (DISCRIMINATOR, GENERATOR)


def config_section() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.stage_steps = 2_000      # steps per resolution (the paper: 600k images fading + 600k)
    c.grow = True              # False: the same networks at full resolution from the start,
                               # one stage of num_steps (the baseline growing is measured by)
    c.fade_fraction = 0.5      # of each stage after the first: alpha 0 -> 1
    c.latent_dim = 128         # the paper: 512
    c.channel_base = 1024      # nf(s) = min(channel_base / 2^s, max_channels); paper: 8192
    c.max_channels = 128       # paper: 512
    c.mbstd_group_size = 4
    c.gradient_penalty_weight = 10.0
    c.drift_weight = 1e-3
    c.augment = augment_section()   # DiffAugment / ADA for small data sets: off
    return c


def num_levels(config: ml_collections.ConfigDict) -> int:
    """Stages of the run: levels 0 (4x4) .. log2(data.resolution) - 2."""
    return int(round(math.log2(config.data.resolution))) - 1


def _validate(config: ml_collections.ConfigDict) -> None:
    s, r = config.progan, config.data.resolution
    require(r >= 4 and 2 ** int(round(math.log2(r))) == r, "data.resolution",
            f"progressive growing doubles 4x4 up to a power of two, got {r}.")
    require(s.stage_steps >= 1 and 0.0 <= s.fade_fraction <= 1.0, "progan",
            "stage_steps must be >= 1 and fade_fraction in [0, 1].")
    total = num_levels(config) * s.stage_steps if s.grow else config.num_steps
    require(config.num_steps == total and total >= 1, "num_steps",
            f"{config.num_steps} is not {num_levels(config)} stages (4 px to {r} px) x "
            f"progan.stage_steps {s.stage_steps} = {total}.")
    group = min(s.mbstd_group_size, config.batch_size)
    require(s.mbstd_group_size <= 1 or config.batch_size % group == 0, "progan.mbstd_group_size",
            f"{s.mbstd_group_size} must divide batch_size {config.batch_size}.")
    require(sorted(config.optimizer) == sorted(TEAMS), "optimizer",
            f"progan has teams {TEAMS}; the config's optimizer sections are "
            f"{sorted(config.optimizer)}.")
    g = config.game
    require(g.d_steps == 1 and g.gradient_penalty_weight == 0 and g.r1_gamma == 0, "game",
            "progan's penalties are progan.gradient_penalty_weight and drift_weight; leave "
            "game.d_steps, gradient_penalty_weight and r1_gamma at 1, 0 and 0.")
    validate_section(s.augment, "progan.augment")
    require(not s.augment.ada, "progan.augment.ada",
            "ADA's heuristic E[sign D(x_real)] reads D's output as a logit whose sign says "
            "real or fake; ProGAN's WGAN critic has no such zero (its outputs on reals "
            "may all be negative), so p would only fall. Use DiffAugment's fixed "
            "progan.augment.probability, or ADA with stylegan.")


class AtLevel(nn.Module):
    """`network` at a fixed `level` (static): `(x, alpha=1.0) -> network(x, level, alpha)`,
    so samplers call a stage's generator as any other, `G(z)`."""
    network: nn.Module
    level: int

    def __call__(self, x: jax.Array, alpha=1.0, **kwargs) -> jax.Array:
        return self.network(x, level=self.level, alpha=alpha, **kwargs)


def build_networks(config: ml_collections.ConfigDict, level: int) -> tuple[AtLevel, AtLevel]:
    s, d = config.progan, config.data
    common = dict(resolution=d.resolution, channels=d.channels, channel_base=s.channel_base,
                  max_channels=s.max_channels)
    return (AtLevel(ProgressiveGenerator(latent_dim=s.latent_dim, **common), level),
            AtLevel(ProgressiveDiscriminator(mbstd_group_size=s.mbstd_group_size, **common),
                    level))


def fade_alpha(step: jax.Array, *, start: int, fade_steps: int) -> jax.Array:
    """alpha = clip((step - start) / fade_steps, 0, 1) (1 when fade_steps is 0): the
    new level's weight at the state's `step`, in a stage that starts at `start`."""
    if fade_steps == 0:
        return jnp.ones((), jnp.float32)
    return jnp.clip((step - start).astype(jnp.float32) / fade_steps, 0.0, 1.0)


def stage_reals(images: jax.Array, *, level: int, num_levels: int, alpha) -> jax.Array:
    """The dataset's images `[B, R, R, C]` as stage `level` shows them to D:
    average-pooled to 2^(level+2) px, then lerp(up2(down2(x)), x, alpha)."""
    for _ in range(num_levels - 1 - level):
        images = downscale2d(images)
    if level == 0:
        return images
    return alpha * images + (1.0 - alpha) * upscale2d(downscale2d(images))


def stage_game(config: ml_collections.ConfigDict, level: int) -> Game:
    """The game of stage `level`, which starts at step level * stage_steps (without
    growing: the top level from step 0, no fade); metrics `d_loss` (Wasserstein +
    penalties), `d_gp`, `d_drift`, `d_alpha`, D's mean outputs, `g_loss`."""
    s, levels = config.progan, num_levels(config)
    start = level * s.stage_steps if s.grow else 0
    fade_steps = (0 if level == 0 or not s.grow
                  else int(round(s.fade_fraction * s.stage_steps)))
    generator, discriminator = build_networks(config, level)
    augment = Augmenter(s.augment, batch_size=config.batch_size)

    def alpha(nets: Networks) -> jax.Array:
        return fade_alpha(nets.step, start=start, fade_steps=fade_steps)

    def d_loss(nets: Networks, batch, rng):
        a = alpha(nets)
        real = stage_reals(batch["image"], level=level, num_levels=levels, alpha=a)
        z_rng, gp_rng = jax.random.split(rng)
        fake = nets(GENERATOR, sample_latent(z_rng, real.shape[0], s.latent_dim), a)
        real = augment(nets, real, jax.random.fold_in(rng, 2))
        fake = augment(nets, fake, jax.random.fold_in(rng, 3))
        real_logits, fake_logits = nets(DISCRIMINATOR, real, a), nets(DISCRIMINATOR, fake, a)
        wasserstein = losses.discriminator_loss(real_logits=real_logits, fake_logits=fake_logits,
                                                loss_type="wasserstein")
        gp = penalties.gradient_penalty(
            lambda x: nets(DISCRIMINATOR, x, a, update_collections=False),
            real=real, fake=fake, rng=gp_rng)
        drift = jnp.mean(jnp.square(real_logits))
        metrics = {**discriminator_metrics(real_logits, fake_logits, loss_type="wasserstein"),
                   "d_gp": gp, "d_drift": drift, "d_alpha": a,
                   **augment.observe(nets, real_logits)}
        return wasserstein + s.gradient_penalty_weight * gp + s.drift_weight * drift, metrics

    def g_loss(nets: Networks, batch, rng):
        a = alpha(nets)
        fake = nets(GENERATOR, sample_latent(rng, batch["image"].shape[0], s.latent_dim), a)
        fake = augment(nets, fake, jax.random.fold_in(rng, 1))
        return losses.generator_loss(fake_logits=nets(DISCRIMINATOR, fake, a),
                                     loss_type="wasserstein"), {}

    def example_inputs(batch):
        size = 2 ** (level + 2)
        image = jnp.zeros((1, size, size, batch["image"].shape[-1]), jnp.float32)
        return {GENERATOR: (jnp.zeros((1, s.latent_dim), jnp.float32),),
                DISCRIMINATOR: (image,)}

    game = gan_game(generator_team={GENERATOR: generator},
                    discriminator_team={DISCRIMINATOR: discriminator},
                    generator_loss=g_loss, discriminator_loss=d_loss,
                    generator_optimizer=build_optimizer(config.optimizer[GENERATOR],
                                                        s.stage_steps),
                    discriminator_optimizer=build_optimizer(config.optimizer[DISCRIMINATOR],
                                                            s.stage_steps),
                    example_inputs=example_inputs, ema_decay=config.game.ema_decay)
    if not augment.init_extras():
        return game
    return dataclasses.replace(game, init_extras=lambda batch: augment.init_extras())


def build_stages(config: ml_collections.ConfigDict) -> tuple[Stage, ...]:
    top = num_levels(config) - 1
    if not config.progan.grow:
        return (Stage(name=f"{2 ** (top + 2)}px", game=stage_game(config, top),
                      num_steps=config.num_steps),)
    return tuple(Stage(name=f"{2 ** (level + 2)}px", game=stage_game(config, level),
                       num_steps=config.progan.stage_steps)
                 for level in range(num_levels(config)))


def _generator_inputs(config: ml_collections.ConfigDict) -> GeneratorInputs:
    # G's last layer is linear (the paper's): samples are clipped to the data's range.
    return GeneratorInputs(family="progan", latent_dim=config.progan.latent_dim,
                           to_data=lambda x: jnp.clip(x, -1.0, 1.0))


FAMILY = register(Family(
    name="progan", build_game=lambda config: stage_game(config, num_levels(config) - 1),
    generator_inputs=_generator_inputs, section=config_section, validate=_validate,
    build_stages=build_stages, own_networks=True))
