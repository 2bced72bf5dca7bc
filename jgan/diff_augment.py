"""Differentiable augmentation for training GANs on small data sets.

DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
Training") augments both the real and the generated images that the discriminator sees,
with transformations differentiable w.r.t. the images, so the generator is trained
through them and the discriminator cannot memorize the few real images. Its policy
groups, drawn per image, for images in [-1, 1] (jgan's scaling, `x / 127.5 - 1`):

* "color": brightness x + U(-0.5, 0.5), then saturation (x - m) U(0, 2) + m about each
  pixel's channel mean m, then contrast (x - m) U(0.5, 1.5) + m about the image mean m;
* "translation": an integer shift of up to 1/8 of the height and width each way,
  uncovered pixels set to 0;
* "cutout": a (H/2 x W/2) rectangle at a random centre set to 0, clipped at the borders.

Adaptive augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data") applies each transformation with a probability p that is
tuned during training from an overfitting heuristic of the discriminator: `diff_augment`
takes p, and `AdaState`, `ada_accumulate` and `ada_adjust` tune it. Here each of
DiffAugment's groups plays the part of one of ADA's (18, in 6 groups) transformations.

Everything is a pure function of a `jax.random` key and the images `[B, H, W, C]`, and
jit-able (`policy` must be static; `probability` may be traced).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "AUGMENTATIONS",
    "AdaState",
    "BRIGHTNESS_RANGE",
    "CONTRAST_RANGE",
    "DEFAULT_POLICY",
    "SATURATION_RANGE",
    "ada_accumulate",
    "ada_adjust",
    "ada_heuristic",
    "ada_init",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "cutout",
    "diff_augment",
    "parse_policy",
    "random_brightness",
    "random_color",
    "random_contrast",
    "random_cutout",
    "random_saturation",
    "random_translation",
    "translate",
]

DEFAULT_POLICY = "color,translation,cutout"

# DiffAugment's ranges for images in [-1, 1], each factor uniform in (low, high).
BRIGHTNESS_RANGE = (-0.5, 0.5)
SATURATION_RANGE = (0.0, 2.0)
CONTRAST_RANGE = (0.5, 1.5)


def _per_image(factors: jax.Array, images: jax.Array) -> jax.Array:
    """`[B]` -> `[B, 1, 1, 1]` in the images' dtype, to broadcast over an image."""
    return jnp.asarray(factors).astype(images.dtype).reshape(-1, 1, 1, 1)


def _check_images(images: jax.Array) -> None:
    if images.ndim != 4:
        raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}.")


# --- The transformations with given parameters ------------------------------------------

def adjust_brightness(images: jax.Array, amounts: jax.Array) -> jax.Array:
    """`images [B, H, W, C]` + `amounts [B]` (one amount per image) -> `[B, H, W, C]`."""
    return images + _per_image(amounts, images)


def adjust_saturation(images: jax.Array, factors: jax.Array) -> jax.Array:
    """Scales each pixel's deviation from its channel mean by `factors [B]`.

    (x - m) f + m with m the mean over C at each pixel: f = 0 is greyscale, f = 1 the
    identity. `images [B, H, W, C]` -> `[B, H, W, C]`.
    """
    mean = jnp.mean(images, axis=-1, keepdims=True)
    return (images - mean) * _per_image(factors, images) + mean


def adjust_contrast(images: jax.Array, factors: jax.Array) -> jax.Array:
    """Scales each image's deviation from its mean by `factors [B]`.

    (x - m) f + m with m the mean over H, W and C of that image: f = 1 is the identity.
    `images [B, H, W, C]` -> `[B, H, W, C]`.
    """
    mean = jnp.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * _per_image(factors, images) + mean


def translate(images: jax.Array, shifts: jax.Array, *,
              fill_value: float = 0.0) -> jax.Array:
    """Moves each image's content by whole pixels: `out[b, i + dy, j + dx] = in[b, i, j]`.

    Args:
      images: `[B, H, W, C]`.
      shifts: `[B, 2]` integers (dy, dx): rows down, columns right.
      fill_value: the value of the pixels that no input pixel moves to.
    Returns:
      `[B, H, W, C]`.
    """
    _check_images(images)
    _, h, w, _ = images.shape

    def shift_one(image, shift):
        src_rows = jnp.arange(h) - shift[0]
        src_cols = jnp.arange(w) - shift[1]
        moved = image[jnp.clip(src_rows, 0, h - 1)][:, jnp.clip(src_cols, 0, w - 1)]
        inside = (((src_rows >= 0) & (src_rows < h))[:, None]
                  & ((src_cols >= 0) & (src_cols < w))[None, :])
        return jnp.where(inside[..., None], moved, jnp.asarray(fill_value, images.dtype))

    return jax.vmap(shift_one)(images, jnp.asarray(shifts, jnp.int32))


