"""How flat a spectrally normalized MLP discriminator starts on the 2-D mixtures' scale.

    python -m experiments.dynamics.spectral_norm_flatness [--hidden=128,128,128]

Initializes the mixtures' MLP discriminator with and without spectral norm (power
iterations run to convergence for the former), and prints over points uniform in the
data's box [-4, 4]^2: the range of its logits and the norm of its input gradient
|grad_x D(x)|. Spectral norm bounds each layer's largest gain by 1, but a random layer's
gain on a typical direction is far below its largest, and the last layer (width -> 1)
passes ~1/sqrt(width) of a random direction; the product starts D tens of times flatter
than the plain network. Section 6 of docs/dynamics.md reads these numbers.
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from jgan.models.mlp import MLPDiscriminator


def flatness(hidden: tuple[int, ...], spectral_norm: bool, *, num_points: int = 1024,
             box: float = 4.0, seed: int = 0) -> dict:
    """`{"logit_range", "grad_mean", "grad_max"}` of a freshly initialized D."""
    x = jax.random.uniform(jax.random.PRNGKey(seed + 1), (num_points, 2), minval=-box,
                           maxval=box)
    d = MLPDiscriminator(hidden=hidden, spectral_norm=spectral_norm)
    variables = d.init(jax.random.PRNGKey(seed), x, train=False)
    if spectral_norm:  # the power iterations' vectors, converged
        for _ in range(50):
            _, updates = d.apply(variables, x, train=True, mutable=["batch_stats"])
            variables = {**variables, **updates}
    logit = lambda xi: d.apply(variables, xi[None], train=False)[0]
    grads = jnp.linalg.norm(jax.vmap(jax.grad(logit))(x), axis=-1)
    logits = jax.vmap(logit)(x)
    return {"logit_range": float(logits.max() - logits.min()),
            "grad_mean": float(grads.mean()), "grad_max": float(grads.max())}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="128,128,128")
    p.add_argument("--seeds", default="0,1,2")
    args = p.parse_args(argv)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    for sn in (False, True):
        rows = [flatness(hidden, sn, seed=int(s)) for s in args.seeds.split(",")]
        mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
        print(f"{'spectral norm' if sn else 'plain':13s} D {hidden}: logit range over [-4,4]^2 "
              f"{mean['logit_range']:.3f}, |grad_x D| mean {mean['grad_mean']:.4f}, "
              f"max {mean['grad_max']:.4f} (mean of {len(rows)} initializations)")


if __name__ == "__main__":
    main()
