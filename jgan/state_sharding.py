"""Where a run's training state lives: the (data, model) mesh from the config, and
FSDP-style sharding of parameters and optimizer state over its "model" axis.

`config.mesh.model = 1` (the default) is plain data parallelism: one axis of every
device splits the batch and the state is replicated. `config.mesh.model = M` makes a
(devices / M, M) mesh: the batch is split over both axes (every device still sees its
own examples), and each array of the state of at least `config.mesh.min_shard_size`
elements is split over the M devices of a "model" row along its largest dimension that
M divides (`fsdp_spec`): parameters, their EMA, the optimizer's moments and any other
state. XLA gathers a layer's weights where it is computed and scatters its gradients
back (ZeRO-3 / FSDP); batch statistics, small vectors and scalars stay replicated.
Sharding changes where values live, not what they are: the step computes the one-device
step up to float rounding.
"""
from __future__ import annotations

import math

import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

from jgan.errors import require
from jgan.sharding import DATA_AXIS, MODEL_AXIS


def mesh_from_config(config: ml_collections.ConfigDict,
                     devices: np.ndarray | None = None) -> Mesh:
    """The run's mesh: `(DATA_AXIS, MODEL_AXIS)` of shape `(n / M, M)` over `devices`
    (None: all of `jax.devices()`), M = `config.mesh.model`.

    Raises:
      ConfigError: M < 1 or M does not divide the device count (names `mesh.model`).
    """
    devices = np.asarray(jax.devices() if devices is None else devices).reshape(-1)
    model = config.mesh.model
    require(model >= 1 and len(devices) % model == 0, "mesh.model",
            f"{model} does not divide the {len(devices)} devices into rows of equal size.")
    return Mesh(devices.reshape(len(devices) // model, model), (DATA_AXIS, MODEL_AXIS),
                axis_types=(AxisType.Auto, AxisType.Auto))


def fsdp_spec(shape: tuple[int, ...], axis_size: int, *, min_size: int) -> P:
    """The layout of one state array of `shape` on a mesh whose "model" axis has
    `axis_size` devices: split along its largest dimension that `axis_size` divides
    (the last such on ties: a kernel's output features), or replicated (`P()`) when it
    has fewer than `min_size` elements, `axis_size` is 1, or no dimension divides."""
    if axis_size == 1 or math.prod(shape) < min_size:
        return P()
    divisible = [i for i, d in enumerate(shape) if d % axis_size == 0]
    if not divisible:
        return P()
    dim = max(divisible, key=lambda i: (shape[i], i))
    return P(*([None] * dim + [MODEL_AXIS]))


def state_shardings(abstract_state, mesh: Mesh, *, min_size: int):
    """A `NamedSharding` on `mesh` for each array of `abstract_state` (arrays or
    `ShapeDtypeStruct`s): `fsdp_spec` over the mesh's "model" axis, replicated where the
    mesh has none. PRNG keys and other non-numeric leaves are replicated."""
    size = dict(zip(mesh.axis_names, mesh.devices.shape)).get(MODEL_AXIS, 1)

    def layout(leaf):
        if not jax.numpy.issubdtype(leaf.dtype, jax.numpy.number):
            return NamedSharding(mesh, P())
        return NamedSharding(mesh, fsdp_spec(tuple(leaf.shape), size, min_size=min_size))
    return jax.tree.map(layout, abstract_state)


def sharded_fraction(abstract_state, shardings) -> float:
    """The share of the state's elements that are split over devices (0: replicated)."""
    total = split = 0
    for leaf, sharding in zip(jax.tree.leaves(abstract_state), jax.tree.leaves(shardings)):
        n = math.prod(leaf.shape)
        total += n
        split += n if any(axis is not None for axis in sharding.spec) else 0
    return split / max(total, 1)
