"""Input for a run: on-device mixture sampling or a host-side grain pipeline.

Both give batches of `d_steps * batch_size` examples per training step, as a dict
with "image" (and "label" for datasets that have one), and a position that a
checkpoint stores and restores.
"""
from __future__ import annotations

import jax
import ml_collections
import numpy as np

from jgan.data import images, mixtures, stacked_mnist


class MixtureInput:
    """Batches sampled on device from `fold_in(key, step)`: the position is the step."""

    def __init__(self, config: ml_collections.ConfigDict, examples_per_step: int):
        d = config.data
        self.mixture = mixtures.get_mixture(d.name)
        self.examples_per_step = examples_per_step
        self.key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)

    def batch_at(self, step: jax.Array) -> dict:
        """The batch of training step `step` (traceable)."""
        return {"image": self.mixture.sample(jax.random.fold_in(self.key, step),
                                             self.examples_per_step)}

    def example_batch(self) -> dict:
        return self.batch_at(0)


class PipelineInput:
    """A grain pipeline over TFDS, Stacked MNIST or an image folder; this process reads its shard."""

    def __init__(self, config: ml_collections.ConfigDict, examples_per_step: int):
        d = config.data
        if d.kind == "tfds":
            source = images.tfds_source(d.name, split=d.split, data_dir=d.data_dir or None)
        elif d.kind == "stacked_mnist":
            source = stacked_mnist.stacked_mnist_source(
                d.split, d.data_dir or None, num_examples=d.get("num_examples"),
                seed=d.get("stack_seed", 0))
        else:
            source = images.ImageFolderSource(d.root, resolution=d.resolution,
                                              channels=d.channels, skip_corrupt=d.skip_corrupt,
                                              class_subfolders=d.class_subfolders)
            if source.num_skipped:
                print(f"Skipped {source.num_skipped} unreadable image(s) in {d.root}: "
                      f"{source.skipped[:5]}{' ...' if source.num_skipped > 5 else ''}")
        self.source = source
        self.num_skipped = getattr(source, "num_skipped", 0)
        self.loader = images.make_image_loader(
            source, global_batch_size=examples_per_step, resolution=d.resolution,
            channels=d.channels, seed=config.seed, shard_index=jax.process_index(),
            shard_count=jax.process_count(), worker_count=d.worker_count)
        self.iterator = iter(self.loader)

    def next(self) -> dict:
        return next(self.iterator)

    def example_batch(self) -> dict:
        b = next(iter(self.loader))
        return {k: np.asarray(v) for k, v in b.items()}

    def get_state(self) -> str:
        state = self.iterator.get_state()
        return state.decode() if isinstance(state, bytes) else state

    def set_state(self, state: str) -> None:
        self.iterator.set_state(state.encode())


def build_input(config: ml_collections.ConfigDict):
    examples_per_step = config.batch_size * config.game.d_steps
    if config.data.kind == "mixture":
        return MixtureInput(config, examples_per_step)
    return PipelineInput(config, examples_per_step)
