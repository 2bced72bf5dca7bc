"""DiffAugment and ADA's controller: each transformation against numpy or an invariant it
must keep, the probability against counts over a large batch, p's steps against the
formula."""
import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import diff_augment as da


# One shape for most tests, so that each jitted function below compiles once for them.
def images(b=256, h=10, w=12, c=3, seed=0, low=-1.0, high=1.0, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, (b, h, w, c)), dtype)


def positive_images(b=256, h=10, w=12, c=3, seed=0):
    """Distinct values in [0.1, 1]: a 0 in an output can only be fill, and every value
    tells where it came from."""
    return images(b, h, w, c, seed, low=0.1, high=1.0)


def np_shift(image, dy, dx, fill):
    """numpy's `translate` of one image: out[i + dy, j + dx] = image[i, j]."""
    h, w = image.shape[:2]
    out = np.full_like(image, fill)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


KEY = jax.random.key(0)
FUNCTIONS = {**da.AUGMENTATIONS, "brightness": da.random_brightness,
             "saturation": da.random_saturation, "contrast": da.random_contrast,
             "diff_augment": da.diff_augment}
# p always passed (traced), so that every call of the default policy shares a compilation.
AUGMENT = jax.jit(da.diff_augment, static_argnames="policy")
JITTED = {**{name: jax.jit(f) for name, f in FUNCTIONS.items()},
          "diff_augment": functools.partial(AUGMENT, probability=1.0)}


# --- diff_augment as a whole ------------------------------------------------------------

def test_probability_zero_is_exactly_the_identity():
    x = images()
    chex.assert_trees_all_equal(AUGMENT(KEY, x, probability=0.0), x)


def test_empty_policy_is_the_identity_and_unknown_groups_are_named():
    x = images()
    chex.assert_trees_all_equal(da.diff_augment(KEY, x, policy=""), x)
    assert da.parse_policy(" color , cutout ") == ("color", "cutout")
    with pytest.raises(ValueError, match=r"'rotation'.*known groups"):
        da.diff_augment(KEY, x, policy="color,rotation")
    with pytest.raises(ValueError, match="probability"):
        da.diff_augment(KEY, x, probability=1.5)


# bfloat16 through diff_augment only: a group that promoted it would promote the output.
CASES = [*((name, jnp.float32) for name in sorted(FUNCTIONS)),
         ("diff_augment", jnp.bfloat16)]


@pytest.mark.parametrize("name,dtype", CASES)
def test_shape_and_dtype_are_kept(name, dtype):
    x = images(dtype=dtype)
    out = JITTED[name](KEY, x)
    chex.assert_shape(out, x.shape)
    chex.assert_type(out, dtype)


def test_same_key_same_output_other_key_other_output():
    x = images()
    augment = JITTED["diff_augment"]
    chex.assert_trees_all_equal(augment(KEY, x), augment(jax.random.key(0), x))
    assert not np.array_equal(augment(KEY, x), augment(jax.random.key(1), x))


@pytest.mark.parametrize("name", [*da.AUGMENTATIONS, "diff_augment"])
def test_gradients_wrt_the_images_are_finite_and_nonzero(name):
    x = images()
    weights = images(seed=1)
    loss = lambda x: jnp.sum(FUNCTIONS[name](KEY, x) * weights)
    grad = jax.jit(jax.grad(loss))(x)
    assert np.all(np.isfinite(grad))
    assert np.any(grad != 0)


def test_each_group_reaches_about_half_the_images_at_p_half_with_one_trace():
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)  # p is traced: ADA changes it without recompiling
    def augment(key, x, p):
        return da.diff_augment(key, x, policy="color,cutout", probability=p)

    x = positive_images(b=4000, h=4, w=4)
    xs = np.asarray(x)
    always, half = np.asarray(augment(KEY, x, 1.0)), np.asarray(augment(KEY, x, 0.5))

    def groups_applied(out):
        cut = np.all(out == 0, axis=-1, keepdims=True)  # the inputs have no zeros
        return cut.any(axis=(1, 2, 3)), np.any((out != xs) & ~cut, axis=(1, 2, 3))

    assert all(np.all(applied) for applied in groups_applied(always))
    cutout, color = groups_applied(half)
    assert abs(cutout.mean() - 0.5) < 0.04 and abs(color.mean() - 0.5) < 0.04  # 5 sigma
    assert abs((cutout & color).mean() - 0.25) < 0.04  # independently: p^2
    # An image that got both got what p = 1 gives it: the draws do not depend on p.
    np.testing.assert_array_equal(half[cutout & color], always[cutout & color])
    np.testing.assert_array_equal(half[~cutout & ~color], xs[~cutout & ~color])
    chex.assert_trees_all_equal(augment(KEY, x, 0.0), x)


