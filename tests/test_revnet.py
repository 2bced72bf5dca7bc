"""Reversible stacks (jgan.models.revnet) and the residual encoder built on them: the
inverse reconstructs the input, recomputing activations gives the gradients of the
stack differentiated plainly, and its compiled backward pass needs memory that does not
grow with depth."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan.models.residual_encoder import ResidualEncoder
from jgan.models.revnet import ResidualFunction, ReversibleStack, _Apply, invert_block


def perturbed(variables, scale=0.2):
    """Fresh blocks are the identity (their last convolution starts at zero): move them."""
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    return jax.tree.unflatten(tree, [a + scale * jax.random.normal(k, a.shape)
                                     for a, k in zip(leaves, keys)])


def stack_and_input(num_blocks=3, recompute=True):
    x = jax.random.normal(jax.random.key(0), (4, 8, 8, 12))
    stack = ReversibleStack(num_blocks=num_blocks, recompute=recompute)
    return stack, perturbed(stack.init(jax.random.key(1), x)), x


def test_the_inverse_reconstructs_the_input():
    stack, variables, x = stack_and_input()
    y = stack.apply(variables, x)
    apply = _Apply(ResidualFunction(features=6, parent=None))
    blocks = variables["params"]["blocks"]
    y1, y2 = jnp.split(y, 2, axis=-1)
    for i in reversed(range(3)):
        y1, y2 = invert_block(apply, jax.tree.map(lambda a: a[i], blocks), y1, y2)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], -1), x, atol=1e-5)
    assert float(jnp.abs(y - x).max()) > 0.1          # the blocks did change x


def test_recomputed_gradients_equal_those_of_the_plain_stack():
    stack, variables, x = stack_and_input()
    plain = ReversibleStack(num_blocks=3, recompute=False)
    assert np.array_equal(stack.apply(variables, x), plain.apply(variables, x))
    loss = lambda module: jax.jit(jax.grad(
        lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)) * x), argnums=(0, 1)))
    recomputed, stored = loss(stack)(variables, x), loss(plain)(variables, x)
    # Equal to float32 rounding: within 1e-5 of each gradient's largest entry (10 to 90).
    errors = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max() / jnp.abs(b).max()),
                          recomputed, stored)
    assert max(jax.tree.leaves(errors)) < 1e-5, errors


ACTIVATION_BYTES = 8 * 8 * 8 * 4 * 4      # one channel half of the [8, 8, 8, 8] input, f32


def backward_memory(num_blocks: int, recompute: bool) -> int:
    x = jnp.zeros((8, 8, 8, 8))
    stack = ReversibleStack(num_blocks=num_blocks, recompute=recompute)
    variables = stack.init(jax.random.key(0), x)
    grad = jax.jit(jax.grad(lambda v, x: jnp.sum(stack.apply(v, x) ** 2)))
    return grad.lower(variables, x).compile().memory_analysis().temp_size_in_bytes


def test_backward_memory_stays_flat_in_depth():
    flat = [backward_memory(n, True) for n in (2, 6)]
    stored = [backward_memory(n, False) for n in (2, 6)]
    # Four more blocks: stored activations grow by several activations per block; the
    # recomputing stack only by its parameter gradients (about 2.5 KB a block here),
    # less than one activation per block.
    assert flat[1] - flat[0] < 4 * ACTIVATION_BYTES / 2, flat
    assert stored[1] - stored[0] > 4 * 4 * ACTIVATION_BYTES, stored
    assert stored[1] > 2 * flat[1]


@pytest.mark.parametrize("block", ["resnet", "revnet"])
def test_residual_encoder_outputs(block):
    encoder = ResidualEncoder(latent_dim=5, widths=(4, 8), blocks_per_stage=1, block=block,
                              stochastic=True, head_hidden=(16,))
    x = jax.random.normal(jax.random.key(0), (3, 16, 16, 2))
    variables = encoder.init(jax.random.key(1), x)
    mean, log_var = jax.jit(encoder.apply)(variables, x)
    assert mean.shape == log_var.shape == (3, 5)
    features = encoder.apply(variables, x, method="features")
    assert features.shape == (3, 8)
    # One example's code does not depend on its batch (no batch statistics).
    np.testing.assert_allclose(encoder.apply(variables, x[:1])[0], mean[:1], atol=1e-5)
    with pytest.raises(ValueError, match="divisible by 2"):
        encoder.apply(variables, jnp.zeros((1, 15, 15, 2)))
