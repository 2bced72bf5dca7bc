"""SNGAN / BigGAN ResNet generator and (projection) discriminator for 28, 32, 64 and
128 px images.

The CIFAR-10 architecture of Miyato et al. 2018 (Table 4) with the class conditioning
of Miyato & Koyama 2018: conditional batch norm in the generator's blocks and the
projection term y^T V h in the discriminator. With `num_classes=None` both are the
unconditional SNGAN networks.

  G: z -> dense -> [base, base, width] -> n up-blocks -> BN -> ReLU -> conv3x3 -> tanh
     up-block: CBN -> ReLU -> up2 -> conv3x3 -> CBN -> ReLU -> conv3x3,
               + shortcut conv1x1 -> up2
     32 px: base 4, 3 blocks (SNGAN's CIFAR G); 28 px: base 7, 2 blocks (MNIST-sized).
  D: optimized down-block (conv3x3 -> ReLU -> conv3x3 -> avgpool2, + avgpool2 -> conv1x1),
     down-block, two plain blocks (ReLU -> conv3x3 -> ReLU -> conv3x3, identity
     shortcut), ReLU, global sum pooling -> h [B, width] -> linear -> 1 (+ y^T V h).
     D has no batch norm and takes any even size (28 -> 14 -> 7, 32 -> 16 -> 8).

64 and 128 px are BigGAN's architectures (Brock et al. 2019, Appendix B; the
channel multipliers of BigGAN-PyTorch's G_arch / D_arch, without the self-attention
layer), with ch = width / 4 (at 32 px BigGAN's widths are 4 ch, so `width` keeps its
meaning there: the 32 px networks' width; it must be divisible by 4):

  G: dense -> [4, 4, 16 ch], up-blocks to 8, 16, ... px; block widths
     64 px: ch * (16, 8, 4, 2)        (4 up-blocks; channels 16 ch -> 16 -> 8 -> 4 -> 2 ch)
     128 px: ch * (16, 8, 4, 2, 1)    (5 up-blocks)
     then BN -> ReLU -> conv3x3 -> tanh, as at 32 px. A block whose width changes has
     its 1x1 shortcut map C_in -> C_out (as BigGAN's learnable shortcut).
  D: optimized down-block of ch, then down-blocks, the last block not downsampling:
     64 px: ch * (1, 2, 4, 8, 16), downsample (T, T, T, T, F)        -> 4x4, 16 ch
     128 px: ch * (1, 2, 4, 8, 16, 16), downsample (T, T, T, T, T, F) -> 4x4, 16 ch
     h is then [B, 16 ch] = [B, 4 width]. D picks this layout from the input's size
     (64 or 128); any other size takes the SNGAN layout above.

Upsampling is nearest-neighbour followed by a stride-1 convolution (as in SNGAN), which
also avoids XLA:CPU's slow gradient of a strided transposed convolution. In every
shortcut the 1x1 convolution and the resampling commute (both linear, the bias
included), so the convolution runs on the smaller map: before upsampling, after pooling.
Differences from the Chainer original, kept identically in the PyTorch reference
(`benchmarks/resnet_projection_reference.py`): the generator blocks' first
convolution has no bias, since the batch norm right after it subtracts it again (its
exact gradient is 0, which Adam would turn into noise-driven steps).
Initialization as in SNGAN: Glorot uniform with gain sqrt(2) for the residual
convolutions, gain 1 for shortcuts, dense layers, the output convolution and V.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jgan.models.conditional_layers import ConditionalBatchNorm, ProjectionHead
from jgan.models.layers import dense_or_conv_sn

SUPPORTED_RESOLUTIONS = (28, 32, 64, 128)
# BigGAN's channel multipliers of ch = width / 4 at 64 and 128 px (BigGAN-PyTorch's
# G_arch / D_arch): G's widths from the dense layer's output through every up-block,
# D's blocks' widths (the last block keeps the resolution).
BIGGAN_G_MULTIPLIERS = {64: (16, 16, 8, 4, 2), 128: (16, 16, 8, 4, 2, 1)}
BIGGAN_D_MULTIPLIERS = {64: (1, 2, 4, 8, 16), 128: (1, 2, 4, 8, 16, 16)}
glorot = nn.initializers.xavier_uniform()
glorot_relu = nn.initializers.variance_scaling(2.0, "fan_avg", "uniform")   # gain sqrt(2)


def upsample_nearest(x: jax.Array) -> jax.Array:
    """`[B, H, W, C] -> [B, 2H, 2W, C]`, each pixel repeated in a 2x2 square."""
    b, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
    return x.reshape(b, 2 * h, 2 * w, c)


def avg_pool2(x: jax.Array) -> jax.Array:
    """`[B, H, W, C] -> [B, H/2, W/2, C]`, the mean of each 2x2 square (H, W even)."""
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _biggan_ch(width: int, resolution: int) -> int:
    if width % 4:
        raise ValueError(f"At {resolution} px the ResNet's width is 4 ch (BigGAN's 32 px "
                         f"width): needs a multiple of 4, got {width}.")
    return width // 4


def generator_widths(width: int, resolution: int) -> tuple[int, ...]:
    """Channels of `ResNetGenerator`'s dense output and of each up-block's output, in
    order (the number of up-blocks is one less): `width` repeated at 28 / 32 px,
    BigGAN's multipliers of width / 4 at 64 / 128 px."""
    if resolution in BIGGAN_G_MULTIPLIERS:
        ch = _biggan_ch(width, resolution)
        return tuple(ch * m for m in BIGGAN_G_MULTIPLIERS[resolution])
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(f"ResNetGenerator supports resolutions {SUPPORTED_RESOLUTIONS}, "
                         f"got {resolution}.")
    return (width,) * (3 if resolution == 28 else 4)


