"""Tests for jgan.objectives.constraints.clip_weights chained after real optax optimizers."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jgan.objectives.constraints import clip_weights

CLIP = 0.1


def _params():
    # Start inside the box; "out" is pulled far outside it, "in" towards a point inside.
    return {"out": jnp.array([0.05, -0.05, 0.0, 0.09], jnp.float32),
            "in": {"w": jnp.array([[0.01, -0.02], [0.03, 0.0]], jnp.float32)}}


_TARGETS = {"out": jnp.array([5.0, -5.0, 3.0, -4.0], jnp.float32),
            "in": {"w": jnp.array([[0.02, -0.01], [0.02, 0.01]], jnp.float32)}}


def _toy_loss(params):
    return sum(jnp.sum((p - t) ** 2) for p, t in zip(jax.tree.leaves(params),
                                                       jax.tree.leaves(_TARGETS)))


def _run(optimizer, params, steps):
    @jax.jit
    def step(params, opt_state):
        grads = jax.grad(_toy_loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    opt_state = optimizer.init(params)
    trajectory = [params]
    for _ in range(steps):
        params, opt_state = step(params, opt_state)
        trajectory.append(params)
    return trajectory


@pytest.mark.parametrize("make_opt", [lambda: optax.adam(0.05), lambda: optax.rmsprop(0.01),
                                      lambda: optax.sgd(0.3, momentum=0.9)])
def test_clipped_params_stay_in_box_and_unclipped_follow_the_optimizer(make_opt):
    steps = 12
    clipped = _run(optax.chain(make_opt(), clip_weights(CLIP)), _params(), steps)
    plain = _run(make_opt(), _params(), steps)
    for params in clipped:
        for leaf in jax.tree.leaves(params):
            assert np.all(np.abs(np.asarray(leaf)) <= CLIP), leaf
    # The pulled-out parameters end on the boundary, on the side of their targets.
    chex.assert_trees_all_close(clipped[-1]["out"], CLIP * jnp.sign(_TARGETS["out"]))
    # The plain optimizer did leave the box (so the clipping was exercised).
    assert np.max(np.abs(np.asarray(plain[-1]["out"]))) > CLIP
    # Parameters that never reach the boundary follow the plain optimizer exactly
    # (the optimizers are elementwise and the chain feeds the same gradients).
    for c, p in zip(clipped, plain):
        assert np.all(np.abs(np.asarray(p["in"]["w"])) < CLIP)
        chex.assert_trees_all_close(c["in"], p["in"], rtol=1e-6, atol=1e-7)


def test_clip_weights_update_is_clip_of_new_params_minus_old():
    params = {"a": jnp.array([0.5, -0.5, 0.0, 0.02]), "b": jnp.array(-0.3)}
    updates = {"a": jnp.array([0.1, -1.0, 2.0, 0.01]), "b": jnp.array(0.25)}
    tx = clip_weights(0.2)
    new_updates, _ = jax.jit(tx.update)(updates, tx.init(params), params)
    new_params = optax.apply_updates(params, new_updates)
    chex.assert_trees_all_close(new_params, {"a": jnp.array([0.2, -0.2, 0.2, 0.03]),
                                             "b": jnp.array(-0.05)}, rtol=1e-6)


def test_missing_params_raises():
    tx = optax.chain(optax.adam(1e-3), clip_weights(CLIP))
    params = _params()
    state = tx.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    with pytest.raises(ValueError, match="params"):
        tx.update(grads, state)
    with pytest.raises(ValueError, match="params"):
        jax.jit(lambda g, s: tx.update(g, s))(grads, state)


@pytest.mark.parametrize("c", [0.0, -0.01])
def test_non_positive_clip_value_raises(c):
    with pytest.raises(ValueError, match="positive"):
        clip_weights(c)
