"""Encoders and decoders of autoencoders and VAEs: convolutional for images, MLPs for 2-D data.

An encoder maps x `[B, ...]` to a code `[B, latent_dim]` or, with `variational=True`,
to the parameters of a diagonal Gaussian posterior q(z | x) = N(mean, diag exp(log_var)):
a pair `(mean, log_var)`, each `[B, latent_dim]`. A decoder maps z `[B, latent_dim]` to
unbounded outputs `[B, ...]` shaped like x, with no output activation: logits of a
Bernoulli likelihood (binarized MNIST) or means of a Gaussian one; the likelihoods
and bounds are in `jgan.objectives.variational`.

The convolutional pair (28 or 32 px, any channels) is the usual strong VAE for
binarized MNIST at this size: the encoder downsamples twice with 4x4 stride-2
convolutions (28 -> 14 -> 7, `width` then 2 * `width` channels, ReLU), then a dense
hidden layer and the dense heads; the decoder mirrors it with a dense projection to a
`resolution / 4` map of 2 * `width` channels and two 4x4 stride-2 transposed
convolutions (`UpsampleConv`, DCGAN's upsampling in its CPU-friendly form).

No normalization layers: batch statistics would make one example's code depend on
its batch, which breaks the per-example bounds (an importance-weighted bound
evaluates one example's decoder on many samples at once). `train` is accepted, and
ignored, for the calling convention the other models share.

Features for a linear probe (`jgan.eval.probe`): the code of an autoencoder, the
posterior mean of a VAE, `[B, latent_dim]`, given by the encoders' `features` method:
`encoder.apply(variables, images, method="features")`. `jgan.eval.probe.encode_source`
feeds images in [-1, 1]; an encoder trained on [0, 1] data maps them first.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from jgan.models.layers import UpsampleConv

Code = jax.Array | tuple[jax.Array, jax.Array]


def _check_resolution(resolution: int, name: str) -> int:
    # Two stride-2 halvings must land on whole pixels: 28 -> 7, 32 -> 8.
    if resolution <= 0 or resolution % 4:
        raise ValueError(f"{name} needs a resolution divisible by 4 (28, 32), got "
                         f"resolution={resolution}.")
    return resolution // 4


def _check_latents(z: jax.Array, name: str) -> None:
    if z.ndim != 2:
        raise ValueError(f"{name} needs latents z of shape [B, latent_dim], got {z.shape}.")


def _heads(h: jax.Array, latent_dim: int, variational: bool) -> Code:
    """The code `[B, latent_dim]`, or `(mean, log_var)` of q(z | x), from features h."""
    if not variational:
        return nn.Dense(latent_dim, name="code")(h)
    # log_var unconstrained: exp(log_var / 2) is the reparameterization's scale.
    return nn.Dense(latent_dim, name="mean")(h), nn.Dense(latent_dim, name="log_var")(h)


def _code_or_mean(outputs: Code) -> jax.Array:
    return outputs[0] if isinstance(outputs, tuple) else outputs


class ConvEncoder(nn.Module):
    """Images `[B, resolution, resolution, C]` -> code `[B, latent_dim]`, or
    `(mean, log_var)` each `[B, latent_dim]` when `variational`.

    conv(width, 4x4, /2)-ReLU-conv(2 width, 4x4, /2)-ReLU-[dense(dense_hidden)-ReLU]-dense.

    Attributes:
      latent_dim: size of the code / of z.
      resolution: image height and width, divisible by 4 (28 or 32).
      width: channels of the first convolution; the second has 2 * width.
      dense_hidden: width of the dense layer after the convolutions, or 0 for none.
      variational: output the Gaussian posterior's (mean, log_var) instead of a code.
    """
    latent_dim: int
    resolution: int = 28
    width: int = 32
    dense_hidden: int = 256
    variational: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> Code:
        del train  # no batch statistics (module docstring)
        _check_resolution(self.resolution, "ConvEncoder")
        if x.ndim != 4 or x.shape[1:3] != (self.resolution, self.resolution):
            raise ValueError(f"ConvEncoder(resolution={self.resolution}) needs images of shape "
                             f"[B, {self.resolution}, {self.resolution}, C], got x {x.shape}.")
        for i, features in enumerate((self.width, 2 * self.width)):
            x = nn.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                        name=f"conv{i}")(x)
            x = nn.relu(x)
        x = x.reshape(x.shape[0], -1)
        if self.dense_hidden:
            x = nn.relu(nn.Dense(self.dense_hidden, name="hidden")(x))
        return _heads(x, self.latent_dim, self.variational)

    def features(self, x: jax.Array) -> jax.Array:
        """Linear-probe features: the code, or the posterior mean, `[B, latent_dim]`."""
        return _code_or_mean(self(x))


class ConvDecoder(nn.Module):
    """z `[B, latent_dim]` -> logits or means `[B, resolution, resolution, channels]`.

    [dense(dense_hidden)-ReLU]-dense(resolution/4 x resolution/4 x 2 width)-ReLU-
    up(width, 4x4, x2)-ReLU-up(channels, 4x4, x2), `up` a transposed convolution
    (`UpsampleConv`); no output activation.

    Attributes:
      resolution: output height and width, divisible by 4 (28 or 32).
      channels: output channels (1 for MNIST, 3 for RGB).
      width: channels of the last hidden map; the first has 2 * width.
      dense_hidden: width of a dense layer between z and the projection, or 0 for none.
    """
    resolution: int = 28
    channels: int = 1
    width: int = 32
    dense_hidden: int = 256

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        del train  # no batch statistics (module docstring)
        base = _check_resolution(self.resolution, "ConvDecoder")
        _check_latents(z, "ConvDecoder")
        if self.dense_hidden:
            z = nn.relu(nn.Dense(self.dense_hidden, name="hidden")(z))
        x = nn.Dense(base * base * 2 * self.width, name="project")(z)
        x = nn.relu(x.reshape(z.shape[0], base, base, 2 * self.width))
        x = nn.relu(UpsampleConv(self.width, name="up0")(x))
        return UpsampleConv(self.channels, name="up1")(x)


class MLPEncoder(nn.Module):
    """x `[B, ...]` (flattened) -> code `[B, latent_dim]`, or `(mean, log_var)` each
    `[B, latent_dim]` when `variational`; ReLU hidden layers.

    Attributes:
      latent_dim: size of the code / of z.
      hidden: widths of the hidden layers.
      variational: output the Gaussian posterior's (mean, log_var) instead of a code.
    """
    latent_dim: int
    hidden: Sequence[int] = (128, 128, 128)
    variational: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> Code:
        del train
        if x.ndim < 2:
            raise ValueError(f"MLPEncoder needs inputs of shape [B, D] (or [B, ...]), got "
                             f"x {x.shape}.")
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden):
            x = nn.relu(nn.Dense(width, name=f"hidden{i}")(x))
        return _heads(x, self.latent_dim, self.variational)

    def features(self, x: jax.Array) -> jax.Array:
        """Linear-probe features: the code, or the posterior mean, `[B, latent_dim]`."""
        return _code_or_mean(self(x))


class MLPDecoder(nn.Module):
    """z `[B, latent_dim]` -> logits or means `[B, output_dim]`; ReLU hidden layers, no
    output activation (reshape for image data).

    Attributes:
      hidden: widths of the hidden layers.
      output_dim: size of x.
    """
    hidden: Sequence[int] = (128, 128, 128)
    output_dim: int = 2

    @nn.compact
    def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
        del train
        _check_latents(z, "MLPDecoder")
        for i, width in enumerate(self.hidden):
            z = nn.relu(nn.Dense(width, name=f"hidden{i}")(z))
        return nn.Dense(self.output_dim, name="output")(z)


class LearnedScale(nn.Module):
    """One learned scalar, log sigma of a Gaussian likelihood N(x; decoder(z), sigma^2 I)
    shared by every dimension: `() -> []` float32, initialized to `initial`.

    Attributes:
      initial: its initial value (0: sigma = 1).
    """
    initial: float = 0.0

    @nn.compact
    def __call__(self) -> jax.Array:
        return self.param("log_scale", nn.initializers.constant(self.initial), (),
                          jax.numpy.float32)
