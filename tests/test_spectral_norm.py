"""Spectral normalization (flax nn.SpectralNorm) as jgan's models use it.

The power-iteration estimate stored in `batch_stats` must converge to the largest
singular value numpy.linalg.svd gives for the kernel (reshaped to `[-1, out]`), and the
normalized layer must act with spectral norm 1.
"""
from __future__ import annotations

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import chex

from jgan.models.mlp import MLPDiscriminator

ITERATIONS = 300


def _normal(seed, shape):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _init(module, seed, x, **kwargs):
    """Variables of `module.init`'s structure, filled from numpy (no init to compile).

    Kernels ~ N(0, 1 / fan_in), biases 0, power-iteration vectors u ~ N(0, 1), sigma 1.
    """
    shapes = flax.core.unfreeze(jax.eval_shape(
        lambda k: module.init(k, x, **kwargs), jax.random.key(seed)))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = path[-1].key
        if name == "sigma":
            return jnp.ones(leaf.shape, leaf.dtype)
        if name == "bias":
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1])) if name == "kernel" else 1
        return jnp.asarray(rng.normal(size=leaf.shape) / np.sqrt(fan_in), leaf.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _power_iteration(module, params, x, **kwargs):
    """Jitted `(stats, n) -> stats` after `n` training applications (one power
    iteration each); `n` is traced, so this compiles once."""
    def body(_, stats):
        _, updated = module.apply({"params": params, "batch_stats": stats}, x,
                                  mutable=["batch_stats"], **kwargs)
        return updated["batch_stats"]

    return jax.jit(lambda stats, n: jax.lax.fori_loop(0, n, body, stats))


def _power_iterate(module, variables, x, n, **kwargs):
    return _power_iteration(module, variables["params"], x, **kwargs)(
        variables["batch_stats"], n)


def _top_singular_value(kernel):
    k = np.asarray(kernel, np.float64)
    return np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]


def _sigmas(stats):
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(stats), sep="/")
    return {k: v for k, v in flat.items() if k.endswith("/sigma")}


def test_mlp_discriminator_sigma_converges_to_top_singular_value():
    model = MLPDiscriminator(hidden=(16, 8), spectral_norm=True)
    x = _normal(0, (4, 5))
    variables = _init(model, 1, x, train=False)
    stats = _power_iterate(model, variables, x, ITERATIONS, train=True)
    sigmas = _sigmas(stats)
    # One sigma per dense layer: the three kernels [5, 16], [16, 8], [8, 1].
    kernels = {k: v for k, v in flax.traverse_util.flatten_dict(
        variables["params"], sep="/").items() if k.endswith("kernel")}
    assert len(sigmas) == len(kernels) == 3, (sorted(sigmas), sorted(kernels))
    for name in sorted(sigmas):
        # ".../SpectralNorm_i/Dense_i/kernel/sigma" <-> params ".../Dense_i/kernel".
        layer = name.split("/")[-3]
        (kernel,) = [v for k, v in kernels.items() if f"{layer}/kernel" in k]
        chex.assert_shape(sigmas[name], ())
        np.testing.assert_allclose(float(sigmas[name]), _top_singular_value(kernel), rtol=1e-3,
                                   err_msg=name)
    # Training mode changed the stored vectors; inference mode leaves them as they are.
    assert not np.allclose(np.asarray(jax.tree.leaves(stats)[0]),
                           np.asarray(jax.tree.leaves(variables["batch_stats"])[0]))
    out, updated = jax.jit(lambda s: model.apply({"params": variables["params"],
                                                  "batch_stats": s}, x, train=False,
                                                 mutable=["batch_stats"]))(stats)
    chex.assert_shape(out, (4,))
    chex.assert_trees_all_equal(updated["batch_stats"], stats)


def test_bare_spectral_norm_dense_and_effective_kernel():
    layer = nn.SpectralNorm(nn.Dense(6, use_bias=False))
    x = _normal(2, (3, 9))
    variables = _init(layer, 3, x, update_stats=False)
    kernel = variables["params"]["layer_instance"]["kernel"]
    stats = _power_iterate(layer, variables, x, ITERATIONS, update_stats=True)
    (sigma,) = _sigmas(stats).values()
    np.testing.assert_allclose(float(sigma), _top_singular_value(kernel), rtol=1e-3)

    # The layer is linear: applied to the identity it returns its effective kernel W / sigma.
    apply = jax.jit(lambda s, x: layer.apply({"params": variables["params"], "batch_stats": s},
                                             x, update_stats=False, mutable=["batch_stats"]))
    effective, after = apply(stats, jnp.eye(9))
    chex.assert_shape(effective, (9, 6))
    np.testing.assert_allclose(_top_singular_value(effective), 1.0, rtol=1e-3)
    np.testing.assert_allclose(np.asarray(effective, np.float64),
                               np.asarray(kernel, np.float64) / _top_singular_value(kernel),
                               rtol=1e-3, atol=1e-5)
    chex.assert_trees_all_equal(after["batch_stats"], stats)   # update_stats=False
    # The same layer on an ordinary batch: x @ W / sigma.
    out, _ = apply(stats, x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(x @ effective), rtol=1e-5, atol=1e-5)


def test_bare_spectral_norm_conv_uses_kernel_reshaped_to_2d():
    layer = nn.SpectralNorm(nn.Conv(4, (3, 3)))
    x = _normal(4, (2, 6, 6, 3))
    variables = _init(layer, 5, x, update_stats=False)
    kernel = variables["params"]["layer_instance"]["kernel"]
    chex.assert_shape(kernel, (3, 3, 3, 4))
    stats = _power_iterate(layer, variables, x, ITERATIONS, update_stats=True)
    (sigma,) = _sigmas(stats).values()
    np.testing.assert_allclose(float(sigma), _top_singular_value(kernel), rtol=1e-3)


def test_few_iterations_underestimate_and_increase_towards_sigma():
    """Power iteration's estimate is a lower bound that grows with the iterations."""
    layer = nn.SpectralNorm(nn.Dense(12))
    x = jnp.ones((1, 12))
    variables = _init(layer, 6, x, update_stats=False)
    true = _top_singular_value(variables["params"]["layer_instance"]["kernel"])
    iterate = _power_iteration(layer, variables["params"], x, update_stats=True)
    estimates = [float(next(iter(_sigmas(iterate(variables["batch_stats"], n)).values())))
                 for n in (1, 2, 4, 8)]
    assert all(e <= true * (1 + 1e-5) for e in estimates), (estimates, true)
    assert all(b >= a - 1e-5 for a, b in zip(estimates, estimates[1:])), estimates


def test_spectrally_normalized_mlp_is_1_lipschitz_and_starts_flat():
    from experiments.dynamics.spectral_norm_flatness import flatness

    sn = flatness((32, 32), True, num_points=256)
    plain = flatness((32, 32), False, num_points=256)
    # Every layer's largest gain is 1 and LeakyReLU's is 1: |grad_x D| <= 1 everywhere.
    assert sn["grad_max"] <= 1.0 + 1e-4
    # ... and far below it at initialization, unlike the plain network.
    assert sn["grad_mean"] < 0.2 * plain["grad_mean"]
