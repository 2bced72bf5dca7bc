"""pix2pix's U-Net generator (Isola et al. 2017, "Image-to-Image Translation with
Conditional Adversarial Networks", appendix 6.1.1).

Encoder C64-C128-C256-C512-C512-...: 4x4 convolutions of stride 2, each halving the
resolution, LeakyReLU(0.2), normalization on all but the first. Decoder: 4x4 transposed
convolutions of stride 2, ReLU, normalization, dropout 0.5 on the first three (the
generator's only noise: the paper found input z ignored, and keeps dropout at test time
too); decoder layer i takes the output of the layer below it concatenated with encoder
layer n - i, the skip connections between mirrored resolutions. A last transposed
convolution to the output channels and tanh. `depth` halvings (8 at 256 px reach 1x1);
the widths double from `width` and stop at `8 * width`.

Normalization: "batch" normalizes with the statistics of the batch at hand, in training
and at test time alike, as pix2pix runs its generator at test time "in exactly the same
manner as during the training phase" (no running averages are kept), or "instance"
(per example and channel, as with pix2pix's batch size of 1), or "none" (StarGAN's
discriminator; a receptive field that statistics over the image do not widen).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMALIZATIONS = ("batch", "instance", "none")


class BatchStatisticsNorm(nn.Module):
    """Normalizes `[B, H, W, C]` by the mean and variance over (B, H, W) of the batch at
    hand, then a learned per-channel scale and bias; keeps no running averages."""
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x):
        mean = jnp.mean(x, axis=(0, 1, 2), keepdims=True)
        var = jnp.var(x, axis=(0, 1, 2), keepdims=True)
        scale = self.param("scale", nn.initializers.ones, (x.shape[-1],))
        bias = self.param("bias", nn.initializers.zeros, (x.shape[-1],))
        return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


def normalization(kind: str):
    """A new normalization layer of `kind` (`NORMALIZATIONS`; "none": the identity)."""
    if kind == "none":
        return lambda x: x
    if kind == "batch":
        return BatchStatisticsNorm()
    if kind == "instance":
        return nn.InstanceNorm(epsilon=1e-5)
    raise ValueError(f"normalization {kind!r} is not one of {NORMALIZATIONS}.")


def widths(width: int, depth: int) -> tuple[int, ...]:
    """The encoder's widths: `width * 2^i`, at most `8 * width`, for `depth` layers."""
    return tuple(min(width * 2 ** i, 8 * width) for i in range(depth))


class UNet(nn.Module):
    """`[B, H, W, C_in]` in [-1, 1] -> `[B, H, W, out_channels]` in [-1, 1]; H and W
    multiples of `2^depth`.

    Attributes:
      out_channels: channels of the output image.
      width: the first encoder layer's channels (pix2pix: 64).
      depth: encoder layers (halvings), >= 2.
      norm: "batch" or "instance" (module docstring).
      dropout: the rate on the first (up to) three decoder layers, in training and at
        test time (pix2pix's noise); 0 turns it off.
    """
    out_channels: int
    width: int = 64
    depth: int = 8
    norm: str = "batch"
    dropout: float = 0.5

    @nn.compact
    def __call__(self, x):
        if x.shape[1] % 2 ** self.depth or x.shape[2] % 2 ** self.depth:
            raise ValueError(f"UNet of depth {self.depth} halves {self.depth} times: the "
                             f"input's {x.shape[1]}x{x.shape[2]} pixels must be multiples "
                             f"of {2 ** self.depth}.")
        skips = []
        for i, features in enumerate(widths(self.width, self.depth)):
            x = nn.Conv(features, (4, 4), strides=2, padding=1, name=f"down{i}")(
                x if i == 0 else nn.leaky_relu(x, 0.2))
            if 0 < i < self.depth - 1:
                x = normalization(self.norm)(x)
            skips.append(x)
        # Decoder: up from the bottleneck; layer j meets encoder layer depth - 2 - j.
        up_widths = widths(self.width, self.depth)[-2::-1]
        for j, features in enumerate(up_widths):
            x = nn.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME",
                                 name=f"up{j}")(nn.relu(x))
            x = normalization(self.norm)(x)
            if j < 3 and self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=False)(x)
            skip = skips[self.depth - 2 - j]
            # (decoder layer, encoder layer, their sides): where each skip joins.
            self.sow("intermediates", "joins", jnp.array(
                [j, self.depth - 2 - j, x.shape[1], skip.shape[1]]))
            x = jnp.concatenate([x, skip], axis=-1)
        out = nn.ConvTranspose(self.out_channels, (4, 4), strides=(2, 2), padding="SAME",
                               name="to_image")(nn.relu(x))
        return jnp.tanh(out)
