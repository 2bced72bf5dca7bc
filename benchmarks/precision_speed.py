"""Training-step time of a config in float32 against other compute dtypes, same process.

Builds the config's step once per `--dtypes` entry (`precision.compute_dtype`, every
network), compiles each, then alternates rounds between them on the same state shape and
batch (the machine's noise hits all alike) and prints the median ms/step of each and its
ratio to the first. On a CPU without native bfloat16 arithmetic XLA emulates it through
float32 conversions, so bfloat16 is expected to be slower there; the figure that matters
is an accelerator's (run the same command on one).

    PYTHONPATH=. python benchmarks/precision_speed.py \\
        --config=experiments/configs/dcgan_mnist.py --dtypes=float32,bfloat16
"""
from __future__ import annotations

import statistics
import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=False)
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes; the "
                            "first is the reference.")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per round.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Rounds per dtype, alternating.")
flags.mark_flags_as_required(["config"])


def compiled_step(config, dtype: str):
    """(compiled step, state, batch) of `config` computing in `dtype`."""
    import jax
    import numpy as np

    from jgan.train import builders

    config = config.copy_and_resolve_references()
    config.precision.compute_dtype = dtype
    builders.validate(config)
    game = builders.build_game(config)
    rng = np.random.default_rng(0)
    r, c, b = config.data.resolution, config.data.channels, config.batch_size
    b *= config.game.d_steps
    batch = {"image": rng.uniform(-1, 1, (b, r, r, c)).astype(np.float32),
             "label": rng.integers(0, config.model.num_classes, b).astype(np.int32)}
    state = jax.jit(game.init)(jax.random.PRNGKey(config.seed), batch)
    step = jax.jit(builders.build_step(config, game), donate_argnums=0)
    return step.lower(state, batch).compile(), state, batch


def main(argv):
    del argv
    import jax
    logging.set_verbosity(logging.WARNING)
    runs = {}
    for dtype in _DTYPES.value:
        start = time.perf_counter()
        runs[dtype] = list(compiled_step(_CONFIG.value, dtype))
        step, state, batch = runs[dtype]
        state, metrics = step(state, batch)  # warm-up
        jax.block_until_ready(metrics)
        runs[dtype][1] = state
        print(f"{dtype}: compiled and warmed up in {time.perf_counter() - start:.1f} s",
              flush=True)
    times = {dtype: [] for dtype in runs}
    for _ in range(_ROUNDS.value):
        for dtype, run in runs.items():
            step, state, batch = run
            start = time.perf_counter()
            for _ in range(_STEPS.value):
                state, metrics = step(state, batch)
            jax.block_until_ready(metrics)
            run[1] = state
            times[dtype].append(1000 * (time.perf_counter() - start) / _STEPS.value)
    reference = statistics.median(times[_DTYPES.value[0]])
    print(f"device: {jax.devices()[0].device_kind}; batch {_CONFIG.value.batch_size}")
    for dtype, ms in times.items():
        median = statistics.median(ms)
        print(f"{dtype:9s} {median:8.1f} ms/step (rounds {[round(m, 1) for m in ms]}); "
              f"{reference / median:.2f}x the speed of {_DTYPES.value[0]}")


if __name__ == "__main__":
    app.run(main)
