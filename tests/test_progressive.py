"""Tests for jgan.models.progressive (Progressive Growing of GANs, Karras et al. 2018).

Properties: the equalized layers store N(0, 1) weights and scale them by He's constant
(unit-variance inputs give outputs of variance ~gain^2); pixel norm gives unit mean
square per pixel; minibatch stddev matches a numpy loop over groups; G's output shape at
every level, D's input checks, and one parameter tree at every level; the fade-in's end
points are exact (G at alpha = 1 is the new toRGB path, at alpha = 0 the upsampled
previous level; D at alpha = 0 is the previous level's D on the downscaled image);
gradients reach the new block only when alpha > 0; alpha is traced (no retrace).
16 px, at most 16 channels, jitted applies: the file runs in seconds on CPU.
"""
from __future__ import annotations

import functools
import math

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models.progressive import (EqualizedConv, EqualizedDense, ProgressiveDiscriminator,
                                     ProgressiveGenerator, downscale2d, minibatch_stddev,
                                     pixel_norm, upscale2d)

R, B = 16, 4                        # final resolution (levels 0, 1, 2), batch
SIZES = dict(channel_base=32, max_channels=16)   # nf(s) = 16, 16, 8, 4 for s = 0..3
LATENT = 16                         # nf(0), the default latent size
LEVELS = (0, 1, 2)


def _random_variables(module, *args, seed=0, **kwargs):
    """`module`'s variables from numpy without compiling its init: kernels N(0, 1) as
    the equalized init stores them, biases N(0, 0.1^2) so that they matter."""
    shapes = flax.core.unfreeze(jax.eval_shape(
        functools.partial(module.init, **kwargs), jax.random.key(0), *args))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        scale = 0.1 if "bias" in getattr(path[-1], "key", "") else 1.0
        return jnp.asarray(scale * rng.normal(size=leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _shapes(module, *args, **kwargs):
    return jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), jax.eval_shape(
        functools.partial(module.init, **kwargs), jax.random.key(0), *args))


def _key(seed=0):
    # "rbg" keys: XLA:CPU takes seconds to compile threefry's random bits for an init.
    return jax.random.key(seed, impl="rbg")


def _latents(seed=1, n=B):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, LATENT)), jnp.float32)


def _images(level, seed=2, channels=3, n=B):
    size = 2 ** (level + 2)
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)),
                       jnp.float32)


@functools.lru_cache(maxsize=None)
def _generator():
    g = ProgressiveGenerator(R, **SIZES)
    variables = _random_variables(g, _latents(), level=0, alpha=0.0)
    apply = jax.jit(g.apply, static_argnames=("level", "method"))
    return g, variables, apply


@functools.lru_cache(maxsize=None)
def _discriminator():
    d = ProgressiveDiscriminator(R, **SIZES)
    variables = _random_variables(d, _images(0), level=0, alpha=0.0)
    apply = jax.jit(d.apply, static_argnames=("level", "features", "with_features"))
    return d, variables, apply


def _leaves_under(tree, name):
    return jax.tree_util.tree_leaves(tree["params"][name])


def _all_zero(tree, name):
    return all(np.all(np.asarray(g) == 0) for g in _leaves_under(tree, name))


def _any_nonzero(tree, name):
    return any(np.any(np.asarray(g) != 0) for g in _leaves_under(tree, name))


# --- equalized learning rate -------------------------------------------------------

@pytest.mark.parametrize("gain", [math.sqrt(2), 1.0])
def test_equalized_dense_stores_unit_normal_and_scales_by_he_constant(gain):
    layer = EqualizedDense(256, gain=gain)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(512, 256)), jnp.float32)
    variables = jax.jit(layer.init)(_key(3), x)
    kernel = np.asarray(variables["params"]["kernel"])
    assert kernel.shape == (256, 256)
    assert abs(kernel.mean()) < 0.02 and abs(kernel.std() - 1) < 0.02
    np.testing.assert_array_equal(variables["params"]["bias"], 0)
    y = np.asarray(jax.jit(layer.apply)(variables, x))
    np.testing.assert_allclose(y, np.asarray(x) @ (kernel * gain / 16), rtol=1e-4, atol=1e-4)
    assert y.var() == pytest.approx(gain ** 2, rel=0.1)


