"""PacGAN packing (Lin, Khetan, Fanti and Oh, "PacGAN: The power of two samples in
generative adversarial networks", NeurIPS 2018): the discriminator judges packs of m
samples, all real or all generated, which penalizes a generator that covers few modes.

A pack is m consecutive samples of the batch joined along the last axis: m images
`[H, W, C]` become one `[H, W, m * C]` (channel-wise, as in the paper), m points
`[D]` one `[m * D]`. Sample j of a pack holds features `j * C : (j + 1) * C`.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.calling import feature_kwargs, train_kwargs


def pack_samples(x: jax.Array, pack: int) -> jax.Array:
    """`[B, ..., C]` -> `[B / pack, ..., pack * C]`: samples `i*pack .. i*pack+pack-1`
    form pack i, joined along the last axis.

    Raises:
      ValueError: `pack < 1`, a scalar per sample, or B not divisible by `pack`.
    """
    if pack < 1:
        raise ValueError(f"pack must be >= 1, got {pack}.")
    if x.ndim < 2:
        raise ValueError(f"pack_samples needs samples with a feature axis, [B, ..., C]; "
                         f"got shape {x.shape}.")
    if x.shape[0] % pack:
        raise ValueError(f"A batch of {x.shape[0]} samples does not split into packs of "
                         f"pack={pack}.")
    x = x.reshape((x.shape[0] // pack, pack) + x.shape[1:])
    x = jnp.moveaxis(x, 1, -2)                      # [B/m, ..., m, C]
    return x.reshape(x.shape[:-2] + (pack * x.shape[-1],))


def unpack_samples(packed: jax.Array, pack: int) -> jax.Array:
    """The inverse of `pack_samples`: `[B / pack, ..., pack * C]` -> `[B, ..., C]`."""
    if pack < 1:
        raise ValueError(f"pack must be >= 1, got {pack}.")
    if packed.shape[-1] % pack:
        raise ValueError(f"{packed.shape[-1]} packed features do not split into "
                         f"pack={pack} samples.")
    x = packed.reshape(packed.shape[:-1] + (pack, packed.shape[-1] // pack))
    x = jnp.moveaxis(x, -2, 1)                      # [B/m, m, ..., C]
    return x.reshape((x.shape[0] * pack,) + x.shape[2:])


class PackedDiscriminator(nn.Module):
    """A discriminator over packs: `[B, ..., C]` -> one logit per pack `[B / pack]`.

    Attributes:
      discriminator: the wrapped network, `[N, ..., pack * C] -> [N]`; its first layer
        sees `pack` times the channels (features) of one sample.
      pack: m, the samples per pack; 1 passes samples through unchanged.
    """
    discriminator: nn.Module
    pack: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, features: bool = False,
                 with_features: bool = False):
        """Logits `[B / pack]`; `features=True` the wrapped trunk's features of each
        pack `[B / pack, F]`, `with_features=True` both from one pass (as the wrapped
        discriminator gives them)."""
        kwargs = {**train_kwargs(self.discriminator, train),
                  **feature_kwargs(self.discriminator, features=features,
                                   with_features=with_features)}
        return self.discriminator(pack_samples(x, self.pack), **kwargs)
