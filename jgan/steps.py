"""Shared step functions of the two-team game: `(state, batch) -> (state, metrics)`.

Every model family reuses these; a family only supplies its `Game` (networks, losses,
optimizers). Two update rules:

* `alternating_step`: `d_steps` discriminator updates, each on its own slice of the
  batch, then one generator update against the *updated* discriminator.
* `simultaneous_step`: both teams' gradients are taken at the *same* point (the old
  state) and applied together.

Both are pure and jit-compatible. Under `jax.jit` with the batch sharded over a device
mesh they are data parallel as they stand (batch statistics span the global batch).
Inside `shard_map`/`pmap`, pass `axis_name`: gradients and metrics are then averaged
over that axis, and each device draws its own noise.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jgan.game import Game, GameState, Metrics, PyTree, TeamState

StepFn = Callable[[GameState, PyTree], tuple[GameState, Metrics]]
UPDATE_RULES = ("alternating", "simultaneous")


def step_rng(state: GameState, axis_name: str | None = None) -> jax.Array:
    """The key of the current step: fold_in(rng, step), and the device index in a map."""
    key = jax.random.fold_in(state.rng, state.step)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    return key


def _team_gradients(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                    team: str, axis_name: str | None):
    """Loss, gradients, updated collections and metrics of one team at `state`."""
    team_state: TeamState = getattr(state, team)
    loss_fn = game.generator_loss if team == "generator" else game.discriminator_loss

    def objective(team_params):
        nets = game.bind(state.replace(**{team: team_state.replace(params=team_params)}),
                         train=True, rng=rng)
        loss, metrics = loss_fn(nets, batch, rng)
        if axis_name is not None:
            # Differentiate the mean over devices. Under shard_map's replication checking
            # (check_vma=True, the default) the gradient of a per-device loss with respect
            # to replicated params comes back already *summed* over devices, which the
            # pmean of the gradients below would leave n_devices times too large; the
            # gradient of the averaged loss is the mean gradient with or without checking
            # (and under pmap).
            loss = jax.lax.pmean(loss, axis_name)
        return loss, (metrics, nets.updated_collections(team_state.params.keys()))

    (loss, (metrics, collections)), grads = jax.value_and_grad(objective, has_aux=True)(
        team_state.params)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
    return loss, grads, collections, metrics


def _apply(optimizer: optax.GradientTransformation, team_state: TeamState, grads,
           collections) -> TeamState:
    updates, opt_state = optimizer.update(grads, team_state.opt_state, team_state.params)
    return TeamState(params=optax.apply_updates(team_state.params, updates),
                     collections=collections, opt_state=opt_state)


def _prefixed(prefix: str, loss: jax.Array, grads, metrics: Metrics) -> Metrics:
    out = {f"{prefix}_loss": loss, f"{prefix}_grad_norm": optax.tree.norm(grads)}
    out.update(metrics)
    return out


def _finish(game: Game, state: GameState, generator: TeamState, discriminator: TeamState,
            metrics: Metrics, axis_name: str | None) -> tuple[GameState, Metrics]:
    ema = state.ema_params
    if ema is not None:
        ema = optax.incremental_update(generator.params, ema, step_size=1.0 - game.ema_decay)
    if axis_name is not None:
        metrics = jax.lax.pmean(metrics, axis_name)
    new_state = state.replace(generator=generator, discriminator=discriminator,
                              ema_params=ema, step=state.step + 1)
    return new_state, metrics


def split_discriminator_batches(batch: PyTree, d_steps: int) -> PyTree:
    """Splits a batch of `d_steps * B` examples into `[d_steps, B, ...]` slices.

    Slice i holds examples i, i + d_steps, i + 2 d_steps, ...: with the batch sharded
    over devices along its first axis, every slice stays sharded the same way, so no
    data moves between devices.
    """
    def split(x):
        if x.shape[0] % d_steps:
            raise ValueError(f"A batch of {x.shape[0]} examples does not split into "
                             f"d_steps={d_steps} equal discriminator batches.")
        x = x.reshape((x.shape[0] // d_steps, d_steps) + x.shape[1:])
        return jnp.moveaxis(x, 1, 0)
    return jax.tree.map(split, batch)


def alternating_step(state: GameState, batch: PyTree, *, game: Game, d_steps: int = 1,
                     axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """`d_steps` discriminator updates, then one generator update against the new D.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis `d_steps * B`; discriminator update i
        sees `split_discriminator_batches(batch, d_steps)[i]`, the generator the last.
      game: the static game.
      d_steps: discriminator updates per step (5 for WGAN-GP).
      axis_name: mapped axis to average gradients and metrics over, inside
        `shard_map`/`pmap`; None under plain `jit`.
    Returns:
      `(new_state, metrics)`: `d_*` metrics averaged over the discriminator updates,
      `g_*` from the generator update.
    """
    if d_steps < 1:
        raise ValueError(f"d_steps must be >= 1, got {d_steps}.")
    key = step_rng(state, axis_name)
    d_batches = split_discriminator_batches(batch, d_steps)

    def d_update(disc: TeamState, xs):
        d_batch, i = xs
        s = state.replace(discriminator=disc)
        loss, grads, colls, metrics = _team_gradients(
            game, s, d_batch, jax.random.fold_in(key, i), team="discriminator",
            axis_name=axis_name)
        return (_apply(game.discriminator_optimizer, disc, grads, colls),
                _prefixed("d", loss, grads, metrics))

    if d_steps == 1:
        disc, d_metrics = d_update(state.discriminator,
                                   (jax.tree.map(lambda x: x[0], d_batches), 0))
    else:
        disc, d_metrics = jax.lax.scan(d_update, state.discriminator,
                                       (d_batches, jnp.arange(d_steps)))
        d_metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), d_metrics)

    g_batch = jax.tree.map(lambda x: x[-1], d_batches)
    g_loss, g_grads, g_colls, g_metrics = _team_gradients(
        game, state.replace(discriminator=disc), g_batch, jax.random.fold_in(key, d_steps),
        team="generator", axis_name=axis_name)
    gen = _apply(game.generator_optimizer, state.generator, g_grads, g_colls)
    metrics = {**_prefixed("g", g_loss, g_grads, g_metrics), **d_metrics}
    return _finish(game, state, gen, disc, metrics, axis_name)


def simultaneous_step(state: GameState, batch: PyTree, *, game: Game,
                      axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """Both teams' gradients at the same point (the old state), applied together.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis B, seen by both losses.
      game: the static game.
      axis_name: mapped axis for `shard_map`/`pmap`, as in `alternating_step`.
    Returns:
      `(new_state, metrics)`.
    """
    key = step_rng(state, axis_name)
    d_loss, d_grads, d_colls, d_metrics = _team_gradients(
        game, state, batch, jax.random.fold_in(key, 0), team="discriminator",
        axis_name=axis_name)
    g_loss, g_grads, g_colls, g_metrics = _team_gradients(
        game, state, batch, jax.random.fold_in(key, 1), team="generator",
        axis_name=axis_name)
    disc = _apply(game.discriminator_optimizer, state.discriminator, d_grads, d_colls)
    gen = _apply(game.generator_optimizer, state.generator, g_grads, g_colls)
    metrics = {**_prefixed("g", g_loss, g_grads, g_metrics),
               **_prefixed("d", d_loss, d_grads, d_metrics)}
    return _finish(game, state, gen, disc, metrics, axis_name)


def make_step(game: Game, *, update_rule: str = "alternating", d_steps: int = 1,
              axis_name: str | None = None) -> StepFn:
    """The step function `(state, batch) -> (state, metrics)` for `update_rule`.

    Not jitted: wrap it in `jax.jit` (with shardings) or `shard_map` as needed.
    """
    if update_rule == "alternating":
        return functools.partial(alternating_step, game=game, d_steps=d_steps,
                                 axis_name=axis_name)
    if update_rule == "simultaneous":
        if d_steps != 1:
            raise ValueError("simultaneous updates take one discriminator step; "
                             f"got d_steps={d_steps}.")
        return functools.partial(simultaneous_step, game=game, axis_name=axis_name)
    raise ValueError(f"Unknown update_rule {update_rule!r}; expected one of {UPDATE_RULES}.")
