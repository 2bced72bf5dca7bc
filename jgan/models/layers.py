"""Building blocks shared by the image models."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def depth_to_space(x: jax.Array, block_size: int = 2) -> jax.Array:
    """Rearranges channels into space: `[B, H, W, s*s*C] -> [B, s*H, s*W, C]`.

    Channel `(i * s + j) * C + c` of input pixel (h, w) becomes channel c of output
    pixel (s*h + i, s*w + j).
    """
    b, h, w, c = x.shape
    s = block_size
    if c % (s * s):
        raise ValueError(f"depth_to_space needs channels divisible by {s * s}, got {c}.")
    x = x.reshape(b, h, w, s, s, c // (s * s))
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * s, w * s, c // (s * s))


class UpsampleConv(nn.Module):
    """Exact, CPU-friendly form of DCGAN's 2x upsampling transposed convolution.

    Computes the same function as a 4x4, stride-2, padding-1 transposed convolution
    (PyTorch's `ConvTranspose2d(c_in, c, 4, 2, 1)`, flax's `ConvTranspose` with the
    matching padding) from the same number of weights, as a *stride-1* convolution
    followed by depth-to-space (the sub-pixel view of Shi et al. 2016): each of the 4
    output phases (r_h, r_w) reads a 2x2 input window, so one 2x2 convolution of the
    input padded by 1, to 4*c channels, holds every phase; phase (r_h, r_w) is the
    window starting at offset (r_h, r_w). XLA's CPU gradient of a strided transposed
    convolution is several times slower than that of this stride-1 convolution.

    `transposed_conv_to_subpixel_kernel` converts a transposed convolution's 4x4 kernel
    into this module's 2x2 one.

    Attributes:
      features: output channels c. Input `[B, H, W, c_in]` -> output `[B, 2H, 2W, c]`.
    """
    features: int
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, _ = x.shape
        c = self.features
        # Padding explicitly, not inside the convolution: XLA's CPU backward pass of a
        # 2x2 convolution with padding is an order of magnitude slower.
        x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        y = nn.Conv(4 * c, (2, 2), padding="VALID", use_bias=False,
                    kernel_init=self.kernel_init, name="conv")(x)   # [B, H+1, W+1, 4c]
        y = y.reshape(b, h + 1, w + 1, 2, 2, c)
        phases = [[y[:, rh:rh + h, rw:rw + w, rh, rw] for rw in (0, 1)] for rh in (0, 1)]
        y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=3)  # [B,H,W,2,2,c]
        y = y.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * h, 2 * w, c)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (c,), y.dtype)
        return y


def transposed_conv_to_subpixel_kernel(kernel: np.ndarray) -> np.ndarray:
    """Maps a 4x4, stride-2, padding-1 transposed-convolution kernel to `UpsampleConv`'s.

    With `kernel[kh, kw, c_in, c_out]` acting as (PyTorch's ConvTranspose2d convention,
    per axis) y[o] = sum_i x[i] * kernel[o + 1 - 2i], output phase r = 0 (o = 2m)
    reads inputs (m - 1, m) through taps (3, 1) and phase r = 1 (o = 2m + 1) reads
    (m, m + 1) through taps (2, 0). Returns the `[2, 2, c_in, 4 * c_out]` kernel of
    `UpsampleConv`, whose window for phase r starts at padded offset r.
    """
    kernel = np.asarray(kernel)
    if kernel.shape[:2] != (4, 4):
        raise ValueError(f"Expected a 4x4 kernel, got spatial shape {kernel.shape[:2]}.")
    c_in, c_out = kernel.shape[2:]
    taps = {0: (3, 1), 1: (2, 0)}   # phase -> kernel tap at window positions 0, 1
    out = np.zeros((2, 2, c_in, 2, 2, c_out), kernel.dtype)
    for rh in (0, 1):
        for rw in (0, 1):
            for ph, kh in enumerate(taps[rh]):
                for pw, kw in enumerate(taps[rw]):
                    out[ph, pw, :, rh, rw, :] = kernel[kh, kw]
    return out.reshape(2, 2, c_in, 4 * c_out)


def dense_or_conv_sn(layer: nn.Module, spectral_norm: bool):
    """Wraps `layer` in `nn.SpectralNorm` when asked; returns `f(x, train)`."""
    if not spectral_norm:
        return lambda x, train: layer(x)
    wrapped = nn.SpectralNorm(layer)
    return lambda x, train: wrapped(x, update_stats=train)
