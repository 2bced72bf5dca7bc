"""How a run draws from its generator, and the sample images it writes as it trains.

Samples come from the sampling view of the state (`builders.build_sampling_state`:
the training state, or it with the generator's standing batch-norm statistics), with
the EMA weights where the run keeps them.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh

from jgan.eval.modes import PROTOCOL_NUM_SAMPLES
from jgan.sharding import on_mesh
from jgan.train import builders, writers
from jgan.train.input import MixtureInput
from jgan.sharding import to_host


def weights_title(config: ml_collections.ConfigDict, use_ema: bool = True) -> str:
    """Which generator weights samples come from, for the titles of sample grids."""
    if not use_ema or config.game.ema_decay is None:
        return "raw weights"
    warmup = "with warm-up" if config.game.get("ema_warmup", False) else "no warm-up"
    return f"EMA weights (decay {config.game.ema_decay:g}, {warmup})"


@dataclasses.dataclass(frozen=True)
class Sampling:
    """The run's generator inputs, its jitted `generate(state, inputs) -> samples` (both
    None for a family that draws nothing from noise), the sampling view `view(state) ->
    state`, and the key sample grids are drawn with."""
    sampler: object
    generate: Callable
    view: Callable
    key: jax.Array
    weights: str = "raw weights"

    @classmethod
    def build(cls, config: ml_collections.ConfigDict, game, mesh: Mesh,
              rng: jax.Array) -> "Sampling":
        """The sampling of the run that `config` and `game` describe; `rng`: the run's key."""
        sampler = builders.build_generator_inputs(config)
        key = jax.random.fold_in(rng, 2)
        use_ema = config.game.ema_decay is not None
        generate = sampler and on_mesh(  # sampler None: a family that draws nothing from noise
            mesh, functools.partial(sampler.jitted_generate(game, use_ema=use_ema), key=key))
        return cls(sampler, generate, builders.build_sampling_state(config, game, sampler), key,
                   weights_title(config, use_ema))


class SampleWriter:
    """Writes `samples/step_<step>.png` and a TensorBoard image: a scatter plot over the
    modes for mixtures, the family's own grids where it has them (`Family.sample_grids`:
    reconstructions, traversals, ...), else a grid of `config.num_sample_images` fixed
    inputs. Generator samples are titled with the step and the weights they come from
    (`weights_title`)."""

    def __init__(self, config: ml_collections.ConfigDict, game, inp, sampling: Sampling,
                 writer: writers.RunWriter, workdir: Path):
        self._inp = inp
        self._sampling = sampling
        self._writer = writer
        self._directory = workdir / "samples"
        self._family_grids = builders.build_sample_grids(config, game)
        self._grid_inputs, self._grid_columns = (
            sampling.sampler.grid(sampling.key, config.num_sample_images)
            if sampling.sampler else (None, None))

    def __call__(self, state, step: int) -> None:
        """The samples of `state` after `step` steps."""
        # Every process takes part in the computation (with several hosts the state is
        # a global array); only the main one writes.
        state = self._sampling.view(state)
        path = self._directory / f"step_{step:07d}.png"
        if self._family_grids is not None and not isinstance(self._inp, MixtureInput):
            grids = to_host(self._family_grids(state))
            if jax.process_index() == 0:
                writers.write_grids(self._writer, grids, self._directory, step)
            return
        if isinstance(self._inp, MixtureInput):
            inputs = self._sampling.sampler.random(jax.random.fold_in(self._sampling.key, 1),
                                                   PROTOCOL_NUM_SAMPLES)
            points = np.asarray(to_host(self._sampling.generate(state, inputs)))
            if jax.process_index() != 0:
                return
            img = writers.scatter_plot(points, self._inp.mixture.means, path,
                                       title=f"step {step}\n{self._sampling.weights}")
        else:
            images = np.asarray(to_host(self._sampling.generate(state, self._grid_inputs)))
            if jax.process_index() != 0:
                return
            img = writers.titled(writers.image_grid(images, columns=self._grid_columns),
                                 [f"step {step}", self._sampling.weights])
            writers.save_png(img, path)
        self._writer.write_image(step, "samples", img if img.shape[-1] == 3 else np.repeat(img, 3, -1))
