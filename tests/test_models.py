"""Tests for jgan.models.layers and jgan.models.dcgan.

The upsampling layer is checked against an independent loop implementation of a
transposed convolution (PyTorch's convention) and against XLA's own convolution;
the DCGAN networks for their shapes, output range, parameter tree and spectral-norm
state. Small shapes only: the whole file runs in a few seconds on CPU.
"""
from __future__ import annotations

import functools

import chex
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models import layers
from jgan.models.dcgan import DCGANDiscriminator, DCGANGenerator
from jgan.models.layers import (UpsampleConv, conv_transpose_4x4_stride2, depth_to_space,
                                overlap_add_4x4_stride2, subpixel_to_transposed_conv_kernel,
                                transposed_conv_to_subpixel_kernel)

IMPLEMENTATIONS = ("matmul", "subpixel_conv")


def _rng(seed=0):
    return np.random.default_rng(seed)


def _random_variables(module, *args, seed=0, scale=0.1):
    """`module`'s variables filled with N(0, scale^2) values (|N(1, scale^2)| for batch-norm
    variances), without compiling its initializer: XLA takes seconds to compile the random
    number generation of a DCGAN's init, and these tests only need some weights."""
    shapes = flax.core.unfreeze(jax.eval_shape(module.init, jax.random.key(0), *args))
    rng = _rng(seed)

    def fill(path, leaf):
        if getattr(path[-1], "key", None) == "var":
            return jnp.asarray(np.abs(1 + scale * rng.standard_normal(leaf.shape)), leaf.dtype)
        return jnp.asarray(scale * rng.standard_normal(leaf.shape), leaf.dtype)
    return jax.tree_util.tree_map_with_path(fill, shapes)


def reference_conv_transpose(x: np.ndarray, kernel: np.ndarray, bias=None, *, stride=2,
                             padding=1) -> np.ndarray:
    """Direct loop: y[s*i - p + k] += x[i] * kernel[k] per spatial axis (PyTorch's
    ConvTranspose2d), x `[B, H, W, Ci]`, kernel `[kh, kw, Ci, Co]` -> `[B, Ho, Wo, Co]`."""
    b, h, w, _ = x.shape
    kh, kw, _, co = kernel.shape
    full = np.zeros((b, (h - 1) * stride + kh, (w - 1) * stride + kw, co), np.float64)
    for i in range(h):
        for j in range(w):
            for u in range(kh):
                for v in range(kw):
                    full[:, stride * i + u, stride * j + v] += x[:, i, j] @ kernel[u, v]
    out_h, out_w = (h - 1) * stride - 2 * padding + kh, (w - 1) * stride - 2 * padding + kw
    y = full[:, padding:padding + out_h, padding:padding + out_w]
    if bias is not None:
        y = y + bias
    return y


def lax_conv_transpose(x, kernel):
    """The same transposed convolution as XLA's lhs-dilated convolution."""
    return jax.lax.conv_general_dilated(
        x, kernel[::-1, ::-1], window_strides=(1, 1), padding=((2, 2), (2, 2)),
        lhs_dilation=(2, 2), dimension_numbers=("NHWC", "HWIO", "NHWC"),
        precision=jax.lax.Precision.HIGHEST)


# ------------------------------------------------------------------- UpsampleConv

@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("use_bias", [False, True])
def test_upsample_conv_equals_reference_transposed_conv(implementation, use_bias):
    rng = _rng(1)
    x = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    kernel = rng.standard_normal((4, 4, 3, 5)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    module = UpsampleConv(5, use_bias=use_bias, implementation=implementation)
    params = {"conv": {"kernel": jnp.asarray(transposed_conv_to_subpixel_kernel(kernel))}}
    if use_bias:
        params["bias"] = jnp.asarray(bias)
    y = jax.jit(module.apply)({"params": params}, jnp.asarray(x))
    expected = reference_conv_transpose(x, kernel, bias if use_bias else None)
    chex.assert_shape(y, (2, 6, 8, 5))
    chex.assert_trees_all_close(np.asarray(y), expected.astype(np.float32), atol=1e-4, rtol=1e-4)


def test_upsample_conv_parameters_and_init():
    module = UpsampleConv(6, use_bias=True)
    variables = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 4, 4, 3)))
    chex.assert_trees_all_equal_shapes(
        flax.core.unfreeze(variables),
        {"params": {"conv": {"kernel": np.zeros((2, 2, 3, 24))}, "bias": np.zeros(6)}})
    # Same kernel count as the 4x4 transposed convolution it replaces.
    assert np.prod(variables["params"]["conv"]["kernel"].shape) == 4 * 4 * 3 * 6
    with pytest.raises(ValueError, match="implementation"):
        jax.eval_shape(UpsampleConv(6, implementation="fft").init, jax.random.key(0),
                       jnp.zeros((1, 4, 4, 3)))


