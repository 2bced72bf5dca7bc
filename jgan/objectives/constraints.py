"""Hard constraints on parameters, as optax transformations."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def clip_weights(clip_value: float) -> optax.GradientTransformation:
    """Weight clipping of the original WGAN critic (Arjovsky et al. 2017, Alg. 1).

    Chain it *last*: it turns the incoming updates u into clip(w + u, -c, c) - w, so
    that after `optax.apply_updates` every parameter lies in [-c, c]:
    `optax.chain(optax.rmsprop(5e-5), clip_weights(0.01))`.

    Args:
      clip_value: c > 0.
    Returns:
      A transformation whose `update` requires `params`.
    """
    if clip_value <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}.")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError("clip_weights needs params: call update(updates, state, params).")
        new_updates = jax.tree.map(
            lambda u, w: jnp.clip(w + u, -clip_value, clip_value) - w, updates, params)
        return new_updates, state

    return optax.GradientTransformation(init_fn, update_fn)
