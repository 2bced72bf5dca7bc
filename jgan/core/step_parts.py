"""The pieces every update rule is built from.

A rule (`jgan.core.steps`, `jgan.core.extragradient`) takes one team's gradients at a
state (`team_gradients`), turns them into new parameters with the team's optimizer
(`apply_team_update`) and closes the step (`finish_step`: EMA, extras, step count,
metrics). Inside `shard_map`/`pmap`, `axis_name` averages gradients and metrics over
devices.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jgan.core.game import Game, GameState, Metrics, PyTree, TeamState
from jgan.precision import loss_scale_of, scale_loss, unscale_grads


class TeamGradients(NamedTuple):
    """One evaluation of a team's loss and its gradients.

    Attributes:
      loss: scalar loss.
      grads: gradients shaped like the team's params.
      collections: the team's mutable collections after the loss's forward passes in
        training mode.
      metrics: the loss's metrics.
      extras: the extras entries the loss replaced (`Networks.update_extras`).
    """
    loss: jax.Array
    grads: PyTree
    collections: PyTree
    metrics: Metrics
    extras: dict


def step_rng(state: GameState, axis_name: str | None = None) -> jax.Array:
    """The key of the current step: fold_in(rng, step), and the device index in a map."""
    key = jax.random.fold_in(state.rng, state.step)
    if axis_name is not None:
        key = jax.random.fold_in(key, jax.lax.axis_index(axis_name))
    return key


def team_gradients(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                   team: str, axis_name: str | None,
                   look_ahead: Callable[[GameState], GameState] | None = None) -> TeamGradients:
    """One team's loss and its gradients at `state`.

    Args:
      game: the static game.
      state: the point to differentiate at (its params may be tracers of an outer
        differentiation, as in the unrolled loss).
      batch: the batch the team's loss sees.
      rng: key of the loss (its noise, dropout).
      team: the team's name.
      axis_name: mapped axis to average the loss and gradients over, or None.
      look_ahead: maps the state, whose `team` params are the variables being
        differentiated, to the state the loss is evaluated at (the unrolled GAN's
        look-ahead adversary, `jgan.core.unrolled`); None evaluates at `state` itself.
    Returns:
      `TeamGradients`. A team whose optimizer scales its loss (float16 networks,
      `jgan.precision.loss_scaling`) differentiates the loss times the scale in its
      optimizer state; the gradients returned are unscaled, the loss is unscaled.
    """
    if team not in game.teams:
        raise KeyError(f"No team named {team!r}; the game has {list(game.teams)}.")
    loss_fn = game.teams[team].loss
    updated = game.updated_networks(team)
    scale = loss_scale_of(state.teams[team].opt_state)  # None: no loss scaling

    def objective(team_params):
        point = game.with_updated(state, team, team_params)
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
        return scale_loss(loss, scale), (loss, metrics, nets.updated_collections(updated),
                                         nets.updated_extras())

    (_, (loss, metrics, collections, extras)), grads = jax.value_and_grad(
        objective, has_aux=True)(game.updated_params(state, team))
    grads = unscale_grads(grads, scale)
    if axis_name is not None:
        grads = jax.lax.pmean(grads, axis_name)
    return TeamGradients(loss, grads, collections, metrics, extras)


def apply_team_update(optimizer: optax.GradientTransformation, team_state: TeamState,
                      grads: PyTree, collections: PyTree) -> TeamState:
    """One optimizer update of a team: new params, optimizer state and collections."""
    updates, opt_state = optimizer.update(grads, team_state.opt_state, team_state.params)
    return TeamState(params=optax.apply_updates(team_state.params, updates),
                     collections=collections, opt_state=opt_state)


def apply_update(game: Game, state: GameState, team: str, g: TeamGradients) -> GameState:
    """`state` after one optimizer update of `team` from its gradients `g`: the params
    and collections of every network it updates (borrowed ones in their owners'
    states) and its optimizer state. For a team that borrows nothing this is
    `apply_team_update` on its `TeamState`."""
    if not game.teams[team].borrows:
        return state.replace_team(team, apply_team_update(
            game.teams[team].optimizer, state.teams[team], g.grads, g.collections))
    params = game.updated_params(state, team)
    updates, opt_state = game.teams[team].optimizer.update(
        g.grads, state.teams[team].opt_state, params)
    state = game.with_updated(state, team, optax.apply_updates(params, updates), g.collections)
    return state.replace_team(team, state.teams[team].replace(opt_state=opt_state))


def refuse_borrowing(game: Game, rule: str) -> None:
    """Raises a ValueError naming the teams when `game` has teams that update networks
    other teams own (`Team.borrows`), which `rule` cannot step."""
    borrowing = [name for name, team in game.teams.items() if team.borrows]
    if borrowing:
        raise ValueError(f"Teams {borrowing} update networks other teams own (Team.borrows): "
                         "phases of a sequential schedule, which only the alternating rule "
                         f"without unrolling takes, not {rule}.")


def metrics_prefix(game: Game, team: str) -> str:
    """The prefix of `team`'s step metrics (`Team.metrics_prefix`, else its name)."""
    prefix = game.teams[team].metrics_prefix
    return team if prefix is None else prefix