@pytest.mark.parametrize("gain", [math.sqrt(2), 1.0])
def test_equalized_conv_stores_unit_normal_and_scales_by_he_constant(gain):
    layer = EqualizedConv(64, 3, gain=gain)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 12, 12, 32)), jnp.float32)
    variables = jax.jit(layer.init)(_key(4), x)
    kernel = np.asarray(variables["params"]["kernel"])
    assert kernel.shape == (3, 3, 32, 64)
    assert abs(kernel.mean()) < 0.03 and abs(kernel.std() - 1) < 0.03
    np.testing.assert_array_equal(variables["params"]["bias"], 0)
    y = np.asarray(jax.jit(layer.apply)(variables, x))
    assert y.shape == (8, 12, 12, 64)
    # Border pixels see zero padding (a smaller fan-in): the variance is the interior's.
    assert y[:, 1:-1, 1:-1].var() == pytest.approx(gain ** 2, rel=0.1)
    with pytest.raises(ValueError, match="odd kernel"):
        EqualizedConv(4, 2).init(jax.random.key(0), x)


# --- pixel norm and minibatch stddev ----------------------------------------------------

def test_pixel_norm_gives_unit_mean_square_per_pixel():
    x = jnp.asarray(30 * np.random.default_rng(0).normal(size=(3, 5, 5, 7)), jnp.float32)
    y = np.asarray(jax.jit(pixel_norm)(x))
    np.testing.assert_allclose(np.mean(y ** 2, axis=-1), 1.0, rtol=1e-5)
    # Only the scale of each pixel's vector changes.
    np.testing.assert_allclose(y * np.sqrt(np.mean(np.asarray(x) ** 2, -1, keepdims=True)),
                               x, rtol=1e-5, atol=1e-4)
    z = jnp.asarray(np.random.default_rng(1).normal(size=(4, 16)), jnp.float32)
    np.testing.assert_allclose(np.mean(np.asarray(pixel_norm(z)) ** 2, -1), 1.0, rtol=1e-5)


def _numpy_minibatch_stddev(x, group_size, num_features):
    """The reference's layer as a loop: group m holds examples m, m + M, m + 2M, ..."""
    b, h, w, c = x.shape
    g = min(group_size, b)
    m_groups = b // g
    extra = np.empty((b, h, w, num_features))
    for m in range(m_groups):
        std = np.sqrt(x[m::m_groups].astype(np.float64).var(axis=0) + 1e-8)   # [H, W, C]
        for f in range(num_features):
            part = c // num_features
            extra[m::m_groups, :, :, f] = std[..., f * part:(f + 1) * part].mean()
    return np.concatenate([x, extra], axis=-1)


@pytest.mark.parametrize("batch, group_size, num_features",
                         [(8, 4, 1), (8, 2, 2), (2, 4, 1), (6, 3, 4), (4, 1, 1)])
def test_minibatch_stddev_matches_numpy_reference(batch, group_size, num_features):
    x = np.random.default_rng(batch + group_size).normal(size=(batch, 3, 3, 8))
    x = x.astype(np.float32)
    got = jax.jit(minibatch_stddev, static_argnums=(1, 2))(jnp.asarray(x), group_size,
                                                           num_features)
    chex.assert_shape(got, (batch, 3, 3, 8 + num_features))
    np.testing.assert_allclose(got, _numpy_minibatch_stddev(x, group_size, num_features),
                               rtol=1e-5, atol=1e-6)


def test_minibatch_stddev_rejects_indivisible_batch_and_channels():
    with pytest.raises(ValueError, match="divisible by its group size"):
        minibatch_stddev(jnp.zeros((6, 4, 4, 8)), group_size=4)
    with pytest.raises(ValueError, match="num_features"):
        minibatch_stddev(jnp.zeros((4, 4, 4, 6)), num_features=4)


# --- generator -----------------------------------------------------------------------------

def test_generator_shapes_and_one_parameter_tree_at_every_level():
    g, variables, apply = _generator()
    trees = [_shapes(g, _latents(), level=level, alpha=0.5) for level in LEVELS]
    assert all(tree == trees[0] for tree in trees[1:])
    assert set(variables["params"]) == {"blocks_0", "blocks_1", "blocks_2",
                                        "to_rgb_0", "to_rgb_1", "to_rgb_2"}
    for level in LEVELS:
        out = apply(variables, _latents(), level=level, alpha=0.5)
        size = 2 ** (level + 2)
        chex.assert_shape(out, (B, size, size, 3))
        chex.assert_tree_all_finite(out)


