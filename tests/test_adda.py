"""ADDA (`jgan.families.adda`): stage 2 starts the target encoder from the source
encoder, never changes the source encoder or the classifier, and uses the inverted-label
GAN loss; the small config runs end to end."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from helpers import load_config, require_shared_tfds
from jgan.core.stages import carry_state
from jgan.core.steps import make_step
from jgan.errors import ConfigError
from jgan.families.adda import adapt_game, build_stages
from jgan.runs.load import load_run
from jgan.train import builders, trainer


def _batch(n=8):
    rng = np.random.default_rng(0)
    return {"image_a": jnp.asarray(rng.uniform(-1, 1, (n, 28, 28, 1)), jnp.float32),
            "label_a": jnp.asarray(rng.integers(0, 10, n), jnp.int32),
            "image_b": jnp.asarray(rng.uniform(-1, 1, (n, 28, 28, 1)), jnp.float32),
            "label_b": jnp.asarray(rng.integers(0, 10, n), jnp.int32)}


def _adapt_start():
    config = load_config("adda", "runlocal")
    pretrain, adapt = build_stages(config)
    batch = _batch()
    state = jax.jit(make_step(pretrain.game))(pretrain.game.init(jax.random.key(0), batch),
                                              batch)[0]
    fresh = adapt.game.init(jax.random.key(1), batch)
    return config, adapt, carry_state(state, fresh, previous_game=pretrain.game,
                                      carry_from=adapt.carry_from), state, batch


def test_the_target_encoder_starts_as_the_trained_source_encoder():
    _, adapt, start, pretrained, _ = _adapt_start()
    source = pretrained.teams["source"].params["encoder_source"]
    chex.assert_trees_all_equal(start.teams["target_encoder"].params["encoder_target"], source)
    chex.assert_trees_all_equal(start.teams["source"].params["encoder_source"], source)
    chex.assert_trees_all_equal(start.teams["source"].params["classifier"],
                                pretrained.teams["source"].params["classifier"])


def test_adaptation_never_changes_the_source_encoder_or_the_classifier():
    _, adapt, state, _, batch = _adapt_start()
    before = jax.device_get(state.teams["source"].params)
    target_before = jax.device_get(state.teams["target_encoder"].params)
    step = jax.jit(make_step(adapt.game))
    for _ in range(3):
        state, metrics = step(state, batch)
    chex.assert_trees_all_equal(jax.device_get(state.teams["source"].params), before)
    changed = jax.tree.map(lambda a, b: not np.array_equal(a, b), target_before,
                           jax.device_get(state.teams["target_encoder"].params))
    assert all(jax.tree.leaves(changed))
    assert float(metrics["frozen_loss"]) == 0.0


def test_the_target_encoder_minimizes_the_inverted_label_loss():
    config, adapt, state, _, batch = _adapt_start()
    game, key = adapt.game, jax.random.key(2)

    def losses(state):
        nets = game.bind(state, train=True, rng=key)
        loss, _ = game.teams["target_encoder"].loss(nets, batch, key)
        nets = game.bind(state, train=True, rng=key)
        logits = nets("discriminator", nets("encoder_target", batch["image_b"]))
        return loss, jnp.mean(jax.nn.softplus(-logits))   # -log D(M_t(x_t))
    loss, reference = jax.jit(losses)(state)
    np.testing.assert_allclose(loss, reference, rtol=1e-6)


def test_steps_must_add_up():
    config = load_config("adda", "runlocal")
    config.num_steps = 5
    with pytest.raises(ConfigError, match=r"num_steps: 5 is not adda.pretrain_steps"):
        builders.validate(config)


def test_the_small_config_trains_in_two_stages(tmp_path):
    config = load_config("adda", "runlocal")
    config.data.data_dir = require_shared_tfds()
    result = trainer.train_and_evaluate(config, tmp_path)
    family = result["family_metrics"]
    assert {"source_accuracy", "target_accuracy", "source_only_accuracy"} <= set(family)
    assert family["num_examples_b"] == 64 and 0 <= family["target_accuracy"] <= 1
    _, game, state = load_run(tmp_path)
    assert set(state.teams) == {"discriminator", "target_encoder", "source"}
