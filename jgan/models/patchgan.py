"""pix2pix's PatchGAN discriminator (Isola et al. 2017, section 3.2.2 and appendix 6.1.2).

C64-C128-C256-C512: 4x4 convolutions with padding 1, stride 2 for the first
`num_layers` and stride 1 for the next, LeakyReLU(0.2), normalization on all but the
first; then a 4x4 convolution of stride 1 to one logit per position. Each logit judges
one patch of the input: with `num_layers = 3` the receptive field is 70 x 70 pixels
(`receptive_field`), the paper's choice; 1 gives 16 x 16 and 2 gives 34 x 34, the sizes
for small images. The conditional discriminator of pix2pix sees the input and the
(real or translated) output concatenated along channels.
"""
from __future__ import annotations

import flax.linen as nn

from jgan.models.unet import normalization


def receptive_field(num_layers: int) -> int:
    """The side of the input patch one output logit sees: 4x4 kernels, `num_layers`
    of stride 2 then two of stride 1 (r = 1 + sum_l 3 * prod of the strides before l)."""
    strides = [2] * num_layers + [1, 1]
    field, jump = 1, 1
    for s in strides:
        field += 3 * jump
        jump *= s
    return field


class PatchGAN(nn.Module):
    """`[B, H, W, C]` -> logits `[B, H', W', 1]`, one per patch of `receptive_field`.

    Attributes:
      width: the first layer's channels (pix2pix: 64); doubling, at most 8x.
      num_layers: stride-2 layers (3: the 70 x 70 PatchGAN).
      norm: "batch" or "instance" (`jgan.models.unet.normalization`).
    """
    width: int = 64
    num_layers: int = 3
    norm: str = "batch"

    @nn.compact
    def __call__(self, x):
        for i in range(self.num_layers + 1):
            stride = 2 if i < self.num_layers else 1
            x = nn.Conv(min(self.width * 2 ** i, 8 * self.width), (4, 4), strides=stride,
                        padding=1, name=f"conv{i}")(x)
            if i > 0:
                x = normalization(self.norm)(x)
            x = nn.leaky_relu(x, 0.2)
        return nn.Conv(1, (4, 4), strides=1, padding=1, name="logits")(x)
