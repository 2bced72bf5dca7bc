"""Extragradient updates of a game (Korpelevich 1976; Gidel et al. 2019).

With w = (every team's parameters) and F(w) every team's gradient of its own loss:

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
    merge_metrics,
    metrics_prefix,
    refuse_borrowing,
    step_rng,
    team_gradients,
    team_metrics,
)
from jgan.core.unrolled import unrolled_pair, unrolled_team_gradients


def extragradient_step(state: GameState, batch: PyTree, *, game: Game, unroll_steps: int = 0,
                       axis_name: str | None = None) -> tuple[GameState, Metrics]:
    """One extragradient step: every team extrapolates, then updates from the current
    point with the gradients taken at the extrapolated one.

    Both steps go through each team's optimizer, as Gidel et al. 2019's Extra-SGD and
    Extra-Adam do (in their reference code, `optim/extragradient.py`, `extrapolation()`
    and `step()` both call the same stateful update): the optimizer state
    advances through the extrapolation *and* the update, so Adam's moments see both
    gradients and its step count (bias correction, schedules) counts two updates per
    step. The extrapolated parameters are discarded; the update is applied to the
    current parameters with the optimizer state the extrapolation left. For plain SGD
    (no optimizer state) this is exactly the formula above. Mutable collections (batch
    statistics) and extras are threaded the same way: through both stages.

    Both stages see the whole batch; the second draws fresh noise (Gidel et al. draw a
    fresh minibatch for each stage): with n teams, team j of stage s draws
    `fold_in(key, n * s + j)`. The metrics are those of the first stage: the losses at
    the current point and the norms of the gradients there.

    Args:
      state: the game state.
      batch: pytree of arrays with leading axis B, seen by every loss.
      game: the static game.
      unroll_steps: in a two-team game, the loss of the team updated last goes through
        this many differentiable updates of the other (`jgan.core.unrolled`); 0: plain.
      axis_name: mapped axis for `shard_map`/`pmap`, None under `jit`.
    Returns:
      `(new_state, metrics)`.
    """
    refuse_borrowing(game, "extragradient")
    key = step_rng(state, axis_name)
    names = list(game.teams)
    pair = unrolled_pair(game) if unroll_steps else None

    def gradients(point: GameState, stage: int):
        out = {}
        for j, name in enumerate(names):
            rng = jax.random.fold_in(key, len(names) * stage + j)
            if pair is not None and name == pair[0]:
                out[name] = unrolled_team_gradients(
                    game, point, batch, rng, team=name, adversary=pair[1],
                    unroll_steps=unroll_steps, axis_name=axis_name)
            else:
                out[name] = team_gradients(game, point, batch, rng, team=name,
                                           axis_name=axis_name)
        return out

    def extras_after(point: GameState, grads) -> dict:
        extras = dict(point.extras)
        for name in names:
            extras.update(grads[name].extras)
        return extras

    first = gradients(state, 0)
    extrapolated = state.replace(
        teams={name: apply_team_update(game.teams[name].optimizer, state.teams[name],
                                       first[name].grads, first[name].collections)
               for name in names},
        extras=extras_after(state, first))
    second = gradients(extrapolated, 1)
    teams = {name: apply_team_update(
        game.teams[name].optimizer,
        state.teams[name].replace(opt_state=extrapolated.teams[name].opt_state),
        second[name].grads, second[name].collections) for name in names}
    metrics = {}
    for name in names:
        g = first[name]
        merge_metrics(metrics, team_metrics(metrics_prefix(game, name), g.loss, g.grads,
                                            g.metrics), name)
    return finish_step(game, state, teams, metrics, axis_name,
                       extras=extras_after(extrapolated, second))
