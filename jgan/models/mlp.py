"""Multilayer perceptrons for low-dimensional data (2-D mixtures)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jgan.models.layers import dense_or_conv_sn


class MLPGenerator(nn.Module):
    """z `[B, latent_dim]` -> x `[B, output_dim]` through ReLU hidden layers."""
    hidden: Sequence[int] = (128, 128, 128)
    output_dim: int = 2

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        x = z
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.output_dim)(x)


class MLPDiscriminator(nn.Module):
    """x `[B, D]` -> one logit per example `[B]`, LeakyReLU(0.2) hidden layers.

    `spectral_norm=True` wraps every dense layer in `nn.SpectralNorm` (one power
    iteration per training call; vectors in the `batch_stats` collection).
    """
    hidden: Sequence[int] = (128, 128, 128)
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, features: bool = False,
                 with_features: bool = False):
        """Logits `[B]`; `features=True` returns the last hidden layer `[B, hidden[-1]]`
        instead, `with_features=True` returns `(logits, features)` from one pass."""
        x = x.reshape(x.shape[0], -1)
        for width in self.hidden:
            x = nn.leaky_relu(_dense(width, self.spectral_norm)(x, train), 0.2)
        if features:
            return x
        logits = _dense(1, self.spectral_norm)(x, train)[:, 0]
        return (logits, x) if with_features else logits


def _dense(width: int, spectral_norm: bool):
    return dense_or_conv_sn(nn.Dense(width), spectral_norm)
