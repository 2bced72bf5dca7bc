"""Gradient accumulation over micro-batches (`jgan.core.accumulation`): the gradient of
the whole batch for a mean loss, per-micro-batch batch statistics with batch norm, and
less memory per step."""
from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from helpers import load_config
from jgan.core.accumulation import accumulated_gradients
from jgan.core.game import Game, Team
from jgan.core.step_parts import split_update_batches, team_gradients
from jgan.core.steps import make_step
from jgan.errors import ConfigError
from jgan.train import builders


class Regressor(nn.Module):
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x, train: bool = True):
        h = nn.Dense(16)(x)
        if self.batch_norm:
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        return nn.Dense(1)(jnp.tanh(h))[:, 0]


def _game(batch_norm=False, lr=0.1):
    def loss(nets, batch, rng):
        error = nets("f", batch["x"]) - batch["y"]
        return jnp.mean(error ** 2), {"mean_error": jnp.mean(error)}
    return Game(teams={"fit": Team(networks={"f": Regressor(batch_norm)}, loss=loss,
                                   optimizer=optax.sgd(lr))},
                example_inputs=lambda batch: {"f": (batch["x"],)})


def _batch(n=32):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    return {"x": x, "y": np.sin(x.sum(1)).astype(np.float32)}


def _grads(game, state, batch, k):
    def gradients(point, b, key):
        return team_gradients(game, point, b, key, team="fit", axis_name=None)
    return jax.jit(lambda s, b: accumulated_gradients(
        gradients, game, s, b, jax.random.key(0), team="fit", micro_batches=k))(state, batch)


@pytest.mark.parametrize("k", [2, 4, 8])
def test_accumulated_gradient_of_a_mean_loss_is_the_whole_batch_gradient(k):
    game, batch = _game(), _batch()
    state = game.init(jax.random.key(1), batch)
    whole, accumulated = _grads(game, state, batch, 1), _grads(game, state, batch, k)
    chex.assert_trees_all_close(accumulated.grads, whole.grads, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(accumulated.loss, whole.loss, rtol=1e-6)
    np.testing.assert_allclose(accumulated.metrics["mean_error"], whole.metrics["mean_error"],
                               rtol=1e-5, atol=1e-7)


def test_an_accumulating_step_is_the_whole_batch_step():
    game, batch = _game(), _batch()
    state = game.init(jax.random.key(1), batch)
    whole = jax.jit(make_step(game))(state, batch)[0]
    step = make_step(game, micro_batches=4)
    accumulated = jax.jit(chex.assert_max_traces(step, n=1))(state, batch)[0]
    chex.assert_trees_all_close(accumulated.teams, whole.teams, rtol=1e-5, atol=1e-7)


def test_batch_norm_sees_each_micro_batch_and_its_averages_advance_in_order():
    """With batch norm, the accumulated gradient is the mean of the gradients each
    micro-batch gives on its own, the running statistics after micro-batch i feeding
    micro-batch i + 1."""
    game, batch = _game(batch_norm=True), _batch()
    state = game.init(jax.random.key(1), batch)
    k = 4
    accumulated = _grads(game, state, batch, k)
    slices = split_update_batches(batch, k)
    point, grads, losses = state, [], []
    for i in range(k):
        g = team_gradients(game, point, jax.tree.map(lambda x: x[i], slices),
                           jax.random.fold_in(jax.random.key(0), i), team="fit", axis_name=None)
        point = game.with_updated(point, "fit", game.updated_params(point, "fit"), g.collections)
        grads.append(g.grads)
        losses.append(g.loss)
    chex.assert_trees_all_close(accumulated.grads,
                                jax.tree.map(lambda *g: sum(g) / k, *grads), rtol=1e-5,
                                atol=1e-7)
    chex.assert_trees_all_close(accumulated.collections, point.teams["fit"].collections,
                                rtol=1e-6)
    np.testing.assert_allclose(accumulated.loss, np.mean(losses), rtol=1e-6)
    whole = _grads(game, state, batch, 1)
    assert not np.allclose(jax.tree.leaves(whole.grads)[0], jax.tree.leaves(accumulated.grads)[0])


def test_a_batch_that_does_not_split_into_the_micro_batches_is_refused():
    game, batch = _game(), _batch(30)
    state = game.init(jax.random.key(1), batch)
    with pytest.raises(ValueError, match="does not split into 4 equal"):
        _grads(game, state, batch, 4)


def test_unsupported_rules_and_counts_are_refused():
    with pytest.raises(ValueError, match="micro_batches must be an int >= 1"):
        make_step(_game(), micro_batches=0)
    with pytest.raises(ValueError, match="update_rule='extragradient'"):
        make_step(_game(), update_rule="extragradient", micro_batches=2)
    config = load_config("dcgan_mnist")
    config.game.micro_batches = 3
    with pytest.raises(ConfigError, match="game.micro_batches: 3 must be >= 1 and divide "
                                          "batch_size 8"):
        builders.validate(config)


def _dcgan_step_memory(micro_batches, batch_size=64):
    config = load_config("dcgan_mnist")
    config.model.width = 32
    config.batch_size = batch_size
    config.game.micro_batches = micro_batches
    game = builders.build_game(config)
    batch = {"image": jnp.zeros((batch_size, 28, 28, 1)),
             "label": jnp.zeros((batch_size,), jnp.int32)}
    state = jax.eval_shape(game.init, jax.random.key(0), batch)
    compiled = jax.jit(builders.build_step(config, game)).lower(state, batch).compile()
    return compiled.memory_analysis().temp_size_in_bytes


def test_micro_batches_shrink_a_steps_working_memory():
    """XLA's memory analysis of a DCGAN step at batch 64: the activations of one
    micro-batch live at a time: about 1/k of the whole batch's (13.0, 6.5, 3.1 MB for
    k = 1, 2, 4 here)."""
    whole = _dcgan_step_memory(1)
    assert _dcgan_step_memory(2) < 0.6 * whole
    assert _dcgan_step_memory(4) < 0.3 * whole