# --- colour -----------------------------------------------------------------------------

def test_brightness_shifts_every_pixel_and_the_mean_by_one_drawn_amount():
    x = images()
    delta = np.asarray(JITTED["brightness"](KEY, x) - x)
    amount = delta[:, 0, 0, 0]
    np.testing.assert_allclose(delta, np.broadcast_to(amount[:, None, None, None], x.shape),
                               atol=1e-6)
    out_mean = np.asarray(jnp.mean(x + delta, axis=(1, 2, 3)) - jnp.mean(x, axis=(1, 2, 3)))
    np.testing.assert_allclose(out_mean, amount, atol=1e-5)
    assert -0.5 <= amount.min() < -0.4 and 0.4 < amount.max() <= 0.5


def per_image_factor(x, out, mean):
    """The f with out - mean = f (x - mean), fitted per image by least squares."""
    dx, dout = np.asarray(x - mean), np.asarray(out - mean)
    return (dx * dout).sum(axis=(1, 2, 3)) / (dx * dx).sum(axis=(1, 2, 3))


def test_saturation_scales_about_each_pixels_channel_mean():
    x = images()
    out = JITTED["saturation"](KEY, x)
    mean = jnp.mean(x, axis=-1, keepdims=True)
    chex.assert_trees_all_close(jnp.mean(out, axis=-1, keepdims=True), mean, atol=1e-5)
    f = per_image_factor(x, out, mean)
    chex.assert_trees_all_close(out, mean + f[:, None, None, None] * (x - mean), atol=1e-5)
    assert 0 <= f.min() < 0.2 and 1.8 < f.max() <= 2


def test_contrast_scales_about_each_images_mean():
    x = images()
    out = JITTED["contrast"](KEY, x)
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    chex.assert_trees_all_close(out.mean(axis=(1, 2, 3), keepdims=True), mean, atol=1e-5)
    f = per_image_factor(x, out, mean)
    chex.assert_trees_all_close(out, mean + f[:, None, None, None] * (x - mean), atol=1e-5)
    assert 0.5 <= f.min() < 0.6 and 1.4 < f.max() <= 1.5


def test_color_on_grey_images_is_a_brightness_shift_and_a_contrast_factor():
    # Saturation leaves grey pixels alone, so out = M + a + c (x - M) with the image mean M.
    x = jnp.repeat(images(c=1), 3, axis=-1)
    out = JITTED["color"](KEY, x)
    mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
    shift = np.asarray(jnp.mean(out, axis=(1, 2, 3), keepdims=True) - mean)
    f = per_image_factor(x, out - shift, mean)
    chex.assert_trees_all_close(out, mean + shift + f[:, None, None, None] * (x - mean),
                                atol=1e-5)
    assert -0.5 <= shift.min() < -0.4 and 0.4 < shift.max() <= 0.5
    assert 0.5 <= f.min() < 0.6 and 1.4 < f.max() <= 1.5


def test_factor_one_is_the_identity_and_saturation_zero_is_grey():
    x, ones, zeros = images(b=4), jnp.ones(4), jnp.zeros(4)
    chex.assert_trees_all_close(da.adjust_saturation(x, ones), x, atol=1e-6)
    chex.assert_trees_all_close(da.adjust_contrast(x, ones), x, atol=1e-6)
    chex.assert_trees_all_equal(da.adjust_brightness(x, zeros), x)
    grey = np.asarray(da.adjust_saturation(x, zeros))
    np.testing.assert_allclose(grey, np.broadcast_to(grey[..., :1], grey.shape), atol=1e-6)


# --- translation ------------------------------------------------------------------------

def test_translate_moves_the_content_and_fills_the_rest():
    x = images(b=4)
    shifts = np.array([[0, 0], [2, -1], [-3, 4], [1, 11]])
    got = jax.jit(functools.partial(da.translate, fill_value=-1.0))(x, shifts)
    for b, (dy, dx) in enumerate(shifts):
        np.testing.assert_array_equal(got[b], np_shift(np.asarray(x[b]), dy, dx, -1.0))


def test_random_translation_is_a_zero_padded_shift_of_at_most_an_eighth():
    x = positive_images()  # 10 x 12: at most 1 row, 2 columns each way
    out = np.asarray(JITTED["translation"](KEY, x))
    seen = set()
    for b in range(len(out)):
        image = np.asarray(x[b])
        # Where one kept pixel came from gives the shift: the values are distinct.
        i, j = np.argwhere(out[b, :, :, 0] != 0)[0]
        i0, j0 = np.argwhere(image[:, :, 0] == out[b, i, j, 0])[0]
        dy, dx = i - i0, j - j0
        np.testing.assert_array_equal(out[b], np_shift(image, dy, dx, 0.0))
        seen.add((dy, dx))
    dys, dxs = {s[0] for s in seen}, {s[1] for s in seen}
    assert dys == set(range(-1, 2)) and dxs == set(range(-2, 3))


