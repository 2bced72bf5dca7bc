"""Tests for jgan.eval.preprocess: the resizes against PIL / the TF1 formula, quantization."""
from __future__ import annotations

import chex
import jax
import numpy as np
import pytest
from PIL import Image

from jgan.eval.preprocess import (
    RESIZE_METHODS,
    bicubic_resize_matrix,
    gray_to_rgb,
    legacy_tf_bilinear_resize_matrix,
    normalize_for_inception,
    preprocess_for_inception,
    resize_for_inception,
    to_uint8,
)


def pil_float_bicubic(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """clean-fid's resize: each channel a float32 ('F') PIL image, BICUBIC, clipped."""
    out = np.empty((len(images), *size, images.shape[-1]), np.float32)
    for n, image in enumerate(images):
        for c in range(image.shape[-1]):
            pil = Image.fromarray(image[..., c].astype(np.float32))
            assert pil.mode == "F"
            resized = pil.resize(size[::-1], Image.Resampling.BICUBIC)
            out[n, ..., c] = np.asarray(resized).clip(0, 255)
    return out


def legacy_tf_bilinear_loop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False), pixel by pixel.

    in = out_index * (in_size / out_size); top/bottom rows and left/right columns are
    floor(in) and min(ceil(in), size - 1); the output lerps columns, then rows.
    """
    h, w, _ = image.shape
    out_h, out_w = size
    sy, sx = np.float32(h) / np.float32(out_h), np.float32(w) / np.float32(out_w)
    out = np.empty((out_h, out_w, image.shape[-1]), np.float64)
    x = image.astype(np.float64)
    for i in range(out_h):
        fy = np.float32(i) * sy
        y0, y1 = int(np.floor(fy)), min(int(np.ceil(fy)), h - 1)
        dy = float(fy - np.floor(fy))
        for j in range(out_w):
            fx = np.float32(j) * sx
            x0, x1 = int(np.floor(fx)), min(int(np.ceil(fx)), w - 1)
            dx = float(fx - np.floor(fx))
            top = x[y0, x0] + (x[y0, x1] - x[y0, x0]) * dx
            bottom = x[y1, x0] + (x[y1, x1] - x[y1, x0]) * dx
            out[i, j] = top + (bottom - top) * dy
    return out


@pytest.mark.parametrize("in_shape,size", [
    ((28, 28, 1), (299, 299)),     # MNIST -> Inception
    ((40, 23, 3), (299, 299)),     # non-square RGB, enlarged
    ((300, 517, 1), (299, 299)),   # shrunk: PIL widens the filter (antialiasing)
    ((7, 5, 1), (13, 29)),         # non-square output, mixed ratios
])
def test_pil_bicubic_matches_pil_float_resize(in_shape, size):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, *in_shape), dtype=np.uint8)
    resize = jax.jit(lambda x: resize_for_inception(x, "pil_bicubic", size))
    got = np.asarray(resize(images))
    want = pil_float_bicubic(images, size)
    chex.assert_shape(got, (2, *size, 3))
    np.testing.assert_allclose(got, np.repeat(want, 3 // in_shape[-1], axis=-1), rtol=0, atol=1e-4)


def test_pil_bicubic_overshoot_is_clipped():
    # A sharp edge makes the cubic ring above 255 and below 0; clean-fid clips.
    image = np.zeros((1, 8, 8, 1), np.uint8)
    image[:, :, 4:] = 255
    got = np.asarray(jax.jit(resize_for_inception)(image))
    assert got.min() == 0.0 and got.max() == 255.0
    np.testing.assert_allclose(got[..., :1], pil_float_bicubic(image, (299, 299)), atol=1e-4)


@pytest.mark.parametrize("in_shape,size", [((28, 28, 1), (299, 299)), ((37, 50, 3), (23, 61))])
def test_tf_bilinear_matches_legacy_formula(in_shape, size):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (1, *in_shape), dtype=np.uint8)
    got = np.asarray(jax.jit(lambda x: resize_for_inception(x, "tf_bilinear", size))(images))
    want = legacy_tf_bilinear_loop(images[0], size)
    np.testing.assert_allclose(got[0], np.repeat(want, 3 // in_shape[-1], axis=-1), atol=1e-4)


@pytest.mark.parametrize("matrix", [bicubic_resize_matrix, legacy_tf_bilinear_resize_matrix])
@pytest.mark.parametrize("n_in,n_out", [(28, 299), (517, 299), (299, 299), (1, 5)])
def test_resize_matrices_preserve_constants(matrix, n_in, n_out):
    m = matrix(n_in, n_out)
    chex.assert_shape(m, (n_out, n_in))
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)
    if n_in == n_out:
        np.testing.assert_allclose(m, np.eye(n_in), atol=1e-12)


def test_gray_to_rgb_repeats_and_is_the_identity_on_rgb():
    gray = np.arange(2 * 4 * 5, dtype=np.uint8).reshape(2, 4, 5, 1)
    rgb = np.asarray(gray_to_rgb(gray))
    chex.assert_shape(rgb, (2, 4, 5, 3))
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray[..., 0])
    np.testing.assert_array_equal(np.asarray(gray_to_rgb(rgb)), rgb)
    with pytest.raises(ValueError, match="C in"):
        gray_to_rgb(np.zeros((1, 4, 4, 2), np.uint8))


def test_to_uint8_rounds_half_up_and_clips():
    k = np.arange(256)
    exact = (k / 127.5 - 1.0).astype(np.float32)              # (x + 1) * 127.5 == k
    below_tie = ((k[:-1] + 0.49) / 127.5 - 1.0).astype(np.float32)
    above_tie = ((k[:-1] + 0.51) / 127.5 - 1.0).astype(np.float32)
    quantize = jax.jit(to_uint8)
    got = np.asarray(quantize(exact))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, k)
    np.testing.assert_array_equal(np.asarray(quantize(below_tie)), k[:-1])
    np.testing.assert_array_equal(np.asarray(quantize(above_tie)), k[:-1] + 1)
    np.testing.assert_array_equal(np.asarray(quantize(np.array([-3.0, 3.0], np.float32))),
                                  [0, 255])
    with pytest.raises(ValueError, match="float"):
        to_uint8(np.zeros(3, np.uint8))


def test_normalize_maps_the_graph_range():
    got = np.asarray(jax.jit(normalize_for_inception)(np.array([0, 128, 255], np.uint8)))
    np.testing.assert_array_equal(got, [-1.0, 0.0, 127.0 / 128.0])


def test_preprocess_quantizes_float_inputs_like_uint8():
    rng = np.random.default_rng(2)
    floats = rng.uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
    prep = jax.jit(preprocess_for_inception)
    from_float = np.asarray(prep(floats))
    from_uint8 = np.asarray(prep(np.asarray(to_uint8(floats))))
    chex.assert_shape(from_float, (2, 299, 299, 3))
    np.testing.assert_array_equal(from_float, from_uint8)
    with pytest.raises(ValueError, match="uint8"):
        preprocess_for_inception(np.zeros((1, 28, 28, 1), np.int32))


def test_bad_arguments_are_named():
    images = np.zeros((1, 28, 28, 1), np.uint8)
    with pytest.raises(ValueError, match="method must be one of"):
        resize_for_inception(images, "nearest")
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        resize_for_inception(np.zeros((28, 28, 1), np.uint8))
    assert set(RESIZE_METHODS) == {"pil_bicubic", "tf_bilinear"}
