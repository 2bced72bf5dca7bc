"""BigBiGAN's discriminator on (x, z) pairs (Donahue & Simonyan 2019, Fig. 1).

  F: x [B, R, R, C] -> h_x [B, width]   the SNGAN ResNet discriminator trunk
  H: z [B, L]       -> h_z [B, H]       an MLP (ReLU)
  J: [h_x, h_z]     -> h_xz [B, J]      an MLP (ReLU)
  scores: s_x = theta_x^T h_x, s_z = theta_z^T h_z, s_xz = theta_xz^T h_xz

as `jgan.objectives.bidirectional.PairScores`. A unary head switched off (`unary_x`,
`unary_z`; both off: BiGAN) is not built and its score is zeros. Spectral norm
(`spectral_norm`) wraps every layer, as in BigGAN's discriminator; its power-iteration
vectors live in "batch_stats" and move only when training.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.layers import dense_or_conv_sn
from jgan.models.resnet import DiscriminatorTrunk, glorot
from jgan.objectives.bidirectional import PairScores


class _MLP(nn.Module):
    hidden: Sequence[int]
    spectral_norm: bool

    @nn.compact
    def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
        for i, width in enumerate(self.hidden):
            layer = nn.Dense(width, kernel_init=glorot, name=f"dense{i}")
            h = nn.relu(dense_or_conv_sn(layer, self.spectral_norm)(h, train))
        return h


class PairDiscriminator(nn.Module):
    """(x `[B, R, R, C]`, z `[B, L]`) -> `PairScores`, each `[B]` (module docstring).

    Attributes:
      width: channels of F's ResNet blocks.
      latent_hidden: widths of H.
      joint_hidden: widths of J.
      spectral_norm: spectral-normalize every layer.
      unary_x, unary_z: build theta_x / theta_z (BigBiGAN); off: that score is 0.
    """
    width: int = 128
    latent_hidden: Sequence[int] = (256, 256)
    joint_hidden: Sequence[int] = (256, 256)
    spectral_norm: bool = True
    unary_x: bool = True
    unary_z: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array, *, train: bool = False) -> PairScores:
        if x.ndim != 4 or z.ndim != 2 or x.shape[0] != z.shape[0]:
            raise ValueError(f"PairDiscriminator needs images [B, H, W, C] and latents [B, L] "
                             f"of one batch, got x {x.shape} and z {z.shape}.")
        sn = lambda layer: dense_or_conv_sn(layer, self.spectral_norm)
        h_x = DiscriminatorTrunk(self.width, self.spectral_norm, name="F")(x, train=train)
        h_z = _MLP(tuple(self.latent_hidden), self.spectral_norm, name="H")(z, train=train)
        h_xz = _MLP(tuple(self.joint_hidden), self.spectral_norm, name="J")(
            jnp.concatenate([h_x, h_z], -1), train=train)
        head = lambda name, h: sn(nn.Dense(1, kernel_init=glorot, name=name))(h, train)[:, 0]
        s_xz = head("theta_xz", h_xz)
        return PairScores(x=head("theta_x", h_x) if self.unary_x else jnp.zeros_like(s_xz),
                          z=head("theta_z", h_z) if self.unary_z else jnp.zeros_like(s_xz),
                          xz=s_xz)
