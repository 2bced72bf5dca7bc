"""Random, differentiable image transformations that change a digit's style, not its identity.

Each function maps `images [B, H, W, C]` to a batch of the same shape, transforming each
image on its own (the `random_*` functions and `StyleAugmentation` draw the parameters
per image), and is differentiable with respect to the images (so a loss on the
transformed images trains the network that drew them). They are used by
InfoGAN's augmented information term (`jgan.families.infogan`), which asks Q to recover
the categorical code from transformed samples: a code that encodes slant, size, position
or stroke width is not recoverable from them, a code that encodes the digit is.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class StyleAugmentation:
    """The ranges of the random transformations; each is drawn uniformly per image.

    Attributes:
      max_rotation: rotation angle in [-max_rotation, max_rotation] degrees.
      max_shear: horizontal shear factor in [-max_shear, max_shear] (x += shear * y).
      max_scale: isotropic scale in [1 - max_scale, 1 + max_scale].
      max_shift: translation in [-max_shift, max_shift] pixels along each axis.
      max_stroke: stroke-width change in [-max_stroke, max_stroke]: +1 is a 3x3 grey-level
        dilation (bright strokes thicken), -1 a 3x3 erosion, values between blend the
        image with them.
      fill_value: the value of pixels moved in from outside the image (-1: the black
        background of images scaled to [-1, 1]).
    """
    max_rotation: float = 15.0
    max_shear: float = 0.3
    max_scale: float = 0.1
    max_shift: float = 2.0
    max_stroke: float = 0.5
    fill_value: float = -1.0

    def __post_init__(self):
        for name in ("max_rotation", "max_shear", "max_scale", "max_shift", "max_stroke"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.max_scale >= 1:
            raise ValueError(f"max_scale must be < 1, got {self.max_scale}.")
        if self.max_stroke > 1:
            raise ValueError(f"max_stroke must be <= 1, got {self.max_stroke}.")

    def ranges(self) -> dict[str, float]:
        """The ranges (every field but `fill_value`), as `infogan.info_augmentation` holds them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "fill_value"}

    def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
        """`images [B, H, W, C]` -> the same shape: an affine map, then a stroke change."""
        affine_key, stroke_key = jax.random.split(key)
        out = random_affine(affine_key, images, max_rotation=self.max_rotation,
                            max_shear=self.max_shear, max_scale=self.max_scale,
                            max_shift=self.max_shift, fill_value=self.fill_value)
        if self.max_stroke:
            out = random_stroke_width(stroke_key, out, max_change=self.max_stroke)
        return out


def affine_warp(images: jax.Array, matrices: jax.Array, shifts: jax.Array, *,
                fill_value: float = -1.0) -> jax.Array:
    """Resamples each image at `matrices[b] @ (p - center) + center + shifts[b]`.

    Output pixel p = (row, col) reads the input at that point by bilinear interpolation;
    points outside the image read `fill_value`.

    Args:
      images: `[B, H, W, C]`.
      matrices: `[B, 2, 2]`, acting on (row, col) offsets from the image centre.
      shifts: `[B, 2]` (row, col) offsets in pixels.
      fill_value: value outside the image.
    Returns:
      `[B, H, W, C]`.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}.")
    _, h, w, _ = images.shape
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32),
                              jnp.arange(w, dtype=jnp.float32), indexing="ij")
    center = jnp.array([(h - 1) / 2.0, (w - 1) / 2.0], jnp.float32)
    offsets = jnp.stack([rows, cols], axis=-1) - center  # [H, W, 2]

    def warp_one(image, matrix, shift):
        src = jnp.einsum("ij,hwj->hwi", matrix, offsets) + center + shift  # [H, W, 2]
        sample = lambda channel: jax.scipy.ndimage.map_coordinates(
            channel, [src[..., 0], src[..., 1]], order=1, mode="constant", cval=fill_value)
        return jax.vmap(sample, in_axes=-1, out_axes=-1)(image)

    return jax.vmap(warp_one)(images, matrices, shifts)


def random_affine(key: jax.Array, images: jax.Array, *, max_rotation: float,
                  max_shear: float, max_scale: float, max_shift: float,
                  fill_value: float = -1.0) -> jax.Array:
    """A random rotation, shear, scale and shift per image (see `StyleAugmentation`)."""
    b = images.shape[0]
    k_rot, k_shear, k_scale, k_shift = jax.random.split(key, 4)
    uniform = lambda k, m, shape=(b,): jax.random.uniform(k, shape, jnp.float32, -m, m)
    angle = jnp.deg2rad(uniform(k_rot, max_rotation))
    shear = uniform(k_shear, max_shear)
    scale = 1.0 + uniform(k_scale, max_scale)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    rotation = jnp.stack([jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
    # Shear along columns (a digit's slant): col' = col + shear * row.
    shearing = jnp.stack([jnp.stack([jnp.ones(b), jnp.zeros(b)], -1),
                          jnp.stack([shear, jnp.ones(b)], -1)], -2)
    matrices = rotation @ shearing / scale[:, None, None]
    shifts = uniform(k_shift, max_shift, (b, 2))
    return affine_warp(images, matrices, shifts, fill_value=fill_value)


def stroke_width(images: jax.Array, amounts: jax.Array) -> jax.Array:
    """Thickens (amount > 0) or thins (amount < 0) bright strokes, per image.

    x + a (dilate(x) - x) for a > 0 and x - a (erode(x) - x) for a < 0, with the 3x3 grey
    dilation (max) and erosion (min) of each channel; a = 1 is the dilation itself.

    Args:
      images: `[B, H, W, C]`.
      amounts: `[B]`, each in [-1, 1].
    Returns:
      `[B, H, W, C]`.
    """
    window, strides = (1, 3, 3, 1), (1, 1, 1, 1)
    pads = ((0, 0), (1, 1), (1, 1), (0, 0))
    dilated = jax.lax.reduce_window(images, -jnp.inf, jax.lax.max, window, strides, pads)
    eroded = jax.lax.reduce_window(images, jnp.inf, jax.lax.min, window, strides, pads)
    a = amounts.reshape(-1, 1, 1, 1).astype(images.dtype)
    return (images + jnp.maximum(a, 0.0) * (dilated - images)
            + jnp.maximum(-a, 0.0) * (eroded - images))


def random_stroke_width(key: jax.Array, images: jax.Array, *, max_change: float) -> jax.Array:
    """`stroke_width` with amounts drawn uniformly from [-max_change, max_change]."""
    amounts = jax.random.uniform(key, (images.shape[0],), jnp.float32, -max_change, max_change)
    return stroke_width(images, amounts)
