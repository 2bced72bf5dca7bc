"""Tests for jgan.objectives.losses: values, gradients, fixed points and stability.

Expected values are computed independently in numpy float64 from the formulas of the
papers (log D, log(1 - D), hinge, squares), never through jgan itself.
"""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.objectives import losses

RTOL, ATOL = 1e-6, 1e-6

D_LOSSES = {
    "minimax": losses.minimax_discriminator_loss,
    "non_saturating": losses.minimax_discriminator_loss,
    "wasserstein": losses.wasserstein_discriminator_loss,
    "hinge": losses.hinge_discriminator_loss,
    "least_squares": losses.least_squares_discriminator_loss,
}
G_LOSSES = {
    "minimax": losses.minimax_generator_loss,
    "non_saturating": losses.non_saturating_generator_loss,
    "wasserstein": losses.wasserstein_generator_loss,
    "hinge": losses.wasserstein_generator_loss,
    "least_squares": losses.least_squares_generator_loss,
}


# ----------------------------------------------------------- independent references


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def ref_d_loss(loss_type, real, fake):
    r, f = np.asarray(real, np.float64).reshape(-1), np.asarray(fake, np.float64).reshape(-1)
    if loss_type in ("minimax", "non_saturating"):
        return np.mean(-np.log(_sigmoid(r))) + np.mean(-np.log(1.0 - _sigmoid(f)))
    if loss_type == "wasserstein":
        return np.mean(f) - np.mean(r)
    if loss_type == "hinge":
        return np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f))
    if loss_type == "least_squares":
        return 0.5 * np.mean((r - 1.0) ** 2) + 0.5 * np.mean(f ** 2)
    raise AssertionError(loss_type)


def ref_d_grads(loss_type, real, fake):
    """Analytic d L_D / d real_logits and d L_D / d fake_logits."""
    r, f = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    br, bf = r.shape[0], f.shape[0]
    if loss_type in ("minimax", "non_saturating"):
        return (_sigmoid(r) - 1.0) / br, _sigmoid(f) / bf
    if loss_type == "wasserstein":
        return -np.ones_like(r) / br, np.ones_like(f) / bf
    if loss_type == "hinge":
        return -(r < 1.0).astype(np.float64) / br, (f > -1.0).astype(np.float64) / bf
    if loss_type == "least_squares":
        return (r - 1.0) / br, f / bf
    raise AssertionError(loss_type)


def ref_g_loss(loss_type, fake):
    f = np.asarray(fake, np.float64).reshape(-1)
    if loss_type == "minimax":
        return np.mean(np.log(1.0 - _sigmoid(f)))
    if loss_type == "non_saturating":
        return np.mean(-np.log(_sigmoid(f)))
    if loss_type in ("wasserstein", "hinge"):
        return -np.mean(f)
    if loss_type == "least_squares":
        return 0.5 * np.mean((f - 1.0) ** 2)
    raise AssertionError(loss_type)


def ref_g_grad(loss_type, fake):
    f = np.asarray(fake, np.float64)
    b = f.shape[0]
    if loss_type == "minimax":
        return -_sigmoid(f) / b
    if loss_type == "non_saturating":
        return (_sigmoid(f) - 1.0) / b
    if loss_type in ("wasserstein", "hinge"):
        return -np.ones_like(f) / b
    if loss_type == "least_squares":
        return (f - 1.0) / b
    raise AssertionError(loss_type)


# ------------------------------------------------------------------------- helpers


# Jitted forms, built once per loss function so tests share their compilations.
@functools.cache
def _jit_d(fn):
    return jax.jit(lambda r, f: fn(real_logits=r, fake_logits=f))


@functools.cache
def _jit_g(fn):
    return jax.jit(lambda f: fn(fake_logits=f))


@functools.cache
def _grad_d(fn):
    """(real, fake) -> (dL/dreal, dL/dfake), jitted."""
    return jax.jit(jax.grad(lambda r, f: fn(real_logits=r, fake_logits=f), argnums=(0, 1)))


@functools.cache
def _grad_g(fn):
    return jax.jit(jax.grad(lambda f: fn(fake_logits=f)))


_dispatch_d = jax.jit(losses.discriminator_loss, static_argnames="loss_type")
_dispatch_g = jax.jit(losses.generator_loss, static_argnames="loss_type")