def test_one_channel_images():
    g, d = (ProgressiveGenerator(R, channels=1, **SIZES),
            ProgressiveDiscriminator(R, channels=1, **SIZES))
    g_vars = _random_variables(g, _latents(), level=1, alpha=0.5)
    d_vars = _random_variables(d, _images(1, channels=1), level=1, alpha=0.5)
    @jax.jit
    def generate_and_judge(g_vars, d_vars, z):
        images = g.apply(g_vars, z, level=1, alpha=0.5)
        return images, d.apply(d_vars, images, level=1, alpha=0.5)

    images, logits = generate_and_judge(g_vars, d_vars, _latents())
    chex.assert_shape(images, (B, 8, 8, 1))
    chex.assert_shape(logits, (B,))
    assert g_vars["params"]["to_rgb_2"]["kernel"].shape == (1, 1, 4, 1)
    assert d_vars["params"]["from_rgb_2"]["kernel"].shape == (1, 1, 1, 4)


def test_generator_init_at_level_0_creates_every_level():
    g = ProgressiveGenerator(R, **SIZES)
    variables = jax.jit(functools.partial(g.init, level=0, alpha=0.0))(_key(), _latents())
    chex.assert_trees_all_equal_shapes_and_dtypes(
        variables, jax.eval_shape(functools.partial(g.init, level=2, alpha=1.0), _key(),
                                  _latents()))
    assert _any_nonzero(variables, "to_rgb_2") and _any_nonzero(variables, "blocks_2")
    # The stored weights are N(0, 1): the equalized learning rate scales them at run time.
    kernel = np.asarray(variables["params"]["blocks_0"]["dense"]["kernel"])
    assert abs(kernel.std() - 1) < 0.05


def test_generator_channels_follow_the_reference():
    _, variables, _ = _generator()
    p = variables["params"]
    # Level l has nf(l + 1) = min(32 / 2^(l+1), 16) channels: 16 at 4x4, 8 at 8x8, 4 at 16x16.
    assert p["blocks_0"]["dense"]["kernel"].shape == (LATENT, 16 * 16)
    assert p["blocks_0"]["conv"]["kernel"].shape == (3, 3, 16, 16)
    assert p["blocks_1"]["conv0"]["kernel"].shape == (3, 3, 16, 8)
    assert p["blocks_1"]["conv1"]["kernel"].shape == (3, 3, 8, 8)
    assert p["blocks_2"]["conv0"]["kernel"].shape == (3, 3, 8, 4)
    assert p["to_rgb_2"]["kernel"].shape == (1, 1, 4, 3)


@pytest.mark.parametrize("level", [1, 2])
def test_generator_fade_end_points_are_exact(level):
    _, variables, apply = _generator()
    z = _latents()
    full = apply(variables, z, level=level, alpha=1.0)
    new_path = apply(variables, apply(variables, z, level=level, method="features"),
                     level=level, method="rgb")
    np.testing.assert_array_equal(full, new_path)
    start = apply(variables, z, level=level, alpha=0.0)
    previous = apply(variables, z, level=level - 1, alpha=1.0)
    np.testing.assert_array_equal(start, upscale2d(previous))
    middle = apply(variables, z, level=level, alpha=0.25)
    np.testing.assert_allclose(middle, 0.75 * start + 0.25 * full, rtol=1e-5, atol=1e-5)
    # The new block's output differs from the upsampled one: the fade does something.
    assert not np.allclose(full, start)


def test_generator_gradients_reach_the_new_block_only_when_fading_in():
    g, variables, _ = _generator()
    z = _latents()
    weights = jnp.asarray(np.random.default_rng(5).normal(size=(B, 16, 16, 3)), jnp.float32)

    @jax.jit
    def grads(variables, alpha):
        return jax.grad(lambda v: jnp.sum(weights * g.apply(v, z, level=2, alpha=alpha)))(
            variables)

    at_start, fading = grads(variables, 0.0), grads(variables, 0.5)
    for name in ("to_rgb_2", "blocks_2"):
        assert _all_zero(at_start, name), name
        assert _any_nonzero(fading, name), name
    for name in ("to_rgb_1", "blocks_1", "blocks_0"):
        assert _any_nonzero(at_start, name) and _any_nonzero(fading, name), name
    # Below the top level the higher levels' parameters are unused.
    at_level_1 = jax.jit(jax.grad(lambda v: jnp.sum(
        g.apply(v, z, level=1, alpha=0.5))))(variables)
    assert _all_zero(at_level_1, "blocks_2") and _all_zero(at_level_1, "to_rgb_2")
    assert _any_nonzero(at_level_1, "to_rgb_0")


