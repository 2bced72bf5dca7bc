"""Reversible residual stacks (RevNet; Gomez, Ren, Urtasun and Grosse 2017) whose backward
pass recomputes activations from the outputs instead of storing them.

A reversible block splits its input along channels into halves (x1, x2) and computes

  y1 = x1 + F(x2),   y2 = x2 + G(y1),

which its outputs determine exactly: x2 = y2 - G(y1), x1 = y1 - F(x2). A stack of such
blocks keeps only its output for the backward pass (`reversible_sequence`, a
`jax.custom_vjp`): walking the blocks backwards, each block's input is recomputed from
its output, and the block's vector-Jacobian product taken there. Activation memory is
then one block's, whatever the depth, for the price of one more forward pass per block.
The recomputed inputs differ from the stored ones by float rounding only, so the
gradients equal those of the same stack differentiated plainly (`plain_sequence`) to
within rounding.

F and G are `ResidualFunction`s (GroupNorm - ReLU - conv3x3, twice): normalization
without batch statistics, so a block is a pure function of its parameters and input,
which recomputation needs (batch norm's running averages would be updated twice).
The blocks' parameters are stacked along a leading axis (one parameter per stack, as
in checkpoints). The blocks run as a Python loop, not `lax.scan`: XLA's CPU backend
leaves the convolutions of a loop body's VJP in non-canonical layouts and emits them
as naive loops, 10-20x slower (BigBiGAN's encoder gradient: 9.2 s against 0.5 s at
batch 64). The backward loop writes each block's parameter gradients and passes its
results through `lax.optimization_barrier` before the next inversion, so XLA cannot
reorder the blocks' work and keep their activations alive together: temporary memory
grows only by the parameter gradients as blocks are added.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

PyTree = object


class ResidualFunction(nn.Module):
    """F or G of a reversible block: `[B, H, W, C] -> [B, H, W, C]`,
    GroupNorm - ReLU - conv3x3 - GroupNorm - ReLU - conv3x3 (the second convolution
    starts at zero, so a fresh block is the identity; the first has no bias)."""
    features: int
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        groups = group_count(self.features, self.groups)
        for i in range(2):
            x = nn.relu(nn.GroupNorm(num_groups=groups, name=f"norm{i}")(x))
            # conv0 feeds a normalization, which would subtract its bias again.
            x = nn.Conv(self.features, (3, 3), padding="SAME", name=f"conv{i}", use_bias=bool(i),
                        kernel_init=nn.initializers.zeros if i else nn.initializers.lecun_normal())(x)
        return x


def group_count(features: int, groups: int = 8) -> int:
    """The most GroupNorm groups, at most `groups`, that divide `features`."""
    groups = max(1, min(groups, features))
    while features % groups:
        groups -= 1
    return groups


def _block(apply, params, x1, x2):
    """One reversible block: `(y1, y2)` with y1 = x1 + F(x2), y2 = x2 + G(y1)."""
    y1 = x1 + apply(params["f"], x2)
    return y1, x2 + apply(params["g"], y1)


def invert_block(apply, params, y1, y2):
    """The inputs `(x1, x2)` of a reversible block from its outputs:
    x2 = y2 - G(y1), x1 = y1 - F(x2)."""
    x2 = y2 - apply(params["g"], y1)
    return y1 - apply(params["f"], x2), x2


def plain_sequence(apply, params, x1, x2):
    """The blocks (parameters stacked on a leading axis) applied in order, differentiated
    by ordinary autodiff (every block's activations stored)."""
    for i in range(_depth(params)):
        x1, x2 = _block(apply, _block_params(params, i), x1, x2)
    return x1, x2


def _depth(params) -> int:
    return jax.tree.leaves(params)[0].shape[0]


def _block_params(params, i: int):
    return jax.tree.map(lambda a: a[i], params)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def reversible_sequence(apply, params, x1, x2):
    """`plain_sequence` whose backward pass recomputes each block's input from its output
    (module docstring) instead of storing activations.

    Args:
      apply: `(block params of F or G, h) -> h`, the residual function.
      params: `{"f": ..., "g": ...}`, each leaf stacked `[num_blocks, ...]`.
      x1, x2: the input's halves `[B, H, W, C]`.
    Returns:
      `(y1, y2)`, the last block's outputs.
    """
    return plain_sequence(apply, params, x1, x2)


def _forward(apply, params, x1, x2):
    outputs = plain_sequence(apply, params, x1, x2)
    return outputs, (params, outputs)


def _backward(apply, residuals, cotangents):
    params, (y1, y2) = residuals
    dy1, dy2 = cotangents
    d_params = jax.tree.map(jnp.zeros_like, params)
    for i in reversed(range(_depth(params))):
        block_params = _block_params(params, i)
        x1, x2 = invert_block(apply, block_params, y1, y2)
        _, vjp = jax.vjp(lambda p, a, b: _block(apply, p, a, b), block_params, x1, x2)
        d_block, dy1, dy2 = vjp((dy1, dy2))
        d_params = jax.tree.map(lambda d, b: d.at[i].set(b), d_params, d_block)
        # The barrier finishes this block, its parameter gradients written, before the
        # next inversion starts. Without it XLA may postpone the gradients to the end or
        # invert every block first, keeping each block's activations alive at once.
        d_params, y1, y2, dy1, dy2 = jax.lax.optimization_barrier((d_params, x1, x2, dy1, dy2))
    return d_params, dy1, dy2


reversible_sequence.defvjp(_forward, _backward)


class ReversibleStack(nn.Module):
    """`num_blocks` reversible blocks on `[B, H, W, C]` (C even): the input split into
    channel halves, the blocks applied, the halves joined.

    Attributes:
      num_blocks: depth.
      recompute: recompute activations in the backward pass (`reversible_sequence`);
        False differentiates the same blocks plainly (`plain_sequence`).
      groups: GroupNorm groups of the residual functions.
    """
    num_blocks: int
    recompute: bool = True
    groups: int = 8

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if x.shape[-1] % 2:
            raise ValueError(f"A reversible stack splits channels in halves: needs an even "
                             f"number, got input {x.shape}.")
        x1, x2 = jnp.split(x, 2, axis=-1)
        # Detached (parent=None): a pure function of the stacked params, not a child.
        fn = ResidualFunction(features=x1.shape[-1], groups=self.groups, parent=None)
        params = self.param("blocks", lambda key: _stacked_init(fn, key, x2[:1], self.num_blocks))
        apply = _Apply(fn)
        sequence = reversible_sequence if self.recompute else plain_sequence
        y1, y2 = sequence(apply, params, x1, x2)
        return jnp.concatenate([y1, y2], axis=-1)


def _stacked_init(fn: nn.Module, key: jax.Array, example: jax.Array, num_blocks: int):
    """`{"f", "g"}`: `num_blocks` independent initializations of `fn`, stacked."""
    f_key, g_key = jax.random.split(key)
    init = lambda k: fn.init(k, example)["params"]
    return {"f": jax.vmap(init)(jax.random.split(f_key, num_blocks)),
            "g": jax.vmap(init)(jax.random.split(g_key, num_blocks))}


class _Apply:
    """`(params, h) -> fn(h)`, hashable by the module's definition (custom_vjp's
    nondiff argument)."""

    def __init__(self, fn: nn.Module):
        self.fn = fn

    def __call__(self, params, h):
        return self.fn.apply({"params": params}, h)

    def __hash__(self):
        return hash(("revnet-apply", self.fn.features, self.fn.groups))

    def __eq__(self, other):
        return isinstance(other, _Apply) and (self.fn.features, self.fn.groups) == (
            other.fn.features, other.fn.groups)