def team_metrics(prefix: str, loss: jax.Array, grads: PyTree, metrics: Metrics) -> Metrics:
    """`{prefix}_loss`, `{prefix}_grad_norm` (global L2 norm) and the loss's metrics.

    Raises:
      ValueError: the loss reports a metric under one of the two names the step gives.
    """
    out = {f"{prefix}_loss": loss, f"{prefix}_grad_norm": optax.tree.norm(grads)}
    clash = sorted(set(out) & set(metrics))
    if clash:
        raise ValueError(f"The loss of the team with metrics prefix {prefix!r} reports "
                         f"{clash}, which the step reports itself; rename the loss's metric.")
    out.update(metrics)
    return out


def merge_metrics(metrics: Metrics, team_metrics_: Metrics, team: str) -> None:
    """Adds one team's metrics to the step's, refusing a name another team used."""
    clash = sorted(set(metrics) & set(team_metrics_))
    if clash:
        raise ValueError(f"Team {team!r} reports metrics {clash} that another team reported "
                         "in the same step; give the teams distinct metrics_prefix and "
                         "metric names.")
    metrics.update(team_metrics_)


def finish_step(game: Game, state: GameState, teams: dict[str, TeamState], metrics: Metrics,
                axis_name: str | None, *,
                extras: dict | None = None) -> tuple[GameState, Metrics]:
    """The new state (EMA of the params, extras advanced, step + 1) and device-mean metrics.

    Args:
      game, state: the game and the state the step started from.
      teams: every team's new state.
      metrics: the step's metrics.
      axis_name: mapped axis to average the metrics over, or None.
      extras: the extras after the teams' updates (None: `state.extras`), before
        `Game.advance_extras`.
    """
    ema = {}
    for name, average in state.ema.items():
        team = game.teams[name]
        decay = team.ema_decay
        if team.ema_warmup:
            t = state.step.astype(jnp.float32)
            decay = jnp.minimum(decay, (1.0 + t) / (10.0 + t))
        ema[name] = optax.incremental_update(teams[name].params, average, step_size=1.0 - decay)
    extras = state.extras if extras is None else extras
    if game.advance_extras is not None:
        extras = dict(game.advance_extras(extras, state.step))
    if axis_name is not None:
        metrics = jax.lax.pmean(metrics, axis_name)
    new_state = state.replace(teams=teams, ema=ema, extras=extras, step=state.step + 1)
    return new_state, metrics


def split_update_batches(batch: PyTree, num_slices: int) -> PyTree:
    """Splits a batch of `num_slices * B` examples into `[num_slices, B, ...]` slices.

    Slice i holds examples i, i + num_slices, i + 2 num_slices, ...: with the batch
    sharded over devices along its first axis, every slice stays sharded the same way,
    so no data moves between devices.
    """
    def split(x):
        if x.shape[0] % num_slices:
            raise ValueError(f"A batch of {x.shape[0]} examples does not split into "
                             f"{num_slices} equal update batches (the most updates a "
                             "team makes per step).")
        x = x.reshape((x.shape[0] // num_slices, num_slices) + x.shape[1:])
        return jnp.moveaxis(x, 1, 0)
    return jax.tree.map(split, batch)
