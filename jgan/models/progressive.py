"""Progressive Growing of GANs (Karras et al. 2018): the paper's generator and
discriminator, grown in resolution stages 4x4 -> 8x8 -> ... -> `resolution`.

The networks follow `G_paper` / `D_paper` of the reference implementation
(tkarras/progressive_growing_of_gans, `networks.py`). Stage `level` works at
2^(level+2) px (level 0 is 4x4); nf(s) = min(channel_base / 2^s, max_channels).

  G: z -> pixel norm -> [4x4 block: dense to 4x4xnf(1), conv3x3]
       -> per level l >= 1: [nearest 2x up, conv3x3, conv3x3], nf(l+1) channels
       -> toRGB_level (1x1 conv, linear)
  D: x -> fromRGB_level (1x1 conv to nf(level+1), leaky ReLU)
       -> per level l >= 1, from `level` down: [conv3x3 to nf(l+1), conv3x3 to nf(l),
          2x2 average pool]
       -> [4x4 block: minibatch stddev, conv3x3 to nf(1), dense to nf(0)] -> dense to 1

Every convolution and dense layer uses the equalized learning rate (N(0, 1) weights
scaled at run time by He's constant) with a zero-initialized bias, and is followed by a
leaky ReLU of slope 0.2, except the linear toRGB and logit layers; G also pixel-normalizes
after every activation.

Fading in (the paper's section 2, figure 2): at `level` with `alpha` in [0, 1], G outputs
(1 - alpha) * up2(toRGB_{level-1}(h_{level-1})) + alpha * toRGB_level(h_level), and D
feeds (1 - alpha) * fromRGB_{level-1}(down2(x)) + alpha * block_level(fromRGB_level(x))
to block_{level-1}. `alpha` is the paper's alpha, the new block's weight (the reference
code's `lod_in - lod` is 1 - alpha); it is a traced value, so a fade changes no
compiled program, while `level` is static (one program per stage). The reference also
fades the real images (`train.py`, `process_reals`: lerp between x and
up2(down2(x)) by 1 - alpha, after downscaling them to the stage's resolution): that is
the training loop's job, with `downscale2d` and `upscale2d` below.

Parameters: every block, toRGB and fromRGB of every level up to `resolution` is created
at init, whatever `level` init is called with, and named by its level (`blocks_{l}`,
`to_rgb_{l}`, `from_rgb_{l}`). The parameter tree is therefore the same at every stage:
moving to the next stage changes only `level`, so optimizer state, EMA weights and
checkpoints carry over unchanged (the reference likewise builds the full-resolution
graph once and switches stages with its `lod` variable). A stage leaves the higher
levels' parameters unused (their gradients are zero).

Output range: as in the paper, images are represented in [-1, 1] and G's last layer is
linear (no tanh): train it against reals in [-1, 1] and clip its samples to that range
when converting them to images.

Differences from the reference, none changing the function computed:
  * NHWC layout. The dense layers at 4x4 keep the reference's channel-major (NCHW)
    order of their 16 * nf(1) units, so their weights map one-to-one.
  * Nearest upsampling then conv3x3 (G) and conv3x3 then 2x2 average pooling, then bias
    and activation (D), in place of the reference's default fused transposed /
    strided convolutions (`fused_scale=True`), which it builds from the same 3x3
    weights as faster equivalents of the separate layers (its fused upsampling stores
    its kernel as [k, k, out, in]). D's unfused reference path (`fused_scale=False`)
    activates before pooling, a different function: this module follows the default.
  * `alpha` is clipped to [0, 1], as the reference's `lerp_clip`, and blended as
    (1 - alpha) a + alpha b, so alpha = 0 gives a and alpha = 1 gives b exactly.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

HE_GAIN = math.sqrt(2.0)
_standard_normal = nn.initializers.normal(1.0)


def _num_levels(resolution: int) -> int:
    """Levels 0 (4x4) .. log2(resolution) - 2."""
    log2 = int(round(math.log2(resolution))) if resolution > 0 else 0
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}.")
    return log2 - 1


def _check_level(level, num_levels: int) -> int:
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(f"level must be a static Python int (mark it static under jit), "
                        f"got {type(level).__name__}.")
    if not 0 <= level < num_levels:
        raise ValueError(f"level must be in [0, {num_levels - 1}] for this resolution, "
                         f"got {level}.")
    return int(level)


def _channels(stage: int, channel_base: int, max_channels: int) -> int:
    """The reference's nf(stage) with fmap_decay = 1."""
    return min(int(channel_base / 2.0 ** stage), max_channels)


