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


# Output phase r of a 4x4, stride-2, padding-1 transposed convolution (per axis) as
# (shift, tap) pairs: y[2m + r] = sum over pairs of z[m + shift, tap], where
# z[i, k] = x[i] * kernel[k] is input pixel i's contribution through tap k
# (y[o] = sum_i x[i] kernel[o + 1 - 2i]).
_PHASE_TAPS = {0: ((0, 1), (-1, 3)), 1: ((0, 2), (1, 0))}


def _shift(x: jax.Array, axis: int, shift: int) -> jax.Array:
    """`out[m] = x[m + shift]` along `axis`, zero where `m + shift` is out of range."""
    if shift == 0:
        return x
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    if shift > 0:
        x = jax.lax.slice_in_dim(x, shift, n, axis=axis)
        pad[axis] = (0, shift)
    else:
        x = jax.lax.slice_in_dim(x, 0, n + shift, axis=axis)
        pad[axis] = (-shift, 0)
    return jnp.pad(x, pad)


def overlap_add_4x4_stride2(z: jax.Array) -> jax.Array:
    """The overlap-add (col2im) of a 4x4, stride-2, padding-1 transposed convolution.

    Args:
      z: `[B, H, W, 4, 4, C]`, `z[b, i, j, kh, kw]` the contribution of input pixel
        (i, j) through kernel tap (kh, kw).
    Returns:
      `[B, 2H, 2W, C]`: `y[b, o_h, o_w] = sum z[b, i, j, kh, kw]` over
      `o_h = 2i - 1 + kh`, `o_w = 2j - 1 + kw` (PyTorch's ConvTranspose2d(4, 2, 1)).

    Each output phase (r_h, r_w) is a sum of four shifted tap planes, and the phases
    are interleaved by stacking them next to their spatial axes, so the result is one
    reshape away (no transpose). The 16 tap planes are taken with `lax.split`, whose
    transpose is a concatenation: reverse-mode differentiation then gathers the
    gradient of `z` in one pass, where per-tap slices would transpose into 16 summed
    pads that XLA's CPU backend evaluates an order of magnitude more slowly.
    """
    b, h, w, kh, kw, c = z.shape
    if (kh, kw) != (4, 4):
        raise ValueError(f"Expected 4x4 taps, got z of shape {z.shape}.")
    planes = jax.lax.split(z.reshape(b, h, w, 16, c), [1] * 16, axis=3)
    rows = []
    for rh in (0, 1):
        cols = []
        for rw in (0, 1):
            acc = None
            for sh, th in _PHASE_TAPS[rh]:
                for sw, tw in _PHASE_TAPS[rw]:
                    t = _shift(_shift(planes[4 * th + tw][:, :, :, 0], 1, sh), 2, sw)
                    acc = t if acc is None else acc + t
            cols.append(acc)
        rows.append(jnp.stack(cols, axis=3))          # [B, H, W, 2 (r_w), C]
    return jnp.stack(rows, axis=2).reshape(b, 2 * h, 2 * w, c)   # [B, H, 2, W, 2, C]


