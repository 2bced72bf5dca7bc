"""Per-device memory of a training step on a mesh larger than this machine, from XLA.

Makes `--devices` fake CPU devices (`--xla_force_host_platform_device_count`), builds a
config's game and step as the trainer does, and for each `--model_axis` M lowers and
compiles the step on the (devices / M, M) mesh (`jgan.state_sharding`: M = 1 replicates
the state, M > 1 splits it FSDP-style) at the config's global batch. Nothing runs: the
state and batch are abstract (`jax.eval_shape`). It prints, per device, what XLA's
memory analysis of the compiled program reports (arguments: the state's shard and the
batch's; outputs; temporaries: activations and gradients) and the state's bytes per
device by its shardings, as a markdown table, and as JSON with `--json`.

    PYTHONPATH=. python benchmarks/scaling_memory.py \\
        --config=experiments/configs/bigbigan.py:cifar10,large_batch \\
        --devices=256 --model_axis=1,8 [--config.game.micro_batches=4]

The CPU backend's buffer assignment stands for an accelerator's here: the byte counts of
arguments and outputs are exact, temporaries are XLA:CPU's schedule (an accelerator's
scheduler differs, usually by tens of per cent).
"""
from __future__ import annotations

import json
import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_DEVICES = flags.DEFINE_integer("devices", 256, "Fake CPU devices of the mesh.")
_MODEL_AXES = flags.DEFINE_list("model_axis", ["1", "8"], "Sizes M of the model axis.")
_JSON = flags.DEFINE_bool("json", False, "Also print the rows as JSON lines.")
flags.mark_flags_as_required(["config"])

MIB = 2.0 ** 20


def _abstract_batch(config, jax, jnp):
    r, c, b = config.data.resolution, config.data.channels, config.batch_size
    b *= config.game.d_steps
    return {"image": jax.ShapeDtypeStruct((b, r, r, c), jnp.float32),
            "label": jax.ShapeDtypeStruct((b,), jnp.int32)}


def measure(config, model_axis: int) -> dict:
    """XLA's per-device memory analysis of `config`'s step on the (n / M, M) mesh."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jgan.sharding import on_mesh
    from jgan.state_sharding import sharded_fraction
    from jgan.train import builders
    from jgan.train.setup import DataParallel

    config.mesh.model = model_axis
    layout = DataParallel.over_all_devices(config, ("batch_size",))
    game = builders.build_game(config)
    batch = _abstract_batch(config, jax, jnp)
    state = jax.eval_shape(game.init, jax.random.key(0), batch)
    shardings = layout.state_shardings(state)
    step = jax.jit(builders.build_step(config, game), donate_argnums=0,
                   in_shardings=(shardings, layout.data),
                   out_shardings=(shardings, layout.replicated))
    start = time.perf_counter()
    compiled = on_mesh(layout.mesh, step.lower)(state, batch).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state))
    per_device_state = sum(
        x.size * x.dtype.itemsize / np.prod([s.mesh.shape[a] for a in _axes(s.spec)])
        for x, s in zip(jax.tree.leaves(state), jax.tree.leaves(shardings)))
    return {"mesh": dict(layout.mesh.shape), "model_axis": model_axis,
            "global_batch": config.batch_size, "micro_batches": config.game.micro_batches,
            "state_mib": state_bytes / MIB, "state_per_device_mib": per_device_state / MIB,
            "sharded_fraction": sharded_fraction(state, shardings),
            "argument_mib": memory.argument_size_in_bytes / MIB,
            "output_mib": memory.output_size_in_bytes / MIB,
            "alias_mib": memory.alias_size_in_bytes / MIB,
            "temp_mib": memory.temp_size_in_bytes / MIB,
            "peak_mib": (memory.argument_size_in_bytes + memory.output_size_in_bytes
                         - memory.alias_size_in_bytes + memory.temp_size_in_bytes) / MIB,
            "compile_s": seconds}


def _axes(spec) -> list[str]:
    axes = []
    for entry in spec:
        if entry is None:
            continue
        axes.extend(entry if isinstance(entry, tuple) else (entry,))
    return axes


def main(argv):
    del argv
    flag = f"--xla_force_host_platform_device_count={_DEVICES.value}"
    if flag not in os.environ.get("XLA_FLAGS", ""):
        # XLA reads the flag when the backend starts: rerun with it set.
        env = {**os.environ, "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " " + flag).strip(),
               "JAX_PLATFORMS": "cpu"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    config = _CONFIG.value
    rows = []
    print(f"{_CONFIG.value.family} step, global batch {config.batch_size}, "
          f"{_DEVICES.value} devices, micro_batches {config.game.micro_batches}")
    print("| mesh (data, model) | state | state / device | sharded | arguments | outputs "
          "| donated | temporaries | peak | compile |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in _MODEL_AXES.value:
        row = measure(config.copy_and_resolve_references(), int(m))
        rows.append(row)
        print(f"| {tuple(row['mesh'].values())} | {row['state_mib']:.1f} MiB "
              f"| {row['state_per_device_mib']:.1f} MiB | {100 * row['sharded_fraction']:.0f} % "
              f"| {row['argument_mib']:.1f} MiB | {row['output_mib']:.1f} MiB "
              f"| {row['alias_mib']:.1f} MiB | {row['temp_mib']:.1f} MiB "
              f"| {row['peak_mib']:.1f} MiB | {row['compile_s']:.0f} s |", flush=True)
    if _JSON.value:
        for row in rows:
            print(json.dumps(row))


if __name__ == "__main__":
    app.run(main)