def cutout(images: jax.Array, centers: jax.Array, size: tuple[int, int], *,
           fill_value: float = 0.0) -> jax.Array:
    """Sets a `size = (h, w)` rectangle of each image to `fill_value`, clipped at the edges.

    The rectangle of image b covers rows `[cy - h // 2, cy - h // 2 + h)` and columns
    `[cx - w // 2, cx - w // 2 + w)` with `(cy, cx) = centers[b]`.

    Args:
      images: `[B, H, W, C]`.
      centers: `[B, 2]` integers (cy, cx); they may lie anywhere, even outside the image.
      size: the rectangle's (h, w), static.
      fill_value: the value inside the rectangle.
    Returns:
      `[B, H, W, C]`.
    """
    _check_images(images)
    _, height, width, _ = images.shape
    centers = jnp.asarray(centers, jnp.int32)
    rows = jnp.arange(height)[None, :] - (centers[:, :1] - size[0] // 2)  # [B, H]
    cols = jnp.arange(width)[None, :] - (centers[:, 1:] - size[1] // 2)   # [B, W]
    in_rows, in_cols = (rows >= 0) & (rows < size[0]), (cols >= 0) & (cols < size[1])
    square = in_rows[:, :, None, None] & in_cols[:, None, :, None]
    return jnp.where(square, jnp.asarray(fill_value, images.dtype), images)


# --- DiffAugment's random transformations -----------------------------------------------

def _uniform(key: jax.Array, images: jax.Array, bounds: tuple[float, float]) -> jax.Array:
    return jax.random.uniform(key, (images.shape[0],), jnp.float32, *bounds)


def _fraction(size: int, ratio: float) -> int:
    # Rounded to the nearest pixel, as the reference code does (int(size * ratio + 0.5)).
    return int(size * ratio + 0.5)


def random_brightness(key: jax.Array, images: jax.Array) -> jax.Array:
    """`adjust_brightness` by U(-0.5, 0.5) per image. `[B, H, W, C]` -> `[B, H, W, C]`."""
    return adjust_brightness(images, _uniform(key, images, BRIGHTNESS_RANGE))


def random_saturation(key: jax.Array, images: jax.Array) -> jax.Array:
    """`adjust_saturation` by U(0, 2) per image. `[B, H, W, C]` -> `[B, H, W, C]`."""
    return adjust_saturation(images, _uniform(key, images, SATURATION_RANGE))


def random_contrast(key: jax.Array, images: jax.Array) -> jax.Array:
    """`adjust_contrast` by U(0.5, 1.5) per image. `[B, H, W, C]` -> `[B, H, W, C]`."""
    return adjust_contrast(images, _uniform(key, images, CONTRAST_RANGE))


def random_color(key: jax.Array, images: jax.Array) -> jax.Array:
    """DiffAugment's "color": brightness, saturation, contrast, in that order, each drawn
    per image as in `random_brightness` etc. `[B, H, W, C]` -> `[B, H, W, C]`."""
    low, high = jnp.array([BRIGHTNESS_RANGE, SATURATION_RANGE, CONTRAST_RANGE]).T[..., None]
    # One draw of all three: each call of the random generator costs compile time.
    amounts, saturation, contrast = jax.random.uniform(
        key, (3, images.shape[0]), jnp.float32, low, high)
    images = adjust_brightness(images, amounts)
    return adjust_contrast(adjust_saturation(images, saturation), contrast)


def random_translation(key: jax.Array, images: jax.Array, *, ratio: float = 0.125,
                       fill_value: float = 0.0) -> jax.Array:
    """`translate` by integer (dy, dx) drawn uniformly from [-m_y, m_y] x [-m_x, m_x] per
    image, m = round(ratio * (H, W)). `[B, H, W, C]` -> `[B, H, W, C]`."""
    _check_images(images)
    b, h, w, _ = images.shape
    limit = jnp.array([_fraction(h, ratio), _fraction(w, ratio)], jnp.int32)
    shifts = jax.random.randint(key, (b, 2), -limit, limit + 1)
    return translate(images, shifts, fill_value=fill_value)


def random_cutout(key: jax.Array, images: jax.Array, *, ratio: float = 0.5,
                  fill_value: float = 0.0) -> jax.Array:
    """`cutout` of a round(ratio * (H, W)) rectangle at a uniform centre per image.

    The centre's row is drawn from [0, H - (h mod 2)] (columns alike), as in the reference
    code: the rectangle then sticks out of each border by up to half its size, equally
    often on both sides. `[B, H, W, C]` -> `[B, H, W, C]`.
    """
    _check_images(images)
    b, height, width, _ = images.shape
    size = (_fraction(height, ratio), _fraction(width, ratio))
    high = jnp.array([height + 1 - size[0] % 2, width + 1 - size[1] % 2], jnp.int32)
    centers = jax.random.randint(key, (b, 2), 0, high)
    return cutout(images, centers, size, fill_value=fill_value)


#: DiffAugment's policy groups: name -> `fn(key, images) -> images`.
AUGMENTATIONS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "color": random_color,
    "translation": random_translation,
    "cutout": random_cutout,
}


def parse_policy(policy: str) -> tuple[str, ...]:
    """`"color,translation"` -> `("color", "translation")`; `""` -> `()` (no augmentation).

    Raises:
      ValueError: naming a group that is not in `AUGMENTATIONS`.
    """
    groups = tuple(g.strip() for g in policy.split(",") if g.strip())
    unknown = [g for g in groups if g not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"Unknown DiffAugment policy group(s) {unknown} in {policy!r}; "
                         f"known groups: {sorted(AUGMENTATIONS)}.")
    return groups


def diff_augment(key: jax.Array, images: jax.Array, *, policy: str = DEFAULT_POLICY,
                 probability: float | jax.Array = 1.0) -> jax.Array:
    """Applies the policy's groups in order, each to each image with `probability`.

    Each image gets each group independently with probability p (Bernoulli per image and
    group), the parameters drawn per image: p = 1 is DiffAugment (Zhao et al. 2020), p = 0
    returns the images exactly, and a p tuned by `ada_adjust` is ADA's (Karras et al. 2020)
    use of p. The parameters drawn do not depend on p, so for a fixed key an image that
    gets a group gets the same transformation at every p.

    Args:
      key: a `jax.random` key.
      images: `[B, H, W, C]`, in [-1, 1].
      policy: comma-separated groups of `AUGMENTATIONS` (static under jit).
      probability: p in [0, 1]; may be a traced scalar.
    Returns:
      `[B, H, W, C]`, the images' dtype.
    """
    _check_images(images)
    groups = parse_policy(policy)
    if isinstance(probability, (int, float)) and not 0 <= probability <= 1:
        raise ValueError(f"probability must be in [0, 1], got {probability}.")
    if not groups:
        return images
    apply_key, draw_key = jax.random.split(key)
    # uniform < p: never true at p = 0 and always at p = 1, so both ends are exact.
    chosen = jax.random.uniform(apply_key, (len(groups), images.shape[0])) < probability
    for group, group_key, apply in zip(groups, jax.random.split(draw_key, len(groups)),
                                       chosen):
        augmented = AUGMENTATIONS[group](group_key, images)
        images = jnp.where(apply[:, None, None, None], augmented, images)
    return images


# --- ADA's probability controller ------------------------------------------------------

class AdaState(NamedTuple):
    """ADA's augmentation probability and its running overfitting statistics.

    Attributes:
      probability: p, a float32 scalar in [0, 1].
      sign_sum: the sum of sign(D(x_real)) over the logits seen since the last adjustment
        (float32 scalar).
      count: how many logits that sum covers (int32 scalar).
    """
    probability: jax.Array
    sign_sum: jax.Array
    count: jax.Array


def ada_init(probability: float | jax.Array = 0.0) -> AdaState:
    """A state with p = `probability` (ADA starts at 0) and empty statistics."""
    return AdaState(jnp.asarray(probability, jnp.float32), jnp.zeros((), jnp.float32),
                    jnp.zeros((), jnp.int32))


def ada_accumulate(state: AdaState, real_logits: jax.Array) -> AdaState:
    """Adds the signs of the discriminator's logits on a real batch to the statistics.

    Args:
      state: the `AdaState`.
      real_logits: D's raw outputs on real images, any shape (`[B]`, `[B, 1]`, or a patch
        discriminator's `[B, h, w, 1]`); every element counts once.
    Returns:
      The `AdaState` with `sign_sum` and `count` updated, p unchanged.
    """
    signs = jnp.sign(real_logits.astype(jnp.float32))
    return state._replace(sign_sum=state.sign_sum + jnp.sum(signs),
                          count=state.count + signs.size)


def ada_heuristic(state: AdaState) -> jax.Array:
    """r_t = E[sign(D(x_real))] over the accumulated logits (0 when there are none).

    Karras et al. 2020, section 3: r_t = 0 means no overfitting, r_t = 1 complete
    overfitting (D is positive on every training image). A float32 scalar.
    """
    return state.sign_sum / jnp.maximum(state.count, 1).astype(jnp.float32)


def ada_adjust(state: AdaState, *, target: float = 0.6, batch_size: int, interval: int,
               speed_images: int = 500_000) -> AdaState:
    """Raises p while D overfits (r_t > target), lowers it otherwise; resets the statistics.

    p <- clip(p + sign(r_t - target) * batch_size * interval / speed_images, 0, 1) with
    r_t = `ada_heuristic(state)` (Karras et al. 2020, section 3): call it once every
    `interval` discriminator steps (ADA: 4) of `batch_size` real images each; p can then
    go from 0 to 1 in `speed_images` real images (ADA: 500k). Without statistics (count
    0), p is kept. (ADA's official code bounds p below by 0 only; above 1 it acts as 1.)

    Args:
      state: the `AdaState`.
      target: the r_t that ADA holds (0.6 in the paper).
      batch_size: real images per discriminator step.
      interval: discriminator steps between two adjustments.
      speed_images: images for p to cross [0, 1].
    Returns:
      The `AdaState` with the new p and empty statistics.
    """
    step = batch_size * interval / speed_images
    direction = jnp.where(state.count > 0, jnp.sign(ada_heuristic(state) - target), 0.0)
    probability = jnp.clip(state.probability + direction * step, 0.0, 1.0)
    return ada_init(probability.astype(jnp.float32))
