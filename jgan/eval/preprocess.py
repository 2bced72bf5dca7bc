"""Images -> the FID Inception's input: quantize, grayscale to RGB, resize, normalize.

The reference pipeline (clean-fid, Parmar et al. 2022, "On Aliased Resizing and
Surprising Subtleties in GAN Evaluation"; NVIDIA's StyleGAN2-ADA metrics):

1. Generated images are quantized to uint8 as if saved to PNG: :func:`to_uint8`.
2. Grayscale is repeated to three channels (PIL's ``convert('RGB')``).
3. Resize to 299x299 (:func:`resize_for_inception`), float32 in [0, 255]:
   ``"pil_bicubic"`` -- clean-fid's resize: each channel as a float32 ('F' mode) PIL
   image, ``Image.resize(..., BICUBIC)``, then clipped to [0, 255]; or
   ``"tf_bilinear"`` -- the legacy TensorFlow FID (TTUR's ``fid.py``): the graph's own
   ``ResizeBilinear`` (TF1, align_corners=False, half_pixel_centers=False).
4. ``(x - 128) / 128`` (:func:`normalize_for_inception`): the 2015 graph's ``Sub`` and
   ``Mul`` ops, also what NVIDIA's TorchScript port and clean-fid apply. (pytorch-fid's
   ``2 * x / 255 - 1`` differs from it by up to 1/128, at white.)

Resizes are separable matrix products (the 1-D weights computed in numpy exactly as
PIL and TF compute theirs), so they run jitted on the accelerator. Repeating gray to
RGB commutes with the per-channel resize; it is done after the resize (a third of the
work).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jgan.eval.inception import INCEPTION_SIZE

__all__ = ["RESIZE_METHODS", "bicubic_resize_matrix", "gray_to_rgb",
           "legacy_tf_bilinear_resize_matrix", "normalize_for_inception",
           "preprocess_for_inception", "resize_for_inception", "to_uint8"]

RESIZE_METHODS = ("pil_bicubic", "tf_bilinear")

# PIL's bicubic is Keys' cubic convolution with a = -0.5 (Imaging/Resample.c).
_PIL_BICUBIC_A = -0.5
_PIL_BICUBIC_SUPPORT = 2.0


def to_uint8(images) -> jax.Array:
    """Generated images in [-1, 1] -> uint8, as NVIDIA's StyleGAN2-ADA metrics quantize.

    ``uint8 = clip(floor(x * 127.5 + 128), 0, 255)`` (``(img * 127.5 + 128).clamp(0,
    255).to(torch.uint8)`` in ``metrics/metric_utils.py``), i.e. ``(x + 1) * 127.5``
    rounded half up -- the same values torchvision's ``save_image`` writes to PNG.

    Args:
      images: float array, any shape, nominally in [-1, 1] (values outside clip).
    Returns:
      uint8 array of the same shape.
    """
    x = jnp.asarray(images)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise ValueError(f"to_uint8 expects float images in [-1, 1], got dtype {x.dtype}.")
    return jnp.clip(jnp.floor(x.astype(jnp.float32) * 127.5 + 128.0), 0, 255).astype(jnp.uint8)


def gray_to_rgb(images) -> jax.Array:
    """(N, H, W, 1) -> (N, H, W, 3) by repeating the channel; (N, H, W, 3) unchanged."""
    x = jnp.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, C) with C in {{1, 3}}, got {x.shape}.")
    return jnp.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x


def _pil_bicubic_filter(x: np.ndarray) -> np.ndarray:
    a = _PIL_BICUBIC_A
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


def bicubic_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """PIL's 1-D BICUBIC resampling weights, float64 (out_size, in_size).

    As ``precompute_coeffs`` in Pillow's ``Resample.c``: ``scale = in / out``; the
    filter is widened by ``max(scale, 1)`` (antialiasing when shrinking); output pixel
    ``i`` centres at ``(i + 0.5) * scale``, takes input pixels ``[int(c - support + .5),
    int(c + support + .5))`` clipped to the image, weights ``filter((j - c + .5) / fs)``
    normalized to sum to one. Row ``i`` of the result applied to a line gives PIL's
    output pixel ``i``.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}.")
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = _PIL_BICUBIC_SUPPORT * filterscale
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        center = (i + 0.5) * scale
        # C's (int) cast truncates toward zero.
        lo = max(int(center - support + 0.5), 0)
        hi = min(int(center + support + 0.5), in_size)
        taps = np.arange(lo, hi)
        w = _pil_bicubic_filter((taps - center + 0.5) / filterscale)
        total = w.sum()
        weights[i, lo:hi] = w / total if total != 0.0 else w
    return weights


