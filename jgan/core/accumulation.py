"""Gradient accumulation: one team update from a batch taken in k micro-batches.

A global batch that does not fit in memory is split into k micro-batches
(`split_update_batches`: micro-batch i holds examples i, i + k, i + 2k, ..., so a batch
split over devices stays split the same way); the team's loss and gradients are taken
on each in turn inside a `lax.scan` (one micro-batch's activations live at a time) and
averaged:

    g = (1/k) sum_i grad L(theta; batch_i),   L = (1/k) sum_i L(theta; batch_i).

For a loss that is a mean over examples this is the gradient of the whole batch, up to
float rounding. Batch norm is the exception: in training mode its statistics are those
of each micro-batch (of B/k examples over all devices), as if the batch were B/k, and
the running averages advance once per micro-batch, in order. Mutable collections and
extras (`Networks.update_extras`) are threaded from one micro-batch to the next, and
micro-batch i draws its noise from `fold_in(key, i)`.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jgan.core.game import Game, GameState, PyTree
from jgan.core.step_parts import TeamGradients, split_update_batches

# (point, batch, key) -> TeamGradients: one team's loss and gradients (`team_gradients`).
GradientsFn = Callable[[GameState, PyTree, jax.Array], TeamGradients]


def accumulated_gradients(gradients: GradientsFn, game: Game, state: GameState,
                          batch: PyTree, key: jax.Array, *, team: str,
                          micro_batches: int) -> TeamGradients:
    """`team`'s loss and gradients on `batch`, averaged over `micro_batches` slices.

    Args:
      gradients: one evaluation of the team's loss and gradients at a point.
      game, state: the game and the point (the team's parameters stay fixed).
      batch: pytree of `[B, ...]` arrays, B a multiple of `micro_batches`.
      key: the update's key; micro-batch i uses `fold_in(key, i)`.
      team: the team's name.
      micro_batches: k >= 1; 1 is `gradients(state, batch, key)` itself.
    Returns:
      `TeamGradients`: mean loss, gradients and metrics over the micro-batches; the
      collections and extras after the last one.
    Raises:
      ValueError: a batch leaf does not split into `micro_batches` (names the count).
    """
    if micro_batches == 1:
        return gradients(state, batch, key)
    slices = split_update_batches(batch, micro_batches)
    params = game.updated_params(state, team)

    def at(collections, extras) -> GameState:
        point = game.with_updated(state, team, params, collections)
        return point.replace(extras={**state.extras, **extras})

    def evaluate(collections, extras, i):
        micro_batch = jax.tree.map(lambda x: x[i], slices)
        return gradients(at(collections, extras), micro_batch, jax.random.fold_in(key, i))

    # Every micro-batch inside the scan (a peeled one may be scheduled beside the others,
    # holding its activations at the same time); the carry starts from the state's
    # collections and extras and from zero sums, shaped as one evaluation returns them.
    shapes = jax.eval_shape(
        lambda: gradients(state, jax.tree.map(lambda x: x[0], slices), key))
    collections = state.collections()
    start = ({net: collections[net] for net in shapes.collections},
             {name: state.extras[name] for name in shapes.extras},
             jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                          (shapes.loss, shapes.grads, shapes.metrics)))

    def body(carry, i):
        collections, extras, totals = carry
        g = evaluate(collections, extras, i)
        totals = jax.tree.map(jnp.add, totals, (g.loss, g.grads, g.metrics))
        return (g.collections, {**extras, **g.extras}, totals), None

    (collections, extras, (loss, grads, metrics)), _ = jax.lax.scan(
        body, start, jnp.arange(micro_batches))
    mean = lambda tree: jax.tree.map(lambda x: x / micro_batches, tree)  # noqa: E731
    return TeamGradients(mean(loss), mean(grads), collections, mean(metrics), extras)
