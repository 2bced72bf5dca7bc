"""Style-based generator: StyleGAN (Karras et al. 2019, "A Style-Based Generator
Architecture for GANs") and StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the
Image Quality of StyleGAN"), following NVlabs/stylegan2-ada-pytorch `training/networks.py`.

z `[B, latent_dim]` -> `MappingNetwork` -> w `[B, w_dim]`, broadcast to
ws `[B, num_ws, w_dim]` (one w per layer; style mixing and truncation act here) ->
`SynthesisNetwork` -> images `[B, R, R, img_channels]`.

Synthesis ("skip" generator, StyleGAN2 config E/F without progressive growing): a learned
4x4 constant; at 4x4 one modulated 3x3 convolution, at each larger resolution a 2x
upsampling and two; every convolution is followed by per-pixel noise, a bias and
leaky ReLU(0.2) * sqrt(2). Each resolution has a 1x1 modulated (not demodulated) toRGB
layer; the RGB outputs are upsampled and summed. The toRGB of a resolution shares its w
with the next resolution's first convolution, so `num_ws = 2 log2(R) - 2` (the
reference's `num_ws`: one w per convolution plus one for the last toRGB).

Differences from the reference:

* Upsampling is bilinear (`jax.image.resize`, half-pixel centres, weights renormalized
  at the border) followed by a 3x3 convolution, as StyleGAN's paper describes it. The
  reference fuses a transposed convolution with the [1, 3, 3, 1] FIR filter, which is
  the same bilinear interpolation in the interior but zero-pads at the border.
* Noise strengths are per channel (StyleGAN); StyleGAN2 learns one scalar per layer.
  Both start at zero.
* `noise_mode="const"` uses a fixed N(0, 1) noise image per layer drawn by numpy from a
  constant seed and the layer's index (the reference keeps a random buffer
  `noise_const`): deterministic and stateless. "none" adds no noise.
* No class conditioning (the reference's `c_dim` label embedding), no fp16 or
  `conv_clamp`, no truncation cutoff (every layer is truncated), no tanh on the output
  (images are unbounded, trained against data in [-1, 1]).
* `modulation="adain"` replaces each modulated convolution by StyleGAN's layer (plain
  equalized convolution, noise, bias, leaky ReLU, then AdaIN from w) inside the same
  skip network: StyleGAN's style operation, not its progressively grown generator.

The moving average of w used by truncation is not a parameter: the trainer keeps it
(initially zeros `[w_dim]`, as the reference's `w_avg` buffer) and updates it with
`update_w_avg` on each generator step.
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LEAKY_SLOPE = 0.2
# The reference's `bias_act` gain for lrelu (He et al. 2015): the activation roughly
# halves the second moment, and the gain restores it so that depth does not shrink it.
ACT_GAIN = math.sqrt(2.0)
NOISE_MODES = ("random", "const", "none")
MODULATIONS = ("demodulation", "adain")
_CONST_NOISE_SEED = 20200101


def _lrelu(x: jax.Array) -> jax.Array:
    return nn.leaky_relu(x, LEAKY_SLOPE) * ACT_GAIN


def _conv(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Stride-1 'same' cross-correlation (the reference's `flip_weight=True`)."""
    return jax.lax.conv_general_dilated(x, weight, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def normalize_2nd_moment(x: jax.Array, eps: float = 1e-8) -> jax.Array:
    """Pixel norm over the last axis: `x / sqrt(mean(x^2) + eps)` (StyleGAN's input
    normalization of z; Karras et al. 2018)."""
    return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def block_resolutions(resolution: int) -> list[int]:
    """`[4, 8, ..., resolution]`; `resolution` must be a power of two >= 4."""
    log2 = int(math.log2(resolution)) if resolution > 0 else 0
    if resolution < 4 or 2 ** log2 != resolution:
        raise ValueError(f"resolution must be a power of two >= 4, got {resolution}.")
    return [2 ** i for i in range(2, log2 + 1)]


def num_ws(resolution: int) -> int:
    """Number of ws the synthesis network reads: `2 log2(resolution) - 2` (one per
    modulated convolution, plus the last toRGB's; earlier toRGBs share the next
    convolution's w), the reference's `SynthesisNetwork.num_ws`."""
    return 2 * len(block_resolutions(resolution))


def modulated_conv(x: jax.Array, weight: jax.Array, styles: jax.Array, *,
                   demodulate: bool = True, eps: float = 1e-8,
                   fused: bool = False) -> jax.Array:
    """StyleGAN2's weight (de)modulation (Karras et al. 2020, section 2.2, eq. 1 and 3).

    Per sample b: w'[., ., i, o] = styles[b, i] * weight[., ., i, o], and with
    `demodulate` w'' = w' / sqrt(sum_{kh,kw,i} w'^2 + eps), so that unit-variance iid
    input gives unit-variance output; then a stride-1 'same' correlation with w''.

    Args:
      x: `[B, H, W, Cin]`.
      weight: `[k, k, Cin, Cout]`.
      styles: `[B, Cin]`.
      demodulate: divide by the per-sample output-channel norm (False for toRGB).
      eps: inside the square root, as the reference.
      fused: run one grouped convolution with per-sample weights (the reference's
        `fused_modconv`); otherwise scale the activations before and after a shared
        convolution (its training path), which is the same function and a plain
        batched convolution for XLA.
    Returns:
      `[B, H, W, Cout]`.
    """
    b, _, _, c_in = x.shape
    if weight.ndim != 4 or weight.shape[2] != c_in or styles.shape != (b, c_in):
        raise ValueError(f"modulated_conv: x {x.shape}, weight {weight.shape} and styles "
                         f"{styles.shape} do not agree ([B,H,W,Cin], [k,k,Cin,Cout], [B,Cin]).")
    dcoefs = None
    if demodulate:
        # sum_{k,i} (s_i w_ki)^2 = sum_i s_i^2 sum_k w_ki^2: no [B, k, k, Cin, Cout] tensor.
        dcoefs = jax.lax.rsqrt(jnp.square(styles) @ jnp.sum(jnp.square(weight), (0, 1)) + eps)
    if fused:
        return _grouped_modulated_conv(x, weight, styles, dcoefs)
    y = _conv(x * styles[:, None, None, :], weight)
    return y if dcoefs is None else y * dcoefs[:, None, None, :]


def _grouped_modulated_conv(x, weight, styles, dcoefs):
    """The batch folded into channels and convolved with B groups of per-sample weights."""
    b, h, w, c_in = x.shape
    k, _, _, c_out = weight.shape
    wb = weight[None] * styles[:, None, None, :, None]                  # [B, k, k, Cin, Cout]
    if dcoefs is not None:
        wb = wb * dcoefs[:, None, None, None, :]
    wb = wb.transpose(1, 2, 3, 0, 4).reshape(k, k, c_in, b * c_out)
    xg = x.transpose(1, 2, 0, 3).reshape(1, h, w, b * c_in)
    y = jax.lax.conv_general_dilated(xg, wb, (1, 1), "SAME", feature_group_count=b,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y.reshape(h, w, b, c_out).transpose(2, 0, 1, 3)


def adain(x: jax.Array, scale: jax.Array, bias: jax.Array, *, eps: float = 1e-8) -> jax.Array:
    """Adaptive instance normalization (Huang & Belongie 2017; StyleGAN eq. 1):
    each sample's channels normalized over space, then `scale * x + bias`.

    Args:
      x: `[B, H, W, C]`; scale, bias: `[B, C]` (the style y_s, y_b).
    Returns:
      `[B, H, W, C]` whose channel c of sample b has mean `bias[b, c]` and standard
      deviation `|scale[b, c]|` over space.
    """
    x = x - jnp.mean(x, axis=(1, 2), keepdims=True)
    x = x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=(1, 2), keepdims=True) + eps)
    return x * scale[:, None, None, :] + bias[:, None, None, :]


