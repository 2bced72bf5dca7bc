"""What every training run sets up before its first step: the workdir, the device
mesh and layout, and its state, restored from the latest checkpoint or made anew."""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jgan.checkpoints import RunCheckpoints
from jgan.errors import WorkdirError, require
from jgan.sharding import batch_spec, data_mesh
from jgan.state_sharding import mesh_from_config, state_shardings
from jgan.train.input import is_on_device


def open_workdir(config: ml_collections.ConfigDict, workdir: str | Path,
                 check_resumable: Callable) -> Path:
    """Creates `workdir`; `check_resumable(config, workdir)` raises where the run in it
    was trained with another config.

    Raises:
      WorkdirError: `workdir` cannot be created or written (names it and the reason).
    """
    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"workdir {workdir}: cannot create it ({e.strerror or e}); pass a "
                           "--workdir in a folder you can write to.") from None
    if not os.access(workdir, os.W_OK | os.X_OK):
        raise WorkdirError(f"workdir {workdir}: not writable; pass a --workdir in a folder "
                           "you can write to.")
    check_resumable(config, workdir)
    return workdir


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """The run's device layout: the mesh (axis "data", and "model" where the config
    shards the state, `jgan.state_sharding`), the batch split over every device, and
    where each array of the state lives (replicated, or FSDP-style sharded).

    Attributes:
      mesh: the mesh over every device (of every process).
      data: the sharding of a batch (leading axis over every device).
      replicated: the same whole array on every device.
      min_shard_size: state arrays of at least this many elements are split over the
        "model" axis, where the mesh has one.
    """
    mesh: Mesh
    data: NamedSharding
    replicated: NamedSharding
    min_shard_size: int = 0

    @classmethod
    def over_all_devices(cls, config: ml_collections.ConfigDict,
                         batch_keys: tuple[str, ...]) -> "DataParallel":
        """The config's mesh (`config.mesh`, when it has that section; else data
        parallel); raises ConfigError for a `config.<key>` batch size that does not split
        evenly over the devices, or a model axis that does not divide them."""
        devices = np.array(jax.devices())
        for key in batch_keys:
            require(config[key] % len(devices) == 0, key,
                    f"{config[key]} does not split over {len(devices)} devices.")
        if "mesh" in config and config.mesh.model > 1:
            mesh = mesh_from_config(config, devices)
            return cls(mesh, NamedSharding(mesh, batch_spec(mesh)), NamedSharding(mesh, P()),
                       config.mesh.min_shard_size)
        mesh = data_mesh(devices)
        return cls(mesh, NamedSharding(mesh, P("data")), NamedSharding(mesh, P()))

    def state_shardings(self, abstract_state):
        """Where each array of `abstract_state` lives on the mesh."""
        return state_shardings(abstract_state, self.mesh, min_size=self.min_shard_size)


def input_position(inp) -> dict:
    """What a checkpoint records of the input: on device, the step is the position; a
    pipeline's is the global batches consumed, which places every process (each reads
    its rows of each global batch) for the process count it was saved with and any other."""
    if is_on_device(inp):
        return {"kind": "on_device"}
    return {**inp.get_state(), "process_count": jax.process_count()}


def restore_or_init(ckpts: RunCheckpoints, init_fn: Callable, init_args: tuple, inp,
                    sharding: NamedSharding | Callable):
    """(state, step): the latest checkpoint's, with `inp` moved to its position, or
    `init_fn(*init_args)` at step 0 (`init_fn` jitted to place the state as `sharding`
    says). `sharding`: one sharding for every array, or `abstract state -> shardings`;
    a checkpoint saved with another layout, device or process count is restored to it."""
    start = ckpts.latest_step()
    if start is None:
        return init_fn(*init_args), 0
    abstract = jax.eval_shape(init_fn, *init_args)
    shardings = (sharding(abstract) if callable(sharding)
                 else jax.tree.map(lambda _: sharding, abstract))
    abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                            abstract, shardings)
    state, saved_input = ckpts.restore(start, abstract)
    if not is_on_device(inp):
        # Checkpoints saved before positions were counted in batches hold grain's state.
        inp.set_state(saved_input["iterator"] if "iterator" in saved_input else saved_input)
    print(f"Resumed from {ckpts.directory}/{start}.")
    return state, start


def save_config(config: ml_collections.ConfigDict, workdir: Path) -> None:
    """`workdir/config.json`, what a resumed run is checked against (main process only)."""
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
