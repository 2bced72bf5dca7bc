"""StarGAN's discriminator (Choi et al. 2018, appendix A.2): one trunk, two heads.

Trunk: `num_layers` 4x4 convolutions of stride 2 (padding 1), widths doubling from
`width`, Leaky ReLU(0.01), no normalization. D_src: a 3x3 convolution of stride 1 to one
score per patch (the WGAN critic's output). D_cls: a convolution whose kernel covers the
whole remaining map, to one logit per attribute (multi-label: each attribute its own
sigmoid).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class StarDiscriminator(nn.Module):
    """`[B, H, W, C]` -> `(source scores [B, H', W', 1], attribute logits [B, A])`.

    Attributes:
      num_attributes: A, the domain labels.
      width: the first layer's channels (StarGAN: 64).
      num_layers: stride-2 layers (StarGAN: 6 at 128 px, leaving 2 x 2).
    """
    num_attributes: int
    width: int = 64
    num_layers: int = 6

    @nn.compact
    def __call__(self, x):
        h = x
        for i in range(self.num_layers):
            h = nn.leaky_relu(nn.Conv(self.width * 2 ** i, (4, 4), strides=2, padding=1,
                                      name=f"conv{i}")(h), 0.01)
        source = nn.Conv(1, (3, 3), padding=1, use_bias=False, name="source")(h)
        logits = nn.Conv(self.num_attributes, h.shape[1:3], padding="VALID", use_bias=False,
                         name="attributes")(h)
        return source, jnp.reshape(logits, (x.shape[0], self.num_attributes))
