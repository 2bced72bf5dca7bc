"""The registry of model families: what the trainer, sampler and evaluator know of one.

A family registers itself, in its own module, with a `Family`: how it checks and reads
its config keys, which networks and game it builds, and what its generator takes. The
training, sampling and evaluation code looks a family up by `config.family` and names
none.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ml_collections

from jgan.core.game import Game
from jgan.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family, as a run sees it.

    Attributes:
      name: the value of `config.family` that selects it.
      build_networks: `config -> (generator, discriminator)` modules.
      build_game: `(config, *, generator, discriminator, loss_type,
        gradient_penalty_weight, r1_gamma, ema_decay, generator_optimizer,
        discriminator_optimizer) -> Game`: the keyword arguments are what every family
        reads the same way; the family adds its own keys from `config`.
      generator_inputs: `config -> jgan.families.sampling.GeneratorInputs`.
      validate: `config -> None`, raising `ConfigError` naming a key of the family.
      reads: the family-only config keys it reads (`jgan.train.builders` refuses them,
        when set, in families that would ignore them).
      noise_distributions: the `model.noise_distribution` values its generator takes.
      takes_pack_and_unroll: whether it takes `game.pack` and `game.unroll_steps`.
      sets_discriminator_width: whether `model.discriminator_width` sets its
        discriminator's width.
    """
    name: str
    build_networks: Callable[[ml_collections.ConfigDict], tuple]
    build_game: Callable[..., Game]
    generator_inputs: Callable[[ml_collections.ConfigDict], object]
    validate: Callable[[ml_collections.ConfigDict], None] = lambda config: None
    reads: tuple[str, ...] = ()
    noise_distributions: tuple[str, ...] = ("normal",)
    takes_pack_and_unroll: bool = False
    sets_discriminator_width: bool = False


_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Adds `family` to the registry; a second family of the same name is an error."""
    if family.name in _FAMILIES and _FAMILIES[family.name] is not family:
        raise ValueError(f"A family named {family.name!r} is already registered.")
    _FAMILIES[family.name] = family
    return family


def family_names() -> tuple[str, ...]:
    """The registered families' names, in registration order."""
    return tuple(_FAMILIES)


def get_family(name: str) -> Family:
    """The family registered as `name`.

    Raises:
      ConfigError: no family has that name (names `config.family` and the registered ones).
    """
    if name not in _FAMILIES:
        raise ConfigError(f"config.family: {name!r} is not one of {family_names()}.")
    return _FAMILIES[name]


def family_only_keys() -> dict[str, tuple[str, ...]]:
    """`{config key: names of the families that read it}` over every family's `reads`."""
    keys = dict.fromkeys(key for family in _FAMILIES.values() for key in family.reads)
    return {key: tuple(name for name, family in _FAMILIES.items() if key in family.reads)
            for key in keys}
