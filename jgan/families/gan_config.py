"""What every GAN family reads from a config the same way: its two networks, the two
teams' optimizers, the loss type, the shared penalties and EMA, and the discriminator's
updates per step. `gan_family` registers a GAN family from its game builder."""
from __future__ import annotations

from collections.abc import Callable

import ml_collections

from jgan.core.game import Game
from jgan.families.network_names import DISCRIMINATOR
from jgan.families.registry import Family
from jgan.optimizers import build_optimizer

__all__ = ["gan_family", "gan_game_arguments", "gan_repeats", "optimizer_updates_per_step"]


def optimizer_updates_per_step(game: ml_collections.ConfigDict) -> tuple[int, int]:
    """(generator, discriminator) optimizer updates per training step of `game.update_rule`:
    extragradient counts its extrapolation, alternating its `d_steps`."""
    if game.update_rule == "extragradient":
        return 2, 2
    return 1, game.d_steps if game.update_rule == "alternating" else 1


def gan_game_arguments(config: ml_collections.ConfigDict, networks: tuple) -> dict:
    """The keyword arguments every GAN family's game takes from `config`: `generator`,
    `discriminator` (the pair `networks`), `loss_type`, `gradient_penalty_weight`,
    `r1_gamma`, `ema_decay` and each team's optimizer, whose schedule counts its own
    updates over `num_steps` (`optimizer_updates_per_step`)."""
    generator, discriminator = networks
    g = config.game
    g_updates, d_updates = optimizer_updates_per_step(g)
    optimistic = g.update_rule == "optimistic"
    return dict(
        generator=generator, discriminator=discriminator, loss_type=g.loss_type,
        gradient_penalty_weight=g.gradient_penalty_weight, r1_gamma=g.r1_gamma,
        ema_decay=g.ema_decay,
        generator_optimizer=build_optimizer(config.optimizer.generator,
                                            config.num_steps * g_updates, optimistic=optimistic),
        discriminator_optimizer=build_optimizer(config.optimizer.discriminator,
                                                config.num_steps * d_updates,
                                                optimistic=optimistic))


def gan_repeats(config: ml_collections.ConfigDict) -> dict[str, int]:
    """`game.d_steps` discriminator updates per step (alternating updates)."""
    return {DISCRIMINATOR: config.game.d_steps}


def gan_family(*, name: str, build_networks: Callable, build_game: Callable[..., Game],
               **fields) -> Family:
    """A GAN family's `Family`: `build_game(config, **gan_game_arguments(config,
    build_networks(config)))` builds its game; `fields` are the other `Family` fields."""
    return Family(
        name=name, build_networks=build_networks, step_repeats=gan_repeats,
        build_game=lambda config: build_game(
            config, **gan_game_arguments(config, build_networks(config))),
        **fields)
