"""Input for a run: on-device mixture sampling, a dataset held in device memory
(`data.on_device`), a host-side grain pipeline, or two of them for the domains of a
translation task (`data.kind="translation"`).

All give batches of `d_steps * batch_size` examples per training step, as a dict
with "image" (and "label" for datasets that have one), and a position that a
checkpoint stores and restores.
"""
from __future__ import annotations

import functools
import json

import jax
import ml_collections
import numpy as np

from jgan.data import images, in_memory, mixtures, stacked_mnist


class MixtureInput:
    """Batches sampled on device from `fold_in(key, step)`: the position is the step."""

    def __init__(self, config: ml_collections.ConfigDict, examples_per_step: int):
        self.mixture = mixtures.mixture_of(config)
        self.examples_per_step = examples_per_step
        self.key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)

    def batch_at(self, step: jax.Array) -> dict:
        """The batch of training step `step` (traceable)."""
        return {"image": self.mixture.sample(jax.random.fold_in(self.key, step),
                                             self.examples_per_step)}

    def example_batch(self) -> dict:
        return self.batch_at(0)


def _data_source(config: ml_collections.ConfigDict):
    d = config.data
    if d.kind == "tfds":
        return images.tfds_source(d.name, split=d.split, data_dir=d.data_dir or None)
    if d.kind == "attribute_digits":
        from jgan.data.derived_domains import AttributeDigits
        return AttributeDigits(images.tfds_source("mnist", split=d.split,
                                                  data_dir=d.data_dir or None),
                               seed=config.seed)
    if d.kind == "stacked_mnist":
        return stacked_mnist.stacked_mnist_source(
            d.split, d.data_dir or None, num_examples=d.get("num_examples"),
            seed=d.get("stack_seed", 0))
    source = images.ImageFolderSource(d.root, resolution=d.resolution,
                                      channels=d.channels, skip_corrupt=d.skip_corrupt,
                                      class_subfolders=d.class_subfolders)
    if source.num_skipped:
        print(f"Skipped {source.num_skipped} unreadable image(s) in {d.root}: "
              f"{source.skipped[:5]}{' ...' if source.num_skipped > 5 else ''}")
    return source


class DeviceDataInput:
    """The whole dataset in device memory (`data.on_device=True`); the batch of a step is
    drawn on device (`jgan.data.in_memory.batch_indices`), so the position is the step.

    The arrays are replicated on every device of the mesh; each step's batch is then
    sharded like any other.
    """

    def __init__(self, config: ml_collections.ConfigDict, examples_per_step: int, sharding=None,
                 *, source=None):
        d = config.data
        source = _data_source(config) if source is None else source
        self.num_skipped = getattr(source, "num_skipped", 0)
        arrays = in_memory.load_examples(source, resolution=d.resolution, channels=d.channels,
                                         resize=d.get("resize", "bicubic"))
        self.num_examples = len(arrays["label"])
        if examples_per_step > self.num_examples:
            raise images.DataError(
                f"config.batch_size: a step takes {examples_per_step} examples, more than the "
                f"{self.num_examples} the dataset has.")
        self.arrays = {k: jax.device_put(v, sharding) for k, v in arrays.items()}
        self.examples_per_step = examples_per_step
        self.key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1)

    def batch_at(self, step: jax.Array) -> dict:
        """The batch of training step `step` (traceable): image float32 in [-1, 1], label."""
        idx = in_memory.batch_indices(self.key, step, self.examples_per_step, self.num_examples)
        return {"image": in_memory.to_model_range(self.arrays["image"][idx]),
                "label": self.arrays["label"][idx]}

    def example_batch(self) -> dict:
        """A batch of the step's shapes: the first examples (`Game.init` reads shapes
        only, so no order is drawn)."""
        n = self.examples_per_step
        return {"image": in_memory.to_model_range(self.arrays["image"][:n]),
                "label": self.arrays["label"][:n]}


