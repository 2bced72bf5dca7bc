"""Mode coverage on the 2-D mixtures (PacGAN protocol), printed as a table.

    python benchmarks/mixture_modes.py                       # ring NS x 3 seeds, grid x 3 games
    python benchmarks/mixture_modes.py --runs=ring:non_saturating --seeds=0,1,2

Each run is the experiment config as shipped (`experiments/configs/mixture.py`),
trained in a fresh workdir under --root; the figures are those of its eval.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from absl import logging

from experiments.configs import mixture
from jgan.train import trainer

DEFAULT_RUNS = ("ring:non_saturating", "grid:minimax", "grid:non_saturating", "grid:wgan_gp")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--root", default="workdirs/benchmark_mixtures")
    parser.add_argument("--num_steps", type=int, default=None, help="override the config's")
    args = parser.parse_args()
    logging.set_verbosity(logging.WARNING)
    rows = []
    for run in args.runs.split(","):
        name, game = run.split(":")
        results = []
        for seed in [int(s) for s in args.seeds.split(",")]:
            config = mixture.get_config(f"{name},{game}")
            config.seed = seed
            config.progress_bar = False
            if args.num_steps:
                config.num_steps = args.num_steps
            workdir = Path(args.root) / f"{name}_{game}_seed{seed}"
            start = time.time()
            result = trainer.train_and_evaluate(config, workdir)
            result["seconds"] = time.time() - start
            results.append(result)
            print(f"{name:5s} {game:15s} seed {seed}: modes {result['modes']:2d}, high quality "
                  f"{100 * result['high_quality']:5.1f}%, EMA {result['ema']}, "
                  f"{config.num_steps} steps in {result['seconds']:.0f} s", flush=True)
        rows.append((name, game, results))
    print("\nmixture  game             modes (mean)  high-quality % (mean)  per seed")
    for name, game, results in rows:
        modes = statistics.mean(r["modes"] for r in results)
        hq = statistics.mean(100 * r["high_quality"] for r in results)
        per = ", ".join(f"{r['modes']}/{100 * r['high_quality']:.1f}%" for r in results)
        print(f"{name:8s} {game:15s} {modes:12.2f}  {hq:21.1f}  {per}")
    Path(args.root).mkdir(parents=True, exist_ok=True)
    (Path(args.root) / "summary.json").write_text(json.dumps(
        [{"mixture": n, "game": g, "results": r} for n, g, r in rows], indent=2))


if __name__ == "__main__":
    main()