def test_generator_rejects_bad_level_and_latents():
    g, variables, _ = _generator()
    with pytest.raises(ValueError, match="level must be in"):
        g.apply(variables, _latents(), level=3, alpha=1.0)
    with pytest.raises(TypeError, match="static Python int"):
        jax.jit(lambda lv: g.apply(variables, _latents(), level=lv, alpha=1.0))(1)
    with pytest.raises(ValueError, match=r"z of shape \[B, 16\]"):
        g.apply(variables, jnp.zeros((B, 8)), level=0, alpha=1.0)
    with pytest.raises(ValueError, match="power of two"):
        ProgressiveGenerator(12).init(jax.random.key(0), jnp.zeros((1, 512)), level=0,
                                      alpha=1.0)


# --- discriminator -----------------------------------------------------------------------

def test_discriminator_shapes_and_one_parameter_tree_at_every_level():
    d, variables, apply = _discriminator()
    trees = [_shapes(d, _images(level), level=level, alpha=0.5) for level in LEVELS]
    assert all(tree == trees[0] for tree in trees[1:])
    assert set(variables["params"]) == {"blocks_0", "blocks_1", "blocks_2", "from_rgb_0",
                                        "from_rgb_1", "from_rgb_2", "logit"}
    # The stddev channel enters the 4x4 block's convolution; its dense layer reads 4x4x16.
    assert variables["params"]["blocks_0"]["conv"]["kernel"].shape == (3, 3, 17, 16)
    assert variables["params"]["blocks_0"]["dense"]["kernel"].shape == (256, 16)
    for level in LEVELS:
        logits = apply(variables, _images(level), level=level, alpha=0.5)
        chex.assert_shape(logits, (B,))
        chex.assert_tree_all_finite(logits)


@pytest.mark.parametrize("level", [1, 2])
def test_discriminator_at_alpha_zero_is_the_previous_level_on_downscaled_images(level):
    _, variables, apply = _discriminator()
    x = _images(level)
    start = apply(variables, x, level=level, alpha=0.0)
    previous = apply(variables, downscale2d(x), level=level - 1, alpha=1.0)
    np.testing.assert_array_equal(start, previous)
    assert not np.allclose(apply(variables, x, level=level, alpha=1.0), start)


def test_discriminator_features_are_the_logit_layers_input():
    _, variables, apply = _discriminator()
    x = _images(1)
    logits, h = apply(variables, x, level=1, alpha=0.5, with_features=True)
    chex.assert_shape(h, (B, 16))
    np.testing.assert_array_equal(h, apply(variables, x, level=1, alpha=0.5, features=True))
    np.testing.assert_array_equal(logits, apply(variables, x, level=1, alpha=0.5))


def test_discriminator_gradients_reach_the_new_block_only_when_fading_in():
    d, variables, _ = _discriminator()
    x = _images(2)

    @jax.jit
    def grads(variables, alpha):
        return jax.grad(lambda v: jnp.sum(d.apply(v, x, level=2, alpha=alpha)))(variables)

    at_start, fading = grads(variables, 0.0), grads(variables, 0.5)
    for name in ("from_rgb_2", "blocks_2"):
        assert _all_zero(at_start, name), name
        assert _any_nonzero(fading, name), name
    for name in ("from_rgb_1", "blocks_1", "blocks_0", "logit"):
        assert _any_nonzero(at_start, name), name
    assert _all_zero(at_start, "from_rgb_0")


def test_discriminator_rejects_wrong_images_and_batches():
    d, variables, _ = _discriminator()
    apply = functools.partial(jax.eval_shape, functools.partial(d.apply, level=1, alpha=1.0))
    with pytest.raises(ValueError, match=r"\[B, 8, 8, 3\]"):
        apply(variables, _images(2))
    with pytest.raises(ValueError, match="divisible by its group size"):
        apply(variables, _images(1, n=6))


# --- tracing -------------------------------------------------------------------------------

def test_changing_alpha_does_not_retrace():
    g, g_variables, _ = _generator()
    d, d_variables, _ = _discriminator()
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(g_variables, d_variables, z, alpha):
        return d.apply(d_variables, g.apply(g_variables, z, level=2, alpha=alpha), level=2,
                       alpha=alpha)

    outputs = [step(g_variables, d_variables, _latents(), jnp.float32(alpha))
               for alpha in (0.0, 0.1, 0.7, 1.0)]
    assert not np.allclose(outputs[0], outputs[-1])
