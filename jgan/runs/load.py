"""Reopening a finished or running GAN run from its workdir: its config, game and state."""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from jgan.errors import MissingFileError
from jgan.saved_configs import load_saved_config
from jgan.sharding import data_mesh
from jgan.train import builders
from jgan.checkpoints import RunCheckpoints
from jgan.core.stages import stage_at


def example_batch(config) -> dict:
    """A batch of one example of the run's data, for `Game.init` (it reads shapes only)."""
    if config.data.kind == "mixture":
        return {"image": jnp.zeros((1, 2), jnp.float32)}
    image = jnp.zeros((1, config.data.resolution, config.data.resolution,
                       config.data.channels), jnp.float32)
    label = jnp.zeros((1,), jnp.int32)
    if config.data.kind == "translation":  # two domains (jgan.train.input.TwoDomainInput)
        return {"image_a": image, "label_a": label, "image_b": image, "label_b": label}
    return {"image": image, "label": label}


def initial_state(config, game):
    """The run's state before its first step: `game.init` with the run's seed, as the
    trainer makes it (a network's initial parameters depend on the key and its name)."""
    return jax.jit(game.init)(jax.random.PRNGKey(config.seed), example_batch(config))


def load_run(workdir: str | Path, *, step: int | None = None):
    """(config, game, state) of the checkpoint at `step` in `workdir` (None: the
    latest); the game is that of the stage the step belongs to (`jgan.core.stages`).

    Raises:
      MissingFileError: no checkpoint (at `step`) in the workdir (names the path).
    """
    workdir = Path(workdir)
    config = load_saved_config(workdir)
    ckpts = RunCheckpoints(workdir / "checkpoints")
    step = ckpts.latest_step() if step is None else step
    if step is None or not (ckpts.directory / str(step)).is_dir():
        raise MissingFileError(f"No checkpoint{'' if step is None else f' {step}'} in "
                                f"{workdir / 'checkpoints'}.")
    stages = builders.build_stages(config)
    game = stages[stage_at(stages, step)[0]].game
    # Replicated over this run's devices, whatever the devices or processes it was saved on.
    replicated = NamedSharding(data_mesh(), PartitionSpec())
    abstract = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=replicated),
        jax.eval_shape(game.init, jax.random.PRNGKey(0), example_batch(config)))
    state = ckpts.restore_state(step, abstract)
    ckpts.close()
    return config, game, state
