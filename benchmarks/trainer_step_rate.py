"""The trainer's steady-state time per step, per input path, against the bare step.

`benchmarks/step_time.py` times the jitted step alone on a fixed batch. A run also
reads its data: through the host grain pipeline (`data.on_device=False`) or from the
dataset held in device memory (`data.on_device=True`). This script times what a user's
run costs per step: for each input path it runs `python -m experiments.main` to
`--short` and to `--long` steps (no samples or checkpoints in between, in fresh
processes, as a user would) and takes

    ms/step = (wall time of the long run - wall time of the short run) / (long - short),

so start-up, data loading, compiling and the final evaluation cancel. The bare step
(`step_time.py` on the same config) is timed in the same run, and each path's overhead
over it is printed. `--baseline_tree=DIR` (another checkout, for instance `git worktree
add /tmp/base <commit>`) times that tree too, in alternating order, to measure a
change to the input paths on a shared, noisy machine.

  PYTHONPATH=. python benchmarks/trainer_step_rate.py --data_dir=../shared/data/tfds \
      --baseline_tree=/tmp/base

Two fixes measured with it (2-core development machine, 2026-11-27, DCGAN on MNIST,
batch 64, 200 and 600 steps, baseline 78d29be):

* on device: each step formed two permutations of all 60,000 positions (~38 ms); it
  now evaluates `jgan.data.index_shuffle` at the batch's 64 positions (~0.1 ms).
  140.5 -> 92.2 ms/step (1.52x), against a bare step of 88.8 ms (1.58x -> 1.04x).
* host pipeline: each record was read on its own, through 16 grain threads whose
  futures grain polls on every record (~55 ms of CPU per batch); a batch is now read in
  one `__getitems__` call (~11 ms of CPU), giving the same batches. 121.3 -> 116.7
  ms/step (1.04x; 1.37x -> 1.31x the bare step): what is left is the reading and PNG
  decoding that competes with XLA for the two cores (~23 ms of wall time per batch in
  the main thread while a step runs) and grain's per-record sampler.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PATHS = {"host pipeline": "False", "on device": "True"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="experiments/configs/dcgan_mnist.py")
    p.add_argument("--data_dir", default="../shared/data/tfds", help="TFDS data dir.")
    p.add_argument("--short", type=int, default=200, help="Steps of the short run.")
    p.add_argument("--long", type=int, default=600, help="Steps of the long run.")
    p.add_argument("--rounds", type=int, default=1, help="Repetitions of every measurement.")
    p.add_argument("--baseline_tree", default=None, help="Another jgan checkout to time too.")
    args = p.parse_args(argv)
    if not 0 < args.short < args.long:
        p.error(f"need 0 < --short < --long, got {args.short} and {args.long}")
    return args


def _env(tree: str) -> dict:
    return {**os.environ, "PYTHONPATH": os.path.abspath(tree)}


def run_seconds(tree: str, args, steps: int, on_device: str) -> float:
    """Wall seconds of one training run of `steps` steps in `tree`."""
    with tempfile.TemporaryDirectory() as workdir:
        cmd = [sys.executable, "-m", "experiments.main", f"--config={args.config}",
               f"--workdir={workdir}", f"--config.data.data_dir={os.path.abspath(args.data_dir)}",
               f"--config.num_steps={steps}", f"--config.data.on_device={on_device}",
               "--config.sample_every=1000000000", "--config.checkpoint_every=1000000000",
               "--config.progress_bar=False"]
        start = time.perf_counter()
        out = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True)
        seconds = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} in {tree} failed:\n{out.stderr[-3000:]}")
    return seconds


def bare_step_ms(tree: str, args) -> float:
    """The jitted step alone (benchmarks/step_time.py of the current tree, jgan of `tree`)."""
    cmd = [sys.executable, os.path.join(HERE, "benchmarks", "step_time.py"),
           f"--config={args.config}", f"--config.data.data_dir={os.path.abspath(args.data_dir)}",
           "--steps=40", "--rounds=3", "--json"]
    out = subprocess.run(cmd, cwd=tree, env=_env(tree), capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"step_time.py in {tree} failed:\n{out.stderr[-3000:]}")
    return statistics.median(json.loads(out.stdout.strip().splitlines()[-1])["ms_per_step"])


def main(args) -> None:
    trees = {"current": HERE}
    if args.baseline_tree:
        trees = {"baseline": os.path.abspath(args.baseline_tree), **trees}
    results = {(t, p): [] for t in trees for p in ["bare step", *PATHS]}
    for rnd in range(args.rounds):
        order = list(trees.items()) if rnd % 2 == 0 else list(reversed(trees.items()))
        for name, tree in order:
            results[(name, "bare step")].append(bare_step_ms(tree, args))
            for path, on_device in PATHS.items():
                short = run_seconds(tree, args, args.short, on_device)
                long = run_seconds(tree, args, args.long, on_device)
                ms = 1000 * (long - short) / (args.long - args.short)
                results[(name, path)].append(ms)
                print(f"round {rnd + 1} {name} {path}: {args.short} steps {short:.1f} s, "
                      f"{args.long} steps {long:.1f} s -> {ms:.1f} ms/step", flush=True)
    print(f"\n{'tree':9s} {'input':14s} {'ms/step':>8s} {'x bare step':>12s}")
    for name in trees:
        bare = statistics.median(results[(name, "bare step")])
        for path in ["bare step", *PATHS]:
            ms = statistics.median(results[(name, path)])
            print(f"{name:9s} {path:14s} {ms:8.1f} {ms / bare:12.2f}")
    if args.baseline_tree:
        for path in PATHS:
            base = statistics.median(results[("baseline", path)])
            cur = statistics.median(results[("current", path)])
            print(f"{path}: baseline / current = {base / cur:.2f}x")


if __name__ == "__main__":
    main(parse_args())
