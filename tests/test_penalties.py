"""Tests for jgan.objectives.penalties on critics whose input gradients are known in closed form."""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.objectives import penalties


def _linear_critic(w):
    """f(x)_i = <w, x_i>: input gradient w for every example and every x."""
    w = jnp.asarray(w)
    return lambda x: jnp.sum(x * w, axis=tuple(range(1, x.ndim)))


def _unit(shape, norm, seed):
    w = np.random.default_rng(seed).normal(size=shape)
    return (norm * w / np.linalg.norm(w)).astype(np.float32)


def _data(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape).astype(np.float32),
            (3.0 + 2.0 * rng.normal(size=shape)).astype(np.float32))


@functools.partial(jax.jit, static_argnames=("one_sided", "target", "column"))
def _gp_jit(w, real, fake, key, *, one_sided, target, column):
    critic = _linear_critic(w)
    if column:
        critic = lambda x, c=critic: c(x)[:, None]
    return penalties.gradient_penalty(critic, real=real, fake=fake, rng=key, target=target,
                                      one_sided=one_sided)


def _gp(w, real, fake, *, one_sided=False, target=1.0, seed=0, column=False):
    return _gp_jit(w, real, fake, jax.random.key(seed), one_sided=one_sided, target=target,
                   column=column)


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 5, 2)])
@pytest.mark.parametrize("one_sided", [False, True])
def test_gradient_penalty_of_unit_norm_linear_critic_is_zero(shape, one_sided):
    real, fake = _data(shape, 1)
    w = _unit(shape[1:], 1.0, 2)
    for seed in range(3):
        gp = _gp(w, real, fake, one_sided=one_sided, seed=seed)
        chex.assert_shape(gp, ())
        chex.assert_trees_all_close(gp, jnp.float32(0.0), atol=1e-10)


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 5, 2)])
@pytest.mark.parametrize("norm,two_sided,one_sided", [(3.0, 4.0, 4.0), (0.5, 0.25, 0.0),
                                                      (2.0, 1.0, 1.0), (0.0, 1.0, 0.0)])
def test_gradient_penalty_is_squared_norm_excess(shape, norm, two_sided, one_sided):
    real, fake = _data(shape, 3)
    w = _unit(shape[1:], norm, 4) if norm else np.zeros(shape[1:], np.float32)
    chex.assert_trees_all_close(_gp(w, real, fake), jnp.float32(two_sided), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(_gp(w, real, fake, one_sided=True), jnp.float32(one_sided),
                                rtol=1e-5, atol=1e-6)
    # [B, 1] critic outputs are the same critic.
    chex.assert_trees_all_close(_gp(w, real, fake, column=True), jnp.float32(two_sided),
                                rtol=1e-5, atol=1e-6)


def test_gradient_penalty_target():
    real, fake = _data((5, 4), 5)
    w = _unit((4,), 3.0, 6)
    chex.assert_trees_all_close(_gp(w, real, fake, target=3.0), jnp.float32(0.0), atol=1e-8)
    chex.assert_trees_all_close(_gp(w, real, fake, target=5.0), jnp.float32(4.0), rtol=1e-5)
    chex.assert_trees_all_close(_gp(w, real, fake, target=5.0, one_sided=True),
                                jnp.float32(0.0), atol=0)


def test_gradient_penalty_evaluates_the_gradient_at_interpolates():
    """f(x) = sum(a x^2): ||grad|| = 2 ||a * xhat|| on the interpolates it draws."""
    real, fake = _data((8, 3), 7)
    a = np.array([0.5, -1.0, 2.0], np.float32)
    critic = lambda x: jnp.sum(a * x ** 2, axis=-1)
    key = jax.random.key(11)
    gp = jax.jit(lambda r, f, k: penalties.gradient_penalty(critic, real=r, fake=f, rng=k))(
        real, fake, key)
    xhat = np.asarray(jax.jit(penalties.interpolates)(real, fake, key), np.float64)
    norms = np.linalg.norm(2 * a * xhat, axis=-1)
    chex.assert_trees_all_close(gp, jnp.float32(np.mean((norms - 1.0) ** 2)), rtol=1e-5)


@pytest.mark.parametrize("shape", [(64, 3), (16, 4, 4, 2)])
def test_interpolates_lie_on_segments(shape):
    real, fake = _data(shape, 8)
    xhat = np.asarray(jax.jit(penalties.interpolates)(real, fake, jax.random.key(0)),
                      np.float64)
    chex.assert_shape(xhat, shape)
    b = shape[0]
    diff = (real - fake).astype(np.float64).reshape(b, -1)
    # One coefficient per example, the same for every coordinate of that example.
    eps = ((xhat - fake).reshape(b, -1) / diff)
    np.testing.assert_allclose(eps, eps[:, :1] * np.ones_like(eps), atol=1e-5)
    eps = eps[:, 0]
    assert np.all(eps >= -1e-6) and np.all(eps <= 1 + 1e-6), eps
    np.testing.assert_allclose(xhat, (eps.reshape((b,) + (1,) * (len(shape) - 1)) * real
                                      + (1 - eps.reshape((b,) + (1,) * (len(shape) - 1))) * fake),
                               atol=1e-5)
    # The coefficients actually vary (uniform, not a constant).
    assert eps.std() > 0.1


def test_interpolates_differ_between_keys_and_are_reproducible():
    real, fake = _data((8, 2), 9)
    f = jax.jit(penalties.interpolates)
    a, b, c = f(real, fake, jax.random.key(0)), f(real, fake, jax.random.key(0)), f(
        real, fake, jax.random.key(1))
    chex.assert_trees_all_equal(a, b)
    assert not np.allclose(a, c)


def _quadratic_critic(a):
    # f(x)_i = sum_j a_j x_ij^2, gradient 2 a x_i.
    return lambda x: jnp.sum(a * x ** 2, axis=tuple(range(1, x.ndim)))


def _ref_r(a, x):
    g = 2.0 * np.asarray(a, np.float64) * np.asarray(x, np.float64)
    return np.mean(np.sum(g.reshape(g.shape[0], -1) ** 2, axis=-1))


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 5, 2)])
def test_r1_penalty_is_mean_squared_gradient_norm(shape):
    real, _ = _data(shape, 10)
    a = np.random.default_rng(11).normal(size=shape[1:]).astype(np.float32)
    r1 = jax.jit(lambda x: penalties.r1_penalty(_quadratic_critic(a), real=x))(real)
    chex.assert_shape(r1, ())
    chex.assert_trees_all_close(r1, jnp.float32(_ref_r(a, real)), rtol=1e-5)
    # Per-example, not the norm of the summed gradient: one example alone gives its own.
    r1_one = jax.jit(lambda x: penalties.r1_penalty(_quadratic_critic(a), real=x))(real[:1])
    chex.assert_trees_all_close(r1_one, jnp.float32(_ref_r(a, real[:1])), rtol=1e-5)


