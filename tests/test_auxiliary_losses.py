"""Shapes and bad input of jgan.objectives.auxiliary_losses: the class cross-entropy for
any leading shape against numpy and optax, out-of-range labels (eager, jit, checkify),
and InfoGAN's information loss. The papers' formulas are checked in
test_conditional_families.py."""
from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.experimental import checkify

from jgan.objectives import auxiliary_losses

K = 10


def _ref_cross_entropy(logits, labels):
    """Mean over all positions of -log softmax(logits)[label], float64 numpy."""
    x = np.asarray(logits, np.float64)
    x = x - x.max(-1, keepdims=True)
    log_p = x - np.log(np.exp(x).sum(-1, keepdims=True))
    picked = np.take_along_axis(log_p, np.asarray(labels)[..., None], axis=-1)
    return -np.mean(picked)


def _logits_and_labels(shape, seed=0):
    rng = np.random.default_rng(seed)
    return (3.0 * rng.normal(size=shape + (K,))).astype(np.float32), rng.integers(0, K, shape)


@functools.cache
def _jit_ce():
    return jax.jit(lambda l, y: auxiliary_losses.class_cross_entropy(class_logits=l, labels=y))


@pytest.mark.parametrize("shape", [(6,), (2, 4, 4), (3, 5), (1,), ()])
def test_class_cross_entropy_is_the_mean_over_all_positions(shape):
    """[B, K], a patch classifier's [B, H, W, K], a sequence's [B, T, K], one example."""
    logits, labels = _logits_and_labels(shape)
    value = _jit_ce()(logits, labels)
    chex.assert_shape(value, ())
    chex.assert_trees_all_close(value, np.float32(_ref_cross_entropy(logits, labels)),
                                rtol=1e-5)
    reference = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    chex.assert_trees_all_close(value, reference, rtol=1e-5)
    # Eager (concrete labels, range-checked on the host) gives the same number.
    chex.assert_trees_all_close(
        auxiliary_losses.class_cross_entropy(class_logits=logits, labels=labels), value,
        rtol=1e-6)


def test_patch_logits_are_not_broadcast_against_labels():
    """[B, H, W, K] logits once met [B, H, W] labels as a [B, 1, H, W] index, which
    broadcast with H == W into a [B, H, W, W] gather and a wrong mean."""
    logits, labels = _logits_and_labels((2, 4, 4), seed=1)
    broadcast = -np.mean(np.take_along_axis(
        np.asarray(jax.nn.log_softmax(logits)), labels[:, None], axis=-1))
    expected = _ref_cross_entropy(logits, labels)
    assert abs(broadcast - expected) > 0.1, (broadcast, expected)
    chex.assert_trees_all_close(_jit_ce()(logits, labels), np.float32(expected), rtol=1e-5)