def upsample_2x(x: jax.Array) -> jax.Array:
    """Bilinear 2x upsampling `[B, H, W, C] -> [B, 2H, 2W, C]` (see the module notes)."""
    b, h, w, c = x.shape
    return jax.image.resize(x, (b, 2 * h, 2 * w, c), "bilinear")


def broadcast_ws(w: jax.Array, n: int) -> jax.Array:
    """`[B, w_dim] -> [B, n, w_dim]`: the same w for every layer."""
    return jnp.broadcast_to(w[:, None, :], (w.shape[0], n, w.shape[-1]))


def mix_styles(ws: jax.Array, mix_ws: jax.Array, cutoff) -> jax.Array:
    """Style mixing regularization (StyleGAN, section 3.1): layers `>= cutoff` take
    `mix_ws`. ws, mix_ws: `[B, L, w_dim]`; cutoff: an int, a scalar array or `[B]`
    (one crossover point per sample). cutoff = 0 gives `mix_ws`, cutoff = L gives `ws`."""
    layer = jnp.arange(ws.shape[1])[None, :]
    keep = layer < jnp.reshape(jnp.asarray(cutoff), (-1, 1))                # [B or 1, L]
    return jnp.where(keep[..., None], ws, mix_ws)


def truncate(ws: jax.Array, w_avg: jax.Array | None, psi) -> jax.Array:
    """The truncation trick in W (StyleGAN, section 3.2 / appendix B):
    `w_avg + psi (w - w_avg)`. ws `[B, L, w_dim]`, w_avg `[w_dim]`, psi a scalar.
    A Python psi of 1 returns ws unchanged (no w_avg needed)."""
    if isinstance(psi, (int, float)) and psi == 1:
        return ws
    if w_avg is None:
        raise ValueError("truncation_psi != 1 needs w_avg (the tracked mean of w).")
    return w_avg + psi * (ws - w_avg)


