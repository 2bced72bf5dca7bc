"""Claims 4-6 on the 2-D mixtures: mode collapse and its remedies, over seeds.

    python -m experiments.dynamics.mode_collapse                       # the full table
    python -m experiments.dynamics.mode_collapse --mixtures=grid --games=pacgan \
        --seeds=0,1,2,3,4 --set=num_steps=20000 --set=optimizer.generator.learning_rate=1e-3

Every (mixture, game) cell is the experiment config `experiments/configs/mixture.py:
MIXTURE,GAME` with the lab's recipe (`lab_recipe`: Adam at 10^-3 for both teams, decayed
linearly to 0 over the second half, 10,000 steps, with the settings the lab's figures
were measured with pinned; `--recipe=config` keeps the configs' own settings, which
since issue 25 are this recipe with each game's own fixes) and then the `--set key=value` overrides applied to every cell, trained for
all seeds at once by `jgan.dynamics.mode_collapse.train_seeds` and measured with the
PacGAN protocol (2,500 samples; high quality within 3 std; a mode is covered by one
high-quality sample) every `--eval_every` steps. Writes, under --out_dir:

* `mode_collapse_<mixture><name>.png`: final samples, a row per game, a column per seed;
* `mode_collapse_<mixture><name>_dynamics.png` (claims 4 and 5): for the first seed of each
  game, the generator's and discriminator's losses beside modes covered and the
  high-quality share, and the discriminator's accuracy on real and fake samples;

and the table and every trajectory as JSON to --results.
"""
from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

import numpy as np
from scipy import stats

from experiments.configs import mixture as mixture_configs
from experiments.dynamics.figures import save_figure
from jgan.data.mixtures import mixture_of
from jgan.dynamics.mode_collapse import SeedRuns, summarize_seeds, train_seeds


# The configs as shipped before issue 25 (Adam at 1e-4, 30,000 steps) left the grid's
# generator under-trained: its samples are smeared between modes (19 modes, 10-20 % high quality
# for the non-saturating game). Ten times the learning rate, decayed to 0, reaches ~90 %
# in a third of the steps, which makes a table of 6 games x 2 mixtures x 5 seeds fit
# a 2-core CPU.
LAB_RECIPE = ("num_steps=10000",
              "optimizer.generator.learning_rate=1e-3",
              "optimizer.discriminator.learning_rate=1e-3",
              "optimizer.generator.schedule='linear_decay'",
              "optimizer.discriminator.schedule='linear_decay'")


def lab_recipe(game: str) -> tuple[str, ...]:
    """LAB_RECIPE's overrides for `game`, after pins of what the lab's figures
    (docs/dynamics.md) were measured with before issue 25 changed the configs: no EMA
    warm-up, hinge + spectral norm on the unscaled mixtures, Unrolled with k = 5 (at
    LAB_RECIPE's discriminator rate). The lab's commands keep reproducing its figures."""
    pins = ("game.ema_warmup=False", "data.mixture_scale=1.0")
    if game == "unrolled":
        pins += ("game.unroll_steps=5",)
    return (*pins, *LAB_RECIPE)


# recipe name -> game -> overrides; "config" measures the configs as shipped.
RECIPES = {"lab": lab_recipe, "config": lambda game: ()}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mixtures", default="ring,grid")
    p.add_argument("--games", default=",".join(mixture_configs.GAMES))
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--eval_every", type=int, default=1000)
    p.add_argument("--recipe", default="lab", choices=sorted(RECIPES),
                   help="lab: LAB_RECIPE's overrides first; config: the configs as shipped")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every cell, after the recipe, e.g. num_steps=20000")
    p.add_argument("--runlocal", action="store_true", help="the configs' small variants")
    p.add_argument("--name", default="",
                   help="suffix of the figures' names and of the results' keys, e.g. _best")
    p.add_argument("--out_dir", default="docs/figures")
    p.add_argument("--results", default="workdirs/mode_collapse/results.json")
    return p.parse_args(argv)


