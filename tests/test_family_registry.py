"""The family registry (jgan.families.registry): a family plugs in by registering itself,
and the builders find it by `config.family` without naming it."""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import pytest

from jgan.core.game import Game, Team
from jgan.errors import ConfigError, require
from jgan.families import registry
from jgan.optimizers import build_optimizer
from jgan.train import builders
from tests.helpers import load_config


def test_the_shipped_families_are_registered():
    assert registry.family_names() == ("gan", "conditional", "acgan", "infogan",
                                       "autoencoder", "vae", "aae", "bigan", "vaegan",
                                       "pix2pix", "cyclegan", "adda", "stargan", "progan",
                                       "stylegan")


def test_an_unregistered_family_is_a_named_error():
    config = load_config("mixture", "ring,minimax,runlocal")
    config.family = "flow"
    with pytest.raises(ConfigError, match=r"config\.family: 'flow' is not one of \('gan', "):
        builders.validate(config)
    with pytest.raises(ConfigError, match="'flow'"):
        builders.build_game(config)


def _fitter_section():
    section = ml_collections.ConfigDict()
    section.target = 3.0
    return section


def _fitter_game(config):
    """One team whose network learns to output `config.fitter.target`."""
    def loss(nets, batch, rng):
        del rng
        error = nets("regressor", batch["image"]) - config.fitter.target
        return jnp.mean(error ** 2), {}
    team = Team(networks={"regressor": nn.Dense(1)}, loss=loss,
                optimizer=build_optimizer(config.optimizer.fitter, config.num_steps),
                metrics_prefix="fit")
    return Game(teams={"fitter": team},
                example_inputs=lambda batch: {"regressor": (batch["image"][:1],)})


def test_a_registered_family_is_built_without_touching_the_builders(monkeypatch):
    monkeypatch.setattr(registry, "_FAMILIES", dict(registry._FAMILIES))
    gan = registry.get_family("gan")
    plugin = registry.register(registry.Family(
        name="fitter", build_game=_fitter_game, generator_inputs=gan.generator_inputs,
        section=_fitter_section,
        validate=lambda config: require(config.fitter.target != 0, "fitter.target",
                                        "must not be 0.")))
    with pytest.raises(ValueError, match="'fitter' is already registered"):
        registry.register(dataclasses.replace(plugin))
    config = load_config("mixture", "ring,minimax,runlocal")
    config.family = "fitter"
    with pytest.raises(ConfigError, match=r"config\.fitter: missing"):
        builders.validate(config)
    registry.add_section(config)
    config.optimizer = ml_collections.ConfigDict({"fitter": config.optimizer.generator})
    config.optimizer.fitter.learning_rate = 0.1
    builders.validate(config)
    game = builders.build_game(config)
    assert list(game.teams) == ["fitter"]
    step = jax.jit(builders.build_step(config, game))
    batch = {"image": jnp.ones((4, 2))}
    state = game.init(jax.random.key(0), batch)
    for _ in range(300):
        state, metrics = step(state, batch)
    assert float(metrics["fit_loss"]) < 1e-4
    config.fitter.target = 0.0
    with pytest.raises(ConfigError, match=r"config\.fitter\.target: must not be 0"):
        builders.validate(config)
    config.fitter.target = 3.0
    config.game.pack = 2   # the fitter does not take PacGAN packs
    with pytest.raises(ConfigError, match="the fitter family takes neither game.pack"):
        builders.validate(config)