def test_class_cross_entropy_gradient_is_softmax_minus_one_hot():
    logits, labels = _logits_and_labels((2, 3), seed=2)
    grad = jax.jit(jax.grad(lambda l: auxiliary_losses.class_cross_entropy(
        class_logits=l, labels=labels)))(logits)
    x = logits.astype(np.float64)
    softmax = np.exp(x - x.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    expected = (softmax - np.eye(K)[labels]) / labels.size
    chex.assert_trees_all_close(grad, expected.astype(np.float32), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("logits_shape,labels_shape,dtype,match", [
    ((2, 4, 4, K), (2,), np.int32, r"labels .*\(2, 4, 4\).*got labels \(2,\) and "
                                   r"class_logits \(2, 4, 4, 10\)"),
    ((6, K), (6, 1), np.int32, r"got labels \(6, 1\) and class_logits \(6, 10\)"),
    ((6, K), (6, K), np.float32, r"argmax"),                       # one-hot labels
    ((6, K), (6,), np.float32, r"labels must be integer classes; got dtype float32"),
    ((6, K), (5,), np.int32, r"got labels \(5,\) and class_logits \(6, 10\)"),
    ((6, 0), (6,), np.int32, r"class_logits must be \[..., K\].*\(6, 0\)"),
    ((), (), np.int32, r"class_logits must be \[..., K\]"),
    ((0, K), (0,), np.int32, r"labels has no labels"),
])
def test_class_cross_entropy_rejects_labels_it_cannot_score(logits_shape, labels_shape,
                                                           dtype, match):
    logits, labels = jnp.zeros(logits_shape), jnp.zeros(labels_shape, dtype)
    with pytest.raises(ValueError, match=match):
        auxiliary_losses.class_cross_entropy(class_logits=logits, labels=labels)
    with pytest.raises(ValueError, match=match):   # shapes and dtypes are static
        _jit_ce()(logits, labels)


@pytest.mark.parametrize("bad", [-1, K, 1000])
def test_out_of_range_labels(bad):
    logits, labels = _logits_and_labels((2, 3), seed=3)
    labels[1, 2] = bad
    # Concrete labels: an error naming the value.
    with pytest.raises(ValueError, match=rf"labels: label {bad} is outside \[0, {K}\)"):
        auxiliary_losses.class_cross_entropy(class_logits=logits, labels=labels)
    # Under plain jit the values are unknown when traced: the loss is NaN (never a
    # wrapped-around class), and the check inside does not break jit.
    assert np.isnan(_jit_ce()(logits, labels))
    # Wrapped in checkify, the jitted loss reports the range and the bad value.
    error, value = checkify.checkify(_jit_ce())(logits, labels)
    assert np.isnan(value)
    with pytest.raises(checkify.JaxRuntimeError, match=rf"\[0, {K}\).*{bad}"):
        error.throw()
    labels[1, 2] = 0
    error, _ = checkify.checkify(_jit_ce())(logits, labels)
    assert error.get() is None


def test_acgan_losses_name_the_argument_at_fault():
    rng = np.random.default_rng(4)
    args = dict(real_logits=rng.normal(size=6), fake_logits=rng.normal(size=6),
                real_class_logits=rng.normal(size=(6, K)),
                fake_class_logits=rng.normal(size=(6, K)),
                real_labels=rng.integers(0, K, 6), fake_labels=rng.integers(0, K, 6))
    d_loss = jax.jit(lambda kw: auxiliary_losses.acgan_discriminator_loss(**kw))
    g_loss = jax.jit(lambda kw: auxiliary_losses.acgan_generator_loss(**{
        k: kw[k] for k in ("fake_logits", "fake_class_logits", "fake_labels")}))
    chex.assert_tree_all_finite((d_loss(args), g_loss(args)))
    for key, value, match in [
            ("fake_labels", np.zeros((6, 1), np.int32), r"fake_labels .*\(6, 1\)"),
            ("real_labels", np.zeros(3, np.int32), r"real_labels .*\(3,\)"),
            ("real_class_logits", np.zeros((6, 0)), r"real_class_logits .*\(6, 0\)"),
            ("real_logits", np.zeros((6, 2)), r"real_logits \(6, 2\) and fake_logits"),
    ]:
        with pytest.raises(ValueError, match=match):
            d_loss({**args, key: value})
    with pytest.raises(ValueError, match=r"fake_labels .*\(6, 1\)"):
        g_loss({**args, "fake_labels": np.zeros((6, 1), np.int32)})
    with pytest.raises(ValueError, match=r"fake_labels: label 10 is outside"):
        auxiliary_losses.acgan_generator_loss(
            fake_logits=args["fake_logits"], fake_class_logits=args["fake_class_logits"],
            fake_labels=np.full(6, K))


# ------------------------------------------------------------------------- InfoGAN


def test_gaussian_code_nll_of_one_code_column():
    rng = np.random.default_rng(5)
    mean, codes = rng.normal(size=(8, 1)), rng.uniform(-1, 1, (8, 1))
    expected = np.mean(0.5 * (codes - mean) ** 2 + 0.5 * np.log(2 * np.pi))
    value = jax.jit(lambda m, c: auxiliary_losses.gaussian_code_nll(mean=m, codes=c))(
        mean, codes)
    chex.assert_trees_all_close(value, np.float32(expected), rtol=1e-5)


@pytest.mark.parametrize("mean_shape,codes_shape,log_std_shape,match", [
    ((8,), (8,), None, r"codes must be \[B, k\].*\(8,\)"),   # read as 1 example, 8 codes
    ((8, 1), (8, 3), None, r"got mean \(8, 1\) and codes \(8, 3\)"),
    ((8, 3), (8, 3), (8, 1), r"got log_std \(8, 1\) and codes \(8, 3\)"),
    ((1, 3), (8, 3), None, r"got mean \(1, 3\) and codes \(8, 3\)"),
])
def test_gaussian_code_nll_rejects_shapes_that_would_broadcast(mean_shape, codes_shape,
                                                              log_std_shape, match):
    log_std = None if log_std_shape is None else jnp.zeros(log_std_shape)
    with pytest.raises(ValueError, match=match):
        auxiliary_losses.gaussian_code_nll(mean=jnp.zeros(mean_shape),
                                           codes=jnp.zeros(codes_shape), log_std=log_std)


def _information_loss(**kwargs):
    return jax.jit(lambda kw: auxiliary_losses.infogan_information_loss(**kw))(kwargs)


def test_information_loss_sums_the_groups_means():
    rng = np.random.default_rng(6)
    logits = (rng.normal(size=(5, 10)), rng.normal(size=(5, 3)))
    codes = np.stack([rng.integers(0, 10, 5), rng.integers(0, 3, 5)], -1)
    expected = _ref_cross_entropy(logits[0], codes[:, 0]) + _ref_cross_entropy(
        logits[1], codes[:, 1])
    value = _information_loss(categorical_logits=logits, categorical_codes=codes)
    chex.assert_trees_all_close(value, np.float32(expected), rtol=1e-5)
    # No continuous codes, as InfoGAN's family passes them: [B, 0] codes and means.
    empty = np.zeros((5, 0), np.float32)
    chex.assert_trees_all_close(
        _information_loss(categorical_logits=logits, categorical_codes=codes,
                          continuous_mean=empty, continuous_codes=empty), value, rtol=1e-6)
    # No categorical codes either: [B, 0] codes and no logits give 0.
    chex.assert_trees_all_close(
        _information_loss(categorical_logits=(), categorical_codes=np.zeros((5, 0), np.int32)),
        jnp.float32(0.0), atol=0)


def test_information_loss_rejects_codes_it_cannot_match():
    rng = np.random.default_rng(7)
    logits = (rng.normal(size=(5, 10)), rng.normal(size=(5, 3)))
    codes = np.stack([rng.integers(0, 10, 5), rng.integers(0, 3, 5)], -1)
    mean = cont = rng.normal(size=(5, 2))
    cases = [
        (dict(categorical_logits=logits[:1], categorical_codes=codes[:, 0]),
         r"categorical_codes must be \[B, n\].*n = 1.*\(5,\)"),
        (dict(categorical_logits=logits[:1], categorical_codes=codes),
         r"n = 1.*\(5, 2\)"),
        (dict(categorical_logits=(logits[0], logits[1][:4]), categorical_codes=codes),
         r"categorical_codes\[:, 1\] .*got categorical_codes\[:, 1\] \(5,\) and "
         r"categorical_logits\[1\] \(4, 3\)"),
        (dict(categorical_logits=logits, categorical_codes=codes, continuous_codes=cont),
         r"continuous_codes \(5, 2\) and continuous_mean None"),
        (dict(categorical_logits=logits, categorical_codes=codes, continuous_mean=mean),
         r"continuous_codes None and continuous_mean \(5, 2\)"),
        (dict(categorical_logits=logits, categorical_codes=codes, continuous_mean=mean[:, :1],
              continuous_codes=cont), r"got mean \(5, 1\) and codes \(5, 2\)"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            _information_loss(**kwargs)
    bad = codes.copy()
    bad[2, 1] = 3
    with pytest.raises(ValueError, match=r"categorical_codes\[:, 1\]: label 3 is outside \[0, 3\)"):
        auxiliary_losses.infogan_information_loss(categorical_logits=logits,
                                                  categorical_codes=bad)
    assert np.isnan(_information_loss(categorical_logits=logits, categorical_codes=bad))
