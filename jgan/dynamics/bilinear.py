"""The bilinear game min_x max_y x * y, played by the shared step machinery.

Its only Nash equilibrium is (0, 0), and the game's vector field (d/dx, -d/dy) of
x * y, (y, -x), is a pure rotation: it is the smallest game on which gradient methods
for games differ. Here x is the generator team (loss x y) and y the discriminator team
(loss -x y), each a single scalar parameter, so the trajectories below come from
`jgan.core.steps.make_step` itself, not from a copy of its formulas. With plain SGD of step
eta, w = x + i y moves as (Gidel et al. 2019; Daskalakis et al. 2018):

  simultaneous   w' = (1 + i eta) w                 |w| grows by sqrt(1 + eta^2)
  alternating    y' = y + eta x, x' = x - eta y'    area-preserving: bounded orbits
  extragradient  w' = (1 + i eta - eta^2) w         |w| shrinks by sqrt(1 - eta^2 + eta^4)
  optimistic     w' = (1 + 2 i eta) w - i eta w_prev    converges for small eta
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan.core.game import Game, GameState, Team
from jgan.core.steps import make_step

X, Y = "x", "y"
BILINEAR_RULES = ("simultaneous", "alternating", "extragradient", "optimistic")


class Scalar(nn.Module):
    """One trainable scalar `()`, initialized to `value`; called without inputs."""
    value: float = 0.0

    @nn.compact
    def __call__(self) -> jax.Array:
        return self.param("value", nn.initializers.constant(self.value), (), jnp.float32)


def bilinear_game(learning_rate: float, *, update_rule: str = "simultaneous",
                  x0: float = 1.0, y0: float = 1.0) -> Game:
    """The game min_x max_y x y as a `Game`: teams {"x"} (loss x y) and {"y"} (loss -x y).

    Args:
      learning_rate: eta of both teams' SGD.
      update_rule: the rule the game will be stepped with; "optimistic" gives both teams
        `optax.optimistic_gradient_descent(eta)` (OGD), every other rule `optax.sgd(eta)`.
      x0, y0: the starting point.
    Returns:
      The game; its batches are ignored (pass `{}`).
    """
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
    if update_rule not in BILINEAR_RULES:
        raise ValueError(f"update_rule must be one of {BILINEAR_RULES}, got {update_rule!r}.")
    if update_rule == "optimistic":
        optimizer = optax.optimistic_gradient_descent(learning_rate)
    else:
        optimizer = optax.sgd(learning_rate)

    def x_loss(nets, batch, rng):
        return nets(X) * nets(Y), {}

    def y_loss(nets, batch, rng):
        return -nets(X) * nets(Y), {}

    # y first: the rules' order (alternating: y then x) and keys are those of a GAN's
    # discriminator and generator.
    return Game(teams={"y": Team(networks={Y: Scalar(y0)}, loss=y_loss, optimizer=optimizer),
                       "x": Team(networks={X: Scalar(x0)}, loss=x_loss, optimizer=optimizer)},
                example_inputs=lambda batch: {X: (), Y: ()})


def _point(state: GameState) -> jax.Array:
    return jnp.stack([state.teams["x"].params[X]["value"],
                      state.teams["y"].params[Y]["value"]])


def bilinear_trajectory(update_rule: str, *, learning_rate: float, num_steps: int,
                        x0: float = 1.0, y0: float = 1.0, unroll_steps: int = 0) -> jax.Array:
    """(x_t, y_t) for t = 0..num_steps under `update_rule` of `jgan.core.steps.make_step`.

    Args:
      update_rule: one of `BILINEAR_RULES`.
      learning_rate: eta.
      num_steps: steps to take (all in one jitted `lax.scan`).
      x0, y0: the starting point.
      unroll_steps: Unrolled-GAN look-ahead of the x team (`jgan.core.unrolled`).
    Returns:
      `[num_steps + 1, 2]` float32: row t is (x_t, y_t).
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}.")
    game = bilinear_game(learning_rate, update_rule=update_rule, x0=x0, y0=y0)
    step = make_step(game, update_rule=update_rule, unroll_steps=unroll_steps)

    @jax.jit
    def run(state: GameState) -> jax.Array:
        def body(s, _):
            s, _ = step(s, {})
            return s, _point(s)
        _, points = jax.lax.scan(body, state, None, length=num_steps)
        return jnp.concatenate([_point(state)[None], points])

    return run(game.init(jax.random.key(0), {}))


def distance_to_equilibrium(trajectory) -> np.ndarray:
    """||(x_t, y_t) - (0, 0)||_2 for each row of a `[T, 2]` trajectory: `[T]`."""
    trajectory = np.asarray(trajectory)
    if trajectory.ndim != 2 or trajectory.shape[1] != 2:
        raise ValueError(f"trajectory must be [T, 2], got shape {trajectory.shape}.")
    return np.linalg.norm(trajectory, axis=1)
