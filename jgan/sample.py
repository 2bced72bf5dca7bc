"""Draws samples from a run's latest checkpoint (EMA generator weights when present).

    python -m jgan.sample --workdir=DIR --num=64 --out=FILE.png
    python -m jgan.sample --workdir=DIR --num=64 --out=FILE.png --interpolate

`--interpolate` draws strips of `--interpolation_steps` images along spherical
interpolations between random latent pairs (one strip per row). For 2-D mixture runs
the output is a scatter plot of `--num` samples over the modes.

Class-conditional runs (cGAN, projection, ACGAN) draw a row per class, the same z in
each column; `--labels=3,7` draws rows of those classes only. InfoGAN runs draw a row
per value of the code `--vary` (categorical0, continuous1, ...: continuous codes are
swept over [-1, 1] along the columns), and `--codes=categorical0=3,continuous0=0.5`
holds codes at given values.

    python -m jgan.sample --workdir=DIR --num=100 --out=digits.png --labels=0,1,2
    python -m jgan.sample --workdir=DIR --num=100 --out=width.png --vary=continuous1
"""
from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging

from jgan.train import writers
from jgan.train.builders import build_generator_inputs, build_sampling_state
from jgan.train.runs import load_run

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's workdir.")
_NUM = flags.DEFINE_integer("num", 64, "Number of samples (grid cells).")
_OUT = flags.DEFINE_string("out", None, "Output PNG file.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latent samples.")
_INTERPOLATE = flags.DEFINE_bool("interpolate", False, "Draw latent interpolation strips.")
_INTERPOLATION_STEPS = flags.DEFINE_integer("interpolation_steps", 8, "Images per strip.")
_NO_EMA = flags.DEFINE_bool("no_ema", False, "Use the raw generator even if EMA weights exist.")
_LABELS = flags.DEFINE_list("labels", [], "Conditional runs: classes, one row each (default all).")
_VARY = flags.DEFINE_string("vary", "categorical0", "InfoGAN runs: the code each row varies.")
_CODES = flags.DEFINE_list("codes", [], "InfoGAN runs: NAME=VALUE codes held fixed, e.g. "
                           "categorical0=3,continuous1=-0.5.")


def fix_codes(inputs: dict, assignments: list[str], codes) -> dict:
    """InfoGAN inputs with codes held at `NAME=VALUE` (categorical<i> / continuous<j>)."""
    inputs = dict(inputs)
    for item in assignments:
        name, _, value = item.partition("=")
        kind = name.rstrip("0123456789")
        index = int(name[len(kind):] or 0)
        if kind == "categorical" and index < len(codes.categorical) and value:
            v = int(value)
            if not 0 <= v < codes.categorical[index]:
                raise ValueError(f"--codes: {name}={v} is outside [0, {codes.categorical[index]}).")
            inputs["categorical"] = inputs["categorical"].at[:, index].set(v)
        elif kind == "continuous" and index < codes.continuous and value:
            inputs["continuous"] = inputs["continuous"].at[:, index].set(float(value))
        else:
            raise ValueError(f"--codes: {item!r} names no code of this run (categorical "
                             f"{codes.categorical}, {codes.continuous} continuous).")
    return inputs


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
         interpolate: bool = False, interpolation_steps: int = 8, use_ema: bool = True,
         labels: list | None = None, vary: str = "categorical0",
         codes: list[str] | None = None) -> np.ndarray:
    """Writes a PNG of samples from `workdir`'s latest checkpoint; returns the image."""
    config, game, state = load_run(workdir)
    sampler = build_generator_inputs(config)
    key = jax.random.PRNGKey(seed)
    columns = None
    if interpolate:
        rows = max(1, num // interpolation_steps)
        base = sampler.random(key, rows * interpolation_steps)
        noise = "noise" if sampler.family == "infogan" else "z"
        t = jnp.linspace(0.0, 1.0, interpolation_steps)
        inputs = {k: jnp.repeat(v[::interpolation_steps], interpolation_steps, axis=0)
                  for k, v in base.items()}  # labels / codes fixed along a strip
        if sampler.family == "infogan" and sampler.codes.noise == "uniform":
            # A straight line stays inside the cube the uniform prior fills.
            ends = sampler.codes.sample_noise(jax.random.fold_in(key, 1), rows, 2)
            inputs[noise] = jnp.concatenate([e[0] + t[:, None] * (e[1] - e[0]) for e in ends])
        else:
            ends = jax.random.normal(jax.random.fold_in(key, 1), (rows, 2, base[noise].shape[-1]))
            inputs[noise] = jnp.concatenate([slerp(e[0], e[1], t) for e in ends])
        if labels and sampler.conditional:
            inputs["labels"] = jnp.full((rows * interpolation_steps,), int(labels[0]), jnp.int32)
        columns = interpolation_steps
    elif sampler.conditional:
        classes = [int(c) for c in labels] if labels else list(range(sampler.num_classes))
        bad = [c for c in classes if not 0 <= c < sampler.num_classes]
        if bad:
            raise ValueError(f"--labels {bad} are outside [0, {sampler.num_classes}).")
        columns = max(1, num // len(classes))
        z = jax.random.normal(key, (columns, sampler.latent_dim))
        inputs = {"z": jnp.tile(z, (len(classes), 1)),
                  "labels": jnp.repeat(jnp.asarray(classes, jnp.int32), columns)}
    elif sampler.family == "infogan":
        inputs, columns = sampler.grid(key, num, vary=vary)
    else:
        inputs = sampler.random(key, num)
    if sampler.family == "infogan" and codes:
        inputs = fix_codes(inputs, codes, sampler.codes)
    state = build_sampling_state(config, game, sampler, use_ema=use_ema)(state)
    nets = game.bind(state, train=False, rng=key, use_ema=use_ema)
    x = np.asarray(sampler.generate(nets, inputs))
    if config.data.kind == "mixture":
        from jgan.data.mixtures import mixture_of
        return writers.scatter_plot(x, mixture_of(config).means, out,
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
         use_ema=not _NO_EMA.value, labels=_LABELS.value, vary=_VARY.value,
         codes=_CODES.value)
    print(f"Wrote {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
