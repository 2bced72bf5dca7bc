"""Unrolled GAN (Metz et al. 2017): one team's loss through k updates of its adversary.

In a GAN the generator (theta_G) looks ahead through the discriminator's (theta_D)
updates; in any two-team game, the team updated last looks ahead through the other
(`unrolled_pair`).

The generator minimizes the surrogate

    f_k(theta_G, theta_D) = L_G(theta_G, theta_D^k(theta_G, theta_D)),
    theta_D^0 = theta_D,  theta_D^{j+1} = theta_D^j + U(grad L_D(theta_G, theta_D^j), s_j),

where U is the discriminator's own optimizer update (with its state s_j) and the
gradient of f_k with respect to theta_G flows through all k updates (second-order
terms included): the generator sees how the discriminator would react to it. The
discriminator itself still advances by its normal update only; the unrolled copies
are thrown away after the generator's gradient is taken ("Unrolled Generative
Adversarial Networks", Metz, Poole, Pfau and Sohl-Dickstein, ICLR 2017).

Every unrolled update sees the same batch and the same noise key: the look-ahead is k
steps on one fixed loss, so f_k is a deterministic function of the parameters for a
given batch and key. The discriminator loss must let gradients reach the generator
through its fakes (no `stop_gradient` on G(z)); otherwise the unroll changes the
discriminator but adds no second-order term.

Mutable collections inside the unroll (batch-norm running averages, spectral-norm
power-iteration vectors): the unrolled discriminator's collections are threaded
through its k updates as its real updates would change them, are treated as
constants for differentiation (`stop_gradient`), and are discarded with the unrolled
parameters; networks run in training mode, so batch norm normalizes with the
statistics of the unrolled batch. The generator's own collections come from its loss
evaluation alone, as without unrolling.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jgan.core.game import Game, GameState, PyTree, TeamState
from jgan.core.step_parts import TeamGradients, apply_team_update, team_gradients


def unrolled_pair(game: Game, *, required: bool = False) -> tuple[str, str] | None:
    """`(team, adversary)` of a two-team game: the team updated last looks ahead through
    the first. None for other games, or a ValueError if `required`."""
    names = list(game.teams)
    if len(names) != 2:
        if required:
            raise ValueError(f"Unrolling needs a two-team game; this one has teams {names}.")
        return None
    return names[1], names[0]


def unrolled_adversary(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                       adversary: str, unroll_steps: int,
                       axis_name: str | None = None) -> TeamState:
    """The adversary team after `unroll_steps` differentiable updates.

    Args:
      game: the static game.
      state: the starting point; the other team's params may be tracers, and the
        result is differentiable with respect to them.
      batch: the batch every unrolled loss sees.
      rng: the key every unrolled loss uses.
      adversary: the name of the team being unrolled (a GAN's discriminator).
      unroll_steps: k >= 0, the number of updates (0 returns the team as it is).
      axis_name: mapped axis, as in the step rules.
    Returns:
      A `TeamState` shaped like the adversary's: params, optimizer state and
      (gradient-stopped) collections after k updates with its optimizer.
    """
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}.")
    optimizer = game.teams[adversary].optimizer

    def update(team_state: TeamState, _):
        g = team_gradients(game, state.replace_team(adversary, team_state), batch, rng,
                           team=adversary, axis_name=axis_name)
        return apply_team_update(optimizer, team_state, g.grads,
                                 jax.lax.stop_gradient(g.collections)), None

    team_state, _ = jax.lax.scan(update, state.teams[adversary], None, length=unroll_steps)
    return team_state


def unrolled_team_gradients(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                            team: str, adversary: str, unroll_steps: int = 0,
                            axis_name: str | None = None) -> TeamGradients:
    """`team`'s loss and gradients against `adversary` unrolled k steps.

    `unroll_steps=0` is exactly `team_gradients(..., team=team)`. For k > 0 the loss is
    `f_k` above; the unroll uses `fold_in(rng, 1)` for the adversary's losses and the
    team's loss uses `rng`, as it does without unrolling.

    Args:
      game, state, batch, rng, axis_name: as for `jgan.core.step_parts.team_gradients`.
      team: the team whose gradients are taken (a GAN's generator).
      adversary: the team it looks ahead through.
      unroll_steps: k >= 0.
    Returns:
      `TeamGradients` of `team`.
    """
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}.")
    look_ahead = None
    if unroll_steps:
        unroll_rng = jax.random.fold_in(rng, 1)

        def look_ahead(point: GameState) -> GameState:
            return point.replace_team(adversary, unrolled_adversary(
                game, point, batch, unroll_rng, adversary=adversary,
                unroll_steps=unroll_steps, axis_name=axis_name))

    return team_gradients(game, state, batch, rng, team=team, axis_name=axis_name,
                          look_ahead=look_ahead)


class UnrolledGradientTerms(NamedTuple):
    """The unrolled gradient split into its two parts (each shaped like the team's params).

    Attributes:
      plain: grad_G L_G(theta_G, theta_D), no unrolling.
      direct: grad_G L_G(theta_G, theta_D^k) with theta_D^k held fixed: the plain
        gradient, taken against the look-ahead adversary.
      second_order: the rest of the unrolled gradient, (d theta_D^k / d theta_G)^T
        grad_D L_G(theta_G, theta_D^k): how the team's move changes the adversary's next
        k updates. `direct + second_order` is what `unrolled_team_gradients` returns.
    """
    plain: PyTree
    direct: PyTree
    second_order: PyTree


def unrolled_gradient_terms(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                            team: str, adversary: str, unroll_steps: int,
                            axis_name: str | None = None) -> UnrolledGradientTerms:
    """The plain, direct and second-order parts of the unrolled gradient.

    A diagnostic for Unrolled GAN's look-ahead: with the discriminator's optimizer in
    the unroll, the second-order part scales with how strongly one update of D reacts
    to G (for SGD at rate eta, eta times a mixed second derivative; for Adam, its step
    over sqrt(v), larger where D's gradients have been small), and can outweigh the
    direct part. Same arguments and keys as `unrolled_team_gradients`.

    Returns:
      `UnrolledGradientTerms`.
    """
    unroll_rng = jax.random.fold_in(rng, 1)

    def look_ahead(point: GameState, hold: bool) -> GameState:
        ahead = unrolled_adversary(game, point, batch, unroll_rng, adversary=adversary,
                                   unroll_steps=unroll_steps, axis_name=axis_name)
        return point.replace_team(adversary, jax.lax.stop_gradient(ahead) if hold else ahead)

    grads = lambda ahead: team_gradients(game, state, batch, rng, team=team,
                                         axis_name=axis_name, look_ahead=ahead).grads
    plain = grads(None)
    direct = grads(lambda p: look_ahead(p, hold=True))
    full = grads(lambda p: look_ahead(p, hold=False))
    return UnrolledGradientTerms(plain=plain, direct=direct,
                                 second_order=jax.tree.map(jnp.subtract, full, direct))