def conv_transpose_4x4_stride2(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """4x4, stride-2, padding-1 transposed convolution as one matmul and an overlap-add.

    Computes PyTorch's `ConvTranspose2d(c_in, c_out, 4, 2, 1)` (per axis
    `y[o] = sum_i x[i] kernel[o + 1 - 2i]`), with `kernel[kh, kw, c_in, c_out]`:
    `z = x @ kernel` over channels gives every input pixel's 16 tap contributions,
    `overlap_add_4x4_stride2` sums them into place. The matmul does exactly the
    transposed convolution's multiply-adds, and its gradients are matmuls too, which
    XLA's CPU backend runs far faster than the gradients of a strided (or lhs-dilated)
    convolution.

    Args:
      x: `[B, H, W, c_in]`.
      kernel: `[4, 4, c_in, c_out]`.
    Returns:
      `[B, 2H, 2W, c_out]`.
    """
    b, h, w, c_in = x.shape
    if kernel.shape[:3] != (4, 4, c_in):
        raise ValueError(f"Expected a [4, 4, {c_in}, c_out] kernel, got {kernel.shape}.")
    c_out = kernel.shape[3]
    x2 = x.reshape(b * h * w, c_in)
    if c_in <= 16 * c_out:
        z = jnp.dot(x2, jnp.transpose(kernel, (2, 0, 1, 3)).reshape(c_in, 16 * c_out))
    else:
        # Reverse mode computes the kernel's gradient as x^T dz, a matmul contracting the
        # batch*space axis. XLA:CPU runs it 2-3x faster when its result has no
        # more rows than columns, so for a narrow output (the last layer's c_out = 1 or
        # 3) the kernel enters transposed, [16 c_out, c_in]; the barrier keeps XLA from
        # folding the transposes back into the matmul.
        wmat_t = jax.lax.optimization_barrier(
            jnp.transpose(kernel, (0, 1, 3, 2)).reshape(16 * c_out, c_in))
        z = jax.lax.dot_general(x2, wmat_t, (((1,), (1,)), ((), ())))
    return overlap_add_4x4_stride2(z.reshape(b, h, w, 4, 4, c_out))


def subpixel_to_transposed_conv_kernel(kernel: jax.Array) -> jax.Array:
    """Inverse of `transposed_conv_to_subpixel_kernel` (traceable): `[2, 2, c_in, 4c]`
    sub-pixel kernel -> `[4, 4, c_in, c]` transposed-convolution kernel."""
    _, _, c_in, c4 = kernel.shape
    k = kernel.reshape(2, 2, c_in, 2, 2, c4 // 4)            # [p_h, p_w, c_in, r_h, r_w, c]
    # Tap k = 3 - (2 p + r) along each axis (see transposed_conv_to_subpixel_kernel).
    k = jnp.transpose(k, (0, 3, 1, 4, 2, 5)).reshape(4, 4, c_in, c4 // 4)
    return k[::-1, ::-1]


class _Kernel(nn.Module):
    """Declares one `kernel` parameter (keeps `UpsampleConv`'s `conv/kernel` path)."""
    shape: tuple[int, ...]
    init: nn.initializers.Initializer

    @nn.compact
    def __call__(self) -> jax.Array:
        return self.param("kernel", self.init, self.shape, jnp.float32)


class UpsampleConv(nn.Module):
    """Exact, CPU-friendly form of DCGAN's 2x upsampling transposed convolution.

    Computes the same function as a 4x4, stride-2, padding-1 transposed convolution
    (PyTorch's `ConvTranspose2d(c_in, c, 4, 2, 1)`, flax's `ConvTranspose` with the
    matching padding) from the same number of weights, stored in the sub-pixel form of
    Shi et al. 2016: each of the 4 output phases (r_h, r_w) reads a 2x2 input window, so
    one 2x2 convolution of the input padded by 1, to 4*c channels, holds every phase;
    phase (r_h, r_w) is the window starting at offset (r_h, r_w), and depth-to-space
    interleaves the phases. `transposed_conv_to_subpixel_kernel` converts a transposed
    convolution's 4x4 kernel into this module's `conv/kernel` `[2, 2, c_in, 4c]`.

    Two evaluations of that one function (`implementation`):

    * "matmul" (default): `conv_transpose_4x4_stride2`, one `[B*H*W, c_in] x
      [c_in, 16c]` matmul and an overlap-add. Forward and both gradients are matmuls
      with exactly the transposed convolution's multiply-adds.
    * "subpixel_conv": the stride-1 2x2 convolution followed by phase selection and
      depth-to-space. It computes (H+1)(W+1) windows for H*W outputs per phase, and XLA's
      CPU gradient of a convolution is several times slower than a matmul's.

    Attributes:
      features: output channels c. Input `[B, H, W, c_in]` -> output `[B, 2H, 2W, c]`.
      use_bias: add a learned per-channel bias.
      kernel_init: initializer of the `[2, 2, c_in, 4c]` sub-pixel kernel.
      implementation: "matmul" or "subpixel_conv" (same function and parameters).
    """
    features: int
    use_bias: bool = True
    kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
    implementation: str = "matmul"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.implementation not in ("matmul", "subpixel_conv"):
            raise ValueError(f"implementation must be 'matmul' or 'subpixel_conv', got "
                             f"{self.implementation!r}.")
        b, h, w, c_in = x.shape
        c = self.features
        kernel = _Kernel((2, 2, c_in, 4 * c), self.kernel_init, name="conv")()
        x, kernel = nn.dtypes.promote_dtype(x, kernel)
        if self.implementation == "matmul":
            y = conv_transpose_4x4_stride2(x, subpixel_to_transposed_conv_kernel(kernel))
        else:
            # Padding explicitly, not inside the convolution: XLA's CPU backward pass of
            # a 2x2 convolution with padding is an order of magnitude slower.
            xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            y = jax.lax.conv_general_dilated(xp, kernel, (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            y = y.reshape(b, h + 1, w + 1, 2, 2, c)         # [B, H+1, W+1, 4c]
            phases = [jnp.concatenate([y[:, rh:rh + h, rw:rw + w, rh, rw] for rw in (0, 1)],
                                      axis=-1) for rh in (0, 1)]   # [B, H, W, 2c] each
            y = depth_to_space(jnp.concatenate(phases, axis=-1), 2)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (c,), jnp.float32
                               ).astype(y.dtype)
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
