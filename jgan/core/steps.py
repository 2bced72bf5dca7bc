"""Shared step functions of the two-team game: `(state, batch) -> (state, metrics)`.

Every model family reuses these; a family only supplies its `Game` (networks, losses,
optimizers). The update rules (`make_step`'s `update_rule`):

* `alternating`: `d_steps` discriminator updates, each on its own slice of the batch,
  then one generator update against the *updated* discriminator.
* `simultaneous`: both teams' gradients are taken at the *same* point (the old state)
  and applied together.
* `optimistic`: simultaneous updates with optimistic optimizers (Daskalakis et al.
  2018), `optimistic_step`.
* `extragradient`: gradients at an extrapolated point applied to the current one
  (Gidel et al. 2019), `jgan.core.extragradient.extragradient_step`.

Separate learning rates per team (TTUR, Heusel et al. 2017) need nothing here: each
team has its own optimizer (`Game.generator_optimizer`, `Game.discriminator_optimizer`;
in configs `optimizer.generator.learning_rate` and `optimizer.discriminator.learning_rate`).

`unroll_steps=k` (every rule) takes the generator's loss through k differentiable
discriminator updates (Unrolled GAN, Metz et al. 2017; `jgan.core.unrolled`).

All rules are pure and jit-compatible. Under `jax.jit` with the batch sharded over a
device mesh they are data parallel as they stand (batch statistics span the global
batch). Inside `shard_map`/`pmap`, pass `axis_name`: gradients and metrics are then
averaged over that axis, and each device draws its own noise.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jgan.core.extragradient import extragradient_step
from jgan.core.game import Game, GameState, Metrics, PyTree, TeamState
from jgan.core.step_parts import (
    apply_team_update,
    finish_step,
    split_discriminator_batches,
    step_rng,
    team_gradients,
    team_metrics,
)
from jgan.core.unrolled import generator_gradients

__all__ = ["UPDATE_RULES", "StepFn", "alternating_step", "extragradient_step",
           "has_optimistic_optimizer", "make_step", "optimistic_step", "simultaneous_step",
           "split_discriminator_batches", "step_rng"]

StepFn = Callable[[GameState, PyTree], tuple[GameState, Metrics]]
UPDATE_RULES = ("alternating", "simultaneous", "extragradient", "optimistic")


def alternating_step(state: GameState, batch: PyTree, *, game: Game, d_steps: int = 1,
                     unroll_steps: int = 0,
                     axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """`d_steps` discriminator updates, then one generator update against the new D.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis `d_steps * B`; discriminator update i
        sees `split_discriminator_batches(batch, d_steps)[i]`, the generator the last.
      game: the static game.
      d_steps: discriminator updates per step (5 for WGAN-GP).
      unroll_steps: the generator's loss is taken against the updated discriminator
        unrolled this many more differentiable updates (`jgan.core.unrolled`); 0: plain.
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
        loss, grads, colls, metrics = team_gradients(
            game, s, d_batch, jax.random.fold_in(key, i), team="discriminator",
            axis_name=axis_name)
        return (apply_team_update(game.discriminator_optimizer, disc, grads, colls),
                team_metrics("d", loss, grads, metrics))

    if d_steps == 1:
        disc, d_metrics = d_update(state.discriminator,
                                   (jax.tree.map(lambda x: x[0], d_batches), 0))
    else:
        disc, d_metrics = jax.lax.scan(d_update, state.discriminator,
                                       (d_batches, jnp.arange(d_steps)))
        d_metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), d_metrics)

    g_batch = jax.tree.map(lambda x: x[-1], d_batches)
    g_loss, g_grads, g_colls, g_metrics = generator_gradients(
        game, state.replace(discriminator=disc), g_batch, jax.random.fold_in(key, d_steps),
        unroll_steps=unroll_steps, axis_name=axis_name)
    gen = apply_team_update(game.generator_optimizer, state.generator, g_grads, g_colls)
    metrics = {**team_metrics("g", g_loss, g_grads, g_metrics), **d_metrics}
    return finish_step(game, state, gen, disc, metrics, axis_name)