def test_upsample_conv_implementations_agree_with_gradients():
    rng = _rng(2)
    x = jnp.asarray(rng.standard_normal((2, 5, 5, 8)), jnp.float32)
    variables = _random_variables(UpsampleConv(4), x, seed=3)   # non-zero bias too
    cotangent = jnp.asarray(rng.standard_normal((2, 10, 10, 4)), jnp.float32)

    def loss(variables, x, implementation):
        y = UpsampleConv(4, implementation=implementation).apply(variables, x)
        return jnp.vdot(y, cotangent)

    grads = {impl: jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(variables, x, impl)
             for impl in IMPLEMENTATIONS}
    chex.assert_trees_all_close(grads["matmul"], grads["subpixel_conv"], atol=1e-4, rtol=1e-4)


def test_transposed_and_subpixel_kernels_are_inverse():
    kernel = _rng(4).standard_normal((4, 4, 3, 2)).astype(np.float32)
    sub = transposed_conv_to_subpixel_kernel(kernel)
    chex.assert_shape(sub, (2, 2, 3, 8))
    np.testing.assert_array_equal(np.asarray(subpixel_to_transposed_conv_kernel(jnp.asarray(sub))),
                                  kernel)
    with pytest.raises(ValueError, match="4x4"):
        transposed_conv_to_subpixel_kernel(np.zeros((3, 3, 1, 1)))


# -------------------------------------------------- matmul transposed convolution

@pytest.mark.parametrize("shape", [(2, 3, 4, 5, 6), (1, 5, 6, 24, 1)])   # both kernel layouts
def test_conv_transpose_matmul_equals_lax_conv(shape):
    b, h, w, ci, co = shape
    rng = _rng(5)
    x = jnp.asarray(rng.standard_normal((b, h, w, ci)), jnp.float32)
    kernel = jnp.asarray(rng.standard_normal((4, 4, ci, co)), jnp.float32)
    ours = jax.jit(conv_transpose_4x4_stride2)
    chex.assert_trees_all_close(ours(x, kernel), lax_conv_transpose(x, kernel),
                                atol=1e-4, rtol=1e-4)
    # Reverse mode (both gradients) and forward mode agree with XLA's convolution.
    cot = jnp.asarray(rng.standard_normal((b, 2 * h, 2 * w, co)), jnp.float32)
    vjp = lambda f: jax.vjp(f, x, kernel)[1](cot)
    chex.assert_trees_all_close(jax.jit(lambda: vjp(conv_transpose_4x4_stride2))(),
                                vjp(lax_conv_transpose), atol=1e-4, rtol=1e-4)
    tangents = (jnp.ones_like(x), jnp.full_like(kernel, 0.5))
    chex.assert_trees_all_close(
        jax.jvp(conv_transpose_4x4_stride2, (x, kernel), tangents)[1],
        jax.jvp(lax_conv_transpose, (x, kernel), tangents)[1], atol=1e-4, rtol=1e-4)