def _fade(old: jax.Array, new: jax.Array, alpha) -> jax.Array:
    """(1 - alpha) old + alpha new: exactly `old` at 0 (with a zero gradient into `new`)
    and exactly `new` at 1, where old + (new - old) alpha would round."""
    alpha = jnp.clip(jnp.asarray(alpha, new.dtype), 0.0, 1.0)
    return (1.0 - alpha) * old + alpha * new


def pixel_norm(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Pixelwise feature vector normalization (Karras et al. 2018, section 4.2).

    `[..., C]` -> `[..., C]`: x / sqrt(mean over C of x^2 + eps), so every pixel's
    (or latent's) feature vector has unit mean square.
    """
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def minibatch_stddev(x: jax.Array, group_size: int = 4, num_features: int = 1) -> jax.Array:
    """Minibatch standard deviation (Karras et al. 2018, section 3), as the reference.

    `[B, H, W, C]` -> `[B, H, W, C + num_features]`. The batch is split into groups of
    G = min(group_size, B) examples: example b belongs to group b mod (B / G) (the
    reference's `reshape([G, -1, ...])`). The channels are split into `num_features`
    contiguous slices; each appended feature is the group's standard deviation (sqrt of
    the biased variance + 1e-8), averaged over that slice's channels and all pixels, the
    same value for every member of the group and every pixel. Computed in float32.

    Raises:
      ValueError: G does not divide B, or `num_features` does not divide C.
    """
    b, h, w, c = x.shape
    g = min(group_size, b)
    if g < 1 or b % g:
        raise ValueError(f"minibatch_stddev needs a batch divisible by its group size "
                         f"min(group_size={group_size}, batch={b}) = {g}.")
    if num_features < 1 or c % num_features:
        raise ValueError(f"minibatch_stddev needs channels ({c}) divisible by "
                         f"num_features ({num_features}).")
    y = x.astype(jnp.float32).reshape(g, b // g, h, w, num_features, c // num_features)
    y = y - jnp.mean(y, axis=0, keepdims=True)
    y = jnp.sqrt(jnp.mean(jnp.square(y), axis=0) + 1e-8)        # [M, H, W, n, c/n]
    y = jnp.mean(y, axis=(1, 2, 4))                             # [M, n]
    y = jnp.tile(y, (g, 1)).astype(x.dtype)                     # [B, n]: b -> b mod M
    y = jnp.broadcast_to(y[:, None, None, :], (b, h, w, num_features))
    return jnp.concatenate([x, y], axis=-1)


def upscale2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling `[B, H, W, C]` -> `[B, fH, fW, C]`."""
    b, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, factor, w, factor, c))
    return x.reshape(b, h * factor, w * factor, c)


def downscale2d(x: jax.Array, factor: int = 2) -> jax.Array:
    """Box-filter (average-pool) downsampling `[B, H, W, C]` -> `[B, H/f, W/f, C]`: the
    reference's `downscale2d`, also how real images reach a stage's resolution."""
    b, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"downscale2d by {factor} needs divisible sizes, got {x.shape}.")
    return x.reshape(b, h // factor, factor, w // factor, factor, c).mean(axis=(2, 4))


class EqualizedDense(nn.Module):
    """Dense layer with the equalized learning rate (Karras et al. 2018, section 4.1).

    `[B, in]` -> `[B, features]`. The stored kernel `[in, features]` is drawn from
    N(0, 1) and multiplied at run time by gain / sqrt(in) (He's constant for
    gain = sqrt(2)), so every weight sees the same effective learning rate under Adam;
    the bias starts at zero.

    Attributes:
      features: output units.
      gain: sqrt(2) before a (leaky) ReLU, 1 for a linear output.
      use_bias: add a learned bias.
    """
    features: int
    gain: float = HE_GAIN
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        kernel = self.param("kernel", _standard_normal, (fan_in, self.features), jnp.float32)
        x, kernel = nn.dtypes.promote_dtype(x, kernel)
        y = x @ (kernel * (self.gain / math.sqrt(fan_in)))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,),
                               jnp.float32).astype(y.dtype)
        return y


