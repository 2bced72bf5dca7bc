"""Class-conditioning layers: conditional batch norm and the projection discriminator term.

`ConditionalBatchNorm` (de Vries et al. 2017; Miyato & Koyama 2018) normalizes with
batch statistics like batch norm and then applies a per-class scale and shift read from
two embedding tables. `ProjectionHead` is the class term of the projection
discriminator (Miyato & Koyama 2018, eq. 3): logit = psi(h) + y^T V h, where V is a
(spectral-normalized) embedding table of one row per class.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.layers import dense_or_conv_sn


class ConditionalBatchNorm(nn.Module):
    """Batch norm with a per-class affine: `x [B, ..., C]`, `labels [B]` -> `[B, ..., C]`.

    y = gamma[label] * (x - mean) / sqrt(var + epsilon) + beta[label], with the mean and
    variance over every axis but the last (running averages in "batch_stats", used when
    not training), and `gamma`, `beta` rows of `nn.Embed(num_classes, C)` tables
    initialized to ones and zeros, so that at initialization every class gets the
    identity affine.

    Attributes:
      num_classes: number of classes; None or 0 makes this plain `nn.BatchNorm` with a
        learned scale and bias (the unconditional model; `labels` is then ignored).
      momentum: running average decay (flax's convention: running = m running + (1-m) batch).
      epsilon: added to the variance.
      axis_name: axis to average batch statistics over inside `shard_map`/`pmap`.
    """
    num_classes: int | None = None
    momentum: float = 0.9
    epsilon: float = 1e-5
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *,
                 train: bool) -> jax.Array:
        conditional = bool(self.num_classes)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.momentum,
                         epsilon=self.epsilon, use_scale=not conditional,
                         use_bias=not conditional, axis_name=self.axis_name, name="bn")(x)
        if not conditional:
            return x
        if labels is None:
            raise ValueError("ConditionalBatchNorm(num_classes="
                             f"{self.num_classes}) needs labels.")
        c = x.shape[-1]
        gamma = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.ones_init(),
                         name="gamma")(labels)
        beta = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros_init(),
                        name="beta")(labels)
        # [B, C] -> [B, 1, ..., 1, C], to broadcast over the spatial axes.
        shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
        return x * gamma.reshape(shape) + beta.reshape(shape)


class ProjectionHead(nn.Module):
    """The projection term y^T V h: `h [B, F]`, `labels [B]` -> `[B]`.

    V is an `nn.Embed(num_classes, F)` table (row y is class y's direction in feature
    space), spectral-normalized as a `[num_classes, F]` matrix when `spectral_norm`
    (its power-iteration vector in "batch_stats", updated only when training).

    Attributes:
      num_classes: rows of V.
      spectral_norm: wrap the embedding in `nn.SpectralNorm`.
      embedding_init: initializer of V (SNGAN's projection D: Glorot uniform).
    """
    num_classes: int
    spectral_norm: bool = True
    embedding_init: nn.initializers.Initializer = nn.initializers.xavier_uniform()

    @nn.compact
    def __call__(self, h: jax.Array, labels: jax.Array, *, train: bool = False) -> jax.Array:
        embed = nn.Embed(self.num_classes, h.shape[-1], embedding_init=self.embedding_init,
                         name="embed")
        v = dense_or_conv_sn(embed, self.spectral_norm)(labels, train)   # [B, F]
        return jnp.sum(v * h, axis=-1)
