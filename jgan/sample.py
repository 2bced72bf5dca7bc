"""Draws samples from a run's latest checkpoint (EMA generator weights when present).

    python -m jgan.sample --workdir=DIR --num=64 --out=FILE.png
    python -m jgan.sample --workdir=DIR --num=64 --out=FILE.png --interpolate

`--interpolate` draws strips of `--interpolation_steps` images along spherical
interpolations between random latent pairs (one strip per row). For 2-D mixture runs
the output is a scatter plot of `--num` samples over the modes.

What else a run's generator takes shapes the grid (the family's
`jgan.families.sampling.GeneratorInputs.requested`): a generator that takes labels draws
a row per class, the same z in each column, and `--labels=3,7` draws rows of those
classes only; a generator that takes codes draws a row per value of the code `--vary`
(categorical0, continuous1, ...: continuous codes are swept over [-1, 1] along the
columns), and `--codes=categorical0=3,continuous0=0.5` holds codes at given values.

    python -m jgan.sample --workdir=DIR --num=100 --out=digits.png --labels=0,1,2
    python -m jgan.sample --workdir=DIR --num=100 --out=width.png --vary=continuous1

Translation runs (pix2pix, CycleGAN) translate images instead: `--input=test` (the run's
test split) or `--input=FOLDER` (your images, resized as the run's data), each input
above its translation (and, for CycleGAN, the translation back); `--direction=b2a`
translates the other way where the family can.

    python -m jgan.sample --workdir=DIR --input=photos/ --num=16 --out=translated.png

`--truncation=PSI` draws a generator that has the truncation trick (StyleGAN) at
w_avg + PSI (w - w_avg) instead of its config's psi. `--grids` writes the family's own
grids instead (those a training run writes in `samples/`: StyleGAN's truncation sweep
and style mixing, CycleGAN's translations, ...), one PNG each, named after `--out`:

    python -m jgan.sample --workdir=DIR --num=64 --out=psi07.png --truncation=0.7
    python -m jgan.sample --workdir=DIR --out=grids.png --grids   # grids_truncation.png, ...
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np
from absl import flags, logging

from jgan import cli
from jgan.errors import UsageError
from jgan.train import writers
from jgan.train.builders import (build_generator_inputs, build_sample_grids,
                                 build_sampling_state)
from jgan.train.samples import weights_title
from jgan.runs import load_run

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's workdir.")
_NUM = flags.DEFINE_integer("num", 64, "Number of samples (grid cells).")
_OUT = flags.DEFINE_string("out", None, "Output PNG file.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latent samples.")
_INTERPOLATE = flags.DEFINE_bool("interpolate", False, "Draw latent interpolation strips.")
_INTERPOLATION_STEPS = flags.DEFINE_integer("interpolation_steps", 8, "Images per strip.")
_NO_EMA = flags.DEFINE_bool("no_ema", False, "Use the raw generator even if EMA weights exist.")
_LABELS = flags.DEFINE_list("labels", [],
                            "Generators with labels: classes, one row each (default all).")
_VARY = flags.DEFINE_string("vary", "categorical0",
                            "Generators with codes: the code each row varies.")
_INPUT = flags.DEFINE_string(
    "input", None, "Translation runs: 'test' (the run's test split) or a folder of images "
    "to translate; the grid shows each input above its outputs.")
_DIRECTION = flags.DEFINE_enum("direction", "a2b", ["a2b", "b2a"],
                               "Translation runs: from domain A to B, or back.")
_TRUNCATION = flags.DEFINE_float(
    "truncation", None, "Generators with the truncation trick: psi (1: none, 0: w_avg).")
_GRIDS = flags.DEFINE_bool("grids", False, "Write the family's own grids, one PNG each.")
_CODES = flags.DEFINE_list("codes", [], "Generators with codes: NAME=VALUE codes held fixed, e.g. "
                           "categorical0=3,continuous1=-0.5.")


def draw(workdir: str | Path, *, num: int, out: str | Path, seed: int = 0,
         interpolate: bool = False, interpolation_steps: int = 8, use_ema: bool = True,
         labels: list | None = None, vary: str = "categorical0",
         codes: list[str] | None = None, truncation: float | None = None) -> np.ndarray:
    """Writes a PNG of samples from `workdir`'s latest checkpoint, titled with the run, the
    step and the weights drawn from (EMA or raw); returns the grid of samples (uint8
    `[H, W, C]`, without the title), or the scatter plot for 2-D mixture runs."""
    config, game, state = load_run(workdir)
    step = int(state.step)
    sampler = with_truncation(build_generator_inputs(config, required=True), truncation,
                              config.family)  # ConfigError: nothing to sample
    key = jax.random.PRNGKey(seed)
    inputs, columns = sampler.requested(key, num, interpolate=interpolate,
                                        interpolation_steps=interpolation_steps,
                                        labels=labels or (), vary=vary, codes=codes or ())
    state = build_sampling_state(config, game, sampler, use_ema=use_ema)(state)
    nets = game.bind(state, train=False, rng=key, use_ema=use_ema)
    x = np.asarray(sampler.generate(nets, inputs))
    # Which weights drew them: EMA only where the checkpoint keeps an average.
    weights = weights_title(config, use_ema and bool(state.ema))
    if config.data.kind == "mixture":
        from jgan.data.mixtures import mixture_of
        return writers.scatter_plot(x, mixture_of(config).means, out,
                                    title=f"{Path(workdir).name}, step {step}\n{weights}")
    grid = writers.image_grid(x, columns=columns)
    writers.save_png(writers.titled(grid, [f"{Path(workdir).name}, step {step}", weights]), out)
    return grid


def with_truncation(sampler, truncation: float | None, family: str):
    """`sampler` drawing at truncation psi `truncation` (None: as configured).

    Raises:
      UsageError: the family's generator has no truncation trick.
    """
    if truncation is None:
        return sampler
    if not hasattr(sampler, "truncation_psi"):
        raise UsageError(f"--truncation: the {family} family's generator has no truncation "
                         "trick (stylegan's has).")
    return dataclasses.replace(sampler, truncation_psi=float(truncation))


def family_grids(workdir: str | Path, *, out: str | Path, use_ema: bool = True,
                 truncation: float | None = None) -> list[Path]:
    """Writes the family's own grids of `workdir`'s latest checkpoint, "samples" to
    `out` and each other grid NAME to `out`'s stem + `_NAME.png`; returns the paths.

    Raises:
      UsageError: the family draws no grids of its own.
    """
    config, game, state = load_run(workdir)
    if truncation is not None:
        if "truncation_psi" not in config.get(config.family, {}):
            raise UsageError(f"--truncation: the {config.family} family's generator has no "
                             "truncation trick (stylegan's has).")
        config = config.copy_and_resolve_references()
        config[config.family].truncation_psi = float(truncation)
    grids = build_sample_grids(config, game)
    if grids is None:
        raise UsageError(f"--grids: the {config.family} family draws no grids of its own; "
                         "draw samples without --grids.")
    sampler = build_generator_inputs(config)
    if sampler is not None:
        state = build_sampling_state(config, game, sampler, use_ema=use_ema)(state)
    out, written = Path(out), []
    title = [f"{Path(workdir).name}, step {int(state.step)}"]
    for name, (images, columns) in grids(state).items():
        path = out if name == "samples" else out.with_name(f"{out.stem}_{name}{out.suffix}")
        grid = writers.image_grid(np.asarray(images), columns=columns)
        writers.save_png(writers.titled(grid, title + [name]), path)
        written.append(path)
    return written


def translate(workdir: str | Path, *, source: str, out: str | Path, num: int = 16,
              direction: str = "a2b") -> np.ndarray:
    """Writes a PNG of images from `source` ("test": the run's test split of the direction's
    input domain; else a folder of images, resized as the run's data) above their
    translations by `workdir`'s latest checkpoint (and, for a family with a way back,
    the reconstructions); returns the grid (uint8 `[H, W, C]`, untitled).

    Raises:
      UsageError: the run's family translates nothing, or a direction it lacks.
    """
    from jgan.families import registry, translation
    config, game, state = load_run(workdir)
    family = registry.get_family(config.family)
    if family.translate is None:
        raise UsageError(f"--input: the {family.name} family has no image-to-image "
                         "translation to draw (pix2pix and CycleGAN runs have).")
    try:
        fn = family.translate(config, game, direction)
    except ValueError as e:
        raise UsageError(f"--direction={direction}: {e}") from None
    x = _inputs(config, source, num, direction)
    rows = [x, *translation.batched(lambda chunk: dict(enumerate(fn(state, chunk))), x,
                                    len(x)).values()]
    images, columns = translation.side_by_side_grid(rows, min(len(x), 8))
    grid = writers.image_grid(images, columns=columns)
    writers.save_png(writers.titled(grid, [f"{Path(workdir).name}, step {int(state.step)}",
                                           f"{direction}: input, output"
                                           + (", back" if len(rows) > 2 else "")]), out)
    return grid


def _inputs(config, source: str, num: int, direction: str) -> np.ndarray:
    """`[N, R, R, C]` float32 images in [-1, 1] to translate."""
    from jgan.families import translation
    d = config.data
    if source == "test":
        domain = "a" if direction == "a2b" else "b"
        return translation.held_out_domains(config, num, split="test")[f"image_{domain}"]
    from jgan.data.images import ImageFolderSource
    from jgan.data.in_memory import load_examples
    folder = ImageFolderSource(source, resolution=d.resolution, channels=d.channels)
    images = load_examples(translation.First(folder, num), resolution=d.resolution,
                           channels=d.channels)["image"]
    return translation.as_model_range(images)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    if not _WORKDIR.value or not _OUT.value:
        raise UsageError("--workdir and --out are required.")
    if _INPUT.value:
        translate(_WORKDIR.value, source=_INPUT.value, out=_OUT.value, num=_NUM.value,
                  direction=_DIRECTION.value)
        print(f"Wrote {_OUT.value}")
        return
    if _GRIDS.value:
        paths = family_grids(_WORKDIR.value, out=_OUT.value, use_ema=not _NO_EMA.value,
                             truncation=_TRUNCATION.value)
        print("Wrote " + ", ".join(map(str, paths)))
        return
    draw(_WORKDIR.value, num=_NUM.value, out=_OUT.value, seed=_SEED.value,
         interpolate=_INTERPOLATE.value, interpolation_steps=_INTERPOLATION_STEPS.value,
         use_ema=not _NO_EMA.value, labels=_LABELS.value, vary=_VARY.value,
         codes=_CODES.value, truncation=_TRUNCATION.value)
    print(f"Wrote {_OUT.value}")


if __name__ == "__main__":
    cli.run(main)
