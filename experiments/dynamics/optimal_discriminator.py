"""Claim 2: a discriminator trained against a fixed generator learns D* = p_data / (p_data + p_g).

    python -m experiments.dynamics.optimal_discriminator [--num_steps=4000]
        [--batch_size=512] [--learning_rate=0.003] [--hidden=128,128,128] [--seed=0]
        [--out_dir=docs/figures]

Trains an MLP discriminator alone (`jgan.dynamics.optimal_discriminator`: the
shared step machinery, the generator a Gaussian mixture frozen by a zero optimizer) on
a 1-D and a 2-D case, prints max / mean |D - D*| where (p_data + p_g) / 2 is at least
1 % of its maximum, and V(D_learned, G) next to V(D*, G) and 2 JSD - log 4; draws
`optimal_discriminator_1d.png` (curves) and `optimal_discriminator_2d.png` (heat maps).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from jgan.data.mixtures import Mixture, ring
from jgan.dynamics.optimal_discriminator import (
    QuadratureGrid,
    discriminator_error,
    game_value,
    mixture_log_density,
    optimal_discriminator_logit,
    train_discriminator_for_fixed_generator,
)

# 1-D: two data modes, and a generator that averages them with one broad Gaussian.
DATA_1D = Mixture(means=np.array([[-2.0], [1.5]], np.float32), std=0.5)
GENERATOR_1D = Mixture(means=np.array([[0.0]], np.float32), std=1.0)
GRID_1D = QuadratureGrid(low=-6.0, high=6.0, num_per_axis=2000, dim=1)
# 2-D: the 8-mode ring, and a generator with 4 modes between its modes.
DATA_2D = ring(num_modes=8, radius=2.0, std=0.25)
GENERATOR_2D = Mixture(means=1.4 * np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32),
                       std=0.5)
GRID_2D = QuadratureGrid(low=-4.0, high=4.0, num_per_axis=200, dim=2)


def quadrature_error(data: Mixture, generator: Mixture, grid: QuadratureGrid) -> float:
    """|V(D*, G) on `grid` - V(D*, G) on a grid twice as fine|: the integration error."""
    values = []
    for g in (grid, QuadratureGrid(grid.low, grid.high, 2 * grid.num_per_axis, grid.dim)):
        log_p = np.asarray(mixture_log_density(data, g.points), np.float64)
        log_q = np.asarray(mixture_log_density(generator, g.points), np.float64)
        values.append(game_value(optimal_discriminator_logit(log_p, log_q), log_p, log_q,
                                 g.cell_volume))
    return abs(values[0] - values[1])


def report(name: str, fit, data, generator, grid, seconds: float) -> None:
    err = discriminator_error(fit.d, fit.d_star, fit.log_p_data, fit.log_p_g)
    print(f"{name}: trained in {seconds:.1f} s")
    print(f"  |D - D*| where m >= 1% max m ({100 * err.region_fraction:.1f}% of the grid): "
          f"max {err.max:.4f}, mean {err.mean:.4f}")
    print(f"  V(D_learned, G) = {fit.value:.5f}   V(D*, G) = {fit.optimal_value:.5f}   "
          f"2 JSD - log 4 = {2 * fit.jsd - np.log(4):.5f}   (JSD = {fit.jsd:.5f}; "
          f"quadrature error ~{quadrature_error(data, generator, grid):.1e})")
    print(f"  D's batch loss, mean of the last 100 steps: {fit.d_loss[-100:].mean():.5f} "
          f"(-V(D*, G) = {-fit.optimal_value:.5f})")


def plot_1d(fit, out: Path, plt) -> None:
    x = fit.points[:, 0]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True,
                                      gridspec_kw={"height_ratios": [1, 1.4]})
    top.plot(x, np.exp(fit.log_p_data), color="tab:blue", label="p_data")
    top.plot(x, np.exp(fit.log_p_g), color="tab:orange", label="p_g (fixed)")
    top.set(ylabel="density")
    top.legend()
    bottom.plot(x, fit.d_star, color="k", lw=2.5, alpha=0.4, label="D* = p_data / (p_data + p_g)")
    bottom.plot(x, fit.d, color="tab:red", lw=1.2, label="learned D (MLP)")
    bottom.set(xlabel="x", ylabel="D(x)", ylim=(-0.02, 1.02))
    bottom.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"1-D: V(D, G) = {fit.value:.4f}, V(D*, G) = 2 JSD - log 4 = "
                 f"{fit.optimal_value:.4f}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def plot_2d(fit, grid: QuadratureGrid, out: Path, plt) -> None:
    extent = (grid.low, grid.high, grid.low, grid.high)
    as_image = lambda v: np.asarray(v).reshape(grid.shape).T   # rows: y, columns: x
    log_m = np.logaddexp(fit.log_p_data, fit.log_p_g)
    region = as_image(log_m >= np.log(0.01) + log_m.max())
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    panels = [(fit.d, "learned D (MLP)", "RdBu_r", (0, 1)),
              (fit.d_star, "D* = p_data / (p_data + p_g)", "RdBu_r", (0, 1)),
              (np.abs(fit.d - fit.d_star), "|D - D*|", "viridis", (0, 0.2))]
    for ax, (values, title, cmap, (vmin, vmax)) in zip(axes, panels):
        image = ax.imshow(as_image(values), origin="lower", extent=extent, cmap=cmap,
                          vmin=vmin, vmax=vmax)
        ax.contour(*np.meshgrid(grid.axis, grid.axis), region.astype(float), levels=[0.5],
                   colors="k", linewidths=0.6)
        ax.set(title=title, xlabel="x1", ylabel="x2", aspect="equal")
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.suptitle(f"2-D (contour: m >= 1% of max): V(D, G) = {fit.value:.4f}, "
                 f"V(D*, G) = {fit.optimal_value:.4f}")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_steps", type=int, default=4000)
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--learning_rate", type=float, default=3e-3)
    parser.add_argument("--hidden", default="128,128,128",
                        help="widths of the MLP discriminator's hidden layers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out_dir", default="docs/figures")
    args = parser.parse_args(argv)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train = {"num_steps": args.num_steps, "batch_size": args.batch_size,
             "learning_rate": args.learning_rate, "seed": args.seed,
             "hidden": tuple(int(w) for w in args.hidden.split(","))}
    for name, data, generator, grid in (("1-D", DATA_1D, GENERATOR_1D, GRID_1D),
                                        ("2-D", DATA_2D, GENERATOR_2D, GRID_2D)):
        start = time.perf_counter()
        fit = train_discriminator_for_fixed_generator(data, generator, grid=grid, **train)
        report(name, fit, data, generator, grid, time.perf_counter() - start)
        out = out_dir / f"optimal_discriminator_{name[0]}d.png"
        (plot_1d(fit, out, plt) if grid.dim == 1 else plot_2d(fit, grid, out, plt))
        print(f"  wrote {out}")


if __name__ == "__main__":
    main()
