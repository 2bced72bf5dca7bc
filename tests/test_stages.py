"""Runs in stages (jgan.core.stages): which stage a step is in, carrying networks by name
into the next stage's game, and exact resume across a stage boundary."""
from __future__ import annotations

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
import pytest

from jgan.core.game import Game, Team
from jgan.core.stages import Stage, carry_state, stage_at
from jgan.core.steps import make_step
from jgan.checkpoints import RunCheckpoints


class Layers(nn.Module):
    """Dense layers named "layer_0", "layer_1", ...: a grown network keeps the old names."""
    widths: tuple = (4,)

    @nn.compact
    def __call__(self, x):
        for i, w in enumerate(self.widths):
            x = nn.Dense(w, name=f"layer_{i}")(x)
        return x


def mse(a, b):
    return jnp.mean((a - b) ** 2)


def pretrain_game():
    """One team: encoder + head regress y from x."""
    def loss(nets, batch, rng):
        return mse(nets("head", nets("encoder", batch["x"])), batch["y"]), {}
    return Game(teams={"classifier": Team(networks={"encoder": Layers((4,)), "head": Layers((1,))},
                                          loss=loss, optimizer=optax.adam(1e-2))},
                example_inputs=lambda b: {"encoder": (b["x"],), "head": (jnp.zeros((1, 4)),)})


def adapt_game(encoder_widths=(4,)):
    """Two teams: a critic of the features, and the encoder (with EMA) that fools it."""
    def critic_loss(nets, batch, rng):
        return jnp.mean(nets("critic", nets("encoder", batch["x"])) ** 2), {}

    def encoder_loss(nets, batch, rng):
        return -jnp.mean(nets("critic", nets("encoder", batch["x"]))), {}
    return Game(teams={
        "critic": Team(networks={"critic": Layers((1,))}, loss=critic_loss, optimizer=optax.sgd(0.1)),
        "adapter": Team(networks={"encoder": Layers(encoder_widths)}, loss=encoder_loss,
                        optimizer=optax.adam(1e-3), ema_decay=0.9)},
        example_inputs=lambda b: {"encoder": (b["x"],), "critic": (jnp.zeros((1, encoder_widths[-1])),)})


def batch_at(t):
    x = jax.random.normal(jax.random.key(t), (8, 3))
    return {"x": x, "y": jnp.sum(x, axis=1, keepdims=True)}


STAGES = (Stage("pretrain", pretrain_game(), num_steps=3),
          Stage("adapt", adapt_game(), num_steps=4, update_rule="simultaneous"))


STEPS = [jax.jit(make_step(s.game, update_rule=s.update_rule)) for s in STAGES]  # compiled once


def run(state, start, stop, stages=STAGES, steps=STEPS):
    """Steps `start`..`stop` of the staged run, starting a stage at its boundary."""
    for t in range(start, stop):
        index, done = stage_at(stages, t)
        if done == 0 and index > 0:
            fresh = stages[index].game.init(jax.random.key(index), batch_at(t))
            state = carry_state(state, fresh, previous_game=stages[index - 1].game)
        state, _ = steps[index](state, batch_at(t))
    return state


def test_stage_at_puts_a_boundary_step_in_the_next_stage():
    assert [stage_at(STAGES, t) for t in range(8)] == [
        (0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (1, 3), (1, 4)]
    with pytest.raises(ValueError, match="outside the run's 7 steps.*pretrain: 3"):
        stage_at(STAGES, 8)


def test_carry_state_copies_networks_by_name_and_starts_optimizers_fresh():
    pre = run(STAGES[0].game.init(jax.random.key(0), batch_at(0)), 0, 3)
    fresh = adapt_game().init(jax.random.key(1), batch_at(3))
    state = carry_state(pre, fresh, previous_game=STAGES[0].game)
    encoder = pre.teams["classifier"].params["encoder"]
    chex.assert_trees_all_equal(state.teams["adapter"].params["encoder"], encoder)
    chex.assert_trees_all_equal(state.ema["adapter"]["encoder"], encoder)   # EMA starts there
    chex.assert_trees_all_equal(state.teams["critic"], fresh.teams["critic"])
    chex.assert_trees_all_equal(state.teams["adapter"].opt_state, fresh.teams["adapter"].opt_state)
    assert int(state.step) == 3
    chex.assert_trees_all_equal(jax.random.key_data(state.rng), jax.random.key_data(pre.rng))


def test_a_grown_network_keeps_its_old_layers_and_starts_new_ones():
    pre = run(STAGES[0].game.init(jax.random.key(0), batch_at(0)), 0, 3)
    fresh = adapt_game(encoder_widths=(4, 6)).init(jax.random.key(1), batch_at(3))
    state = carry_state(pre, fresh, previous_game=STAGES[0].game)
    grown = state.teams["adapter"].params["encoder"]
    chex.assert_trees_all_equal(grown["layer_0"], pre.teams["classifier"].params["encoder"]["layer_0"])
    chex.assert_trees_all_equal(grown["layer_1"], fresh.teams["adapter"].params["encoder"]["layer_1"])


def test_a_layer_that_changed_shape_is_a_named_error():
    pre = STAGES[0].game.init(jax.random.key(0), batch_at(0))
    fresh = adapt_game(encoder_widths=(5,)).init(jax.random.key(1), batch_at(3))
    with pytest.raises(ValueError, match=r"encoder\['layer_0'\]\['bias'\].*float32\[4\].*float32\[5\]"):
        carry_state(pre, fresh, previous_game=STAGES[0].game)


@pytest.mark.parametrize("stop_at", [3, 5])   # at the boundary, and inside the second stage
def test_resume_across_a_stage_boundary_is_exact(tmp_path, stop_at):
    init = STAGES[0].game.init(jax.random.key(0), batch_at(0))
    straight = run(init, 0, 7)
    first = run(init, 0, stop_at)
    ckpts = RunCheckpoints(tmp_path)
    ckpts.save(stop_at, first, {"kind": "test"})
    ckpts.wait()
    # The checkpoint's step says which stage's game to restore it into.
    index, done = stage_at(STAGES, stop_at)
    game = STAGES[index - 1 if done == 0 else index].game
    abstract = jax.eval_shape(game.init, jax.random.key(0), batch_at(0))
    restored = ckpts.restore_state(stop_at, abstract)
    ckpts.close()
    resumed = run(restored, stop_at, 7)
    chex.assert_trees_all_equal(resumed, straight)


def test_carry_from_starts_a_network_from_another_ones_weights_in_its_own_buffers():
    pre = run(STAGES[0].game.init(jax.random.key(0), batch_at(0)), 0, 3)
    fresh = adapt_game().init(jax.random.key(1), batch_at(3))
    # The critic (a fresh network) starts from the trained head's weights instead.
    head = pre.teams["classifier"].params["head"]   # Layers((1,)) on 4 features, as the critic
    state = carry_state(pre, fresh, previous_game=STAGES[0].game, carry_from={"critic": "head"})
    chex.assert_trees_all_equal(state.teams["critic"].params["critic"], head)
    assert all(a is not b for a, b in zip(jax.tree.leaves(state.teams["critic"].params),
                                          jax.tree.leaves(head)))
    with pytest.raises(ValueError, match=r"carry_from names \['nowhere'\]"):
        carry_state(pre, fresh, previous_game=STAGES[0].game, carry_from={"critic": "nowhere"})