def simultaneous_step(state: GameState, batch: PyTree, *, game: Game, unroll_steps: int = 0,
                      axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """Both teams' gradients at the same point (the old state), applied together.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis B, seen by both losses.
      game: the static game.
      unroll_steps: the generator's loss is taken against the old discriminator
        unrolled this many differentiable updates (`jgan.core.unrolled`); 0: plain.
      axis_name: mapped axis for `shard_map`/`pmap`, as in `alternating_step`.
    Returns:
      `(new_state, metrics)`.
    """
    key = step_rng(state, axis_name)
    d_loss, d_grads, d_colls, d_metrics = team_gradients(
        game, state, batch, jax.random.fold_in(key, 0), team="discriminator",
        axis_name=axis_name)
    g_loss, g_grads, g_colls, g_metrics = generator_gradients(
        game, state, batch, jax.random.fold_in(key, 1), unroll_steps=unroll_steps,
        axis_name=axis_name)
    disc = apply_team_update(game.discriminator_optimizer, state.discriminator, d_grads,
                             d_colls)
    gen = apply_team_update(game.generator_optimizer, state.generator, g_grads, g_colls)
    metrics = {**team_metrics("g", g_loss, g_grads, g_metrics),
               **team_metrics("d", d_loss, d_grads, d_metrics)}
    return finish_step(game, state, gen, disc, metrics, axis_name)


def has_optimistic_optimizer(opt_state: PyTree) -> bool:
    """Whether an optax state holds the previous update of `optax.scale_by_optimistic_gradient`
    (true for `optax.optimistic_gradient_descent`, `optax.optimistic_adam_v2`, and any
    chain containing the transformation)."""
    optimistic_state = type(jax.eval_shape(optax.scale_by_optimistic_gradient().init, {}))
    return any(isinstance(s, optimistic_state) for s in jax.tree.leaves(
        opt_state, is_leaf=lambda s: isinstance(s, optimistic_state)))


def optimistic_step(state: GameState, batch: PyTree, *, game: Game, unroll_steps: int = 0,
                    axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """Optimistic gradient descent (OGD; Daskalakis, Ilyas, Syrgkanis and Zeng 2018,
    "Training GANs with Optimism"): x_{t+1} = x_t - 2 eta g_t + eta g_{t-1} for each team,
    with both teams' gradients g_t taken at the same point.

    The optimism lives in the teams' optimizers, which must carry the previous update:
    `optax.optimistic_gradient_descent(eta)` is OGD exactly (its first step, having no
    g_{-1}, is plain gradient descent), `optax.optimistic_adam_v2(eta, nesterov=False)`
    the paper's Optimistic Adam in optax's form (2 u_t - u_{t-1} on Adam's updates u).
    The rule itself is `simultaneous_step`: keeping the memory in the optimizer state
    keeps `GameState` unchanged, checkpoints included, and reuses optax's
    implementation. This rule only checks that both optimizers are optimistic, so that
    a config cannot silently train plain simultaneous descent under the name.

    Args and returns: as for `simultaneous_step`.
    Raises:
      ValueError: a team's optimizer state has no optimistic memory.
    """
    for team in ("generator", "discriminator"):
        if not has_optimistic_optimizer(getattr(state, team).opt_state):
            raise ValueError(
                f"update_rule='optimistic' needs optimistic optimizers, but the {team} "
                "team's optimizer state has no optax.scale_by_optimistic_gradient memory; "
                "build it with optax.optimistic_gradient_descent or "
                "optax.optimistic_adam_v2 (configs: jgan.train.builders does this).")
    return simultaneous_step(state, batch, game=game, unroll_steps=unroll_steps,
                             axis_name=axis_name)


def make_step(game: Game, *, update_rule: str = "alternating", d_steps: int = 1,
              unroll_steps: int = 0, axis_name: str | None = None) -> StepFn:
    """The step function `(state, batch) -> (state, metrics)` for `update_rule`.

    Args:
      game: the static game.
      update_rule: one of `UPDATE_RULES`.
      d_steps: discriminator updates per step; only "alternating" takes more than 1.
      unroll_steps: differentiable discriminator updates in the generator's loss
        (Unrolled GAN); 0 disables.
      axis_name: mapped axis inside `shard_map`/`pmap`, None under `jit`.
    Returns:
      The step, not jitted: wrap it in `jax.jit` (with shardings) or `shard_map`.
    """
    if update_rule not in UPDATE_RULES:
        raise ValueError(f"Unknown update_rule {update_rule!r}; expected one of {UPDATE_RULES}.")
    if update_rule != "alternating" and d_steps != 1:
        raise ValueError(f"{update_rule} updates take one discriminator step; "
                         f"got d_steps={d_steps}.")
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}.")
    kwargs = {"game": game, "unroll_steps": unroll_steps, "axis_name": axis_name}
    if update_rule == "alternating":
        return functools.partial(alternating_step, d_steps=d_steps, **kwargs)
    rule = {"simultaneous": simultaneous_step, "optimistic": optimistic_step,
            "extragradient": extragradient_step}[update_rule]
    return functools.partial(rule, **kwargs)