def discriminator_layout(width: int, resolution: int) -> tuple[tuple[int, bool, bool], ...]:
    """`(features, downsample, optimized)` of each block of `DiscriminatorTrunk` for
    inputs of `resolution` px: BigGAN's at 64 / 128, SNGAN's (4 blocks of `width`, the
    first two downsampling) at any other size."""
    if resolution in BIGGAN_D_MULTIPLIERS:
        ch = _biggan_ch(width, resolution)
        mults = BIGGAN_D_MULTIPLIERS[resolution]
        return tuple((ch * m, i < len(mults) - 1, i == 0) for i, m in enumerate(mults))
    return ((width, True, True), (width, True, False), (width, False, False),
            (width, False, False))


def _conv(features: int, size: int, init, use_bias: bool = True, *, name: str) -> nn.Conv:
    pad = (size - 1) // 2
    return nn.Conv(features, (size, size), padding=((pad, pad), (pad, pad)),
                   use_bias=use_bias, kernel_init=init, name=name)


class _GeneratorBlock(nn.Module):
    """Up-block: `[B, H, W, C_in]`, `labels [B] | None` -> `[B, 2H, 2W, features]`."""
    features: int
    num_classes: int | None
    bn_axis_name: str | None
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, x, labels, *, train: bool):
        cbn = lambda name: ConditionalBatchNorm(self.num_classes, axis_name=self.bn_axis_name,
                                                name=name)
        sn = lambda layer: dense_or_conv_sn(layer, self.spectral_norm)
        h = nn.relu(cbn("bn1")(x, labels, train=train))
        h = sn(_conv(self.features, 3, glorot_relu, use_bias=False, name="conv1"))(
            upsample_nearest(h), train)
        h = nn.relu(cbn("bn2")(h, labels, train=train))
        h = sn(_conv(self.features, 3, glorot_relu, name="conv2"))(h, train)
        shortcut = sn(_conv(self.features, 1, glorot, name="shortcut"))(x, train)
        return h + upsample_nearest(shortcut)


class ResNetGenerator(nn.Module):
    """z `[B, latent_dim]`, labels `[B]` int32 -> images `[B, R, R, channels]` in [-1, 1].

    Attributes:
      num_classes: classes of conditional batch norm; None for the unconditional G
        (plain batch norm, `labels` ignored).
      width: channels of every block (256 in SNGAN's CIFAR G) at 28 / 32 px; at 64 /
        128 px 4 ch of BigGAN's widths (`generator_widths`).
      latent_dim: size of z.
      resolution: 32 (4x4 start, 3 up-blocks), 28 (7x7 start, 2 up-blocks), 64 or 128
        (4x4 start, 4 or 5 up-blocks of BigGAN's widths).
      channels: output channels.
      bn_axis_name: axis to average batch statistics over inside `shard_map`/`pmap`.
      spectral_norm: spectral-normalize every convolution and the projection, as in
        BigGAN's generator (vectors in "batch_stats", updated only when training).
    """
    num_classes: int | None = None
    width: int = 256
    latent_dim: int = 128
    resolution: int = 32
    channels: int = 3
    bn_axis_name: str | None = None
    spectral_norm: bool = False

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *,
                 train: bool = False) -> jax.Array:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise ValueError(f"ResNetGenerator supports resolutions {SUPPORTED_RESOLUTIONS}, "
                             f"got {self.resolution}.")
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"Expected z of shape [B, {self.latent_dim}], got {z.shape}.")
        if self.num_classes and labels is None:
            raise ValueError(f"ResNetGenerator(num_classes={self.num_classes}) needs labels.")
        base = 7 if self.resolution == 28 else 4
        widths = generator_widths(self.width, self.resolution)
        sn = lambda layer: dense_or_conv_sn(layer, self.spectral_norm)
        x = sn(nn.Dense(base * base * widths[0], kernel_init=glorot, name="project"))(z, train)
        x = x.reshape(z.shape[0], base, base, widths[0])
        for i, features in enumerate(widths[1:]):
            x = _GeneratorBlock(features, self.num_classes, self.bn_axis_name,
                                self.spectral_norm, name=f"block{i}")(x, labels, train=train)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                         axis_name=self.bn_axis_name, name="out_bn")(x)
        x = sn(_conv(self.channels, 3, glorot, name="out_conv"))(nn.relu(x), train)
        return jnp.tanh(x)


