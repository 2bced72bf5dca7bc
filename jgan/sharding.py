"""Data-parallel layout of per-example arrays under `jax.jit` over a device mesh.

A step draws its own per-example inputs (latents, labels, penalty interpolates) from a
replicated key. Nothing ties their layout to the real batch's, so XLA's sharding
propagation keeps them, and everything computed from them (the generator's forward and
backward passes, the discriminator on fakes), replicated: each device would compute the
whole batch's fakes. `shard_examples` pins such arrays to the batch axis of the mesh in
context (`jax.set_mesh`), which makes the fake half of a step as data-parallel as the
real half. `on_mesh` calls a jitted function with a mesh in context: the constraint is
applied when the function is traced, so every call must see the same mesh.

`to_host` reads such arrays back on every process of a run over several hosts.

`data_mesh` builds the trainer's one-axis mesh, and `place_on_mesh` lays out a training
state (replicated) and a real batch (split over the axis) on it, for a loop of your own.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
# The second axis of a mesh whose state is sharded (`jgan.state_sharding`).
MODEL_AXIS = "model"


def shard_examples(tree, axis_name: str = DATA_AXIS):
    """Constrains each array of `tree` to be split along its leading (example) axis.

    Applies when the context mesh (`jax.set_mesh`) has an automatic or explicit axis
    `axis_name`; on a mesh that also has a `MODEL_AXIS` (sharded state,
    `jgan.state_sharding`), examples are split over both axes. Arrays whose leading size
    does not divide over the axes, scalars, and everything outside such a mesh (plain
    `jit`, inside `shard_map` or `pmap`, where the axis is manual) are returned
    unchanged. Only the layout changes, never a value.

    Args:
      tree: a pytree of arrays, leading axis the examples `[B, ...]`.
      axis_name: the mesh axis the batch is split over.
    Returns:
      `tree`, each array that splits laid out as `batch_spec` (`with_sharding_constraint`
      on an automatic axis, `reshard` on an explicit one).
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or axis_name not in mesh.axis_names:
        return tree
    axis_type = dict(zip(mesh.axis_names, mesh.axis_types))[axis_name]
    if axis_type == AxisType.Manual:
        return tree
    spec = batch_spec(mesh, axis_name)
    size = math.prod(mesh.shape[a] for a in _axes(spec))
    # Under an explicit axis the layout is part of the type and changes by `reshard`.
    place = (jax.sharding.reshard if axis_type == AxisType.Explicit
             else jax.lax.with_sharding_constraint)

    def constrain(x):
        if not isinstance(x, jax.Array) or x.ndim == 0 or x.shape[0] % size:
            return x
        return place(x, spec)

    return jax.tree.map(constrain, tree)


def gathered(tree):
    """`tree` (a network's weights) whole on every device, where the context mesh has a
    `MODEL_AXIS` over which the state is split (FSDP); unchanged elsewhere.

    Sharded weights used as they lie leave XLA free to split a layer by its features
    and gather the examples instead, keeping whole-batch activations per device (a
    large-batch BigBiGAN step on a (2, 8) mesh: 3.3 GB of temporaries per device
    against 1.2 GB replicated). Gathering the weights where a network runs makes every
    layer split by examples, as FSDP does; the gradient's transpose scatters back.
    """
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or MODEL_AXIS not in mesh.axis_names:
        return tree
    if dict(zip(mesh.axis_names, mesh.axis_types))[MODEL_AXIS] == AxisType.Manual:
        return tree
    return jax.tree.map(lambda x: jax.lax.with_sharding_constraint(x, P()), tree)


def batch_spec(mesh, axis_name: str = DATA_AXIS) -> P:
    """How a batch's leading axis splits over `mesh`: over `axis_name`, and over
    `MODEL_AXIS` too where the mesh has one of the same kind (FSDP: every device
    computes its own examples)."""
    types = dict(zip(mesh.axis_names, mesh.axis_types))
    if axis_name == DATA_AXIS and types.get(MODEL_AXIS) == types[axis_name]:
        return P((DATA_AXIS, MODEL_AXIS))
    return P(axis_name)


def _axes(spec: P) -> tuple[str, ...]:
    first = spec[0]
    return tuple(first) if isinstance(first, tuple) else (first,)


def to_host(tree):
    """`tree` as numpy arrays, whole, on every process.

    An array split over devices of several processes (samples over a multi-host mesh)
    is gathered from all of them (`process_allgather`), so every process must call this
    at the same point; others (on this process's devices, or replicated) are read as
    `jax.device_get` reads them.
    """
    def read(x):
        if (isinstance(x, jax.Array) and not x.is_fully_addressable
                and not x.is_fully_replicated):
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))
    return jax.tree.map(read, tree)


def on_mesh(mesh: jax.sharding.Mesh, fn: Callable) -> Callable:
    """`fn`, called (and so traced, when jitted) with `mesh` as the context mesh."""
    @functools.wraps(fn)
    def called_on_mesh(*args, **kwargs):
        with jax.set_mesh(mesh):
            return fn(*args, **kwargs)
    return called_on_mesh


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The one-axis mesh `(DATA_AXIS,)` over `devices` the trainer trains on.

    Args:
      devices: the devices, in mesh order; None: all of `jax.devices()`.
    Returns:
      A `Mesh` of shape `{"data": len(devices)}` (automatic axis, as the trainer's).
    """
    devices = np.asarray(jax.devices() if devices is None else devices).reshape(-1)
    return Mesh(devices, (DATA_AXIS,))


def place_on_mesh(mesh: Mesh, state, batch, *, axis_name: str = DATA_AXIS):
    """The trainer's layout for a loop of your own: `state` replicated on every device of
    `mesh`, each array of `batch` split along its leading (example) axis over `axis_name`.

    Call the jitted step on the results inside `with jax.set_mesh(mesh):`, so that the
    examples a loss draws itself are split the same way (`shard_examples`). `batch` is
    the whole batch, the same on every process (per-process input pipelines build it
    with `jax.make_array_from_process_local_data`, as the trainer does).

    Args:
      mesh: a mesh with axis `axis_name` (e.g. `data_mesh()`).
      state: a pytree of arrays (a `GameState`), copied whole to every device.
      batch: a pytree of `[B, ...]` arrays, B a multiple of the axis size.
    Returns:
      `(state, batch)` as `jax.Array`s laid out `P()` and `P(axis_name)` on `mesh`.
    Raises:
      ValueError: `mesh` without `axis_name`, or a batch leaf without a leading axis
        that splits over it (naming the leaf, its leading size and the device count).
    """
    if axis_name not in mesh.axis_names:
        raise ValueError(f"mesh has axes {mesh.axis_names}; place_on_mesh splits the batch "
                         f"over {axis_name!r}.")
    size = mesh.shape[axis_name]
    for path, leaf in jax.tree_util.tree_leaves_with_path(batch):
        shape = np.shape(leaf)
        if not shape or shape[0] % size:
            leading = shape[0] if shape else "none (a scalar)"
            raise ValueError(
                f"batch{jax.tree_util.keystr(path)}: leading size {leading} does not split "
                f"over the {size} devices of mesh axis {axis_name!r}; use a batch size "
                f"that is a multiple of {size}.")
    return (jax.device_put(state, NamedSharding(mesh, P())),
            jax.device_put(batch, NamedSharding(mesh, P(axis_name))))
