"""Saturating vs non-saturating generator loss when the discriminator wins.

Goodfellow et al. (2014, Sec. 3) note that early in training, when D rejects the fakes
with high confidence, the minimax generator loss log(1 - D(G(z))) saturates, and
propose maximizing log D(G(z)) instead. With D = sigmoid(l), per example,

  d/dl log(1 - sigmoid(l)) = -sigmoid(l)        -> 0 as l -> -inf   (saturating)
  d/dl -log sigmoid(l)     = -(1 - sigmoid(l))  -> -1 as l -> -inf  (non-saturating)

so both losses push every fake along the same direction dl/dtheta_G, weighted by
D(G(z)) for the saturating loss and by 1 - D(G(z)) for the non-saturating one.
`saturation_run` trains an MLP GAN in which the discriminator wins (more and faster
discriminator updates) with the shared step machinery, and logs at every step the norm
of d/dtheta_G of both losses, evaluated on the same state and the same noise.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan.objectives import losses
from jgan.data.mixtures import Mixture
from jgan.families.adversarial import (
    DISCRIMINATOR,
    GENERATOR,
    adversarial_game,
    sample_latent,
)
from jgan.core.game import Game, GameState
from jgan.models.mlp import MLPDiscriminator, MLPGenerator
from jgan.core.steps import make_step

DATA_KEY = "x"


def saturating_logit_derivative(logits: jax.Array) -> jax.Array:
    """d/dl log(1 - sigmoid(l)) = -sigmoid(l), per example (Goodfellow et al. 2014).

    Its magnitude sigmoid(l) = D(G(z)) vanishes when D rejects the fake (l -> -inf).

    Args:
      logits: any shape, the discriminator's logits l on fakes.
    Returns:
      The derivative, same shape.
    """
    return -jax.nn.sigmoid(logits)


def non_saturating_logit_derivative(logits: jax.Array) -> jax.Array:
    """d/dl -log sigmoid(l) = -(1 - sigmoid(l)), per example (Goodfellow et al. 2014).

    Its magnitude 1 - D(G(z)) tends to 1 when D rejects the fake (l -> -inf).

    Args:
      logits: any shape, the discriminator's logits l on fakes.
    Returns:
      The derivative, same shape.
    """
    return -jax.nn.sigmoid(-logits)


class GeneratorGradients(NamedTuple):
    """Generator-gradient norms of both losses at one state (scalars, or `[T]` over a run).

    Attributes:
      saturating: ||d/dtheta_G E_z[log(1 - D(G(z)))]||_2 (`losses.minimax_generator_loss`).
      non_saturating: ||d/dtheta_G E_z[-log D(G(z))]||_2
        (`losses.non_saturating_generator_loss`).
      d_fake: E_z[D(G(z))].
      d_fake_max: max_z D(G(z)) over the batch: the fakes with the largest D dominate
        the saturating gradient, whose per-example weight is D(G(z)).
    """
    saturating: jax.Array
    non_saturating: jax.Array
    d_fake: jax.Array
    d_fake_max: jax.Array


def generator_gradient_norms(game: Game, state: GameState, z: jax.Array) -> GeneratorGradients:
    """Both generator losses' gradient norms on the same state and the same noise.

    Args:
      game: an `adversarial_game` (networks "generator" and "discriminator").
      state: the point to differentiate at; the networks run in inference mode.
      z: `[B, latent_dim]` noise, shared by both losses.
    Returns:
      `GeneratorGradients` of scalars; the norms are global L2 norms over all the
      generator team's parameters.
    """
    def fake_logits(generator_params):
        point = state.replace_team(GENERATOR, state.teams[GENERATOR].replace(params=generator_params))
        nets = game.bind(point, train=False, rng=jax.random.key(0))
        return nets(DISCRIMINATOR, nets(GENERATOR, z))

    def gradient_norm(loss_fn):
        grads = jax.grad(lambda p: loss_fn(fake_logits=fake_logits(p)))(state.teams[GENERATOR].params)
        return optax.tree.norm(grads)

    d_fake = jax.nn.sigmoid(fake_logits(state.teams[GENERATOR].params))
    return GeneratorGradients(
        saturating=gradient_norm(losses.minimax_generator_loss),
        non_saturating=gradient_norm(losses.non_saturating_generator_loss),
        d_fake=jnp.mean(d_fake), d_fake_max=jnp.max(d_fake))


class SaturationTrace(NamedTuple):
    """One run's measurements at the states entering steps 0..num_steps.

    Attributes:
      gradients: `GeneratorGradients` of `[num_steps + 1]` arrays, on a fixed probe z.
      d_real: `[num_steps]` E_x[D(x)] on each step's discriminator batches.
      state: the final `GameState`.
    """
    gradients: GeneratorGradients
    d_real: np.ndarray
    state: GameState


def saturation_run(data: Mixture, *, num_steps: int, generator_loss: str = "non_saturating",
                   d_steps: int = 5, pretrain_steps: int = 0,
                   generator_learning_rate: float = 1e-4,
                   discriminator_learning_rate: float = 1e-3, batch_size: int = 256,
                   latent_dim: int = 2, hidden: Sequence[int] = (64, 64),
                   probe_size: int = 1024, seed: int = 0) -> SaturationTrace:
    """Trains an MLP GAN in which D wins, logging both generator losses' gradient norms.

    `adversarial_game` with `MLPGenerator` and `MLPDiscriminator`, Adam for both teams,
    stepped by `make_step(game, update_rule="alternating", repeats={"discriminator": d_steps})`: each step
    makes `d_steps` discriminator updates then one generator update. D is made to win
    by `d_steps > 1`, a discriminator learning rate above the generator's and
    `pretrain_steps` first steps in which the generator's learning rate is 0. Only
    `generator_loss` drives the generator; both losses' gradients are measured, before
    every step and after the last, on one fixed probe batch of noise.

    Args:
      data: the 2-D (or any-D) mixture the run learns.
      num_steps: training steps.
      generator_loss: "non_saturating" or "minimax" (saturating), the loss G minimizes.
      d_steps: discriminator updates per step.
      pretrain_steps: steps at the start in which G does not move (its learning rate is
        0), so that D is pre-trained against the initial generator.
      generator_learning_rate, discriminator_learning_rate: the teams' Adam steps.
      batch_size: examples per discriminator update and per generator update.
      latent_dim: size of z ~ N(0, I).
      hidden: hidden widths of both MLPs.
      probe_size: examples in the probe batch of noise.
      seed: seeds init, data, noise and the probe.
    Returns:
      `SaturationTrace`.
    """
    if generator_loss not in losses.PROBABILISTIC_LOSS_TYPES:
        raise ValueError(f"generator_loss must be one of {losses.PROBABILISTIC_LOSS_TYPES}, "
                         f"got {generator_loss!r}.")
    if num_steps < 1 or not 0 <= pretrain_steps <= num_steps:
        raise ValueError(f"Need num_steps >= 1 and 0 <= pretrain_steps <= num_steps, got "
                         f"num_steps={num_steps}, pretrain_steps={pretrain_steps}.")
    dim = data.means.shape[1]
    # One generator update per step, so the schedule's count is the step number.
    generator_schedule = optax.join_schedules(
        [optax.constant_schedule(0.0), optax.constant_schedule(generator_learning_rate)],
        boundaries=[pretrain_steps])
    game = adversarial_game(
        generator=MLPGenerator(hidden=tuple(hidden), output_dim=dim),
        discriminator=MLPDiscriminator(hidden=tuple(hidden)), latent_dim=latent_dim,
        loss_type=generator_loss, generator_optimizer=optax.adam(generator_schedule),
        discriminator_optimizer=optax.adam(discriminator_learning_rate), data_key=DATA_KEY)
    step = make_step(game, update_rule="alternating", repeats={DISCRIMINATOR: d_steps})
    init_key, data_key, probe_key = jax.random.split(jax.random.key(seed), 3)
    probe_z = sample_latent(probe_key, probe_size, latent_dim)

    @jax.jit
    def train(state: GameState):
        def body(s, t):
            measured = generator_gradient_norms(game, s, probe_z)
            batch = {DATA_KEY: data.sample(jax.random.fold_in(data_key, t),
                                           d_steps * batch_size)}
            s, metrics = step(s, batch)
            return s, (measured, metrics["d_real"])
        state, (measured, d_real) = jax.lax.scan(body, state, jnp.arange(num_steps))
        last = generator_gradient_norms(game, state, probe_z)
        gradients = jax.tree.map(lambda m, x: jnp.concatenate([m, x[None]]), measured, last)
        return state, gradients, d_real

    state, gradients, d_real = train(
        game.init(init_key, {DATA_KEY: jnp.zeros((1, dim), jnp.float32)}))
    return SaturationTrace(gradients=GeneratorGradients(*(np.asarray(g) for g in gradients)),
                           d_real=np.asarray(d_real), state=state)