def update_w_avg(w_avg: jax.Array, ws: jax.Array, decay: float = 0.995) -> jax.Array:
    """The moving average of w for truncation (the reference's `w_avg_beta` update):
    `decay * w_avg + (1 - decay) * mean(ws)`, without gradient.

    Args:
      w_avg: `[w_dim]`, the trainer's state (zeros at the start, as the reference).
      ws: `[B, w_dim]` or `[B, L, w_dim]` from the mapping without mixing or truncation
        (all L rows are then equal); averaged over every axis but the last.
    Returns:
      the new `[w_dim]` average.
    """
    w_mean = jnp.mean(jax.lax.stop_gradient(ws).reshape(-1, ws.shape[-1]), axis=0)
    return w_mean + decay * (w_avg - w_mean)


class EqualizedDense(nn.Module):
    """Dense layer with the equalized learning rate (Karras et al. 2018) and StyleGAN's
    learning-rate multiplier: parameters `kernel ~ N(0, 1/lr^2)` `[in, features]` and
    `bias` (initially `bias_init`) are used as `kernel * lr / sqrt(in)` and `bias * lr`,
    so the effective weights start N(0, 1/in) and move lr times as fast under Adam.
    `[..., in] -> [..., features]`."""
    features: int
    lr_multiplier: float = 1.0
    bias_init: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        fan_in = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(1.0 / self.lr_multiplier),
                            (fan_in, self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.constant(self.bias_init),
                          (self.features,), jnp.float32)
        return x @ (kernel * (self.lr_multiplier / math.sqrt(fan_in))) + bias * self.lr_multiplier


class MappingNetwork(nn.Module):
    """StyleGAN's mapping network f: Z -> W (section 2): pixel-normalized z, then
    `num_layers` equalized dense layers of width `w_dim`, each with leaky ReLU(0.2) *
    sqrt(2), at learning-rate multiplier `lr_multiplier` (0.01 in the paper).
    No class conditioning. z `[B, latent_dim]` -> w `[B, w_dim]`."""
    latent_dim: int
    w_dim: int
    num_layers: int = 8
    lr_multiplier: float = 0.01

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"MappingNetwork(latent_dim={self.latent_dim}) got z {z.shape}.")
        x = normalize_2nd_moment(z.astype(jnp.float32))
        for i in range(self.num_layers):
            x = _lrelu(EqualizedDense(self.w_dim, self.lr_multiplier, name=f"fc{i}")(x))
        return x


def _noise_image(module: nn.Module, shape, noise_mode: str, seed: int) -> jax.Array:
    """Per-pixel N(0, 1) noise `[B or 1, H, W, 1]`, one image shared by all channels."""
    b, h, w, _ = shape
    if noise_mode == "random":
        return jax.random.normal(module.make_rng("noise"), (b, h, w, 1))
    # A trace-time constant (the role of the reference's `noise_const` buffer): drawn
    # with numpy, it costs XLA no random-number kernel to compile.
    rng = np.random.default_rng([_CONST_NOISE_SEED, seed])
    return jnp.asarray(rng.standard_normal((1, h, w, 1)), jnp.float32)


