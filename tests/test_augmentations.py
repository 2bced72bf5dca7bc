"""Style augmentations: exact geometry against numpy, grey morphology against scipy."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from jgan.augmentations import StyleAugmentation, affine_warp, random_affine, stroke_width


def images(b=3, h=9, w=9, c=2, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (b, h, w, c)), jnp.float32)


def identity(b):
    return jnp.tile(jnp.eye(2)[None], (b, 1, 1))


def test_identity_warp_returns_the_images():
    x = images()
    got = jax.jit(affine_warp)(x, identity(3), jnp.zeros((3, 2)))
    np.testing.assert_allclose(got, x, atol=1e-6)


def test_integer_shift_reads_the_shifted_pixel_and_fills_outside():
    x = images()
    shifts = jnp.array([[1.0, 0.0], [0.0, -2.0], [3.0, 1.0]])
    got = np.asarray(affine_warp(x, identity(3), shifts, fill_value=-1.0))
    for b, (dr, dc) in enumerate(np.asarray(shifts, int)):
        want = np.full(x.shape[1:], -1.0, np.float32)
        h, w = x.shape[1:3]
        rows, cols = np.arange(h), np.arange(w)
        src_r, src_c = rows + dr, cols + dc
        ok_r, ok_c = (src_r >= 0) & (src_r < h), (src_c >= 0) & (src_c < w)
        want[np.ix_(ok_r, ok_c)] = np.asarray(x[b])[np.ix_(src_r[ok_r], src_c[ok_c])]
        np.testing.assert_allclose(got[b], want, atol=1e-6)


def test_quarter_turn_about_the_centre_is_numpys_rot90():
    x = images(b=2, h=8, w=8)   # an even size: the centre falls between pixels
    quarter = jnp.tile(jnp.array([[0.0, -1.0], [1.0, 0.0]])[None], (2, 1, 1))
    got = np.asarray(affine_warp(x, quarter, jnp.zeros((2, 2))))
    np.testing.assert_allclose(got, np.rot90(np.asarray(x), k=-1, axes=(1, 2)), atol=1e-5)


def test_half_pixel_shift_averages_neighbours():
    x = images(b=1)
    got = np.asarray(affine_warp(x, identity(1), jnp.array([[0.0, 0.5]])))
    np.testing.assert_allclose(got[0, :, :-1], 0.5 * (x[0, :, :-1] + x[0, :, 1:]), atol=1e-6)


def test_stroke_width_extremes_are_scipys_grey_dilation_and_erosion():
    x = images(b=3)
    got = np.asarray(jax.jit(stroke_width)(x, jnp.array([1.0, -1.0, 0.0])))
    size = (3, 3, 1)   # per channel
    np.testing.assert_allclose(got[0], ndimage.grey_dilation(np.asarray(x[0]), size=size,
                                                             mode="nearest"), atol=1e-6)
    np.testing.assert_allclose(got[1], ndimage.grey_erosion(np.asarray(x[1]), size=size,
                                                            mode="nearest"), atol=1e-6)
    np.testing.assert_allclose(got[2], x[2], atol=1e-6)
    half = np.asarray(stroke_width(x[:1], jnp.array([0.5])))[0]
    np.testing.assert_allclose(half, 0.5 * (np.asarray(x[0]) + got[0]), atol=1e-6)


def test_zero_ranges_are_the_identity_and_any_ranges_keep_the_shape_under_jit():
    x = images()
    none = StyleAugmentation(max_rotation=0, max_shear=0, max_scale=0, max_shift=0,
                             max_stroke=0)
    np.testing.assert_allclose(jax.jit(none)(jax.random.PRNGKey(0), x), x, atol=1e-6)
    out = jax.jit(StyleAugmentation())(jax.random.PRNGKey(0), x)
    chex.assert_shape(out, x.shape)
    chex.assert_tree_all_finite(out)
    # Independent draws per image and per key.
    again = StyleAugmentation()(jax.random.PRNGKey(1), x)
    assert not np.allclose(out, again)


def test_random_affine_preserves_a_constant_image_away_from_the_border():
    # Any affine map of a constant image reads the constant wherever it reads inside.
    x = jnp.full((4, 15, 15, 1), 0.3)
    got = np.asarray(random_affine(jax.random.PRNGKey(0), x, max_rotation=20, max_shear=0.3,
                                   max_scale=0.1, max_shift=1.0, fill_value=-1.0))
    np.testing.assert_allclose(got[:, 5:10, 5:10], 0.3, atol=1e-6)


def test_augmentation_is_differentiable_in_the_images():
    # A shift by one pixel moves each gradient entry to its source pixel.
    x = images(b=1)
    f = lambda x: jnp.sum(affine_warp(x, identity(1), jnp.array([[0.0, 1.0]])))
    grad = np.asarray(jax.grad(f)(x))
    np.testing.assert_allclose(grad[0, :, 1:], 1.0)
    np.testing.assert_allclose(grad[0, :, 0], 0.0)
    g = jax.grad(lambda x: jnp.sum(StyleAugmentation()(jax.random.PRNGKey(0), x) ** 2))(x)
    assert np.abs(np.asarray(g)).sum() > 0


@pytest.mark.parametrize("field,value", [("max_rotation", -1.0), ("max_scale", 1.0),
                                         ("max_stroke", 1.5), ("max_shift", -2.0)])
def test_bad_ranges_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        StyleAugmentation(**{field: value})


def test_images_of_the_wrong_rank_are_named():
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        affine_warp(jnp.zeros((9, 9, 1)), identity(1), jnp.zeros((1, 2)))