def test_overlap_add_places_every_tap():
    # One-hot contributions: z[i, j, kh, kw] lands on output (2i - 1 + kh, 2j - 1 + kw).
    h, w = 3, 2
    z = np.zeros((1, h, w, 4, 4, 1), np.float32)
    expected = np.zeros((1, 2 * h, 2 * w, 1), np.float32)
    value = 1.0
    for i in range(h):
        for j in range(w):
            for kh in range(4):
                for kw in range(4):
                    z[0, i, j, kh, kw, 0] = value
                    oh, ow = 2 * i - 1 + kh, 2 * j - 1 + kw
                    if 0 <= oh < 2 * h and 0 <= ow < 2 * w:
                        expected[0, oh, ow, 0] += value
                    value += 1.0
    np.testing.assert_allclose(np.asarray(jax.jit(overlap_add_4x4_stride2)(jnp.asarray(z))),
                               expected)
    with pytest.raises(ValueError, match="4x4"):
        overlap_add_4x4_stride2(jnp.zeros((1, 2, 2, 3, 3, 1)))


def test_depth_to_space_matches_numpy():
    b, h, w, s, c = 2, 3, 4, 2, 3
    x = np.arange(b * h * w * s * s * c, dtype=np.float32).reshape(b, h, w, s * s * c)
    expected = np.zeros((b, s * h, s * w, c), np.float32)
    for i in range(s):
        for j in range(s):
            expected[:, i::s, j::s, :] = x[..., (i * s + j) * c:(i * s + j + 1) * c]
    np.testing.assert_array_equal(np.asarray(jax.jit(depth_to_space, static_argnums=1)(x, s)),
                                  expected)
    with pytest.raises(ValueError, match="divisible"):
        depth_to_space(jnp.zeros((1, 2, 2, 6)), 2)


# --------------------------------------------------------------------------- DCGAN

@pytest.mark.parametrize("resolution", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(resolution, channels):
    gen = DCGANGenerator(resolution=resolution, channels=channels, width=8)
    disc = DCGANDiscriminator(resolution=resolution, width=8)
    z = jax.ShapeDtypeStruct((3, 16), jnp.float32)

    def forward(z):
        images = gen.apply(gen.init(jax.random.key(1), z), z)
        return images, disc.apply(disc.init(jax.random.key(2), images), images)

    images, logits = jax.eval_shape(forward, z)
    chex.assert_shape(images, (3, resolution, resolution, channels))
    chex.assert_shape(logits, (3,))


@pytest.mark.parametrize("resolution, channels", [(28, 1), (32, 3)])
def test_dcgan_generator_range(resolution, channels):
    gen = DCGANGenerator(resolution=resolution, channels=channels, width=8)
    disc = DCGANDiscriminator(resolution=resolution, width=8)
    z = jax.random.normal(jax.random.key(0), (3, 16))
    g_vars = _random_variables(gen, z, scale=1.0)
    images, _ = jax.jit(functools.partial(gen.apply, train=True, mutable=["batch_stats"]))(
        g_vars, 10.0 * z)
    chex.assert_shape(images, (3, resolution, resolution, channels))
    assert 0.0 < float(jnp.max(jnp.abs(images))) <= 1.0
    logits = jax.jit(disc.apply)(_random_variables(disc, images), images)
    chex.assert_shape(logits, (3,))
    chex.assert_tree_all_finite(logits)


def test_dcgan_parameter_tree_28px():
    gen, disc = DCGANGenerator(), DCGANDiscriminator()
    g = jax.eval_shape(gen.init, jax.random.key(0), jnp.zeros((1, 100)))
    d = jax.eval_shape(disc.init, jax.random.key(0), jnp.zeros((1, 28, 28, 1)))
    shapes = lambda tree: jax.tree.map(lambda a: tuple(a.shape), flax.core.unfreeze(tree))
    assert shapes(g["params"]) == {
        "project": {"kernel": (100, 7 * 7 * 128)},
        "project_bn": {"scale": (128,), "bias": (128,)},
        "up0": {"conv": {"kernel": (2, 2, 128, 4 * 64)}},
        "up0_bn": {"scale": (64,), "bias": (64,)},
        "up1": {"conv": {"kernel": (2, 2, 64, 4)}, "bias": (1,)}}
    assert shapes(d["params"]) == {
        "conv0": {"kernel": (4, 4, 1, 64), "bias": (64,)},
        "conv1": {"kernel": (4, 4, 64, 128)},  # no bias: batch norm follows
        "conv1_bn": {"scale": (128,), "bias": (128,)},
        "logit": {"kernel": (7 * 7 * 128, 1), "bias": (1,)}}
    count = lambda tree: sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))
    # The PyTorch DCGAN of the same architecture (benchmarks/dcgan_throughput.py).
    assert (count(g["params"]), count(d["params"])) == (759_681, 138_689)