@pytest.mark.parametrize("shape", [(6, 3), (4, 5, 5, 2)])
def test_r2_penalty_on_fakes_without_generator_gradient(shape):
    _, fake = _data(shape, 12)
    a = np.random.default_rng(13).normal(size=shape[1:]).astype(np.float32)

    def r2(a, x):
        return penalties.r2_penalty(_quadratic_critic(a), fake=x)

    chex.assert_trees_all_close(jax.jit(r2)(a, fake), jnp.float32(_ref_r(a, fake)), rtol=1e-5)
    grad_a, grad_fake = jax.jit(jax.grad(r2, argnums=(0, 1)))(a, fake)
    # No gradient flows to the generated examples (the generator is held fixed) ...
    chex.assert_trees_all_equal(grad_fake, jnp.zeros_like(grad_fake))
    # ... but the critic's parameters get d/da mean_i sum_j (2 a_j x_ij)^2 = 8 a mean_i x_i^2.
    expected = 8.0 * a.astype(np.float64) * np.mean(np.asarray(fake, np.float64) ** 2, axis=0)
    chex.assert_trees_all_close(grad_a, expected.astype(np.float32), rtol=1e-4, atol=1e-5)


def test_r1_propagates_to_critic_parameters():
    real, _ = _data((6, 3), 14)
    a = np.array([0.3, -0.7, 1.1], np.float32)
    grad_a = jax.jit(jax.grad(lambda a, x: penalties.r1_penalty(_quadratic_critic(a), real=x)))(
        a, real)
    expected = 8.0 * a.astype(np.float64) * np.mean(np.asarray(real, np.float64) ** 2, axis=0)
    chex.assert_trees_all_close(grad_a, expected.astype(np.float32), rtol=1e-4)


def test_mismatched_shapes_raise():
    critic = _linear_critic(np.ones(3, np.float32))
    with pytest.raises(ValueError, match="shape"):
        penalties.gradient_penalty(critic, real=jnp.zeros((4, 3)), fake=jnp.zeros((5, 3)),
                                   rng=jax.random.key(0))
    with pytest.raises(ValueError, match="shape"):
        jax.jit(lambda r, f: penalties.gradient_penalty(
            critic, real=r, fake=f, rng=jax.random.key(0)))(jnp.zeros((4, 3)), jnp.zeros((4, 2)))


def test_gradient_penalty_is_differentiable_for_a_constant_critic():
    # A constant critic has zero input gradient; the penalty's sqrt must not give NaN.
    real, fake = _data((4, 3), 15)

    def gp_of_scale(s):
        return penalties.gradient_penalty(lambda x: s * jnp.sum(0.0 * x, axis=-1) + s,
                                          real=real, fake=fake, rng=jax.random.key(0))

    value, grad = jax.jit(jax.value_and_grad(gp_of_scale))(jnp.float32(2.0))
    chex.assert_trees_all_close(value, jnp.float32(1.0), rtol=1e-5)
    chex.assert_tree_all_finite(grad)


@pytest.mark.parametrize("outputs,shape", [
    (lambda x: jnp.sum(x, -1)[:, None] + jnp.sum(x, -1)[None, :], r"\(4, 4\)"),  # [B, B]
    (lambda x: x[:, :2], r"\(4, 2\)"),                                          # two heads
    (lambda x: jnp.sum(x), r"\(\)"),                                            # batch sum
    (lambda x: jnp.sum(x, -1)[:, None, None], r"\(4, 1, 1\)"),
])
def test_penalties_reject_critics_without_one_output_per_example(outputs, shape):
    """The gradient of the sum of several outputs per example is not a per-example
    score's gradient: each penalty raises naming the critic's output shape."""
    real, fake = _data((4, 3), 16)
    calls = [
        lambda: penalties.gradient_penalty(outputs, real=real, fake=fake, rng=jax.random.key(0)),
        lambda: penalties.r1_penalty(outputs, real=real),
        lambda: penalties.r2_penalty(outputs, fake=fake),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=rf"critic_fn .* got outputs {shape} for inputs "
                                             r"\(4, 3\)"):
            jax.jit(call)()


def test_interpolates_and_penalties_reject_inputs_that_would_broadcast():
    real, fake = _data((4, 3), 17)
    with pytest.raises(ValueError, match=r"interpolates .*real \(4, 3\) and fake \(1, 3\)"):
        penalties.interpolates(real, fake[:1], jax.random.key(0))
    with pytest.raises(ValueError, match=r"inputs must be \[B, ...\].*\(\)"):
        penalties.r1_penalty(lambda x: x, real=jnp.float32(1.0))
