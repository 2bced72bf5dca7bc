"""CycleGAN's ResNet generator (Zhu et al. 2017, appendix 7.2; after Johnson et al.
2016): c7s1-w, d2w, d4w, R4w x n, u2w, uw, c7s1-C.

c7s1-k: a 7x7 convolution of stride 1 with k filters after reflection padding of 3,
instance norm, ReLU; dk: a 3x3 convolution of stride 2, instance norm, ReLU; Rk: a
residual block of two 3x3 convolutions (reflection padding 1) with instance norm, ReLU
between; uk: a 3x3 transposed convolution of stride 2 (doubling the resolution),
instance norm, ReLU. The last c7s1 layer has no norm and ends in tanh. n = 6 blocks for
128 px images, 9 for 256 px. Inputs' sides must be multiples of 4.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from jgan.models.unet import normalization


PADDINGS = ("reflect", "zero")


def reflect(x, pad: int):
    """`[B, H, W, C]` reflection-padded by `pad` pixels on each side of H and W."""
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def padded(x, pad: int, padding: str):
    """`x` padded by `pad` pixels on each side of H and W, by `padding` (`PADDINGS`)."""
    if padding not in PADDINGS:
        raise ValueError(f"padding {padding!r} is not one of {PADDINGS}.")
    if padding == "reflect":
        return reflect(x, pad)
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


class ResidualBlock(nn.Module):
    norm: str = "instance"
    padding: str = "reflect"

    @nn.compact
    def __call__(self, x):
        features = x.shape[-1]
        h = nn.Conv(features, (3, 3), padding="VALID")(padded(x, 1, self.padding))
        h = nn.relu(normalization(self.norm)(h))
        h = nn.Conv(features, (3, 3), padding="VALID")(padded(h, 1, self.padding))
        return x + normalization(self.norm)(h)


class ResnetTranslator(nn.Module):
    """`[B, H, W, C_in]` in [-1, 1] -> `[B, H, W, out_channels]` in [-1, 1].

    Attributes:
      out_channels: channels of the output image.
      width: w, the first layer's filters (CycleGAN: 64).
      num_blocks: n residual blocks (6 at 128 px, 9 at 256 px).
      norm: "instance" (CycleGAN), "batch" or "none".
      padding: "reflect" (CycleGAN) or "zero" (StarGAN; needed for label inputs).
    """
    out_channels: int
    width: int = 64
    num_blocks: int = 9
    norm: str = "instance"
    padding: str = "reflect"

    @nn.compact
    def __call__(self, x):
        if x.shape[1] % 4 or x.shape[2] % 4:
            raise ValueError(f"ResnetTranslator halves the image twice: its "
                             f"{x.shape[1]}x{x.shape[2]} pixels must be multiples of 4.")
        h = nn.Conv(self.width, (7, 7), padding="VALID")(padded(x, 3, self.padding))
        h = nn.relu(normalization(self.norm)(h))
        for k in (2, 4):
            h = nn.Conv(self.width * k, (3, 3), strides=2, padding=1)(h)
            h = nn.relu(normalization(self.norm)(h))
        for _ in range(self.num_blocks):
            h = ResidualBlock(self.norm, self.padding)(h)
        for k in (2, 1):
            h = nn.ConvTranspose(self.width * k, (3, 3), strides=(2, 2), padding="SAME")(h)
            h = nn.relu(normalization(self.norm)(h))
        h = nn.Conv(self.out_channels, (7, 7), padding="VALID")(padded(h, 3, self.padding))
        return jnp.tanh(h)
