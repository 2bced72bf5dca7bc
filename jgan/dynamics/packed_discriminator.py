"""How long a packed discriminator takes to tell the 25-grid from a diffuse cloud.

PacGAN's discriminator (Lin et al. 2018) sees packs of m samples. Each pack carries m
times the evidence of one sample, so the Bayes-optimal packed classifier is more
accurate, not less; but an MLP has to discover the lattice in each of the m 2-D slots
of its 2m-dimensional input at once before its accuracy leaves chance. This module
trains the PacGAN discriminator alone, with no generator, as a binary classifier of
real packs (the 25-grid) against packs drawn from a fixed diffuse distribution
(uniform on a box around the grid, what a PacGAN generator spreads into when its
discriminator gives it no signal), and records its accuracy over training. The length
of the plateau at chance, against m, is what section 6 of docs/dynamics.md reads.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgan.data.mixtures import get_mixture
from jgan.models.mlp import MLPDiscriminator
from jgan.models.packing import PackedDiscriminator


class PlateauTrace(NamedTuple):
    """Accuracy of a discriminator trained alone, measured every `chunk` steps.

    Attributes:
      steps: `[T]`, steps done at each measurement.
      accuracy: `[T]`, mean over the chunk of (accuracy on real + accuracy on fake) / 2,
        per pack.
      loss: `[T]`, mean BCE loss over the chunk (log 4 = 1.386 at chance).
    """
    steps: np.ndarray
    accuracy: np.ndarray
    loss: np.ndarray

    def steps_to(self, accuracy: float) -> int | None:
        """The first measured step whose chunk accuracy exceeds `accuracy`, else None."""
        above = np.nonzero(self.accuracy > accuracy)[0]
        return int(self.steps[above[0]]) if above.size else None


def packed_discriminator_trace(pack: int, *, seed: int = 0, num_steps: int = 50_000,
                               chunk: int = 1000, batch_size: int = 240,
                               hidden: Sequence[int] = (128, 128, 128),
                               learning_rate: float = 1e-3, b1: float = 0.5,
                               box: float = 5.0, mixture: str = "grid") -> PlateauTrace:
    """Trains the mixtures' PacGAN discriminator to separate real packs from uniform ones.

    Real samples come from `mixture`, fake samples uniformly from `[-box, box]^2`; both
    are packed by `jgan.models.packing` exactly as in the PacGAN game, and the loss is
    the discriminator's non-saturating BCE, softplus(-D(real)) + softplus(D(fake)),
    optimized by Adam (the lab recipe's rate and b1), fresh batches every step.

    Args:
      pack: m >= 1, samples per discriminator input.
      seed: initialization and data seed.
      num_steps: a multiple of `chunk`.
      chunk: steps per measurement (one jitted `lax.scan`).
      batch_size: samples per side per step (`batch_size / pack` packs); must be
        divisible by `pack`.
      hidden: the MLP discriminator's widths.
    Returns:
      `PlateauTrace` with `num_steps / chunk` measurements.
    Raises:
      ValueError: `num_steps` not a multiple of `chunk`, or a batch that does not split
        into packs.
    """
    if chunk < 1 or num_steps % chunk:
        raise ValueError(f"num_steps={num_steps} must be a positive multiple of chunk={chunk}.")
    if pack < 1 or batch_size % pack:
        raise ValueError(f"batch_size={batch_size} must split into packs of pack={pack}.")
    data = get_mixture(mixture)
    net = MLPDiscriminator(hidden=tuple(hidden))
    if pack > 1:
        net = PackedDiscriminator(discriminator=net, pack=pack)
    key = jax.random.PRNGKey(seed)
    params = net.init(jax.random.fold_in(key, 0), jnp.zeros((batch_size, 2)))
    optimizer = optax.adam(learning_rate, b1=b1)

    def loss_fn(p, k):
        k_real, k_fake = jax.random.split(k)
        real = net.apply(p, data.sample(k_real, batch_size))
        fake = net.apply(p, jax.random.uniform(k_fake, (batch_size, 2), minval=-box, maxval=box))
        loss = jnp.mean(jax.nn.softplus(-real)) + jnp.mean(jax.nn.softplus(fake))
        return loss, (jnp.mean(real > 0) + jnp.mean(fake < 0)) / 2

    @jax.jit
    def run_chunk(p, opt_state, k):
        def body(carry, ki):
            p, opt_state = carry
            (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(p, ki)
            updates, opt_state = optimizer.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), (loss, acc)
        (p, opt_state), (loss, acc) = jax.lax.scan(body, (p, opt_state),
                                                   jax.random.split(k, chunk))
        return p, opt_state, loss.mean(), acc.mean()

    opt_state = optimizer.init(params)
    accuracy, losses = [], []
    for i in range(num_steps // chunk):
        params, opt_state, loss, acc = run_chunk(params, opt_state,
                                                 jax.random.fold_in(key, i + 1))
        accuracy.append(float(acc))
        losses.append(float(loss))
    return PlateauTrace(steps=chunk * np.arange(1, num_steps // chunk + 1),
                        accuracy=np.asarray(accuracy), loss=np.asarray(losses))