def apply_overrides(config, overrides):
    """`key.sub=value` strings onto `config`; the value is a Python literal or a string."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}.")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        node, *path = [config] + key.split(".")[:-1]
        for part in path:
            if part not in node:
                raise KeyError(f"--set {item!r}: the config has no key {key!r}.")
            node = node[part]
        last = key.split(".")[-1]
        if last not in node:
            raise KeyError(f"--set {item!r}: the config has no key {key!r}.")
        if isinstance(node[last], tuple) and isinstance(value, list):
            value = tuple(value)
        node[last] = value
    return config


def cell_config(mixture: str, game: str, overrides, *, runlocal: bool = False):
    """The config of one (mixture, game) cell: the shipped config, then `overrides`."""
    arg = f"{mixture},{game}" + (",runlocal" if runlocal else "")
    return apply_overrides(mixture_configs.get_config(arg), overrides)


def run_record(runs: SeedRuns) -> dict:
    return {"summary": summarize_seeds(runs), "steps": runs.steps.tolist(),
            "modes": runs.modes.tolist(), "high_quality": runs.high_quality.tolist(),
            "metrics": {k: v.tolist() for k, v in runs.metrics.items()}}


def loss_quality_summary(record: dict) -> dict:
    """Claim 4 per cell: does the generator's loss fall while its samples improve?

    Returns, averaged over seeds: the G loss over the first and the last measurement
    interval, the high-quality share at the first and last measurement, and the
    Spearman rank correlation over measurements of the G loss with the high-quality
    share (negative: the loss falls as quality rises).
    """
    g_loss = np.asarray(record["metrics"]["g_loss"])
    hq = np.asarray(record["high_quality"])
    rhos = [stats.spearmanr(g, q).statistic for g, q in zip(g_loss, hq)
            if np.ptp(g) > 0 and np.ptp(q) > 0]
    return {"g_loss_first": float(g_loss[:, 0].mean()),
            "g_loss_last": float(g_loss[:, -1].mean()),
            "high_quality_first": float(hq[:, 0].mean()),
            "high_quality_last": float(hq[:, -1].mean()),
            "spearman_g_loss_high_quality": float(np.mean(rhos)) if rhos else float("nan")}


def plot_samples(mixture, games, results, samples, means, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    num_seeds = max(len(s) for s in samples.values())
    fig, axes = plt.subplots(len(games), num_seeds, figsize=(2.1 * num_seeds, 2.2 * len(games)),
                             squeeze=False)
    lim = float(np.abs(means).max()) * 1.35 + 0.3
    for row, game in enumerate(games):
        per_seed = results[game]["summary"]["per_seed"]
        for col, pts in enumerate(samples[game]):
            ax = axes[row, col]
            ax.scatter(pts[:, 0], pts[:, 1], s=1, c="black", alpha=0.25, linewidths=0)
            ax.scatter(means[:, 0], means[:, 1], s=8, c="red", marker="x", linewidths=0.8)
            seed, modes, hq = per_seed[col]
            ax.set_title(f"seed {seed}: {modes} modes, {100 * hq:.1f}%", fontsize=7)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
        axes[row, 0].set_ylabel(game, fontsize=9)
    fig.suptitle(f"{mixture}: final samples (modes covered, high-quality share)", fontsize=10)
    save_figure(fig, path, dpi=100)


def plot_dynamics(mixture, games, results, num_modes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, len(games), figsize=(max(3.2 * len(games), 9.0), 8.2),
                             squeeze=False)
    for col, game in enumerate(games):
        r = results[game]
        steps = np.asarray(r["steps"])
        m = {k: np.asarray(v)[0] for k, v in r["metrics"].items()}
        ax_loss, ax_quality, ax_acc = axes[:, col]
        ax_loss.plot(steps, m["g_loss"], label="G loss")
        ax_loss.plot(steps, m["d_loss"], label="D loss")
        ax_loss.set_title(game, fontsize=10)
        ax_quality.plot(steps, np.asarray(r["modes"])[0] / num_modes, color="tab:green",
                        label="modes covered / all")
        ax_quality.plot(steps, np.asarray(r["high_quality"])[0], color="tab:purple",
                        label="high-quality share")
        ax_quality.set_ylim(-0.02, 1.02)
        ax_acc.plot(steps, m["d_acc_real"], label="D accuracy, real")
        ax_acc.plot(steps, m["d_acc_fake"], label="D accuracy, fake")
        ax_acc.set_ylim(-0.02, 1.02)
        ax_acc.set_xlabel("step")
        if col == 0:
            for ax in (ax_loss, ax_quality, ax_acc):
                ax.legend(fontsize=7)
    fig.suptitle(f"{mixture}, seed {results[games[0]]['summary']['per_seed'][0][0]}: "
                 "losses (top), quality (middle), discriminator accuracy (bottom); "
                 "means over each measurement interval", fontsize=10)
    save_figure(fig, path, dpi=100)


def main(argv=None):
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    games = [g for g in args.games.split(",") if g]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    everything = json.loads(results_path.read_text()) if results_path.exists() else {}
    rows = []
    for mixture in [m for m in args.mixtures.split(",") if m]:
        results, samples = {}, {}
        for game in games:
            config = cell_config(mixture, game, [*RECIPES[args.recipe](game), *args.set],
                                 runlocal=args.runlocal)
            start = time.perf_counter()
            runs = train_seeds(config, seeds, eval_every=args.eval_every)
            seconds = time.perf_counter() - start
            results[game] = run_record(runs)
            results[game]["loss_vs_quality"] = loss_quality_summary(results[game])
            results[game].update(seconds=seconds, config=json.loads(config.to_json()))
            samples[game] = runs.samples
            s = results[game]["summary"]
            rows.append((mixture, game, s, config.num_steps, seconds))
            print(f"{mixture:5s} {game:15s} modes {s['modes_mean']:5.2f} ± {s['modes_std']:4.2f}  "
                  f"high quality {100 * s['high_quality_mean']:5.1f} ± "
                  f"{100 * s['high_quality_std']:4.1f} %  ({len(seeds)} seeds x "
                  f"{config.num_steps} steps, {seconds:.0f} s)", flush=True)
        means = mixture_of(config).means     # every cell of this mixture shares it
        plot_samples(mixture, games, results, samples, means,
                     out_dir / f"mode_collapse_{mixture}{args.name}.png")
        plot_dynamics(mixture, games, results, len(means),
                      out_dir / f"mode_collapse_{mixture}{args.name}_dynamics.png")
        key = mixture + args.name
        everything[key] = {**everything.get(key, {}), **results}
        results_path.write_text(json.dumps(everything))
    print("\n| mixture | game | modes (mean ± std) | high quality % (mean ± std) | per seed |")
    print("| --- | --- | --- | --- | --- |")
    for mixture, game, s, steps, seconds in rows:
        per = ", ".join(f"{m}/{100 * h:.1f}" for _, m, h in s["per_seed"])
        print(f"| {mixture} | {game} | {s['modes_mean']:.1f} ± {s['modes_std']:.1f} | "
              f"{100 * s['high_quality_mean']:.1f} ± {100 * s['high_quality_std']:.1f} | {per} |")
    print("\n| mixture | game | G loss, first -> last interval | high quality, first -> last "
          "measurement | Spearman(G loss, high quality) |")
    print("| --- | --- | --- | --- | --- |")
    for mixture, game, *_ in rows:
        q = everything[mixture + args.name][game]["loss_vs_quality"]
        print(f"| {mixture} | {game} | {q['g_loss_first']:.3f} -> {q['g_loss_last']:.3f} | "
              f"{100 * q['high_quality_first']:.1f} -> {100 * q['high_quality_last']:.1f} % | "
              f"{q['spearman_g_loss_high_quality']:+.2f} |")
    print(f"wrote {results_path} and figures under {out_dir}")


if __name__ == "__main__":
    main()
