"""The family registry (jgan.families.registry): a family plugs in by registering itself,
and the builders find it by `config.family` without naming it."""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import pytest

from jgan.errors import ConfigError
from jgan.families import registry
from jgan.train import builders
from tests.helpers import load_config


def test_the_shipped_families_are_registered():
    assert registry.family_names() == ("gan", "conditional", "acgan", "infogan")


def test_an_unregistered_family_is_a_named_error():
    config = load_config("mixture", "ring,minimax,runlocal")
    config.family = "vae"
    with pytest.raises(ConfigError, match=r"config\.family: 'vae' is not one of \('gan', "):
        builders.validate(config)
    with pytest.raises(ConfigError, match="'vae'"):
        builders.build_game(config)


def test_a_registered_family_is_built_without_touching_the_builders(monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    gan = registry.get_family("gan")
    built = []
    plugin = registry.register(dataclasses.replace(
        gan, name="plugin", takes_pack_and_unroll=False,
        build_game=lambda config, **common: built.append(sorted(common)) or gan.build_game(
            config, **common)))
    with pytest.raises(ValueError, match="'plugin' is already registered"):
        registry.register(dataclasses.replace(plugin))
    config = load_config("mixture", "ring,minimax,runlocal")
    config.family = "plugin"
    config.game.r2_gamma = 1.0   # read by "gan", and so by the plugin made from it
    builders.validate(config)
    game = builders.build_game(config)
    assert built == [["discriminator", "discriminator_optimizer", "ema_decay", "generator",
                      "generator_optimizer", "gradient_penalty_weight", "loss_type", "r1_gamma"]]
    assert list(game.teams) == ["discriminator", "generator"]
    jax.eval_shape(game.init, jax.random.key(0), {"image": jnp.zeros((4, 2))})
    config.game.pack = 2   # the plugin does not take PacGAN packs
    with pytest.raises(ConfigError, match="the plugin family takes neither game.pack"):
        builders.validate(config)