class PipelineInput:
    """A grain pipeline over TFDS, Stacked MNIST or an image folder; this process reads
    its rows of every global batch (`jgan.data.global_order`).

    The position is the number of global batches consumed, the same on every process
    and for any process count: a run saved on P processes resumes on any other number.
    """

    def __init__(self, config: ml_collections.ConfigDict, examples_per_step: int, *,
                 source=None, seed: int | None = None):
        d = config.data
        source = _data_source(config) if source is None else source
        self.source = source
        self.num_skipped = getattr(source, "num_skipped", 0)
        self.examples_per_step = examples_per_step
        self._loader = functools.partial(
            images.make_image_loader, source, global_batch_size=examples_per_step,
            resolution=d.resolution, channels=d.channels,
            seed=config.seed if seed is None else seed, shard_index=jax.process_index(), shard_count=jax.process_count(),
            worker_count=d.worker_count, resize=d.get("resize", "bicubic"))
        self.loader = self._loader()  # checks the arguments now, with named errors
        self.batches = 0
        self._iterator = None

    def next(self) -> dict:
        """This process's rows of the next global batch."""
        if self._iterator is None:
            self._iterator = iter(self._loader(start_batch=self.batches)
                                  if self.batches else self.loader)
        batch = next(self._iterator)
        self.batches += 1
        return batch

    def example_batch(self) -> dict:
        b = next(iter(self.loader))
        return {k: np.asarray(v) for k, v in b.items()}

    def get_state(self) -> dict:
        """The position: `{"global_batches": n}`."""
        return {"global_batches": self.batches}

    def set_state(self, state: dict | str) -> None:
        """Moves to a position of `get_state`, or to that of a grain iterator state that
        checkpoints held before positions were counted in batches."""
        self.batches = (int(state["global_batches"]) if isinstance(state, dict)
                        else batches_consumed(state, self.examples_per_step))
        self._iterator = None


class TwoDomainInput:
    """Domains A and B of a translation task (`jgan.data.domain_pairs`), each read by a
    `PipelineInput`: over the same record order for a paired task, so that the pairs
    stay together, and over two independent orders for an unpaired one.

    Batches: `{"image_a", "label_a", "image_b", "label_b"}`, both domains at
    `data.resolution` and `data.channels`. The position is the global batches
    consumed, as a `PipelineInput`'s.
    """

    def __init__(self, config: ml_collections.ConfigDict, examples_per_step: int):
        from jgan.data.domain_pairs import domain_pair
        d = config.data
        self.pair = domain_pair(d.name, split=d.split, data_dir=d.data_dir or None,
                                root=d.root, resolution=d.resolution, channels=d.channels,
                                seed=config.seed)
        # An unpaired task's B order is another shuffle: fold the seed, within grain's range.
        seed_b = config.seed if self.pair.paired else (config.seed + 1) % 2**32
        self.domains = {
            "a": PipelineInput(config, examples_per_step, source=self.pair.a, seed=config.seed),
            "b": PipelineInput(config, examples_per_step, source=self.pair.b, seed=seed_b)}
        self.num_skipped = 0

    @staticmethod
    def _merge(batches: dict) -> dict:
        return {f"{key}_{domain}": value for domain, batch in batches.items()
                for key, value in batch.items()}

    def next(self) -> dict:
        """This process's rows of the next global batch of both domains."""
        return self._merge({k: inp.next() for k, inp in self.domains.items()})

    def example_batch(self) -> dict:
        return self._merge({k: inp.example_batch() for k, inp in self.domains.items()})

    def get_state(self) -> dict:
        return self.domains["a"].get_state()

    def set_state(self, state: dict) -> None:
        for inp in self.domains.values():
            inp.set_state(state)


def batches_consumed(grain_state: str, global_batch_size: int) -> int:
    """Global batches a one-process grain iterator had yielded at `grain_state` (its JSON
    `get_state()`): worker w reads records w, w + W, ... in batches of the global size."""
    state = json.loads(grain_state)
    workers = max(int(state["worker_count"]), 1)
    return sum(((int(last) - int(worker)) // workers + 1) // global_batch_size
               for worker, last in state["last_seen_indices"].items() if int(last) >= 0)


def build_input(config: ml_collections.ConfigDict, sharding=None):
    """The run's input: `MixtureInput`, `TwoDomainInput` (`data.kind="translation"`),
    `DeviceDataInput` (`data.on_device`) or `PipelineInput`. `sharding`: where
    `DeviceDataInput` puts its arrays (replicated)."""
    examples_per_step = config.batch_size * config.game.d_steps
    if config.data.kind == "mixture":
        return MixtureInput(config, examples_per_step)
    if config.data.kind == "translation":
        return TwoDomainInput(config, examples_per_step)
    if config.data.get("on_device", False):
        return DeviceDataInput(config, examples_per_step, sharding)
    return PipelineInput(config, examples_per_step)


def is_on_device(inp) -> bool:
    """Whether `inp` draws its batches on device (`batch_at(step)`), position = step."""
    return isinstance(inp, (MixtureInput, DeviceDataInput))
