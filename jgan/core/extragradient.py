"""Extragradient updates of the two-team game (Korpelevich 1976; Gidel et al. 2019).

With w = (theta_G, theta_D) and F(w) both teams' gradients (each of its own loss):

    w_{t+1/2} = w_t - eta F(w_t)            (extrapolation)
    w_{t+1}   = w_t - eta F(w_{t+1/2})       (update, from w_t)

On the bilinear game min_x max_y xy, where simultaneous gradient descent spirals out,
this converges ("A Variational Inequality Perspective on Generative Adversarial
Networks", Gidel, Berard, Vignoud, Vincent and Lacoste-Julien, ICLR 2019).
"""
from __future__ import annotations

import jax

from jgan.core.game import Game, GameState, Metrics, PyTree
from jgan.core.step_parts import (
    apply_team_update,
    finish_step,
    step_rng,
    team_gradients,
    team_metrics,
)
from jgan.core.unrolled import generator_gradients


def extragradient_step(state: GameState, batch: PyTree, *, game: Game, unroll_steps: int = 0,
                       axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """One extragradient step: both teams extrapolate, then update from the current point
    with the gradients taken at the extrapolated one.

    Both steps go through each team's optimizer, as Gidel et al. 2019's Extra-SGD and
    Extra-Adam do (in their reference code, `optim/extragradient.py`, `extrapolation()`
    and `step()` both call the same stateful update): the optimizer state
    advances through the extrapolation *and* the update, so Adam's moments see both
    gradients and its step count (bias correction, schedules) counts two updates per
    step. The extrapolated parameters are discarded; the update is applied to the
    current parameters with the optimizer state the extrapolation left. For plain SGD
    (no optimizer state) this is exactly the formula above. Mutable collections (batch
    statistics) are threaded the same way: through both stages' forward passes.

    Both stages see the whole batch; the second draws fresh noise (Gidel et al. draw a
    fresh minibatch for each stage). The metrics are those of the first stage: the
    losses at the current point and the norms of the gradients there.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis B, seen by every loss.
      game: the static game.
      unroll_steps: the generator's losses go through this many differentiable
        discriminator updates (`jgan.core.unrolled`); 0: plain.
      axis_name: mapped axis for `shard_map`/`pmap`, None under `jit`.
    Returns:
      `(new_state, metrics)`.
    """
    key = step_rng(state, axis_name)

    def gradients(point: GameState, stage: int):
        d = team_gradients(game, point, batch, jax.random.fold_in(key, 2 * stage),
                           team="discriminator", axis_name=axis_name)
        g = generator_gradients(game, point, batch, jax.random.fold_in(key, 2 * stage + 1),
                                unroll_steps=unroll_steps, axis_name=axis_name)
        return g, d

    (g_loss, g_grads, g_colls, g_metrics), (d_loss, d_grads, d_colls, d_metrics) = (
        gradients(state, 0))
    extrapolated = state.replace(
        generator=apply_team_update(game.generator_optimizer, state.generator, g_grads,
                                    g_colls),
        discriminator=apply_team_update(game.discriminator_optimizer, state.discriminator,
                                        d_grads, d_colls))

    (_, g_grads_x, g_colls_x, _), (_, d_grads_x, d_colls_x, _) = gradients(extrapolated, 1)
    gen = apply_team_update(
        game.generator_optimizer,
        state.generator.replace(opt_state=extrapolated.generator.opt_state),
        g_grads_x, g_colls_x)
    disc = apply_team_update(
        game.discriminator_optimizer,
        state.discriminator.replace(opt_state=extrapolated.discriminator.opt_state),
        d_grads_x, d_colls_x)
    metrics = {**team_metrics("g", g_loss, g_grads, g_metrics),
               **team_metrics("d", d_loss, d_grads, d_metrics)}
    return finish_step(game, state, gen, disc, metrics, axis_name)
