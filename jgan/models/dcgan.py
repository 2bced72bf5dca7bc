"""DCGAN generator and discriminator (Radford et al. 2016) for 28, 32 and 64 px.

Generator: z -> [optional dense hidden layer, batch norm, ReLU] -> dense projection to
a `base x base` map (7 for 28 px, 4 otherwise), then 2x upsampling blocks
(`UpsampleConv`, batch norm, ReLU), halving the width each
time, to `resolution x resolution x channels` with tanh. Discriminator: 4x4 stride-2
convolutions with LeakyReLU (slope 0.2 by default), doubling the width each time,
optional batch / layer norm (never on the first layer, as in DCGAN) and optional
spectral norm, then
[an optional dense hidden layer with the same normalization] and a dense layer to one
logit per image. The dense hidden layers (`dense_hidden=1024`) make InfoGAN's MNIST
networks (Chen et al. 2016, appendix C.1): FC1024-BN on both sides.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.layers import UpsampleConv, dense_or_conv_sn

SUPPORTED_RESOLUTIONS = (28, 32, 64)
# DCGAN's initialization: N(0, 0.02) weights.
dcgan_init = nn.initializers.normal(0.02)


def _num_upsamplings(resolution: int) -> tuple[int, int]:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"DCGAN supports resolutions {SUPPORTED_RESOLUTIONS}, got {resolution}.")
    base = 7 if resolution == 28 else 4
    n = {28: 2, 32: 3, 64: 4}[resolution]
    return base, n


class DCGANGenerator(nn.Module):
    """z `[B, latent_dim]` -> images `[B, resolution, resolution, channels]` in [-1, 1].

    Attributes:
      resolution: 28, 32 or 64.
      channels: output channels (1 for MNIST, 3 for RGB).
      width: channels of the last hidden map; the first has width * 2^(n-1).
      dense_hidden: width of a dense layer (with batch norm and ReLU) between z and the
        projection, or 0 for none (DCGAN).
      bn_axis_name: axis to average batch statistics over inside `shard_map`/`pmap`
        (not needed under `jit` with sharded arrays).
    """
    resolution: int = 28
    channels: int = 1
    width: int = 64
    dense_hidden: int = 0
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        base, n = _num_upsamplings(self.resolution)
        bn = lambda name: nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                       epsilon=1e-5, axis_name=self.bn_axis_name, name=name)
        features = self.width * 2 ** (n - 1)
        if self.dense_hidden:
            z = nn.Dense(self.dense_hidden, kernel_init=dcgan_init, use_bias=False,
                         name="hidden")(z)
            z = nn.relu(bn("hidden_bn")(z))
        x = nn.Dense(base * base * features, kernel_init=dcgan_init, use_bias=False,
                     name="project")(z)
        x = nn.relu(bn("project_bn")(x.reshape(z.shape[0], base, base, features)))
        for i in range(n - 1):
            features //= 2
            x = UpsampleConv(features, use_bias=False, kernel_init=dcgan_init,
                             name=f"up{i}")(x)
            x = nn.relu(bn(f"up{i}_bn")(x))
        x = UpsampleConv(self.channels, kernel_init=dcgan_init, name=f"up{n - 1}")(x)
        return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
    """Images `[B, H, W, C]` -> one logit per image `[B]`.

    Attributes:
      resolution: 28, 32 or 64 (sets the number of stride-2 convolutions).
      width: channels of the first convolution.
      normalization: "batch" (DCGAN), "layer" (WGAN-GP's advice for critics with a
        gradient penalty) or "none".
      spectral_norm: wrap every convolution and the output layer in `nn.SpectralNorm`
        (Miyato et al. 2018).
      dense_hidden: width of a dense layer (normalized like the convolutions, then
        LeakyReLU) after the last convolution, or 0 for none (DCGAN).
      leaky_slope: LeakyReLU's slope for negative inputs: 0.2 in DCGAN, 0.01 in
        InfoGAN's released code (`leaky_rectify`).
      bn_axis_name: as for the generator.
    """
    resolution: int = 28
    width: int = 64
    normalization: str = "batch"
    spectral_norm: bool = False
    dense_hidden: int = 0
    leaky_slope: float = 0.2
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, features: bool = False,
                 with_features: bool = False):
        """Logits `[B]`. `features=True` returns the trunk's flattened output `[B, F]`
        before the logit layer instead (for ACGAN's and InfoGAN's heads, which share the
        trunk); `with_features=True` returns `(logits, features)` from one pass."""
        if self.normalization not in ("batch", "layer", "none"):
            raise ValueError(f"normalization must be 'batch', 'layer' or 'none', got "
                             f"{self.normalization!r}.")
        if x.shape[1] != self.resolution or x.shape[2] != self.resolution:
            raise ValueError(f"DCGANDiscriminator(resolution={self.resolution}) got images "
                             f"of shape {x.shape}.")
        _, n = _num_upsamplings(self.resolution)
        width = self.width
        for i in range(n):
            batch_norm = i > 0 and self.normalization == "batch"
            # A bias before batch norm is cancelled by its mean subtraction: its exact
            # gradient is 0, which Adam would turn into noise-driven steps.
            conv = nn.Conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                           use_bias=not batch_norm, kernel_init=dcgan_init, name=f"conv{i}")
            x = dense_or_conv_sn(conv, self.spectral_norm)(x, train)
            if batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 axis_name=self.bn_axis_name, name=f"conv{i}_bn")(x)
            elif i > 0 and self.normalization == "layer":
                x = nn.LayerNorm(name=f"conv{i}_ln")(x)
            x = nn.leaky_relu(x, self.leaky_slope)
            width *= 2
        x = x.reshape(x.shape[0], -1)
        if self.dense_hidden:
            use_bn = self.normalization == "batch"
            dense = nn.Dense(self.dense_hidden, use_bias=not use_bn, kernel_init=dcgan_init,
                             name="hidden")
            x = dense_or_conv_sn(dense, self.spectral_norm)(x, train)
            if use_bn:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                 axis_name=self.bn_axis_name, name="hidden_bn")(x)
            elif self.normalization == "layer":
                x = nn.LayerNorm(name="hidden_ln")(x)
            x = nn.leaky_relu(x, self.leaky_slope)
        if features:
            return x
        out = dense_or_conv_sn(nn.Dense(1, kernel_init=dcgan_init, name="logit"),
                               self.spectral_norm)(x, train)
        return (out[:, 0], x) if with_features else out[:, 0]
