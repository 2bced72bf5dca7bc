"""Claim 4 on images: the generator's loss beside a quality measure, from a run's metrics.jsonl.

    python -m experiments.main --config=experiments/configs/dcgan_mnist.py \
        --workdir=workdirs/dcgan_mnist_quality --config.num_steps=3000 \
        --config.eval.metrics=classifier_fd --config.eval.every=250 \
        --config.eval.classifier_workdir=workdirs/classifier_mnist
    python -m experiments.dynamics.loss_vs_quality --workdir=workdirs/dcgan_mnist_quality \
        [--metric=eval/classifier_fd] [--out=docs/figures/loss_vs_quality_mnist.png]

Reads the losses the trainer logs every `log_every` steps and the evaluation metric it
logs every `eval.every` steps, prints them side by side with the rank correlation of
the generator loss with the metric over the evaluations, and draws them.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from experiments.dynamics.figures import save_figure


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--metric", default="eval/classifier_fd",
                   help="a metrics.jsonl key logged by the evaluation (lower is better "
                        "unless --higher_is_better)")
    p.add_argument("--higher_is_better", action="store_true")
    p.add_argument("--out", default="docs/figures/loss_vs_quality_mnist.png")
    return p.parse_args(argv)


def read_series(metrics_path: Path, metric: str):
    """(loss steps, g_loss, d_loss, metric steps, metric values) from a metrics.jsonl."""
    if not metrics_path.exists():
        raise FileNotFoundError(f"{metrics_path} not found: is it a jgan run's workdir?")
    loss_steps, g_loss, d_loss, metric_steps, values = [], [], [], [], []
    for line in metrics_path.read_text().splitlines():
        row = json.loads(line)
        if "g_loss" in row:
            loss_steps.append(row["step"])
            g_loss.append(row["g_loss"])
            d_loss.append(row["d_loss"])
        if metric in row:
            metric_steps.append(row["step"])
            values.append(row[metric])
    if not values:
        raise KeyError(f"{metrics_path} has no {metric!r}; run with config.eval.metrics "
                       f"naming it and config.eval.every > 0.")
    return (np.asarray(loss_steps), np.asarray(g_loss), np.asarray(d_loss),
            np.asarray(metric_steps), np.asarray(values))


def main(argv=None):
    args = parse_args(argv)
    workdir = Path(args.workdir)
    loss_steps, g_loss, d_loss, metric_steps, values = read_series(workdir / "metrics.jsonl",
                                                                  args.metric)
    g_at_eval = np.interp(metric_steps, loss_steps, g_loss)
    rho = stats.spearmanr(g_at_eval, values).statistic if len(values) > 2 else float("nan")
    print(f"{'step':>7} {'G loss':>8} {'D loss':>8} {args.metric:>20}")
    for step, value in zip(metric_steps, values):
        i = int(np.searchsorted(loss_steps, step))
        i = min(i, len(loss_steps) - 1)
        print(f"{step:>7} {g_loss[i]:>8.3f} {d_loss[i]:>8.3f} {value:>20.4g}")
    better = "higher" if args.higher_is_better else "lower"
    print(f"Spearman rank correlation of G loss with {args.metric} ({better} is better) "
          f"over {len(values)} evaluations: {rho:.3f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax_loss = plt.subplots(figsize=(7, 4))
    ax_loss.plot(loss_steps, g_loss, color="tab:blue", lw=0.9, label="G loss")
    ax_loss.plot(loss_steps, d_loss, color="tab:orange", lw=0.9, label="D loss")
    ax_loss.set(xlabel="step", ylabel="loss")
    ax_metric = ax_loss.twinx()
    ax_metric.plot(metric_steps, values, color="tab:green", marker="o", ms=3,
                   label=f"{args.metric} ({better} is better)")
    ax_metric.set_ylabel(args.metric)
    if not args.higher_is_better:
        ax_metric.set_yscale("log")
    lines = ax_loss.get_lines() + ax_metric.get_lines()
    ax_loss.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="upper center")
    ax_loss.set_title(f"{workdir.name}: losses and sample quality (Spearman ρ = {rho:.2f})")
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()