class StyleConv(nn.Module):
    """One synthesis layer: `[B, H, W, Cin]`, w `[B, w_dim]` -> `[B, H, W, features]`.

    "demodulation" (StyleGAN2): `modulated_conv` with styles from an affine map of w
    (bias initialized to 1, as the reference), then noise, bias, leaky ReLU * sqrt(2).
    "adain" (StyleGAN): equalized convolution, noise, bias, leaky ReLU * sqrt(2), then
    `adain` with scale (bias 1) and shift (bias 0) from w. Noise is
    `noise_strength[c] * n[b, h, w]`, n from the "noise" rng stream ("random"), a
    fixed image seeded by `noise_seed` ("const") or absent ("none").
    """
    features: int
    modulation: str = "demodulation"
    kernel_size: int = 3
    noise_seed: int = 0

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array, *, noise_mode: str = "random") -> jax.Array:
        k, c_in = self.kernel_size, x.shape[-1]
        # N(0, 1) storage: demodulation normalizes the scale away, and the AdaIN path
        # applies the equalized-learning-rate factor at run time.
        weight = self.param("weight", nn.initializers.normal(1.0),
                            (k, k, c_in, self.features), jnp.float32)
        if self.modulation == "demodulation":
            x = modulated_conv(x, weight, EqualizedDense(c_in, bias_init=1.0, name="affine")(w))
        else:
            x = _conv(x, weight * (1.0 / math.sqrt(k * k * c_in)))
        # Declared in every mode, so variables from any noise_mode serve all of them.
        strength = self.param("noise_strength", nn.initializers.zeros_init(),
                              (self.features,), jnp.float32)
        if noise_mode != "none":
            x = x + strength * _noise_image(self, x.shape, noise_mode, self.noise_seed)
        x = _lrelu(x + self.param("bias", nn.initializers.zeros_init(), (self.features,),
                                  jnp.float32))
        if self.modulation == "adain":
            scale = EqualizedDense(self.features, bias_init=1.0, name="affine")(w)
            x = adain(x, scale, EqualizedDense(self.features, name="affine_bias")(w))
        return x


class ToRGB(nn.Module):
    """StyleGAN2's toRGB: a 1x1 modulated convolution without demodulation (styles
    times 1/sqrt(Cin), the equalized-learning-rate factor) and a bias, no activation.
    `[B, H, W, Cin]`, w `[B, w_dim]` -> `[B, H, W, channels]`."""
    channels: int

    @nn.compact
    def __call__(self, x: jax.Array, w: jax.Array) -> jax.Array:
        c_in = x.shape[-1]
        weight = self.param("weight", nn.initializers.normal(1.0), (1, 1, c_in, self.channels),
                            jnp.float32)
        styles = EqualizedDense(c_in, bias_init=1.0, name="affine")(w) / math.sqrt(c_in)
        x = modulated_conv(x, weight, styles, demodulate=False)
        return x + self.param("bias", nn.initializers.zeros_init(), (self.channels,), jnp.float32)


class SynthesisNetwork(nn.Module):
    """StyleGAN2's "skip" synthesis network g: ws `[B, num_ws, w_dim]` ->
    images `[B, resolution, resolution, img_channels]` (see the module notes).

    Attributes:
      resolution: a power of two >= 4.
      w_dim: size of each w.
      img_channels: output channels.
      channel_base, channel_max: resolution r has `min(channel_base // r, channel_max)`
        channels (the reference's defaults: 32768 and 512).
      modulation: "demodulation" (StyleGAN2) or "adain" (StyleGAN's AdaIN).
    """
    resolution: int
    w_dim: int
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    modulation: str = "demodulation"

    @property
    def num_ws(self) -> int:
        return num_ws(self.resolution)

    def channels(self, res: int) -> int:
        """Feature channels at resolution `res`."""
        return min(self.channel_base // res, self.channel_max)

    @nn.compact
    def __call__(self, ws: jax.Array, *, noise_mode: str = "random") -> jax.Array:
        self._check(ws, noise_mode)
        conv = lambda c, i, name: StyleConv(c, self.modulation, noise_seed=i, name=name)
        c = self.channels(4)
        const = self.param("const", nn.initializers.normal(1.0), (4, 4, c), jnp.float32)
        x = jnp.broadcast_to(const, (ws.shape[0], 4, 4, c))
        x = conv(c, 0, "b4_conv1")(x, ws[:, 0], noise_mode=noise_mode)
        img = ToRGB(self.img_channels, name="b4_torgb")(x, ws[:, 1])
        for j, res in enumerate(block_resolutions(self.resolution)[1:]):
            i, c = 2 * j + 1, self.channels(res)   # ws[i], ws[i+1]: convs; ws[i+2]: toRGB
            x = conv(c, i, f"b{res}_conv0")(upsample_2x(x), ws[:, i], noise_mode=noise_mode)
            x = conv(c, i + 1, f"b{res}_conv1")(x, ws[:, i + 1], noise_mode=noise_mode)
            img = upsample_2x(img) + ToRGB(self.img_channels, name=f"b{res}_torgb")(x, ws[:, i + 2])
        return img

    def _check(self, ws: jax.Array, noise_mode: str) -> None:
        if self.modulation not in MODULATIONS:
            raise ValueError(f"modulation must be one of {MODULATIONS}, got {self.modulation!r}.")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}.")
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"SynthesisNetwork(resolution={self.resolution}) needs ws of shape "
                             f"[B, {self.num_ws}, {self.w_dim}], got {ws.shape}.")


