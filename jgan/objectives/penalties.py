"""Gradient penalties on the discriminator's input.

Each penalty takes `critic_fn`, a function from a batch of inputs `[B, ...]` to one
output per example `[B]` or `[B, 1]` (other output shapes raise a ValueError), and
returns a scalar. The per-example input gradients are taken as the gradient of
`sum(critic_fn(x))`, which is exact only when example i's output depends on example i
alone: use these penalties with critics without batch statistics in training mode
(layer or no normalization, as Gulrajani et al. 2017 advise), or with batch norm in
inference mode.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

CriticFn = Callable[[jax.Array], jax.Array]


def input_gradients(critic_fn: CriticFn, inputs: jax.Array) -> jax.Array:
    """d critic(x_i) / d x_i for every example: `[B, ...]` like `inputs`.

    Raises:
      ValueError: `inputs` without a batch axis, or `critic_fn` returning anything but
        one output per example (`[B]` or `[B, 1]`): the gradient of a sum over several
        outputs per example (a patch critic's grid, a [B, B] broadcast) is not the
        gradient of a per-example score.
    """
    if jnp.ndim(inputs) == 0:
        raise ValueError(
            f"inputs must be [B, ...] with a batch axis; got shape {jnp.shape(inputs)}.")

    def total(x):
        outputs = critic_fn(x)
        if jnp.shape(outputs) not in ((x.shape[0],), (x.shape[0], 1)):
            raise ValueError(
                "critic_fn must return one output per example, [B] or [B, 1]; got outputs "
                f"{jnp.shape(outputs)} for inputs {x.shape}.")
        return jnp.sum(outputs.astype(jnp.float32))

    return jax.grad(total)(inputs)


def _per_example_norm(grads: jax.Array) -> jax.Array:
    flat = jnp.reshape(grads, (grads.shape[0], -1)).astype(jnp.float32)
    # Differentiable at 0 (a constant critic has zero input gradient): sqrt(x + eps).
    return jnp.sqrt(jnp.sum(jnp.square(flat), axis=-1) + 1e-12)


def _check_same_shape(real: jax.Array, fake: jax.Array, function: str) -> None:
    if jnp.shape(real) != jnp.shape(fake):
        raise ValueError(f"{function} needs real and fake of one shape; got real "
                         f"{jnp.shape(real)} and fake {jnp.shape(fake)}.")


def interpolates(real: jax.Array, fake: jax.Array, rng: jax.Array) -> jax.Array:
    """x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] per example. `[B, ...]`.

    Raises:
      ValueError: `real` and `fake` of different shapes (they would broadcast).
    """
    _check_same_shape(real, fake, "interpolates")
    eps = jax.random.uniform(rng, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic_fn: CriticFn, *, real: jax.Array, fake: jax.Array,
                     rng: jax.Array, target: float = 1.0,
                     one_sided: bool = False) -> jax.Array:
    """WGAN-GP gradient penalty on random interpolates (Gulrajani et al. 2017).

    Two-sided (the paper's):  GP = E_xhat[(||grad_xhat f(xhat)||_2 - target)^2],
    one-sided (their Sec. 4 alternative; Petzka et al. 2018):
                              GP = E_xhat[max(0, ||grad_xhat f(xhat)||_2 - target)^2],
    with xhat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example. Multiply by lambda
    (10 in the paper) and add to the critic's loss.

    Args:
      critic_fn: inputs `[B, ...]` -> outputs `[B]` or `[B, 1]`.
      real: `[B, ...]` real examples.
      fake: `[B, ...]` generated examples (stop their gradient to the generator if
        needed; the penalty is the critic's).
      rng: key for the interpolation coefficients.
      target: the gradient norm the penalty pulls towards (1 for 1-Lipschitz).
      one_sided: penalize only norms above `target`.
    Returns:
      Scalar penalty.
    Raises:
      ValueError: `real` and `fake` of different shapes, or a critic without one output
        per example (see `input_gradients`).
    """
    _check_same_shape(real, fake, "gradient_penalty")
    norms = _per_example_norm(input_gradients(critic_fn, interpolates(real, fake, rng)))
    excess = norms - target
    if one_sided:
        excess = jax.nn.relu(excess)
    return jnp.mean(jnp.square(excess))


def r1_penalty(critic_fn: CriticFn, *, real: jax.Array) -> jax.Array:
    """R1 penalty on real data (Mescheder et al. 2018): E_x[||grad_x D(x)||_2^2].

    Add gamma / 2 times this to the discriminator's loss (gamma = 10 in StyleGAN).

    Args:
      critic_fn: inputs `[B, ...]` -> logits `[B]` or `[B, 1]`.
      real: `[B, ...]` real examples.
    Returns:
      Scalar penalty.
    Raises:
      ValueError: see `input_gradients`.
    """
    grads = input_gradients(critic_fn, real)
    return jnp.mean(jnp.sum(jnp.square(grads.reshape(grads.shape[0], -1)), axis=-1))


def r2_penalty(critic_fn: CriticFn, *, fake: jax.Array) -> jax.Array:
    """R2 penalty on generated data (Mescheder et al. 2018): E_z[||grad_x D(x)|_{x=G(z)}||^2].

    Args:
      critic_fn: inputs `[B, ...]` -> logits `[B]` or `[B, 1]`.
      fake: `[B, ...]` generated examples (the generator is held fixed).
    Returns:
      Scalar penalty.
    """
    return r1_penalty(critic_fn, real=jax.lax.stop_gradient(fake))
