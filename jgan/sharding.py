"""Data-parallel layout of per-example arrays under `jax.jit` over a device mesh.

A step draws its own per-example inputs (latents, labels, penalty interpolates) from a
replicated key. Nothing ties their layout to the real batch's, so XLA's sharding
propagation keeps them, and everything computed from them (the generator's forward and
backward passes, the discriminator on fakes), replicated: each device would compute the
whole batch's fakes. `shard_examples` pins such arrays to the batch axis of the mesh in
context (`jax.set_mesh`), which makes the fake half of a step as data-parallel as the
real half. `on_mesh` calls a jitted function with a mesh in context: the constraint is
applied when the function is traced, so every call must see the same mesh.
"""
from __future__ import annotations

import functools
from typing import Callable

import jax
from jax.sharding import AxisType, PartitionSpec as P

DATA_AXIS = "data"


def shard_examples(tree, axis_name: str = DATA_AXIS):
    """Constrains each array of `tree` to be split along its leading (example) axis.

    Applies when the context mesh (`jax.set_mesh`) has an automatic or explicit axis
    `axis_name`; arrays whose leading size does not divide over it, scalars, and
    everything outside such a mesh (plain `jit`, inside `shard_map` or `pmap`, where the
    axis is manual) are returned unchanged. Only the layout changes, never a value.

    Args:
      tree: a pytree of arrays, leading axis the examples `[B, ...]`.
      axis_name: the mesh axis the batch is split over.
    Returns:
      `tree`, each array that splits laid out as `P(axis_name)`
      (`with_sharding_constraint` on an automatic axis, `reshard` on an explicit one).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or axis_name not in mesh.axis_names:
        return tree
    axis_type = dict(zip(mesh.axis_names, mesh.axis_types))[axis_name]
    if axis_type == AxisType.Manual:
        return tree
    size = mesh.shape[axis_name]
    # Under an explicit axis the layout is part of the type and changes by `reshard`.
    place = (jax.sharding.reshard if axis_type == AxisType.Explicit
             else jax.lax.with_sharding_constraint)

    def constrain(x):
        if not isinstance(x, jax.Array) or x.ndim == 0 or x.shape[0] % size:
            return x
        return place(x, P(axis_name))

    return jax.tree.map(constrain, tree)


def on_mesh(mesh: jax.sharding.Mesh, fn: Callable) -> Callable:
    """`fn`, called (and so traced, when jitted) with `mesh` as the context mesh."""
    @functools.wraps(fn)
    def called_on_mesh(*args, **kwargs):
        with jax.set_mesh(mesh):
            return fn(*args, **kwargs)
    return called_on_mesh