def legacy_tf_bilinear_resize_matrix(in_size: int, out_size: int) -> np.ndarray:
    """TF1 ``ResizeBilinear`` (align_corners=False, half_pixel_centers=False) weights.

    As ``compute_interpolation_weights`` with the legacy scaler in TensorFlow's
    ``resize_bilinear_op.cc``, in float32 like TF: ``scale = in / out``,
    ``src = i * scale``, ``lower = floor(src)``, ``upper = min(ceil(src), in - 1)``,
    ``lerp = src - lower``; output ``i`` = ``(1 - lerp) x[lower] + lerp x[upper]``.
    No antialiasing. Returns float64 (out_size, in_size).
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got in_size={in_size}, out_size={out_size}.")
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.arange(out_size, dtype=np.float32) * scale
    lower_f = np.floor(src)
    lower = lower_f.astype(np.int64)
    upper = np.minimum(np.ceil(src).astype(np.int64), in_size - 1)
    lerp = (src - lower_f).astype(np.float64)
    weights = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    np.add.at(weights, (rows, lower), 1.0 - lerp)
    np.add.at(weights, (rows, upper), lerp)
    return weights


_MATRICES = {"pil_bicubic": bicubic_resize_matrix,
             "tf_bilinear": legacy_tf_bilinear_resize_matrix}


def resize_for_inception(images, method: str = "pil_bicubic",
                         size: tuple[int, int] = (INCEPTION_SIZE, INCEPTION_SIZE)) -> jax.Array:
    """Resize to the network's input size (see the module docstring for the methods).

    Args:
      images: uint8 or float (N, H, W, C), C in {1, 3}, values in [0, 255].
      method: one of :data:`RESIZE_METHODS`.
      size: output (height, width).
    Returns:
      float32 (N, size[0], size[1], 3) in [0, 255]. Horizontal pass first, then
      vertical, as PIL does; ``pil_bicubic`` clips to [0, 255] as clean-fid does.
      Jit-able (the weight matrices are trace-time constants).
    """
    if method not in _MATRICES:
        raise ValueError(f"method must be one of {RESIZE_METHODS}, got {method!r}.")
    x = jnp.asarray(images)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"images must be (N, H, W, C) with C in {{1, 3}}, got {x.shape}.")
    x = x.astype(jnp.float32)
    (_, h, w, _), (out_h, out_w) = x.shape, size
    hp = jax.lax.Precision.HIGHEST
    if w != out_w:
        mw = jnp.asarray(_MATRICES[method](w, out_w), jnp.float32)
        x = jnp.einsum("ow,nhwc->nhoc", mw, x, precision=hp)
    if h != out_h:
        mh = jnp.asarray(_MATRICES[method](h, out_h), jnp.float32)
        x = jnp.einsum("oh,nhwc->nowc", mh, x, precision=hp)
    if method == "pil_bicubic":
        x = jnp.clip(x, 0.0, 255.0)
    return gray_to_rgb(x)


def normalize_for_inception(images) -> jax.Array:
    """[0, 255] -> the network's input range: ``(x - 128) / 128``, float32.

    The 2015-12-05 graph subtracts 128 and multiplies by 1/128 after its resize (so
    uint8 maps to [-1, 0.9921875]); NVIDIA's TorchScript port and clean-fid do the same.
    """
    return (jnp.asarray(images, jnp.float32) - 128.0) / 128.0


def preprocess_for_inception(images, method: str = "pil_bicubic") -> jax.Array:
    """uint8 (N, H, W, C) or float [-1, 1] images -> normalized float32 (N, 299, 299, 3).

    Float inputs are taken as generated images and quantized with :func:`to_uint8`
    first; then :func:`resize_for_inception` and :func:`normalize_for_inception`.
    """
    x = jnp.asarray(images)
    if jnp.issubdtype(x.dtype, jnp.floating):
        x = to_uint8(x)
    elif x.dtype != jnp.uint8:
        raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], got {x.dtype}.")
    return normalize_for_inception(resize_for_inception(x, method))
