"""Claim 5: a stable run keeps D's accuracy away from 100 %; a dominating D collapses or stalls G.

    python -m experiments.dynamics.discriminator_accuracy [--mixture=grid] [--seeds=0,1,2]
        [--num_steps=10000] [--eval_every=500] [--out=docs/figures/discriminator_accuracy.png]

Two runs of the same game, `experiments/configs/mixture.py:MIXTURE,non_saturating` with
the lab's recipe (`mode_collapse.lab_recipe`) and `--set` overrides:

* stable: the config as it is, one D update per G update at equal learning rates;
* dominating: the discriminator takes `--dominating_d_steps` updates per generator update
  at `--dominating_lr_ratio` times the learning rate.

Both are trained for every seed by `jgan.dynamics.mode_collapse.train_seeds`; the
figure shows the logged discriminator accuracy on real and fake samples over the steps
beside modes covered and the high-quality share, and the final samples of the first seed.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from experiments.dynamics.figures import save_figure
from experiments.dynamics.mode_collapse import cell_config, lab_recipe, run_record
from jgan.data.mixtures import get_mixture
from jgan.dynamics.mode_collapse import train_seeds


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mixture", default="grid")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--num_steps", type=int, default=10000)
    p.add_argument("--eval_every", type=int, default=500)
    p.add_argument("--dominating_d_steps", type=int, default=5)
    p.add_argument("--dominating_lr_ratio", type=float, default=5.0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for both runs")
    p.add_argument("--runlocal", action="store_true", help="the config's small variant")
    p.add_argument("--out", default="docs/figures/discriminator_accuracy.png")
    p.add_argument("--results", default="workdirs/discriminator_accuracy/results.json")
    return p.parse_args(argv)


def configs(args) -> dict:
    base = [*lab_recipe("non_saturating"), *args.set, f"num_steps={args.num_steps}"]
    stable = cell_config(args.mixture, "non_saturating", base, runlocal=args.runlocal)
    lr = stable.optimizer.discriminator.learning_rate * args.dominating_lr_ratio
    dominating = cell_config(args.mixture, "non_saturating",
                             [*base, f"game.d_steps={args.dominating_d_steps}",
                              f"optimizer.discriminator.learning_rate={lr!r}"],
                             runlocal=args.runlocal)
    return {"stable": stable, "dominating": dominating}


def plot(results: dict, samples: dict, means: np.ndarray, path: Path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(results), 3, figsize=(13, 3.6 * len(results)), squeeze=False)
    lim = float(np.abs(means).max()) * 1.35 + 0.3
    for row, (name, r) in enumerate(results.items()):
        steps = np.asarray(r["steps"])
        acc_real = np.asarray(r["metrics"]["d_acc_real"])
        acc_fake = np.asarray(r["metrics"]["d_acc_fake"])
        ax_acc, ax_quality, ax_samples = axes[row]
        for s in range(acc_real.shape[0]):
            ax_acc.plot(steps, acc_real[s], color="tab:blue", lw=0.8,
                        label="on real" if s == 0 else None)
            ax_acc.plot(steps, acc_fake[s], color="tab:red", lw=0.8,
                        label="on fake" if s == 0 else None)
            ax_quality.plot(steps, np.asarray(r["modes"])[s] / len(means), color="tab:green",
                            lw=0.8, label="modes covered / all" if s == 0 else None)
            ax_quality.plot(steps, np.asarray(r["high_quality"])[s], color="tab:purple", lw=0.8,
                            label="high-quality share" if s == 0 else None)
        ax_acc.set(ylim=(-0.02, 1.02), xlabel="step",
                   title=f"{name}: discriminator accuracy (each seed)")
        ax_quality.set(ylim=(-0.02, 1.02), xlabel="step", title=f"{name}: sample quality")
        ax_acc.legend(fontsize=8)
        ax_quality.legend(fontsize=8)
        pts = samples[name][0]
        ax_samples.scatter(pts[:, 0], pts[:, 1], s=1, c="black", alpha=0.25, linewidths=0)
        ax_samples.scatter(means[:, 0], means[:, 1], s=10, c="red", marker="x")
        seed, modes, hq = r["summary"]["per_seed"][0]
        ax_samples.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                       title=f"{name}, seed {seed}: {modes} modes, {100 * hq:.1f}% high quality")
    save_figure(fig, path, dpi=100)


def main(argv=None):
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    results, samples = {}, {}
    for name, config in configs(args).items():
        start = time.perf_counter()
        runs = train_seeds(config, seeds, eval_every=args.eval_every)
        results[name] = {**run_record(runs), "seconds": time.perf_counter() - start,
                         "config": json.loads(config.to_json())}
        samples[name] = runs.samples
        acc = runs.metrics["d_acc_real"] / 2 + runs.metrics["d_acc_fake"] / 2
        half = acc.shape[1] // 2
        s = results[name]["summary"]
        results[name]["accuracy_second_half"] = float(acc[:, half:].mean())
        print(f"{name:10s} D accuracy (real and fake), mean over the second half of the run "
              f"{100 * acc[:, half:].mean():5.1f} %, max {100 * acc.max():5.1f} %; modes "
              f"{s['modes_mean']:.1f} ± {s['modes_std']:.1f}, high quality "
              f"{100 * s['high_quality_mean']:.1f} ± {100 * s['high_quality_std']:.1f} % "
              f"({len(seeds)} seeds x {config.num_steps} steps, "
              f"{results[name]['seconds']:.0f} s)", flush=True)
    plot(results, samples, get_mixture(args.mixture).means, Path(args.out))
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results))
    print(f"wrote {args.out} and {results_path}")


if __name__ == "__main__":
    main()
