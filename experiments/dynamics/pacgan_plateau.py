"""PacGAN on the 25-grid: how long the packed discriminator stays at chance, per pack size.

    python -m experiments.dynamics.pacgan_plateau [--packs=1,2,3,4] [--seeds=0,1]

Trains the mixtures' discriminator (3 x 128, Adam 10^-3, b1 0.5: the lab recipe) alone,
to separate packs of grid samples from packs of points uniform on [-5, 5]^2, and prints
per pack size and seed the first step at which its accuracy (mean over 1,000 steps)
exceeds 65 %, and its accuracy at 5k, 10k, 20k and the last step. Section 6 of
docs/dynamics.md reads the table: the plateau grows with m, past the lab recipe's
10,000 steps at m = 4, which is why PacGAN4 needs a longer run on the grid.
"""
from __future__ import annotations

import argparse

from jgan.dynamics.packed_discriminator import packed_discriminator_trace


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--packs", default="1,2,3,4")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--num_steps", type=int, default=50_000)
    p.add_argument("--threshold", type=float, default=0.65)
    args = p.parse_args(argv)
    marks = [m for m in (5_000, 10_000, 20_000) if m < args.num_steps] + [args.num_steps]
    print(f"| pack m | seed | steps to > {100 * args.threshold:.0f} % | accuracy at "
          + " / ".join(f"{m // 1000}k" for m in marks) + " |")
    print("| --- | --- | --- | --- |")
    for pack in (int(m) for m in args.packs.split(",")):
        for seed in (int(s) for s in args.seeds.split(",")):
            trace = packed_discriminator_trace(pack, seed=seed, num_steps=args.num_steps)
            at = {int(s): a for s, a in zip(trace.steps, trace.accuracy)}
            first = trace.steps_to(args.threshold)
            print(f"| {pack} | {seed} | {'never' if first is None else f'{first:,}'} | "
                  + " / ".join(f"{100 * at[m]:.0f} %" for m in marks) + " |", flush=True)


if __name__ == "__main__":
    main()
