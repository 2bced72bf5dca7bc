"""Claim 1: phase portraits of min_x max_y x y under four update rules.

    python -m experiments.dynamics.bilinear_phase_portraits [--learning_rate=0.2]
        [--num_steps=200] [--out=docs/figures/bilinear_phase_portraits.png]

Runs `jgan.dynamics.bilinear_trajectory` (the shared step machinery) from (1, 1) with
simultaneous, alternating, extragradient and optimistic updates, draws one panel per
rule over the game's vector field (y, -x), and prints the distance to the equilibrium
(0, 0) at a few steps next to the plain-SGD rate where it has a closed form.
"""
from __future__ import annotations

import argparse

import numpy as np

from experiments.dynamics.figures import save_figure
from jgan.dynamics.bilinear import (
    BILINEAR_RULES,
    bilinear_trajectory,
    distance_to_equilibrium,
)

TITLES = {"simultaneous": "simultaneous GD", "alternating": "alternating GD",
          "extragradient": "extragradient", "optimistic": "optimistic GD (OGD)"}


def analytic_note(update_rule: str, eta: float) -> str:
    """What plain SGD's closed form says about |w_t| = ||(x_t, y_t)|| for this rule."""
    if update_rule == "simultaneous":
        return f"|w| x {np.sqrt(1 + eta**2):.5f} per step"
    if update_rule == "extragradient":
        return f"|w| x {np.sqrt(1 - eta**2 + eta**4):.5f} per step"
    if update_rule == "optimistic":
        rho = np.max(np.abs(np.roots([1, -(1 + 2j * eta), 1j * eta])))
        return f"|w| x {rho:.5f} per step asymptotically"
    return f"x^2 + {eta:g} xy + y^2 conserved, |eigenvalues| = 1"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learning_rate", type=float, default=0.2)
    parser.add_argument("--num_steps", type=int, default=200)
    parser.add_argument("--out", default="docs/figures/bilinear_phase_portraits.png")
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eta, steps = args.learning_rate, args.num_steps
    report_at = [t for t in (0, 10, 50, 100, 200, 500, 1000) if t <= steps]
    fig, axes = plt.subplots(1, len(BILINEAR_RULES), figsize=(4 * len(BILINEAR_RULES), 4.6))
    print(f"eta={eta}, start (1, 1); distance to (0, 0) at steps {report_at}")
    for ax, rule in zip(axes, BILINEAR_RULES):
        path = np.asarray(bilinear_trajectory(rule, learning_rate=eta, num_steps=steps))
        dist = distance_to_equilibrium(path)
        line = "  ".join(f"{dist[t]:.4g}" for t in report_at)
        print(f"{rule:>13}: {line}   (analytic: {analytic_note(rule, eta)})")

        lim = max(2.0, 1.1 * float(np.max(np.abs(path))))
        grid = np.linspace(-lim, lim, 15)
        gx, gy = np.meshgrid(grid, grid)
        # Descent direction of the game: x follows -d(xy)/dx = -y, y follows +d(xy)/dy = x.
        ax.quiver(gx, gy, -gy, gx, color="0.8", angles="xy")
        ax.plot(path[:, 0], path[:, 1], "-", lw=1.0, color="tab:blue")
        ax.plot(*path[0], "o", color="tab:green", label="start")
        ax.plot(*path[-1], "s", color="tab:red", label=f"step {steps}")
        ax.plot(0, 0, "k*", ms=10, label="Nash (0, 0)")
        ax.set(title=f"{TITLES[rule]}\n|w| {dist[0]:.2f} -> {dist[-1]:.3g}", xlabel="x",
               ylabel="y", xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle(f"min_x max_y xy, SGD step {eta}, {steps} steps (jgan.core.steps.make_step)")
    print(f"wrote {save_figure(fig, args.out)}")


if __name__ == "__main__":
    main()