def _moderate_logits(seed, n):
    # Away from the hinge kinks at +-1 so the analytic subgradient is unambiguous.
    x = np.random.default_rng(seed).uniform(-4.0, 4.0, size=n)
    x[np.abs(np.abs(x) - 1.0) < 0.05] += 0.2
    return x.astype(np.float32)


# --------------------------------------------------------------- values, gradients


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_discriminator_loss_value_and_gradient_match_analytic(loss_type):
    real, fake = _moderate_logits(0, 8), _moderate_logits(1, 6)   # different batch sizes
    fn = D_LOSSES[loss_type]
    value = _jit_d(fn)(real, fake)
    chex.assert_shape(value, ())
    chex.assert_trees_all_close(value, np.float32(ref_d_loss(loss_type, real, fake)),
                                rtol=RTOL, atol=ATOL)
    g_real, g_fake = _grad_d(fn)(real, fake)
    exp_real, exp_fake = ref_d_grads(loss_type, real, fake)
    chex.assert_trees_all_close((g_real, g_fake),
                                (exp_real.astype(np.float32), exp_fake.astype(np.float32)),
                                rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_generator_loss_value_and_gradient_match_analytic(loss_type):
    fake = _moderate_logits(2, 7)
    fn = G_LOSSES[loss_type]
    value = _jit_g(fn)(fake)
    chex.assert_shape(value, ())
    chex.assert_trees_all_close(value, np.float32(ref_g_loss(loss_type, fake)),
                                rtol=RTOL, atol=ATOL)
    grad = _grad_g(fn)(fake)
    chex.assert_trees_all_close(grad, ref_g_grad(loss_type, fake).astype(np.float32),
                                rtol=RTOL, atol=ATOL)


def test_minimax_discriminator_loss_derivative_per_logit():
    # d/dl [-log sigma(l)] / B = (sigma(l) - 1) / B;  d/dl [-log(1 - sigma(l))] / B = sigma(l) / B.
    logits = np.array([-3.0, -0.5, 0.0, 0.7, 2.5], np.float32)
    b = logits.shape[0]
    g_real, g_fake = _grad_d(losses.minimax_discriminator_loss)(logits, -logits)
    chex.assert_trees_all_close(g_real, ((_sigmoid(logits) - 1) / b).astype(np.float32),
                                rtol=RTOL, atol=ATOL)
    chex.assert_trees_all_close(g_fake, (_sigmoid(-logits) / b).astype(np.float32),
                                rtol=RTOL, atol=ATOL)


def test_minimax_discriminator_loss_at_equilibrium_is_two_log_two():
    # D* = 1/2 everywhere (p_g = p_data): logits 0, loss = log 4.
    zeros = jnp.zeros((16,))
    value = _jit_d(losses.minimax_discriminator_loss)(zeros, zeros)
    chex.assert_trees_all_close(value, jnp.float32(2 * np.log(2)), rtol=RTOL)
    # ... and there the discriminator has no gradient along a shared logit.
    grad = jax.jit(jax.grad(lambda l: losses.minimax_discriminator_loss(
        real_logits=jnp.full((16,), l), fake_logits=jnp.full((16,), l))))(0.0)
    chex.assert_trees_all_close(grad, jnp.float32(0.0), atol=1e-7)


@pytest.mark.parametrize("k,j", [(3, 1), (1, 3), (2, 2), (5, 2)])
def test_optimal_discriminator_is_p_data_over_p_data_plus_p_g(k, j):
    """A point x making k of B real and j of B fake examples: D*(x) = k / (k + j).

    Minimax (and non-saturating) D: sigmoid(l*) = k/(k+j), i.e. l* = log(k/j).
    Least squares (a=0, b=1): f* = k/(k+j) as well.
    """
    b = 8

    def d_loss_of_shared_logit(fn, l, other):
        real = jnp.concatenate([jnp.full((k,), l), other[: b - k]])
        fake = jnp.concatenate([jnp.full((j,), l), -other[: b - j]])
        return fn(real_logits=real, fake_logits=fake)

    other = jnp.linspace(-2.0, 2.0, b)
    grad_mm = jax.jit(jax.grad(functools.partial(
        d_loss_of_shared_logit, losses.minimax_discriminator_loss)))
    chex.assert_trees_all_close(grad_mm(jnp.float32(np.log(k / j)), other), jnp.float32(0.0),
                                atol=1e-7)
    assert grad_mm(jnp.float32(np.log(k / j) + 0.3), other) > 0
    assert grad_mm(jnp.float32(np.log(k / j) - 0.3), other) < 0

    grad_ls = jax.jit(jax.grad(functools.partial(
        d_loss_of_shared_logit, losses.least_squares_discriminator_loss)))
    chex.assert_trees_all_close(grad_ls(jnp.float32(k / (k + j)), other), jnp.float32(0.0),
                                atol=1e-7)


def test_saturating_generator_gradient_vanishes_non_saturating_does_not():
    b = 4
    sat = _grad_g(losses.minimax_generator_loss)
    nonsat = _grad_g(losses.non_saturating_generator_loss)
    for logit in (-10.0, -20.0, -50.0, -1e4):
        fake = jnp.full((b,), logit)
        g_sat, g_nonsat = sat(fake), nonsat(fake)
        assert np.all(np.abs(np.asarray(g_sat)) <= 1e-4 / b), (logit, g_sat)
        chex.assert_trees_all_close(g_nonsat, jnp.full((b,), -1.0 / b), rtol=1e-4)
    # Far from saturation both point the same way with the same magnitude at logit 0.
    chex.assert_trees_all_close(sat(jnp.zeros((b,))), nonsat(jnp.zeros((b,))), rtol=RTOL)


def test_hinge_discriminator_loss_is_zero_once_margins_are_met():
    real = jnp.array([1.0, 1.5, 3.0, 100.0])
    fake = jnp.array([-1.0, -2.0, -7.0, -100.0])
    fn = losses.hinge_discriminator_loss
    chex.assert_trees_all_close(_jit_d(fn)(real, fake), jnp.float32(0.0), atol=0)
    g = _grad_d(fn)(real + 0.01, fake - 0.01)
    chex.assert_trees_all_close(g, (jnp.zeros(4), jnp.zeros(4)), atol=0)
    # One example inside the margin: the loss is its violation / B.
    chex.assert_trees_all_close(_jit_d(fn)(real.at[0].set(0.25), fake), jnp.float32(0.75 / 4),
                                rtol=RTOL)
    chex.assert_trees_all_close(_jit_d(fn)(real, fake.at[2].set(0.5)), jnp.float32(1.5 / 4),
                                rtol=RTOL)


def test_wasserstein_losses_are_linear():
    real = jnp.array([0.3, -2.0, 5.0])
    fake = jnp.array([1.0, 4.0, -0.5, 2.0])
    fn = _jit_d(losses.wasserstein_discriminator_loss)
    chex.assert_trees_all_close(fn(real, fake), jnp.float32(np.mean([1.0, 4.0, -0.5, 2.0]) - 1.1),
                                rtol=RTOL)
    # Shifting both by a constant leaves the critic loss unchanged.
    chex.assert_trees_all_close(fn(real + 7.0, fake + 7.0), fn(real, fake), rtol=1e-5)
    chex.assert_trees_all_close(_jit_g(losses.wasserstein_generator_loss)(fake),
                                jnp.float32(-1.625), rtol=RTOL)


def test_least_squares_fixed_points():
    ones, zeros = jnp.ones((5,)), jnp.zeros((5,))
    chex.assert_trees_all_close(_jit_d(losses.least_squares_discriminator_loss)(ones, zeros),
                                jnp.float32(0.0), atol=0)
    chex.assert_trees_all_close(_jit_g(losses.least_squares_generator_loss)(ones),
                                jnp.float32(0.0), atol=0)
    chex.assert_trees_all_close(_jit_d(losses.least_squares_discriminator_loss)(zeros, ones),
                                jnp.float32(1.0), rtol=RTOL)


# --------------------------------------------------------------------------- signs


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_generator_losses_decrease_as_fake_logits_rise(loss_type):
    # Below 1, where every generator wants to go up (least squares targets f = 1).
    grid = jnp.linspace(-6.0, 0.9, 50)
    values, grads = jax.jit(jax.vmap(jax.value_and_grad(lambda l: losses.generator_loss(
        fake_logits=jnp.full((3,), l), loss_type=loss_type))))(grid)
    assert np.all(np.diff(np.asarray(values)) < 0), values
    assert np.all(np.asarray(grads) < 0), grads


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_discriminator_losses_reward_high_real_and_low_fake_logits(loss_type):
    # Where each loss is active: real below 1 / fake above 0 (hinge: above -1).
    grid = jnp.linspace(0.05, 0.95, 20)

    def d(r, f):
        return losses.discriminator_loss(real_logits=jnp.full((3,), r),
                                         fake_logits=jnp.full((3,), f), loss_type=loss_type)

    vs_real, vs_fake = jax.device_get(jax.jit(lambda g: (jax.vmap(lambda r: d(r, 0.5))(g),
                                                         jax.vmap(lambda f: d(0.5, f))(g)))(grid))
    assert np.all(np.diff(vs_real) < 0), vs_real
    assert np.all(np.diff(vs_fake) > 0), vs_fake


# ---------------------------------------------------------------------- dispatcher


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_dispatchers_agree_with_individual_functions(loss_type):
    real, fake = _moderate_logits(3, 5), _moderate_logits(4, 5)
    d = functools.partial(_dispatch_d, loss_type=loss_type)
    g = functools.partial(_dispatch_g, loss_type=loss_type)
    # Both jitted, so XLA fuses them the same way: bit-identical.
    chex.assert_trees_all_close(d(real_logits=real, fake_logits=fake),
                                _jit_d(D_LOSSES[loss_type])(real, fake), rtol=0, atol=0)
    chex.assert_trees_all_close(g(fake_logits=fake), _jit_g(G_LOSSES[loss_type])(fake),
                                rtol=0, atol=0)
    # ... and with the independent reference (so the table maps names correctly).
    chex.assert_trees_all_close(d(real_logits=real, fake_logits=fake),
                                np.float32(ref_d_loss(loss_type, real, fake)), rtol=RTOL, atol=ATOL)
    chex.assert_trees_all_close(g(fake_logits=fake), np.float32(ref_g_loss(loss_type, fake)),
                                rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("call", [
    lambda t: losses.discriminator_loss(real_logits=jnp.zeros(2), fake_logits=jnp.zeros(2),
                                        loss_type=t),
    lambda t: losses.generator_loss(fake_logits=jnp.zeros(2), loss_type=t),
    losses.check_loss_type,
])
def test_unknown_loss_type_is_rejected_with_the_valid_names(call):
    with pytest.raises(ValueError, match="wgan") as excinfo:
        call("wgan")
    for name in losses.LOSS_TYPES:
        assert name in str(excinfo.value)


# ----------------------------------------------------------------------- stability


def test_extreme_logits_give_exact_finite_values():
    b = 4
    big, small = jnp.full((b,), 1e4), jnp.full((b,), -1e4)
    cases = [
        # (loss function, its arguments, expected value)
        (losses.non_saturating_generator_loss, dict(fake_logits=small), 1e4),
        (losses.non_saturating_generator_loss, dict(fake_logits=big), 0.0),
        (losses.minimax_generator_loss, dict(fake_logits=big), -1e4),
        (losses.minimax_generator_loss, dict(fake_logits=small), 0.0),
        (losses.minimax_discriminator_loss, dict(real_logits=big, fake_logits=small), 0.0),
        (losses.minimax_discriminator_loss, dict(real_logits=small, fake_logits=big), 2e4),
        (losses.minimax_discriminator_loss, dict(real_logits=big, fake_logits=big), 1e4),
        (losses.wasserstein_discriminator_loss, dict(real_logits=big, fake_logits=small), -2e4),
        (losses.wasserstein_generator_loss, dict(fake_logits=small), 1e4),
        (losses.hinge_discriminator_loss, dict(real_logits=big, fake_logits=small), 0.0),
        (losses.hinge_discriminator_loss, dict(real_logits=small, fake_logits=big), 2e4 + 2),
        (losses.least_squares_discriminator_loss, dict(real_logits=small, fake_logits=big),
         0.5 * (1e4 + 1) ** 2 + 0.5 * 1e8),
        (losses.least_squares_generator_loss, dict(fake_logits=small), 0.5 * (1e4 + 1) ** 2),
    ]

    @jax.jit
    def evaluate(all_kwargs):
        return [jax.value_and_grad(lambda kw, fn=fn: fn(**kw))(kw)
                for (fn, _, _), kw in zip(cases, all_kwargs)]

    results = evaluate([kwargs for _, kwargs, _ in cases])
    for (fn, kwargs, expected), (value, grads) in zip(cases, results):
        chex.assert_tree_all_finite((value, grads))
        chex.assert_trees_all_close(value, jnp.float32(expected), rtol=1e-6, atol=1e-6,
                                    custom_message=f"{fn.__name__} {kwargs}")


def test_extreme_logit_gradients_are_exact():
    b = 2
    big, small = jnp.full((b,), 1e4), jnp.full((b,), -1e4)
    g_real, g_fake = _grad_d(losses.minimax_discriminator_loss)(small, big)
    chex.assert_trees_all_close((g_real, g_fake), (jnp.full((b,), -1.0 / b), jnp.full((b,), 1.0 / b)))
    g_real, g_fake = _grad_d(losses.minimax_discriminator_loss)(big, small)
    chex.assert_trees_all_close((g_real, g_fake), (jnp.zeros(b), jnp.zeros(b)), atol=0)


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
def test_b_and_b1_shapes_agree(loss_type):
    real, fake = _moderate_logits(5, 6), _moderate_logits(6, 6)
    d = functools.partial(_dispatch_d, loss_type=loss_type)
    g = functools.partial(_dispatch_g, loss_type=loss_type)
    flat = (d(real_logits=real, fake_logits=fake), g(fake_logits=fake))
    column = (d(real_logits=real[:, None], fake_logits=fake[:, None]),
              g(fake_logits=fake[:, None]))
    mixed = d(real_logits=real[:, None], fake_logits=fake)
    chex.assert_shape(column, ())
    chex.assert_trees_all_close(flat, column, rtol=0, atol=0)
    chex.assert_trees_all_close(flat[0], mixed, rtol=0, atol=0)
    # Gradients keep the input's shape.
    grad_g = _grad_g(G_LOSSES[loss_type])
    grad_col = grad_g(fake[:, None])
    chex.assert_shape(grad_col, (6, 1))
    chex.assert_trees_all_close(grad_col[:, 0], grad_g(fake))


# ------------------------------------------------------------------ shapes, errors


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
@pytest.mark.parametrize("real_shape,fake_shape", [
    ((4, 3, 3), (5, 3, 3)),          # a patch discriminator's grid, different batch sizes
    ((4, 3, 3, 1), (5, 3, 3)),       # ... with a trailing channel on one side
    ((6, 1), (5,)),                  # [B, 1] against [B']: each side its own mean
    ((6, 1, 1, 1), (6, 1)),
])
def test_losses_average_each_side_over_all_examples_and_positions(loss_type, real_shape,
                                                                  fake_shape):
    rng = np.random.default_rng(7)
    real = rng.uniform(-3, 3, real_shape).astype(np.float32)
    fake = rng.uniform(-3, 3, fake_shape).astype(np.float32)
    d = _dispatch_d(real_logits=real, fake_logits=fake, loss_type=loss_type)
    g = _dispatch_g(fake_logits=fake, loss_type=loss_type)
    chex.assert_shape((d, g), ())
    chex.assert_trees_all_close(d, np.float32(ref_d_loss(loss_type, real, fake)), rtol=1e-5)
    chex.assert_trees_all_close(g, np.float32(ref_g_loss(loss_type, fake)), rtol=1e-5)


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
@pytest.mark.parametrize("real_shape,fake_shape,named", [
    ((), (4,), "real_logits"),
    ((4,), (), "fake_logits"),
    ((0,), (4,), "real_logits"),
    ((4,), (0, 1), "fake_logits"),
    ((4, 0), (4,), "real_logits"),
    ((4, 2), (4,), r"real_logits \(4, 2\) and fake_logits \(4,\)"),
    ((4, 3, 3), (4, 9), r"real_logits \(4, 3, 3\) and fake_logits \(4, 9\)"),
])
def test_discriminator_losses_reject_shapes_they_cannot_average(loss_type, real_shape,
                                                                fake_shape, named):
    real, fake = jnp.zeros(real_shape), jnp.zeros(fake_shape)
    with pytest.raises(ValueError, match=named):
        losses.discriminator_loss(real_logits=real, fake_logits=fake, loss_type=loss_type)
    with pytest.raises(ValueError, match=named):   # shapes are static: jit raises too
        _dispatch_d(real_logits=real, fake_logits=fake, loss_type=loss_type)


@pytest.mark.parametrize("loss_type", losses.LOSS_TYPES)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0)])
def test_generator_losses_reject_scalar_and_empty_logits(loss_type, shape):
    with pytest.raises(ValueError, match=r"fake_logits .*got shape"):
        _dispatch_g(fake_logits=jnp.zeros(shape), loss_type=loss_type)
