"""Unrolled GAN (Metz et al. 2017): the generator's loss through k discriminator updates.

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
from jgan.core.step_parts import apply_team_update, team_gradients


def unrolled_discriminator(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                           unroll_steps: int, axis_name: str | None = None) -> TeamState:
    """The discriminator team after `unroll_steps` differentiable updates.

    Args:
      game: the static game.
      state: the starting point; its generator params may be tracers, and the result
        is differentiable with respect to them.
      batch: the batch every unrolled discriminator loss sees.
      rng: the key every unrolled discriminator loss uses.
      unroll_steps: k >= 0, the number of updates (0 returns `state.discriminator`).
      axis_name: mapped axis, as in the step rules.
    Returns:
      A `TeamState` shaped like `state.discriminator`: params, optimizer state and
      (gradient-stopped) collections after k updates with the discriminator's optimizer.
    """
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}.")

    def d_update(disc: TeamState, _):
        _, grads, collections, _ = team_gradients(
            game, state.replace(discriminator=disc), batch, rng, team="discriminator",
            axis_name=axis_name)
        return apply_team_update(game.discriminator_optimizer, disc, grads,
                                 jax.lax.stop_gradient(collections)), None

    disc, _ = jax.lax.scan(d_update, state.discriminator, None, length=unroll_steps)
    return disc


def generator_gradients(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                        unroll_steps: int = 0, axis_name: str | None = None):
    """The generator team's loss and gradients, against the discriminator unrolled k steps.

    `unroll_steps=0` is exactly `team_gradients(..., team="generator")`. For k > 0 the
    loss is `f_k` above; the unroll uses `fold_in(rng, 1)` for its discriminator losses
    and the generator's loss uses `rng`, as it does without unrolling.

    Args:
      game, state, batch, rng, axis_name: as for `jgan.core.step_parts.team_gradients`.
      unroll_steps: k >= 0.
    Returns:
      `(loss, grads, collections, metrics)` of the generator team.
    """
    if unroll_steps < 0:
        raise ValueError(f"unroll_steps must be >= 0, got {unroll_steps}.")
    look_ahead = None
    if unroll_steps:
        unroll_rng = jax.random.fold_in(rng, 1)

        def look_ahead(point: GameState) -> GameState:
            return point.replace(discriminator=unrolled_discriminator(
                game, point, batch, unroll_rng, unroll_steps=unroll_steps,
                axis_name=axis_name))

    return team_gradients(game, state, batch, rng, team="generator", axis_name=axis_name,
                          look_ahead=look_ahead)


class GeneratorGradientTerms(NamedTuple):
    """The unrolled generator gradient split into its two parts (each shaped like the
    generator team's params).

    Attributes:
      plain: grad_G L_G(theta_G, theta_D), no unrolling.
      direct: grad_G L_G(theta_G, theta_D^k) with theta_D^k held fixed: the plain
        gradient, taken against the look-ahead discriminator.
      second_order: the rest of the unrolled gradient, (d theta_D^k / d theta_G)^T
        grad_D L_G(theta_G, theta_D^k): how G's move changes D's next k updates.
        `direct + second_order` is what `generator_gradients` returns.
    """
    plain: PyTree
    direct: PyTree
    second_order: PyTree


def generator_gradient_terms(game: Game, state: GameState, batch: PyTree, rng: jax.Array, *,
                             unroll_steps: int,
                             axis_name: str | None = None) -> GeneratorGradientTerms:
    """The plain, direct and second-order parts of the unrolled generator gradient.

    A diagnostic for Unrolled GAN's look-ahead: with the discriminator's optimizer in
    the unroll, the second-order part scales with how strongly one update of D reacts
    to G (for SGD at rate eta, eta times a mixed second derivative; for Adam, its step
    over sqrt(v), larger where D's gradients have been small), and can outweigh the
    direct part. Same arguments and keys as `generator_gradients`.

    Returns:
      `GeneratorGradientTerms`.
    """
    unroll_rng = jax.random.fold_in(rng, 1)

    def look_ahead(point: GameState, hold: bool) -> GameState:
        disc = unrolled_discriminator(game, point, batch, unroll_rng,
                                      unroll_steps=unroll_steps, axis_name=axis_name)
        return point.replace(discriminator=jax.lax.stop_gradient(disc) if hold else disc)

    grads = lambda ahead: team_gradients(game, state, batch, rng, team="generator",
                                         axis_name=axis_name, look_ahead=ahead)[1]
    plain = grads(None)
    direct = grads(lambda p: look_ahead(p, hold=True))
    full = grads(lambda p: look_ahead(p, hold=False))
    return GeneratorGradientTerms(plain=plain, direct=direct,
                                  second_order=jax.tree.map(jnp.subtract, full, direct))
