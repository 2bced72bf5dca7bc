"""Unrolled GAN on the 25-grid: how large the look-ahead's second-order term is.

    python -m experiments.dynamics.unrolled_second_order [--d_lr=1e-3,1e-4] [--ks=1,5]

Trains the grid's non-saturating cell (lab recipe; `--d_lr` sets the discriminator's
learning rate, which the unroll also uses) and, at the steps in `--at`, splits the
unrolled generator gradient for each k in `--ks` into its direct part (the plain
gradient against the look-ahead discriminator) and its second-order part (through D's
k Adam updates), `jgan.core.unrolled.unrolled_gradient_terms`, on the next training batch.
Prints the global norms and the ratio second-order / direct. Section 6 of
docs/dynamics.md reads the table.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from experiments.dynamics.mode_collapse import cell_config, lab_recipe
from jgan.data.mixtures import mixture_of
from jgan.core.steps import make_step
from jgan.train import builders
from jgan.core.unrolled import unrolled_gradient_terms
from jgan.families.adversarial import DISCRIMINATOR, GENERATOR


def _norm(tree) -> float:
    """The global L2 norm of a pytree's leaves."""
    return float(jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))))


def gradient_term_norms(d_lr: float, ks, at, *, seed: int = 0, overrides=()) -> list[dict]:
    """Rows `{d_lr, step, k, plain, direct, second_order}` of gradient norms."""
    config = cell_config("grid", "non_saturating", [*lab_recipe("non_saturating"), *overrides,
                                                    f"optimizer.discriminator.learning_rate={d_lr}"])
    mixture = mixture_of(config)
    game = builders.build_game(config)
    step = jax.jit(make_step(game))
    terms = {k: jax.jit(lambda s, b, k=k: unrolled_gradient_terms(
        game, s, b, jax.random.PRNGKey(seed + 1), team=GENERATOR, adversary=DISCRIMINATOR,
        unroll_steps=k)) for k in ks}
    key = jax.random.PRNGKey(seed)
    batch_at = lambda t: {"image": mixture.sample(jax.random.fold_in(key, t), config.batch_size)}
    state = game.init(key, batch_at(0))
    rows = []
    for t in range(max(at) + 1):
        batch = batch_at(t)
        if t in at:
            for k in ks:
                parts = terms[k](state, batch)
                norms = {name: _norm(g) for name, g in parts._asdict().items()}
                rows.append({"d_lr": d_lr, "step": t, "k": k, **norms})
        state, _ = step(state, batch)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--d_lr", default="1e-3,1e-4")
    p.add_argument("--ks", default="1,5")
    p.add_argument("--at", default="0,100,1000,3000")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    at = [int(t) for t in args.at.split(",")]
    print("| D learning rate | step | k | plain | direct | second-order | second-order / direct |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for d_lr in (float(v) for v in args.d_lr.split(",")):
        for r in gradient_term_norms(d_lr, ks, at, seed=args.seed):
            print(f"| {r['d_lr']:g} | {r['step']:,} | {r['k']} | {r['plain']:.3g} | "
                  f"{r['direct']:.3g} | {r['second_order']:.3g} | "
                  f"{r['second_order'] / r['direct']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