class StyleGenerator(nn.Module):
    """StyleGAN / StyleGAN2 generator: z `[B, latent_dim]` -> images
    `[B, resolution, resolution, img_channels]` (unbounded; see the module notes).

    `mapping(z, ...)` gives ws `[B, num_ws, w_dim]` (with mixing and truncation),
    `synthesis(ws, noise_mode=...)` the images; `__call__` is both. "random" noise
    needs a "noise" rng: `apply(variables, z, rngs={"noise": key})`, and `init` with
    `{"params": k1, "noise": k2}`. Parameters live under `mapping_network` and
    `synthesis_network`.

    Attributes: as `MappingNetwork` (latent_dim, w_dim, mapping_layers,
    mapping_lr_multiplier) and `SynthesisNetwork` (resolution, img_channels,
    channel_base, channel_max, modulation).
    """
    latent_dim: int = 512
    w_dim: int = 512
    resolution: int = 64
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01
    modulation: str = "demodulation"

    def setup(self):
        self.mapping_network = MappingNetwork(self.latent_dim, self.w_dim, self.mapping_layers,
                                              self.mapping_lr_multiplier)
        self.synthesis_network = SynthesisNetwork(self.resolution, self.w_dim, self.img_channels,
                                                  self.channel_base, self.channel_max,
                                                  self.modulation)

    @property
    def num_ws(self) -> int:
        return num_ws(self.resolution)

    def mapping(self, z: jax.Array, *, truncation_psi=1.0, w_avg: jax.Array | None = None,
                mix_z: jax.Array | None = None, mix_cutoff=None) -> jax.Array:
        """z `[B, latent_dim]` -> ws `[B, num_ws, w_dim]`: w broadcast to every layer;
        with `mix_z` layers `>= mix_cutoff` take mix_z's w (`mix_styles`); then
        `truncate(ws, w_avg, truncation_psi)`."""
        ws = broadcast_ws(self.mapping_network(z), self.num_ws)
        if mix_z is not None:
            if mix_cutoff is None:
                raise ValueError("mix_z needs mix_cutoff (the first layer that takes mix_z's w).")
            ws = mix_styles(ws, broadcast_ws(self.mapping_network(mix_z), self.num_ws), mix_cutoff)
        return truncate(ws, w_avg, truncation_psi)

    def synthesis(self, ws: jax.Array, *, noise_mode: str = "random") -> jax.Array:
        """ws `[B, num_ws, w_dim]` -> images `[B, R, R, img_channels]`."""
        return self.synthesis_network(ws, noise_mode=noise_mode)

    def __call__(self, z: jax.Array, *, truncation_psi=1.0, w_avg: jax.Array | None = None,
                 mix_z: jax.Array | None = None, mix_cutoff=None,
                 noise_mode: str = "random") -> jax.Array:
        """`synthesis(mapping(z, ...), noise_mode=noise_mode)`."""
        ws = self.mapping(z, truncation_psi=truncation_psi, w_avg=w_avg, mix_z=mix_z,
                          mix_cutoff=mix_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)