class _DiscriminatorBlock(nn.Module):
    """Pre-activation block: `[B, H, W, C_in]` -> `[B, H', W', features]` (H' = H/2 when
    `downsample`). `optimized` is SNGAN's first block, which takes the image: no
    leading ReLU. The shortcut is the identity unless it resamples or changes width."""
    features: int
    downsample: bool
    spectral_norm: bool
    optimized: bool = False

    @nn.compact
    def __call__(self, x, *, train: bool):
        sn = lambda layer: dense_or_conv_sn(layer, self.spectral_norm)
        h = x if self.optimized else nn.relu(x)
        h = sn(_conv(self.features, 3, glorot_relu, name="conv1"))(h, train)
        h = sn(_conv(self.features, 3, glorot_relu, name="conv2"))(nn.relu(h), train)
        if self.downsample:
            h, x = avg_pool2(h), avg_pool2(x)
        if self.downsample or x.shape[-1] != self.features:
            x = sn(_conv(self.features, 1, glorot, name="shortcut"))(x, train)
        return h + x


class DiscriminatorTrunk(nn.Module):
    """`[B, H, W, C]` -> h `[B, F]`: the blocks, ReLU and global sum pooling. F is
    `width` (SNGAN's layout), or 4 `width` for 64 and 128 px inputs (BigGAN's,
    `discriminator_layout`)."""
    width: int
    spectral_norm: bool

    @nn.compact
    def __call__(self, x, *, train: bool):
        layout = discriminator_layout(self.width, x.shape[1])
        for i, (features, down, optimized) in enumerate(layout):
            x = _DiscriminatorBlock(features, down, self.spectral_norm, optimized,
                                    name=f"block{i}")(x, train=train)
        return jnp.sum(nn.relu(x), axis=(1, 2))


class _DiscriminatorHead(nn.Module):
    """h `[B, F]`, labels `[B] | None` -> `[B]`: psi(h) (+ y^T V h with labels)."""
    num_classes: int | None
    spectral_norm: bool

    @nn.compact
    def __call__(self, h, labels, *, train: bool):
        logit = dense_or_conv_sn(nn.Dense(1, kernel_init=glorot, name="logit"),
                                 self.spectral_norm)(h, train)[:, 0]
        if self.num_classes and labels is not None:
            logit = logit + ProjectionHead(self.num_classes, self.spectral_norm,
                                           name="projection")(h, labels, train=train)
        return logit


class ResNetDiscriminator(nn.Module):
    """Images `[B, H, W, C]`, labels `[B]` int32 | None -> logits `[B]`.

    At 64 and 128 px the trunk is BigGAN's and h is `[B, 4 width]` (module docstring).

    logit = psi(h) + y^T V h (Miyato & Koyama 2018, eq. 3), h = `features(x)`; without
    labels (or with `num_classes=None`) logit = psi(h), the unconditional SNGAN D.
    `apply(..., method="features")` or `features=True` returns h `[B, width]`, the trunk to share with an
    auxiliary head (InfoGAN's Q, AC-GAN's classifier).

    Attributes:
      num_classes: rows of the projection embedding V; None for no projection.
      width: channels of every block (128 in SNGAN's CIFAR D); at 64 / 128 px 4 ch of
        BigGAN's widths (`discriminator_layout`).
      spectral_norm: spectral-normalize every convolution, the linear layer and V
        (power-iteration vectors in "batch_stats", updated only when training).
    """
    num_classes: int | None = None
    width: int = 128
    spectral_norm: bool = True

    def setup(self):
        self.trunk = DiscriminatorTrunk(self.width, self.spectral_norm)
        self.head = _DiscriminatorHead(self.num_classes, self.spectral_norm)

    def features(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        """`[B, H, W, C]` -> h `[B, width]`, D's features before its output layers."""
        return self.trunk(x, train=train)

    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *,
                 train: bool = False, features: bool = False, with_features: bool = False):
        """Logits `[B]`; with `features=True` h `[B, width]`, as `features(x)` (the
        keyword every jgan discriminator shares, for ACGAN's and InfoGAN's heads); with
        `with_features=True` `(logits, h)` from one pass of the trunk."""
        h = self.trunk(x, train=train)
        if features:
            return h
        logits = self.head(h, labels, train=train)
        return (logits, h) if with_features else logits
