"""What every training run sets up before its first step: the workdir, a data-parallel
device mesh, and its state, restored from the latest checkpoint or made anew."""
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
from jgan.sharding import data_mesh
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
    """One mesh axis "data" over every device: batches split along it, state replicated."""
    mesh: Mesh
    data: NamedSharding
    replicated: NamedSharding

    @classmethod
    def over_all_devices(cls, config: ml_collections.ConfigDict,
                         batch_keys: tuple[str, ...]) -> "DataParallel":
        """The mesh; raises ConfigError for a `config.<key>` batch size that does not
        split evenly over the devices."""
        devices = np.array(jax.devices())
        for key in batch_keys:
            require(config[key] % len(devices) == 0, key,
                    f"{config[key]} does not split over {len(devices)} devices.")
        mesh = data_mesh(devices)
        return cls(mesh, NamedSharding(mesh, P("data")), NamedSharding(mesh, P()))


def input_position(inp) -> dict:
    """What a checkpoint records of the input: on device, the step is the position."""
    return {"kind": "on_device"} if is_on_device(inp) else {"iterator": inp.get_state()}


def restore_or_init(ckpts: RunCheckpoints, init_fn: Callable, init_args: tuple, inp,
                    replicated: NamedSharding):
    """(state, step): the latest checkpoint's, with `inp` moved to its position, or
    `init_fn(*init_args)` at step 0. `init_fn` is jitted to place the state replicated."""
    start = ckpts.latest_step()
    if start is None:
        return init_fn(*init_args), 0
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
                            jax.eval_shape(init_fn, *init_args))
    state, saved_input = ckpts.restore(start, abstract)
    if not is_on_device(inp):
        inp.set_state(saved_input["iterator"])
    print(f"Resumed from {ckpts.directory}/{start}.")
    return state, start


def save_config(config: ml_collections.ConfigDict, workdir: Path) -> None:
    """`workdir/config.json`, what a resumed run is checked against (main process only)."""
    if jax.process_index() == 0:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2))
