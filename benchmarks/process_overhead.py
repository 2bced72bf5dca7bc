"""What running as several processes costs: the trainer's step (grain input, the jitted
step over the mesh) as one process and as two processes over 127.0.0.1.

Three layouts of the same config and global batch, each in fresh processes:

* `1 process x 1 device`: the reference;
* `1 process x 2 devices`: one process over two host devices (one per core);
* `2 processes x 1 device`: two processes joined by `jax.distributed` (gloo
  collectives over 127.0.0.1), each reading its half of every global batch.

Each times `--steps` steps after `--warmup` (compile included in the warm-up) and
prints ms/step; the rounds alternate between layouts. The difference between the last
two is the cost of being two processes (cross-process all-reduce of the gradients,
the coordination service, two input pipelines) at the same device count.

    PYTHONPATH=. python benchmarks/process_overhead.py \\
        --config=experiments/configs/dcgan_mnist.py --data_dir=../shared/data/tfds
"""
from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=False)
_DATA_DIR = flags.DEFINE_string("data_dir", "", "TFDS data dir.")
_STEPS = flags.DEFINE_integer("steps", 20, "Timed steps per round.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps (compiling) per round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds per layout, alternating.")
_PIN = flags.DEFINE_bool("pin", False, "Pin process i of a two-process layout to core i "
                         "(taskset), one XLA thread pool per core.")
_XLA_FLAGS = flags.DEFINE_string("xla_flags", "", "Extra XLA_FLAGS for the processes of "
                                 "the two-process layout.")
_WORKER = flags.DEFINE_string("worker", None, "Internal: 'coordinator,processes,id' or "
                              "'local' (run one timing in this process).")
flags.mark_flags_as_required(["config"])

LAYOUTS = {"1 process x 1 device": (1, 1), "1 process x 2 devices": (1, 2),
           "2 processes x 1 device": (2, 1)}


def time_training(config, *, steps: int, warmup: int) -> dict:
    """ms/step of the trainer's pieces on this process's share of the run."""
    import jax

    from jgan.sharding import on_mesh
    from jgan.train import builders
    from jgan.train.chunks import make_train_chunk
    from jgan.train.input import build_input
    from jgan.train.setup import DataParallel

    builders.validate(config)
    devices = DataParallel.over_all_devices(config, ("batch_size",))
    inp = build_input(config, devices.replicated)
    game = builders.build_game(config)
    state = jax.jit(game.init, out_shardings=devices.replicated)(
        jax.random.PRNGKey(config.seed), inp.example_batch())
    chunk, _ = make_train_chunk(config, inp, builders.build_step(config, game), devices.data)
    chunk = on_mesh(devices.mesh, chunk)
    for _ in range(warmup):
        state, metrics = chunk(state, 1)
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(steps):
        state, metrics = chunk(state, 1)
    jax.block_until_ready(metrics)
    return {"ms_per_step": 1000 * (time.perf_counter() - start) / steps,
            "process": jax.process_index(), "devices": jax.device_count()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _round(processes: int, devices: int, argv: list[str]) -> float:
    args = [a for a in argv[1:] if not a.startswith(("--worker", "--rounds"))]
    extra = f" {_XLA_FLAGS.value}" if _XLA_FLAGS.value and processes > 1 else ""
    env = {**os.environ,
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}{extra}",
           "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}
    port = _free_port()
    workers = ["local"] if processes == 1 else [
        f"127.0.0.1:{port},{processes},{i}" for i in range(processes)]
    procs = [subprocess.Popen([*(["taskset", "-c", str(i % os.cpu_count())]
                                 if _PIN.value and processes > 1 else []),
                               sys.executable, os.path.abspath(__file__), *args,
                               f"--worker={w}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i, w in enumerate(workers)]
    outs = [p.communicate() for p in procs]
    for p, (out, err) in zip(procs, outs):
        if p.returncode:
            raise RuntimeError(f"worker failed:\n{err[-3000:]}")
    return json.loads(outs[0][0].strip().splitlines()[-1])["ms_per_step"]


def main(argv):
    logging.set_verbosity(logging.WARNING)
    config = _CONFIG.value
    if _DATA_DIR.value:
        config.data.data_dir = _DATA_DIR.value
    if _WORKER.value:
        if _WORKER.value != "local":
            import jax
            address, processes, index = _WORKER.value.split(",")
            jax.distributed.initialize(address, int(processes), int(index))
        print(json.dumps(time_training(config, steps=_STEPS.value, warmup=_WARMUP.value)))
        return
    times = {name: [] for name in LAYOUTS}
    for _ in range(_ROUNDS.value):
        for name, (processes, devices) in LAYOUTS.items():
            times[name].append(_round(processes, devices, sys.argv))
            print(f"{name}: {times[name][-1]:.1f} ms/step", flush=True)
    reference = statistics.median(times["1 process x 2 devices"])
    print(f"batch {config.batch_size}, {_STEPS.value} steps per round, medians:")
    for name, ms in times.items():
        print(f"  {name:24s} {statistics.median(ms):7.1f} ms/step  "
              f"({statistics.median(ms) / reference:.2f}x the one-process two-device time)")


if __name__ == "__main__":
    app.run(main)
