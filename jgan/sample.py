"""Draws samples from a run's latest checkpoint (EMA generator weights when present).

    python -m jgan.sample --workdir=DIR --num=64 --out=FILE.png
    python -m jgan.sample --workdir=DIR --num=64 --out=FILE.png --interpolate

`--interpolate` draws strips of `--interpolation_steps` images along spherical
interpolations between random latent pairs (one strip per row). For 2-D mixture runs
the output is a scatter plot of `--num` samples over the modes.
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from jgan.train import writers
from jgan.train.runs import load_run

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's workdir.")
_NUM = flags.DEFINE_integer("num", 64, "Number of samples (grid cells).")
_OUT = flags.DEFINE_string("out", None, "Output PNG file.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latent samples.")
_INTERPOLATE = flags.DEFINE_bool("interpolate", False, "Draw latent interpolation strips.")
_INTERPOLATION_STEPS = flags.DEFINE_integer("interpolation_steps", 8, "Images per strip.")
_NO_EMA = flags.DEFINE_bool("no_ema", False, "Use the raw generator even if EMA weights exist.")


def slerp(a: jax.Array, b: jax.Array, t: jax.Array) -> jax.Array:
    """Spherical interpolation between latents a, b `[D]` at times t `[T]` -> `[T, D]`."""
    cos = jnp.dot(a, b) / (jnp.linalg.norm(a) * jnp.linalg.norm(b))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    so = jnp.sin(omega)
    t = t[:, None]
    lerp = (1 - t) * a + t * b
    sl = (jnp.sin((1 - t) * omega) * a + jnp.sin(t * omega) * b) / jnp.where(so == 0, 1.0, so)
    return jnp.where(so < 1e-6, lerp, sl)


def draw(workdir: str | Path, *, num: int, out: str | Path, seed: int = 0,
         interpolate: bool = False, interpolation_steps: int = 8, use_ema: bool = True) -> np.ndarray:
    """Writes a PNG of samples from `workdir`'s latest checkpoint; returns the image."""
    config, game, state = load_run(workdir)
    latent_dim = config.model.latent_dim
    key = jax.random.PRNGKey(seed)
    if interpolate:
        rows = max(1, num // interpolation_steps)
        ends = jax.random.normal(key, (rows, 2, latent_dim))
        t = jnp.linspace(0.0, 1.0, interpolation_steps)
        z = jnp.concatenate([slerp(e[0], e[1], t) for e in ends])
        columns = interpolation_steps
    else:
        z = jax.random.normal(key, (num, latent_dim))
        columns = None
    nets = game.bind(state, train=False, rng=key, use_ema=use_ema)
    x = np.asarray(nets("generator", z))
    if config.data.kind == "mixture":
        from jgan.data.mixtures import get_mixture
        return writers.scatter_plot(x, get_mixture(config.data.name).means, out,
                                    title=f"{Path(workdir).name}: {len(x)} samples")
    grid = writers.image_grid(x, columns=columns)
    writers.save_png(grid, out)
    return grid


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    if not _WORKDIR.value or not _OUT.value:
        raise app.UsageError("--workdir and --out are required.")
    draw(_WORKDIR.value, num=_NUM.value, out=_OUT.value, seed=_SEED.value,
         interpolate=_INTERPOLATE.value, interpolation_steps=_INTERPOLATION_STEPS.value,
         use_ema=not _NO_EMA.value)
    print(f"Wrote {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