class EqualizedConv(nn.Module):
    """Stride-1, 'SAME' convolution with the equalized learning rate (Karras et al.
    2018, section 4.1).

    `[B, H, W, C_in]` -> `[B, H, W, features]`. The stored kernel `[k, k, C_in,
    features]` is drawn from N(0, 1) and multiplied at run time by
    gain / sqrt(k * k * C_in); the bias starts at zero.

    Attributes:
      features: output channels.
      kernel_size: odd k (3 for the blocks, 1 for toRGB / fromRGB).
      gain: sqrt(2) before a (leaky) ReLU, 1 for a linear output.
      use_bias: add a learned per-channel bias.
    """
    features: int
    kernel_size: int = 3
    gain: float = HE_GAIN
    use_bias: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k = self.kernel_size
        if k < 1 or k % 2 == 0:
            raise ValueError(f"EqualizedConv needs an odd kernel size, got {k}.")
        fan_in = k * k * x.shape[-1]
        kernel = self.param("kernel", _standard_normal, (k, k, x.shape[-1], self.features),
                            jnp.float32)
        x, kernel = nn.dtypes.promote_dtype(x, kernel)
        pad = ((k // 2, k // 2), (k // 2, k // 2))
        y = jax.lax.conv_general_dilated(x, kernel * (self.gain / math.sqrt(fan_in)),
                                         (1, 1), pad,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros_init(), (self.features,),
                               jnp.float32).astype(y.dtype)
        return y


class _GeneratorInput(nn.Module):
    """G's 4x4 block: z `[B, latent]` -> `[B, 4, 4, features]`."""
    features: int
    normalize_latents: bool
    use_pixel_norm: bool
    leaky_slope: float

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        norm = pixel_norm if self.use_pixel_norm else (lambda v: v)
        if self.normalize_latents:
            z = pixel_norm(z)
        # Gain sqrt(2)/4 and one bias per channel (not per unit) as the reference, which
        # kept the scale of the original Theano code; units are channel-major (NCHW).
        x = EqualizedDense(16 * self.features, gain=HE_GAIN / 4, use_bias=False,
                           name="dense")(z)
        x = x.reshape(z.shape[0], self.features, 4, 4).transpose(0, 2, 3, 1)
        x = x + self.param("dense_bias", nn.initializers.zeros_init(), (self.features,),
                           jnp.float32).astype(x.dtype)
        x = norm(nn.leaky_relu(x, self.leaky_slope))
        x = EqualizedConv(self.features, 3, name="conv")(x)
        return norm(nn.leaky_relu(x, self.leaky_slope))


class _GeneratorBlock(nn.Module):
    """G's block at 2x the input's resolution: `[B, H, W, C]` -> `[B, 2H, 2W, features]`."""
    features: int
    use_pixel_norm: bool
    leaky_slope: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        norm = pixel_norm if self.use_pixel_norm else (lambda v: v)
        x = upscale2d(x)
        for name in ("conv0", "conv1"):
            x = EqualizedConv(self.features, 3, name=name)(x)
            x = norm(nn.leaky_relu(x, self.leaky_slope))
        return x


class ProgressiveGenerator(nn.Module):
    """ProGAN's generator (Karras et al. 2018, table 2): z `[B, latent_dim]` ->
    images `[B, 2^(level+2), 2^(level+2), channels]`, linear output meant for the
    [-1, 1] range (module docstring).

    `__call__(z, *, level, alpha)`: `level` (static int, 0 = 4x4) picks the stage,
    `alpha` (traced, clipped to [0, 1]) fades its new block in (module docstring). All
    levels' parameters exist from init, whatever `level` init gets.

    Attributes:
      resolution: final resolution, a power of two >= 4.
      latent_dim: size of z; None for nf(0) = min(channel_base, max_channels), the
        reference's default.
      max_channels: the reference's `fmap_max`.
      channel_base: the reference's `fmap_base`; level l has nf(l+1) channels.
      channels: image channels (1 or 3).
      normalize_latents: pixel-normalize z first.
      use_pixel_norm: pixel-normalize after every activation.
      leaky_slope: slope of the leaky ReLU.
    """
    resolution: int
    latent_dim: int | None = None
    max_channels: int = 512
    channel_base: int = 8192
    channels: int = 3
    normalize_latents: bool = True
    use_pixel_norm: bool = True
    leaky_slope: float = 0.2

    def setup(self):
        nf = lambda s: _channels(s, self.channel_base, self.max_channels)
        self.blocks = [_GeneratorInput(nf(1), self.normalize_latents, self.use_pixel_norm,
                                       self.leaky_slope)] + [
            _GeneratorBlock(nf(level + 1), self.use_pixel_norm, self.leaky_slope)
            for level in range(1, _num_levels(self.resolution))]
        self.to_rgb = [EqualizedConv(self.channels, 1, gain=1.0)
                       for _ in range(_num_levels(self.resolution))]

    def _check_latents(self, z: jax.Array) -> None:
        latent_dim = self.latent_dim or _channels(0, self.channel_base, self.max_channels)
        if z.ndim != 2 or z.shape[1] != latent_dim:
            raise ValueError(f"ProgressiveGenerator needs z of shape [B, {latent_dim}], "
                             f"got {z.shape}.")

    def features(self, z: jax.Array, *, level: int) -> jax.Array:
        """`[B, latent_dim]` -> the feature map of block `level`, `[B, 2^(level+2),
        2^(level+2), nf(level+1)]` (no fading: the trunk is the same at every alpha)."""
        level = _check_level(level, len(self.blocks))
        self._check_latents(z)
        h = z
        for block in self.blocks[:level + 1]:
            h = block(h)
        return h

    def rgb(self, h: jax.Array, *, level: int) -> jax.Array:
        """toRGB of `level`: `[B, S, S, nf(level+1)]` -> `[B, S, S, channels]`."""
        return self.to_rgb[_check_level(level, len(self.blocks))](h)

    def _create_all(self, z: jax.Array) -> None:
        """Runs every block and toRGB once, so init creates the whole parameter tree."""
        h = z[:1]
        for block, to_rgb in zip(self.blocks, self.to_rgb):
            h = block(h)
            to_rgb(h)

    def __call__(self, z: jax.Array, *, level: int, alpha) -> jax.Array:
        """z `[B, latent_dim]` -> `[B, 2^(level+2), 2^(level+2), channels]`."""
        if self.is_initializing():
            self._create_all(z)
        level = _check_level(level, len(self.blocks))
        if level == 0:
            return self.rgb(self.features(z, level=0), level=0)
        prev = self.features(z, level=level - 1)
        new = self.rgb(self.blocks[level](prev), level=level)
        return _fade(upscale2d(self.rgb(prev, level=level - 1)), new, alpha)


class _DiscriminatorBlock(nn.Module):
    """D's block: `[B, H, W, C]` -> `[B, H/2, W/2, features_out]`."""
    features: int
    features_out: int
    leaky_slope: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.leaky_relu(EqualizedConv(self.features, 3, name="conv0")(x), self.leaky_slope)
        # Pooling before the activation: the reference's default fused conv-downscale
        # (pooling and the bias commute).
        x = downscale2d(EqualizedConv(self.features_out, 3, name="conv1")(x))
        return nn.leaky_relu(x, self.leaky_slope)


class _DiscriminatorOutput(nn.Module):
    """D's 4x4 block: `[B, 4, 4, C]` -> features `[B, dense_features]`."""
    conv_features: int
    dense_features: int
    group_size: int
    num_stddev_features: int
    leaky_slope: float

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.group_size > 1:
            x = minibatch_stddev(x, self.group_size, self.num_stddev_features)
        x = nn.leaky_relu(EqualizedConv(self.conv_features, 3, name="conv")(x),
                          self.leaky_slope)
        # Channel-major flattening, the reference's NCHW order, so its weights map 1:1.
        x = x.transpose(0, 3, 1, 2).reshape(x.shape[0], -1)
        return nn.leaky_relu(EqualizedDense(self.dense_features, name="dense")(x),
                             self.leaky_slope)


class ProgressiveDiscriminator(nn.Module):
    """ProGAN's discriminator (Karras et al. 2018, table 2): images
    `[B, 2^(level+2), 2^(level+2), channels]` -> logits `[B]` (linear, for the paper's
    WGAN-GP loss or any other).

    `__call__(x, *, level, alpha)`: `level` (static int, 0 = 4x4) is the stage, x at its
    resolution; `alpha` (traced, clipped to [0, 1]) fades the new block in (module
    docstring). All levels' parameters exist from init, whatever `level` init gets.
    `features=True` returns the 4x4 block's dense features `[B, nf(0)]` instead, and
    `with_features=True` `(logits, features)`, as jgan's other discriminators.

    Attributes:
      resolution: final resolution, a power of two >= 4.
      max_channels: the reference's `fmap_max`.
      channel_base: the reference's `fmap_base`.
      channels: image channels (1 or 3).
      mbstd_group_size: minibatch stddev group size; 0 or 1 disables the layer.
      mbstd_num_features: stddev channels appended (1 in the paper).
      leaky_slope: slope of the leaky ReLU.
    """
    resolution: int
    max_channels: int = 512
    channel_base: int = 8192
    channels: int = 3
    mbstd_group_size: int = 4
    mbstd_num_features: int = 1
    leaky_slope: float = 0.2

    def setup(self):
        nf = lambda s: _channels(s, self.channel_base, self.max_channels)
        levels = range(_num_levels(self.resolution))
        self.from_rgb = [EqualizedConv(nf(level + 1), 1) for level in levels]
        self.blocks = [_DiscriminatorOutput(nf(1), nf(0), self.mbstd_group_size,
                                            self.mbstd_num_features, self.leaky_slope)] + [
            _DiscriminatorBlock(nf(level + 1), nf(level), self.leaky_slope)
            for level in levels[1:]]
        self.logit = EqualizedDense(1, gain=1.0)

    def _rgb_features(self, x: jax.Array, level: int) -> jax.Array:
        return nn.leaky_relu(self.from_rgb[level](x), self.leaky_slope)

    def _check_images(self, x: jax.Array, level: int) -> None:
        size = 2 ** (level + 2)
        if x.ndim != 4 or x.shape[1:] != (size, size, self.channels):
            raise ValueError(f"ProgressiveDiscriminator at level {level} needs images "
                             f"[B, {size}, {size}, {self.channels}], got {x.shape}.")

    def trunk(self, x: jax.Array, *, level: int, alpha) -> jax.Array:
        """Images at `level`'s resolution -> features `[B, nf(0)]` (before the logit)."""
        level = _check_level(level, len(self.blocks))
        self._check_images(x, level)
        h = self._rgb_features(x, level)
        if level > 0:
            h = _fade(self._rgb_features(downscale2d(x), level - 1), self.blocks[level](h),
                      alpha)
        for lower in range(max(level - 1, 0), -1, -1):
            h = self.blocks[lower](h)
        return h

    def _create_all(self, x: jax.Array) -> None:
        """Runs the full-resolution network and every fromRGB once, so init creates the
        whole parameter tree."""
        top = len(self.blocks) - 1
        full = jnp.zeros((1, self.resolution, self.resolution, self.channels), x.dtype)
        self.logit(self.trunk(full, level=top, alpha=0.5))
        for from_rgb in self.from_rgb:
            from_rgb(full[:, :1, :1])

    def __call__(self, x: jax.Array, *, level: int, alpha, features: bool = False,
                 with_features: bool = False):
        """Logits `[B]` of images `[B, 2^(level+2), 2^(level+2), channels]`."""
        if self.is_initializing():
            self._create_all(x)
        h = self.trunk(x, level=level, alpha=alpha)
        if features:
            return h
        logits = self.logit(h)[:, 0]
        return (logits, h) if with_features else logits
