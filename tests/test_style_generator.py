"""Tests for jgan.models.style_generator (StyleGAN / StyleGAN2 generator).

Properties: modulated_conv (fused and unfused) equals a per-sample reference and
demodulation keeps unit output variance; AdaIN sets the style's per-channel statistics;
shapes and widths at 4-16 px for both modulations; every one of the num_ws ws reaches
the image; truncation at psi = 0 and 1; style mixing at cutoffs 0, L and per sample;
noise modes; the mapping's learning-rate multiplier; the w_avg update. Widths of 4-16,
8 px generators with variables filled from numpy (no init to compile), jitted applies.
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models.style_generator import (EqualizedDense, MappingNetwork, StyleGenerator, adain,
                                         modulated_conv, num_ws, update_w_avg)

B, Z, W_DIM, R = 4, 16, 16, 8
LR_MUL = 0.01
# Channels 16, 8, 4 at 4, 8, 16 px.
GEN = StyleGenerator(latent_dim=Z, w_dim=W_DIM, resolution=R, img_channels=3, channel_base=64,
                     channel_max=16, mapping_layers=2, mapping_lr_multiplier=LR_MUL)
L = GEN.num_ws   # 4 at 8 px


def _z(seed: int, batch: int = B) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), (batch, Z))


def _filled(module, seed=0, **kwargs):
    """`module`'s variables drawn from numpy as its initializers draw them (mapping
    kernels N(0, 1/LR_MUL^2), affine biases 1, weights N(0, 1)), except noise strengths
    of 0.5 (they start at 0) and biases N(0, 0.1^2)."""
    shapes = jax.eval_shape(functools.partial(module.init, **kwargs),
                            {"params": jax.random.key(0), "noise": jax.random.key(1)}, _z(0))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        keys = [p.key for p in path]
        if keys[-1] == "noise_strength":
            return jnp.full(leaf.shape, 0.5, leaf.dtype)
        if keys[-1] == "bias":
            return jnp.asarray((keys[-2] == "affine") + 0.1 * rng.normal(size=leaf.shape),
                               leaf.dtype)
        std = 1.0 / LR_MUL if "mapping_network" in keys else 1.0
        return jnp.asarray(std * rng.normal(size=leaf.shape), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


@pytest.fixture(scope="module")
def variables():
    return _filled(GEN)


@functools.partial(jax.jit, static_argnames=("method", "noise_mode"))
def _run(variables, x, key=None, *, method=None, noise_mode="const", **kwargs):
    """Jitted `GEN.apply`; noise_mode applies to `__call__` and `synthesis`."""
    if method != "mapping":
        kwargs["noise_mode"] = noise_mode
    rngs = {} if key is None else {"noise": key}
    return GEN.apply(variables, x, rngs=rngs, method=method, **kwargs)


def _reference_modulated_conv(x, weight, styles, demodulate, eps=1e-8):
    """Per sample: scale the weight by the styles, demodulate by sqrt(sum w'^2), convolve."""
    outs = []
    for b in range(x.shape[0]):
        w = weight * styles[b][None, None, :, None]
        if demodulate:
            w = w / jnp.sqrt(jnp.sum(jnp.square(w), axis=(0, 1, 2), keepdims=True) + eps)
        outs.append(jax.lax.conv_general_dilated(x[b:b + 1], w, (1, 1), "SAME",
                                                 dimension_numbers=("NHWC", "HWIO", "NHWC")))
    return jnp.concatenate(outs)


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_matches_per_sample_reference(demodulate, fused):
    k1, k2, k3 = jax.random.split(jax.random.key(2), 3)
    x = jax.random.normal(k1, (3, 8, 8, 5))
    weight = jax.random.normal(k2, (3, 3, 5, 6))
    styles = 1.0 + 0.5 * jax.random.normal(k3, (3, 5))
    f = jax.jit(functools.partial(modulated_conv, demodulate=demodulate, fused=fused))
    y = f(x, weight, styles)
    chex.assert_shape(y, (3, 8, 8, 6))
    ref = _reference_modulated_conv(x, weight, styles, demodulate)   # eager: op by op
    chex.assert_trees_all_close(y, ref, atol=1e-4, rtol=1e-4)


def test_demodulation_gives_unit_output_std():
    # For iid unit-variance input, output channel o has variance sum_{k,i} w''^2 = 1.
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    x = jax.random.normal(k1, (8, 16, 16, 32))
    weight = 3.0 * jax.random.normal(k2, (3, 3, 32, 8))
    styles = jnp.exp(jax.random.normal(k3, (8, 32)))
    y = jax.jit(modulated_conv)(x, weight, styles)[:, 1:-1, 1:-1]   # border: zero padding
    np.testing.assert_allclose(np.std(np.asarray(y), axis=(0, 1, 2)), 1.0, atol=0.1)


def test_adain_has_the_style_statistics():
    k1, k2, k3 = jax.random.split(jax.random.key(4), 3)
    x = 3.0 + 2.0 * jax.random.normal(k1, (2, 8, 8, 5))
    scale = jax.random.uniform(k2, (2, 5), minval=0.5, maxval=2.0)
    bias = jax.random.normal(k3, (2, 5))
    y = np.asarray(jax.jit(adain)(x, scale, bias))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), bias, atol=1e-5)
    np.testing.assert_allclose(y.std(axis=(1, 2)), scale, rtol=1e-4)


