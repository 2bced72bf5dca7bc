"""Claim 3: when D wins, log(1 - D(G(z))) has vanishing generator gradients, -log D(G(z)) not.

    python -m experiments.dynamics.saturating_gradients [--num_steps=1000]
        [--pretrain_steps=400] [--generator_loss=non_saturating] [--d_steps=5]
        [--generator_learning_rate=0.001] [--discriminator_learning_rate=0.003] [--seed=0]
        [--out=docs/figures/saturating_gradients.png]

One run of `jgan.dynamics.saturation.saturation_run` (MLP G and D on the 8-mode ring of
radius 2, std 0.02; the shared step machinery) in which D wins: it is pre-trained for
`pretrain_steps` steps against the frozen initial G, then makes `d_steps` updates per
generator update at a higher learning rate. Only `--generator_loss` drives G; at every
step both losses' generator-gradient norms are measured on the same state and the same
probe noise. Draws the analytic derivatives, both norms and D(G(z)) over the steps.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.dynamics.figures import save_figure
from jgan.data.mixtures import ring
from jgan.dynamics.saturation import (
    non_saturating_logit_derivative,
    saturating_logit_derivative,
    saturation_run,
)

DATA = ring(num_modes=8, radius=2.0, std=0.02)   # Metz et al. 2017's ring
SATURATING, NON_SATURATING = "tab:orange", "tab:blue"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_steps", type=int, default=1000)
    parser.add_argument("--pretrain_steps", type=int, default=400)
    parser.add_argument("--generator_loss", default="non_saturating",
                        choices=("non_saturating", "minimax"))
    parser.add_argument("--d_steps", type=int, default=5)
    parser.add_argument("--generator_learning_rate", type=float, default=1e-3)
    parser.add_argument("--discriminator_learning_rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="docs/figures/saturating_gradients.png")
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = time.perf_counter()
    trace = saturation_run(DATA, num_steps=args.num_steps, pretrain_steps=args.pretrain_steps,
                           generator_loss=args.generator_loss, d_steps=args.d_steps,
                           generator_learning_rate=args.generator_learning_rate,
                           discriminator_learning_rate=args.discriminator_learning_rate,
                           seed=args.seed)
    g = trace.gradients
    ratio = g.saturating / g.non_saturating
    print(f"{args.num_steps} steps ({args.pretrain_steps} with G frozen), G driven by "
          f"{args.generator_loss}, d_steps={args.d_steps}: {time.perf_counter() - start:.1f} s")
    print(f"{'step':>6} {'mean D(G(z))':>13} {'max D(G(z))':>12} {'|grad sat|':>11} "
          f"{'|grad ns|':>10} {'sat / ns':>9}")
    report_at = sorted({0, 10, 50, 100, 200, args.pretrain_steps, args.pretrain_steps + 50,
                        args.pretrain_steps + 200, args.num_steps} - {-1})
    for t in (t for t in report_at if t <= args.num_steps):
        print(f"{t:>6} {g.d_fake[t]:>13.4f} {g.d_fake_max[t]:>12.3f} {g.saturating[t]:>11.3g} "
              f"{g.non_saturating[t]:>10.3g} {ratio[t]:>9.3g}")
    for name, window in (("pretraining, 2nd half", slice(args.pretrain_steps // 2,
                                                         args.pretrain_steps + 1)),
                         ("after pretraining", slice(args.pretrain_steps + 1, None))):
        if len(ratio[window]):
            print(f"{name}: median sat / ns = {np.median(ratio[window]):.3g}, median mean "
                  f"D(G(z)) = {np.median(g.d_fake[window]):.3g}, share of steps with "
                  f"sat / ns < 0.1: {np.mean(ratio[window] < 0.1):.2f}")

    fig, (ax_l, ax_g, ax_d) = plt.subplots(1, 3, figsize=(15, 4.4))
    logits = np.linspace(-10, 5, 301)
    ax_l.plot(logits, np.abs(saturating_logit_derivative(logits)), color=SATURATING,
              label="saturating |d/dl log(1 - σ(l))| = σ(l)")
    ax_l.plot(logits, np.abs(non_saturating_logit_derivative(logits)), color=NON_SATURATING,
              label="non-saturating |d/dl -log σ(l)| = 1 - σ(l)")
    ax_l.set(yscale="log", ylim=(1e-5, 2), xlabel="logit l of D(G(z))",
             title="per-example weight of dl/dθ_G")
    ax_l.legend(fontsize=8, loc="lower right")
    steps = np.arange(len(g.saturating))
    for ax in (ax_g, ax_d):
        ax.axvspan(0, args.pretrain_steps, color="0.92", label="G frozen (D pre-trained)")
    ax_g.plot(steps, g.non_saturating, lw=0.8, color=NON_SATURATING, label="non-saturating -log D(G(z))")
    ax_g.plot(steps, g.saturating, lw=0.8, color=SATURATING, label="saturating log(1 - D(G(z)))")
    ax_g.set(yscale="log", xlabel="step", title="||d loss / dθ_G|| (same state, same z)")
    ax_g.legend(fontsize=8)
    ax_d.plot(steps, g.d_fake, lw=0.8, color="tab:green", label="mean D(G(z))")
    ax_d.plot(steps, ratio, lw=0.8, color="tab:red", label="||grad sat|| / ||grad ns||")
    ax_d.axhline(0.1, color="0.5", ls=":", lw=0.8)
    ax_d.set(yscale="log", xlabel="step", title="D(G(z)) and the ratio of the norms")
    ax_d.legend(fontsize=8)
    fig.suptitle(f"G trained with the {args.generator_loss} loss; D: {args.d_steps} steps "
                 f"per G step, lr {args.discriminator_learning_rate:g} vs "
                 f"{args.generator_learning_rate:g}")
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()