@pytest.mark.parametrize("dense_hidden", [0, 5])
def test_dcgan_discriminator_leaky_slope_reaches_every_activation(dense_hidden):
    # With slope 1 every LeakyReLU is the identity, so D (without normalization) is affine
    # in its input; one activation left at another slope would break that. Slope 0 is ReLU.
    x1, x2 = (jnp.asarray(_rng(i).standard_normal((2, 28, 28, 1)), jnp.float32) for i in (1, 2))
    a = 0.3
    outputs = {}
    for slope in (1.0, 0.2, 0.0):
        disc = DCGANDiscriminator(width=4, normalization="none", dense_hidden=dense_hidden,
                                  leaky_slope=slope)
        v = _random_variables(disc, x1, scale=0.5)
        f = jax.jit(disc.apply)
        mixed, ends = f(v, a * x1 + (1 - a) * x2), a * f(v, x1) + (1 - a) * f(v, x2)
        outputs[slope] = (np.allclose(mixed, ends, rtol=1e-4, atol=1e-5), f(v, x1))
    assert outputs[1.0][0] and not outputs[0.2][0] and not outputs[0.0][0]
    assert not np.allclose(outputs[0.2][1], outputs[0.0][1])


def test_spectral_norm_state_changes_only_in_training():
    disc = DCGANDiscriminator(resolution=28, width=8, spectral_norm=True, normalization="none")
    x = jax.random.normal(jax.random.key(0), (4, 28, 28, 1))
    variables = _random_variables(disc, x)
    stats = variables["batch_stats"]
    u_names = sorted(name for sn in stats.values() for name in sn if name.endswith("/u"))
    assert u_names == ["conv0/kernel/u", "conv1/kernel/u", "logit/kernel/u"]

    @functools.partial(jax.jit, static_argnums=1)
    def apply(stats, train):
        return disc.apply({"params": variables["params"], "batch_stats": stats}, x,
                          train=train, mutable=["batch_stats"])[1]["batch_stats"]

    chex.assert_trees_all_equal(flax.core.unfreeze(apply(stats, False)), stats)
    new = flax.core.unfreeze(apply(stats, True))
    for sn in stats:
        for name in stats[sn]:
            if name.endswith("/u"):
                assert not np.allclose(new[sn][name], stats[sn][name]), name
    # Power iteration converges: sigma -> the largest singular value of the kernel.
    for _ in range(30):
        new = apply(new, True)
    sigma = [sn[k] for sn in new.values() for k in sn if k == "conv1/kernel/sigma"][0]
    kernel = np.asarray(variables["params"]["conv1"]["kernel"]).reshape(-1, 16)
    top = np.linalg.svd(kernel, compute_uv=False)[0]
    assert 0.97 * top <= float(sigma) <= top * (1 + 1e-5)   # power iteration: from below


@pytest.mark.parametrize("module", [DCGANGenerator, DCGANDiscriminator])
def test_bad_resolution_raises(module):
    net = module(resolution=30)
    x = jnp.zeros((1, 100)) if module is DCGANGenerator else jnp.zeros((1, 30, 30, 1))
    with pytest.raises(ValueError, match="30"):
        net.init(jax.random.key(0), x)


def test_discriminator_rejects_wrong_image_size():
    with pytest.raises(ValueError, match="resolution=28"):
        DCGANDiscriminator(resolution=28).init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))


def test_bad_normalization_raises():
    with pytest.raises(ValueError, match="normalization"):
        DCGANDiscriminator(normalization="group").init(jax.random.key(0),
                                                       jnp.zeros((1, 28, 28, 1)))


def test_layers_module_exports():
    for name in ("UpsampleConv", "depth_to_space", "transposed_conv_to_subpixel_kernel",
                 "dense_or_conv_sn"):
        assert hasattr(layers, name)
