"""The pieces every update rule of the two-team game is built from.

A rule (`jgan.core.steps`, `jgan.update_rules`) takes gradients of one team at a state
(`team_gradients`), turns them into new parameters with the team's optimizer
(`apply_team_update`) and closes the step (`finish_step`: EMA, step count, metrics).
Inside `shard_map`/`pmap`, `axis_name` averages gradients and metrics over devices.
"""
from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jgan.core.game import Game, GameState, Metrics, PyTree, TeamState

TEAMS = ("generator", "discriminator")


def step_rng(state: GameState, axis_name: str | None = None) -> jax.Array:
    """The key of the current step: fold_in(rng, step), and the device index in a map."""
    key = jax.random.fold_in(state.rng, state.step)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    return key


def team_gradients(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                   team: str, axis_name: str | None,
                   look_ahead: Callable[[GameState], GameState] | None = None):
    """One team's loss and its gradients at `state`.

    Args:
      game: the static game.
      state: the point to differentiate at (its params may be tracers of an outer
        differentiation, as in the unrolled generator loss).
      batch: the batch the team's loss sees.
      rng: key of the loss (its noise, dropout).
      team: "generator" or "discriminator".
      axis_name: mapped axis to average the loss and gradients over, or None.
      look_ahead: maps the state, whose `team` params are the variables being
        differentiated, to the state the loss is evaluated at (the unrolled GAN's
        look-ahead discriminator, `jgan.core.unrolled`); None evaluates at `state` itself.
    Returns:
      `(loss, grads, collections, metrics)`: scalar loss, gradients shaped like the
      team's params, the team's collections after the loss's forward passes in training
      mode, and the loss's metrics.
    """
    if team not in TEAMS:
        raise ValueError(f"team must be one of {TEAMS}, got {team!r}.")
    team_state: TeamState = getattr(state, team)
    loss_fn = game.generator_loss if team == "generator" else game.discriminator_loss

    def objective(team_params):
        point = state.replace(**{team: team_state.replace(params=team_params)})
        if look_ahead is not None:
            point = look_ahead(point)
        nets = game.bind(point, train=True, rng=rng)
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


def apply_team_update(optimizer: optax.GradientTransformation, team_state: TeamState,
                      grads: PyTree, collections: PyTree) -> TeamState:
    """One optimizer update of a team: new params, optimizer state and collections."""
    updates, opt_state = optimizer.update(grads, team_state.opt_state, team_state.params)
    return TeamState(params=optax.apply_updates(team_state.params, updates),
                     collections=collections, opt_state=opt_state)


def team_metrics(prefix: str, loss: jax.Array, grads: PyTree, metrics: Metrics) -> Metrics:
    """`{prefix}_loss`, `{prefix}_grad_norm` (global L2 norm) and the loss's metrics."""
    out = {f"{prefix}_loss": loss, f"{prefix}_grad_norm": optax.tree.norm(grads)}
    out.update(metrics)
    return out


def finish_step(game: Game, state: GameState, generator: TeamState,
                discriminator: TeamState, metrics: Metrics,
                axis_name: str | None) -> tuple[GameState, Metrics]:
    """The new state (EMA of the generator's params, step + 1) and device-mean metrics."""
    ema = state.ema_params
    if ema is not None:
        decay = game.ema_decay
        if game.ema_warmup:
            t = state.step.astype(jnp.float32)
            decay = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
        ema = optax.incremental_update(generator.params, ema, step_size=1.0 - decay)
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
