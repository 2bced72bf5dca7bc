"""Training-step time of any experiment config, optionally against another source tree.

Builds the config's game and step exactly as the trainer does (`builders.build_game`,
`jax.jit(make_step(...), donate_argnums=0)`), feeds it one batch of the config's shape
with random values (a step's cost does not depend on them), and prints the compile time
(trace, lower and XLA compile, ahead of the first step) and the median milliseconds per
step over `--rounds` rounds of `--steps` steps.

`--baseline_tree=DIR` compares two versions of jgan in the same run: DIR is another
checkout (for instance `git worktree add /tmp/base <commit>`). The rounds alternate
between the two trees, each in a fresh subprocess that imports jgan from its own tree,
and the ratio of the medians is printed: the way to measure a change's speed-up on a
shared, noisy machine.

  PYTHONPATH=. python benchmarks/step_time.py \
      --config=experiments/configs/conditional.py:infogan,mnist \
      --config.data.data_dir=../shared/data/tfds --baseline_tree=/tmp/base

The config's data must be readable (the batch shape comes from its input pipeline).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.",
                                          lock_config=True)
_STEPS = flags.DEFINE_integer("steps", 10, "Timed steps per round.")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed steps after compiling.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Measurement rounds (per tree).")
_BASELINE = flags.DEFINE_string("baseline_tree", None,
                                "Another jgan checkout to time in alternating rounds.")
_JSON = flags.DEFINE_bool("json", False, "Print one JSON line (used for subprocesses).")
flags.mark_flags_as_required(["config"])


def time_steps(config, *, steps: int, warmup: int, rounds: int) -> dict:
    import jax
    import numpy as np
    from jax.sharding import NamedSharding, PartitionSpec as P

    from jgan.train import builders
    from jgan.train.input import build_input

    replicated = NamedSharding(jax.sharding.Mesh(np.array(jax.devices()), ("data",)), P())
    example = build_input(config, replicated).example_batch()
    rng = np.random.default_rng(0)
    batch = {k: (rng.integers(0, 10, v.shape).astype(v.dtype)
                 if np.issubdtype(v.dtype, np.integer)
                 else rng.uniform(-1, 1, v.shape).astype(v.dtype))
             for k, v in jax.device_get(example).items()}
    game = builders.build_game(config)
    state = jax.jit(game.init)(jax.random.PRNGKey(config.seed), batch)
    if hasattr(builders, "build_step"):
        step_fn = builders.build_step(config, game)
    else:  # a --baseline_tree from before named teams
        from jgan.steps import make_step
        step_fn = make_step(game, update_rule=config.game.update_rule,
                            d_steps=config.game.d_steps, unroll_steps=config.game.unroll_steps)
    step = jax.jit(step_fn, donate_argnums=0)
    start = time.perf_counter()
    step = step.lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            state, metrics = step(state, batch)
        jax.block_until_ready(metrics)
        per_round.append(1000 * (time.perf_counter() - start) / steps)
    return {"compile_s": compile_s, "ms_per_step": per_round,
            "batch_size": int(config.batch_size), "jgan": os.path.dirname(
                os.path.dirname(sys.modules["jgan"].__file__))}


def _subprocess_round(tree: str, argv: list[str]) -> dict:
    own = ("--baseline_tree", "--rounds", "--json")
    args, skip = [], False
    for a in argv[1:]:
        if skip:  # the value of "--baseline_tree DIR" or "--rounds N"
            skip = False
        elif a in own[:2]:
            skip = True
        elif not a.startswith(own):
            args.append(a)
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    out = subprocess.run([sys.executable, os.path.abspath(__file__), *args, "--rounds=1",
                          "--json"], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"step_time.py in {tree} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
    logging.set_verbosity(logging.WARNING)
    if not _BASELINE.value:
        result = time_steps(_CONFIG.value, steps=_STEPS.value, warmup=_WARMUP.value,
                            rounds=_ROUNDS.value)
        if _JSON.value:
            print(json.dumps(result))
            return
        ms = statistics.median(result["ms_per_step"])
        print(f"{result['jgan']}: compile {result['compile_s']:.1f} s; "
              f"{ms:.1f} ms/step (median of {result['ms_per_step']}), "
              f"{1000 * result['batch_size'] / ms:.0f} images/s")
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    times = {"baseline": [], "current": []}
    for _ in range(_ROUNDS.value):
        for name, tree in (("baseline", _BASELINE.value), ("current", here)):
            result = _subprocess_round(tree, sys.argv)
            times[name].append(result["ms_per_step"][0])
            print(f"{name:8s} {result['jgan']}: {result['ms_per_step'][0]:.1f} ms/step "
                  f"(compile {result['compile_s']:.1f} s)", flush=True)
    base, cur = statistics.median(times["baseline"]), statistics.median(times["current"])
    print(f"median ms/step: baseline {base:.1f}, current {cur:.1f}; "
          f"speed-up {base / cur:.2f}x")


if __name__ == "__main__":
    app.run(main)
