"""A residual image encoder, ResNet or RevNet (BigBiGAN's encoders, Donahue & Simonyan 2019).

  x [B, R, R, C] -> conv3x3(widths[0]) -> stage 0 -> down -> stage 1 -> ... ->
  GroupNorm -> ReLU -> global average pool -> features [B, widths[-1]] ->
  MLP(head_hidden, ReLU) -> z [B, latent_dim], or (mean, log_var) when stochastic

A stage is `blocks_per_stage` residual blocks at one width: "resnet" blocks
x + F(x) (pre-activation, `revnet.ResidualFunction` over all channels, activations
stored for the backward pass), or one `revnet.ReversibleStack` of reversible blocks
(activations recomputed in the backward pass unless `recompute=False`, so memory stays
flat in depth). `down` halves the resolution (2x2 average pool) and maps to the next
width with a 1x1 convolution. No batch statistics anywhere: an example's code does not
depend on its batch (and recomputation needs pure blocks).

`features` gives the average-pooled trunk output, the readout BigBiGAN's linear
probes take.
"""
from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.resnet import avg_pool2
from jgan.models.revnet import ResidualFunction, ReversibleStack, group_count

BLOCKS = ("resnet", "revnet")


class _ResidualStage(nn.Module):
    """`num_blocks` plain residual blocks x + F(x) at the input's width."""
    num_blocks: int
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.num_blocks):
            x = x + ResidualFunction(x.shape[-1], self.groups, name=f"block{i}")(x)
        return x


class ResidualEncoder(nn.Module):
    """Images `[B, R, R, C]` -> z `[B, latent_dim]` (or `(mean, log_var)`), module docstring.

    Attributes:
      latent_dim: size of z.
      widths: channels of each stage (even, for reversible blocks); R must be divisible
        by 2^(len(widths) - 1).
      blocks_per_stage: residual (or reversible) blocks per stage.
      block: "resnet" or "revnet".
      recompute: revnet: recompute activations in the backward pass.
      stochastic: output the Gaussian posterior's (mean, log_var) instead of z.
      head_hidden: widths of the MLP between the pooled features and z.
    """
    latent_dim: int
    widths: Sequence[int] = (32, 64, 128)
    blocks_per_stage: int = 2
    block: str = "revnet"
    recompute: bool = True
    stochastic: bool = False
    head_hidden: Sequence[int] = (256,)

    def setup(self):
        if self.block not in BLOCKS:
            raise ValueError(f"ResidualEncoder.block must be one of {BLOCKS}, got {self.block!r}.")
        self.stem = nn.Conv(self.widths[0], (3, 3), padding="SAME", name="stem")
        self.downs = [nn.Conv(w, (1, 1), name=f"down{i}") for i, w in enumerate(self.widths[1:])]
        self.stages = [ReversibleStack(self.blocks_per_stage, recompute=self.recompute,
                                       name=f"stage{i}") if self.block == "revnet"
                       else _ResidualStage(self.blocks_per_stage, name=f"stage{i}")
                       for i in range(len(self.widths))]
        self.out_norm = nn.GroupNorm(num_groups=group_count(self.widths[-1]), name="out_norm")
        self.hidden = [nn.Dense(w, name=f"head{i}") for i, w in enumerate(self.head_hidden)]
        self.out = nn.Dense(2 * self.latent_dim if self.stochastic else self.latent_dim,
                            name="out")

    def features(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """The average-pooled trunk output `[B, widths[-1]]`."""
        del train
        scale = 2 ** (len(self.widths) - 1)
        if x.ndim != 4 or x.shape[1] % scale or x.shape[2] % scale:
            raise ValueError(f"ResidualEncoder with {len(self.widths)} stages needs images "
                             f"[B, H, W, C] with H and W divisible by {scale}, got {x.shape}.")
        h = self.stem(x)
        for i, stage in enumerate(self.stages):
            if i:
                h = self.downs[i - 1](avg_pool2(h))
            h = stage(h)
        return jnp.mean(nn.relu(self.out_norm(h)), axis=(1, 2))

    def __call__(self, x: jax.Array, *, train: bool = False):
        h = self.features(x, train=train)
        for layer in self.hidden:
            h = nn.relu(layer(h))
        out = self.out(h)
        if not self.stochastic:
            return out
        mean, log_var = jnp.split(out, 2, axis=-1)
        return mean, log_var

