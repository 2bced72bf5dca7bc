"""The registry of model families: what the trainer, sampler and evaluator know of one.

A family registers itself, in its own module, with a `Family`: how it checks and reads
its config keys, which networks and game it builds, and what its generator takes. The
training, sampling and evaluation code looks a family up by `config.family` and names
none.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import ml_collections

from jgan.core.game import Game
from jgan.core.stages import Stage
from jgan.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family, as a run sees it.

    Attributes:
      name: the value of `config.family` that selects it.
      build_game: `config -> Game`, its teams' networks, losses and optimizers
        (`optimizer.<team>`) from the config.
      generator_inputs: `config -> jgan.families.sampling.GeneratorInputs`: what its
        sampling network takes, and its sample grids; None for a family that draws
        nothing from noise (an autoencoder: `jgan.sample` refuses its runs).
      section: `() -> ConfigDict`, the defaults of its own config section
        `config.<name>` (None: it has none); a run's config holds the section of its
        family and of no other.
      validate: `config -> None`, raising `ConfigError` naming a key of the family.
      step_repeats: `config -> {team: updates per step}` for alternating updates
        (`jgan.core.steps.make_step`'s `repeats`).
      build_stages: `config -> (Stage, ...)` for a family that trains in stages (pretrain,
        then adapt; grow 4 px, 8 px, ...), whose steps sum to `num_steps`; None: one
        stage of `build_game`'s game with `game.update_rule` and `step_repeats`.
      build_networks: the GAN families' `config -> (generator, discriminator)`
        modules (None for a family without that pair).
      reads: the config keys outside its section that only some families read (a
        `game.*` penalty, say); `jgan.train.builders` refuses them, when set, in
        families that would ignore them.
      noise_distributions: the `model.noise_distribution` values its generator takes.
      takes_pack_and_unroll: whether it takes `game.pack` and `game.unroll_steps`.
      sets_discriminator_width: whether `model.discriminator_width` sets its
        discriminator's width.
      sample_grids: `(config, game) -> grids` or None, where `grids(state) ->
        {name: (images [N, H, W, C] in [-1, 1], columns)}` are the image grids the
        trainer writes at every `sample_every` instead of the generator's square grid
        ("samples" as `samples/step_STEP.png`, any other NAME as
        `samples/NAME_step_STEP.png`); None (the hook, or what it returns for a
        config): the generator's grid, or the scatter plot of mixture data.
      evaluation: `(config, game) -> evaluate` or None, where `evaluate(state) -> dict`
        (JSON-able) is the family's own evaluation of the final state, written to
        eval.json's "family_metrics" by the trainer and by `jgan.evaluate`.
      translate: `(config, game, direction) -> fn` or None, for a family that maps
        images to images: `fn(state, images [N, H, W, C] in [-1, 1]) -> [rows]`, the
        outputs to show beside the inputs (a translation, and where the family has one
        the way back); `direction` is "a2b" or "b2a". `jgan.sample --input` uses it.
      own_networks: whether its networks come from its own section only (`config.model`'s
        DCGAN checks do not apply).
      input_kind: "images" (batches of one image dataset or a mixture) or
        "domain_pairs" (batches of two domains, `data.kind = "translation"`:
        `jgan.train.input.TwoDomainInput`).
    """
    name: str
    build_game: Callable[[ml_collections.ConfigDict], Game]
    generator_inputs: Callable[[ml_collections.ConfigDict], object] | None
    section: Callable[[], ml_collections.ConfigDict] | None = None
    validate: Callable[[ml_collections.ConfigDict], None] = lambda config: None
    step_repeats: Callable[[ml_collections.ConfigDict], Mapping[str, int]] = (
        lambda config: {})
    build_stages: Callable[[ml_collections.ConfigDict], tuple[Stage, ...]] | None = None
    build_networks: Callable[[ml_collections.ConfigDict], tuple] | None = None
    reads: tuple[str, ...] = ()
    noise_distributions: tuple[str, ...] = ("normal",)
    takes_pack_and_unroll: bool = False
    sets_discriminator_width: bool = False
    sample_grids: Callable[[ml_collections.ConfigDict, Game], Callable | None] | None = None
    evaluation: Callable[[ml_collections.ConfigDict, Game], Callable | None] | None = None
    translate: Callable[[ml_collections.ConfigDict, Game, str], Callable] | None = None
    input_kind: str = "images"
    own_networks: bool = False


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


def add_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """`config` with its family's section `config.<family>` at its defaults, when the
    family has one and the config does not hold it yet (for config files)."""
    family = get_family(config.family)
    if family.section is not None and family.name not in config:
        config[family.name] = family.section()
    return config


def check_sections(config: ml_collections.ConfigDict) -> None:
    """The config holds its family's section, with exactly its keys, and no other
    family's section.

    Raises:
      ConfigError: names the section or key at fault.
    """
    family = get_family(config.family)
    for name in family_names():
        if name != family.name and name in config:
            raise ConfigError(f"config.{name}: is the {name} family's section; family "
                              f"{family.name!r} would ignore it (remove it).")
    if family.section is None:
        return
    if family.name not in config:
        raise ConfigError(f"config.{family.name}: missing; the {family.name} family reads "
                          "its keys from this section (jgan.families.registry.add_section "
                          "adds it with its defaults).")
    expected, given = set(family.section().keys()), set(config[family.name].keys())
    for key in sorted(given - expected):
        raise ConfigError(f"config.{family.name}.{key}: not a key of the {family.name} "
                          f"family (its keys: {sorted(expected)}).")
    for key in sorted(expected - given):
        raise ConfigError(f"config.{family.name}.{key}: missing from the section.")