# --- cutout -----------------------------------------------------------------------------

def test_cutout_sets_the_clipped_rectangle_about_each_centre():
    x = images(b=3, h=7, w=9)
    centers = np.array([[3, 4], [0, 8], [-1, 20]])
    got = np.asarray(da.cutout(x, centers, (3, 4), fill_value=-1.0))
    for b, (cy, cx) in enumerate(centers):
        want = np.asarray(x[b]).copy()
        top, left = cy - 1, cx - 2
        want[max(top, 0):max(top + 3, 0), max(left, 0):max(left + 4, 0)] = -1.0
        np.testing.assert_array_equal(got[b], want)


@pytest.mark.parametrize("h,w", [(8, 12), (10, 12)])  # (4, 6) and (5, 6) rectangles
def test_random_cutout_zeroes_exactly_a_half_size_rectangle_clipped_at_the_borders(h, w):
    x = positive_images(h=h, w=w)
    out = np.asarray(JITTED["cutout"](KEY, x))
    size = (int(h / 2 + 0.5), int(w / 2 + 0.5))
    zero = out == 0
    assert np.all(zero == zero[..., :1])  # every channel alike
    areas = []
    for b, mask in enumerate(zero[..., 0]):
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        rect = np.zeros_like(mask)
        rect[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
        np.testing.assert_array_equal(mask, rect)
        np.testing.assert_array_equal(out[b][~mask], np.asarray(x[b])[~mask])
        for extent, first, last, full, n in [(len(rows), rows[0], rows[-1], size[0], h),
                                             (len(cols), cols[0], cols[-1], size[1], w)]:
            # Clipped only at a border, and by at most half: the centre is inside.
            assert full - full // 2 <= extent <= full
            assert extent == full or first == 0 or last == n - 1
        areas.append(mask.sum())
    assert max(areas) == size[0] * size[1] and min(areas) < size[0] * size[1]


# --- ADA --------------------------------------------------------------------------------

ADJUST = jax.jit(da.ada_adjust, static_argnames=("target", "batch_size", "interval",
                                                 "speed_images"))
ACCUMULATE = jax.jit(da.ada_accumulate)


def adjust(state, target=0.6, batch_size=64, interval=4, speed_images=500_000):
    return ADJUST(state, target=target, batch_size=batch_size, interval=interval,
                  speed_images=speed_images)


STEP = 64 * 4 / 500_000


def test_accumulate_counts_the_sign_of_every_logit():
    state = ACCUMULATE(da.ada_init(), jnp.array([[2.0], [0.5], [-1.0], [0.0]]))
    state = ACCUMULATE(state, jnp.ones((2, 3, 3, 1)))  # a patch D
    assert float(state.sign_sum) == 1 + 18 and int(state.count) == 4 + 18
    assert float(da.ada_heuristic(state)) == pytest.approx(19 / 22)
    assert float(state.probability) == 0


@pytest.mark.parametrize("sign,direction", [(1.0, 1), (-1.0, -1)])
def test_adjust_moves_p_by_one_step_against_overfitting_and_resets(sign, direction):
    state = da.ada_accumulate(da.ada_init(0.5), sign * jnp.ones(64))  # r_t = +-1
    new = adjust(state)
    chex.assert_trees_all_close(new.probability, jnp.float32(0.5 + direction * STEP),
                                rtol=1e-6)
    assert float(new.sign_sum) == 0 and int(new.count) == 0


def test_adjust_compares_r_t_with_the_target():
    logits = jnp.array([1.0, 1.0, 1.0, -1.0])  # r_t = 0.5
    state = da.ada_accumulate(da.ada_init(0.5), logits)
    assert float(adjust(state, target=0.4).probability) > 0.5
    assert float(adjust(state, target=0.6).probability) < 0.5
    assert float(adjust(state, target=0.5).probability) == 0.5
    assert float(adjust(da.ada_init(0.5)).probability) == 0.5  # no statistics: kept


def test_adjust_clips_p_to_the_unit_interval():
    low = da.ada_accumulate(da.ada_init(0.0), -jnp.ones(8))
    high = da.ada_accumulate(da.ada_init(1.0 - STEP / 2), jnp.ones(8))
    assert float(adjust(low).probability) == 0.0
    assert float(adjust(high).probability) == 1.0


def test_p_crosses_the_unit_interval_in_speed_images():
    state = da.ada_init()
    for _ in range(10):  # 10 adjustments of 64 * 4 images = speed_images
        state = adjust(ACCUMULATE(state, jnp.ones(64)), speed_images=2560)
    chex.assert_trees_all_close(state.probability, jnp.float32(1.0), atol=1e-6)