@pytest.mark.parametrize("modulation", ["demodulation", "adain"])
@pytest.mark.parametrize("resolution", [4, 8, 16])
def test_shapes_at_each_resolution(resolution, modulation):
    g = StyleGenerator(latent_dim=Z, w_dim=W_DIM, resolution=resolution, channel_base=64,
                       channel_max=16, mapping_layers=2, modulation=modulation)
    rngs = {"params": jax.random.key(0), "noise": jax.random.key(1)}
    v = jax.eval_shape(g.init, rngs, _z(0))
    out = jax.eval_shape(functools.partial(g.apply, rngs={"noise": jax.random.key(1)}), v, _z(0))
    chex.assert_shape(out, (B, resolution, resolution, 3))
    ws = jax.eval_shape(functools.partial(g.apply, method="mapping"), v, _z(0))
    chex.assert_shape(ws, (B, 2 * int(np.log2(resolution)) - 2, W_DIM))
    p = v["params"]["synthesis_network"]
    for res in [4, 8, 16][:int(np.log2(resolution)) - 1]:
        c = min(64 // res, 16)
        chex.assert_shape(p[f"b{res}_conv1"]["weight"], (3, 3, c, c))
        chex.assert_shape(p[f"b{res}_torgb"]["weight"], (1, 1, c, 3))


def test_adain_generator_runs():
    g = StyleGenerator(latent_dim=Z, w_dim=W_DIM, resolution=8, channel_base=64,
                       channel_max=16, mapping_layers=2, modulation="adain")
    v = _filled(g, noise_mode="const")
    out = jax.jit(functools.partial(g.apply, noise_mode="none"))(v, _z(1))
    chex.assert_shape(out, (B, 8, 8, 3))
    chex.assert_tree_all_finite(out)
    assert float(jnp.std(out)) > 1e-3


def test_num_ws_matches_synthesis_layers(variables):
    p = variables["params"]["synthesis_network"]
    convs = [k for k in p if "conv" in k]
    torgbs = [k for k in p if "torgb" in k]
    assert len(convs) == 2 * len(torgbs) - 1 == 3
    assert L == num_ws(R) == len(convs) + 1 == 4
    # Every w reaches the image.
    ws = _run(variables, _z(5), method="mapping")
    chex.assert_shape(ws, (B, L, W_DIM))
    grad = jax.jit(jax.grad(lambda ws: jnp.sum(
        GEN.apply(variables, ws, noise_mode="const", method="synthesis") ** 2)))(ws)
    assert np.all(np.linalg.norm(np.asarray(grad), axis=(0, 2)) > 1e-6)
    with pytest.raises(ValueError, match="ws of shape"):
        GEN.apply(variables, ws[:, :-1], noise_mode="const", method="synthesis")


def test_truncation(variables):
    z = _z(6)
    w_avg = 0.3 * jax.random.normal(jax.random.key(7), (W_DIM,))
    at_zero = _run(variables, z, truncation_psi=jnp.float32(0.0), w_avg=w_avg)
    of_avg = _run(variables, jnp.broadcast_to(w_avg, (1, L, W_DIM)), method="synthesis")
    chex.assert_trees_all_close(at_zero, jnp.broadcast_to(of_avg, at_zero.shape), atol=1e-5)
    at_one = _run(variables, z, truncation_psi=jnp.float32(1.0), w_avg=w_avg)
    chex.assert_trees_all_close(at_one, _run(variables, z), atol=1e-5)
    assert float(jnp.max(jnp.abs(at_zero - at_one))) > 1e-3
    with pytest.raises(ValueError, match="w_avg"):
        GEN.apply(variables, z, truncation_psi=0.5, noise_mode="const")


def test_style_mixing(variables):
    z, z2 = _z(8), _z(9)
    plain, other = _run(variables, z), _run(variables, z2)
    mixed = lambda cutoff: _run(variables, z, mix_z=z2, mix_cutoff=jnp.asarray(cutoff))
    chex.assert_trees_all_close(mixed(L), plain, atol=1e-5)
    chex.assert_trees_all_close(mixed(0), other, atol=1e-5)
    # Per-sample crossover points: rows below the cutoff from z, the rest from z2.
    cutoffs = jnp.array([0, 1, 3, L])
    ws = _run(variables, z, mix_z=z2, mix_cutoff=cutoffs, method="mapping")
    w1, w2 = _run(variables, z, method="mapping"), _run(variables, z2, method="mapping")
    for b, c in enumerate(np.asarray(cutoffs)):
        chex.assert_trees_all_close(ws[b, :c], w1[b, :c])
        chex.assert_trees_all_close(ws[b, c:], w2[b, c:])


def test_noise_modes(variables):
    z, k1, k2 = _z(10), jax.random.key(11), jax.random.key(12)
    const = _run(variables, z, k1)
    chex.assert_trees_all_close(const, _run(variables, z, k2))
    random1 = _run(variables, z, k1, noise_mode="random")
    chex.assert_trees_all_close(random1, _run(variables, z, k1, noise_mode="random"))
    assert float(jnp.max(jnp.abs(random1 - _run(variables, z, k2, noise_mode="random")))) > 1e-3
    assert float(jnp.max(jnp.abs(const - _run(variables, z, noise_mode="none")))) > 1e-3


def test_mapping_lr_multiplier():
    lr, fan_in = 0.01, 64
    m = MappingNetwork(latent_dim=fan_in, w_dim=fan_in, num_layers=2, lr_multiplier=lr)
    z = _z(13, 8).repeat(4, axis=1)
    p = jax.jit(m.init)(jax.random.key(14), z)["params"]
    kernel = np.asarray(p["fc0"]["kernel"])
    np.testing.assert_allclose(kernel.std(), 1.0 / lr, rtol=0.05)        # stored N(0, 1/lr^2)
    effective = kernel * lr / np.sqrt(fan_in)
    np.testing.assert_allclose(effective.std(), 1.0 / np.sqrt(fan_in), rtol=0.05)
    bias = jnp.linspace(-1.0, 1.0, fan_in)
    y = EqualizedDense(fan_in, lr).apply({"params": {"kernel": kernel, "bias": bias}}, z)
    chex.assert_trees_all_close(y, z @ effective + lr * bias, atol=1e-5)
    # Pixel norm: w depends only on z's direction.
    w = jax.jit(m.apply)({"params": p}, z)
    chex.assert_trees_all_close(jax.jit(m.apply)({"params": p}, 3.0 * z), w, atol=1e-5)


def test_update_w_avg():
    w_avg = jnp.arange(4.0)
    ws = jax.random.normal(jax.random.key(15), (6, 4))
    new = jax.jit(update_w_avg)(w_avg, ws)
    chex.assert_trees_all_close(new, 0.995 * w_avg + 0.005 * ws.mean(0), atol=1e-6)
    broadcast = jnp.broadcast_to(ws[:, None], (6, L, 4))
    chex.assert_trees_all_close(update_w_avg(w_avg, broadcast, 0.9),
                                0.9 * w_avg + 0.1 * ws.mean(0), atol=1e-6)
