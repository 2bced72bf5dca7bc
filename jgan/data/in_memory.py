"""Datasets held whole in device memory, batches drawn on device.

A dataset the size of MNIST (47 MB as uint8) or Stacked MNIST (301 MB) fits in any
accelerator's memory many times over. Holding it there lets a training loop draw its
batches inside a jitted `lax.scan` of many steps, with no host pipeline and no
host-to-device copy per step: on a GPU the host pipeline, not the step, otherwise
bounds a small model's speed.

Order: epoch e visits the examples in the order of a pseudorandom permutation,
`jgan.data.index_shuffle` keyed by `fold_in(key, e)`; the batch of step s holds
global positions `s * B ... s * B + B - 1` of that endless sequence (so a batch can
straddle two epochs, and every example is seen once per epoch). A step computes only
its own B positions of the order, never the whole order. The position in the data is
the step, so a checkpoint needs nothing else to resume exactly. The order differs from
the grain pipeline's (`jgan.data.images.make_image_loader`); the examples and their
preprocessing do not.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jgan.data.images import DataError, _PrepareExample
from jgan.data.permutation import index_shuffle

__all__ = ["MAX_BYTES", "batch_indices", "load_examples", "to_model_range"]

#: Refuse to hold more than this on one device; a larger dataset belongs in the
#: host pipeline (`data.on_device=False`).
MAX_BYTES = 4 * 2**30
_CHUNK = 4096


def _read(source, indices: list[int]) -> list[dict]:
    if hasattr(source, "__getitems__"):
        return list(source.__getitems__(indices))
    return [source[i] for i in indices]


def load_examples(source, *, resolution: int, channels: int, resize: str = "bicubic",
                  max_bytes: int = MAX_BYTES) -> dict[str, np.ndarray]:
    """Every example of `source`, preprocessed as the grain pipeline does.

    A source with an `as_arrays(resolution=, channels=)` method builds the arrays
    itself (Stacked MNIST composes them from MNIST's). Images already at `resolution` x `resolution` with `channels` channels stay uint8
    (`to_model_range` maps them to [-1, 1] exactly as the pipeline's x / 127.5 - 1);
    others go through the pipeline's conversion (resize, crop, channel change) and are
    kept as float32 in [-1, 1].

    Args:
      source: random-access source (`len`, `__getitem__`, optionally `__getitems__`)
        of `{'image': uint8 (H, W, C), 'label'?: int}`.
      resolution, channels: the run's image shape.
      resize: "bicubic" or "pad", as `jgan.data.images.resize_center_crop`.
      max_bytes: the most the arrays may take.
    Returns:
      `{'image': [N, R, R, C] uint8 or float32, 'label': [N] int32}`.
    Raises:
      DataError: an empty source, a bad record, or more than `max_bytes`.
    """
    n = len(source)
    if n == 0:
        raise DataError("load_examples: the data source is empty.")
    if hasattr(source, "as_arrays"):  # a source that builds its arrays faster itself
        arrays = source.as_arrays(resolution=resolution, channels=channels)
        nbytes = sum(a.nbytes for a in arrays.values())
        if nbytes > max_bytes:
            raise DataError(f"data.on_device: the dataset takes {nbytes / 2**30:.2f} GiB, over "
                            f"the {max_bytes / 2**30:.2f} GiB limit for one device; set "
                            "data.on_device=False to read it with the host pipeline.")
        return arrays
    prepare = _PrepareExample(resolution, channels, resize)
    first = np.asarray(_read(source, [0])[0]["image"])
    native = first.dtype == np.uint8 and first.shape in (
        (resolution, resolution, channels),) + (((resolution, resolution),) if channels == 1 else ())
    dtype = np.uint8 if native else np.float32
    nbytes = n * resolution * resolution * channels * np.dtype(dtype).itemsize
    if nbytes > max_bytes:
        raise DataError(
            f"data.on_device: the dataset takes {nbytes / 2**30:.2f} GiB as {np.dtype(dtype).name} "
            f"[{n}, {resolution}, {resolution}, {channels}], over the {max_bytes / 2**30:.2f} GiB "
            "limit for one device; set data.on_device=False to read it with the host pipeline.")
    images = np.empty((n, resolution, resolution, channels), dtype)
    labels = np.empty((n,), np.int32)
    for start in range(0, n, _CHUNK):
        for j, record in enumerate(_read(source, list(range(start, min(start + _CHUNK, n))))):
            i = start + j
            if native:
                image = np.asarray(record["image"])
                if image.dtype != np.uint8 or image.size != resolution * resolution * channels:
                    raise DataError(f"Example {i}: image {image.dtype} {image.shape}, but example 0 "
                                    f"was uint8 {first.shape}; mixed shapes need "
                                    "data.on_device=False.")
                images[i] = image.reshape(images.shape[1:])
                labels[i] = int(np.asarray(record.get("label", 0)))
            else:
                prepared = prepare(record)
                images[i], labels[i] = prepared["image"], prepared["label"]
    return {"image": images, "label": labels}


def to_model_range(images: jax.Array) -> jax.Array:
    """uint8 images -> float32 x / 127.5 - 1 in [-1, 1]; float images pass unchanged."""
    if images.dtype == jnp.uint8:
        return images.astype(jnp.float32) / 127.5 - 1.0
    return images.astype(jnp.float32)


def batch_indices(key: jax.Array, step: jax.Array, batch_size: int, num_examples: int) -> jax.Array:
    """Indices of the examples of step `step`'s batch (traceable in `step`).

    Positions `step * batch_size + [0, batch_size)` of the sequence that visits epoch
    e in the order `index_shuffle(fold_in(key, e), arange(num_examples), num_examples)`;
    only the batch's own positions of that order are computed (O(batch_size) per step,
    not the O(N log N) of forming the order).

    Args:
      key: the data order's key.
      step: int scalar, the training step.
      batch_size: examples per step (B <= num_examples).
      num_examples: N.
    Returns:
      `[batch_size]` int32 indices in `[0, N)`.
    """
    if batch_size > num_examples:
        raise ValueError(f"A batch of {batch_size} is larger than the {num_examples} examples.")
    step = jnp.asarray(step, jnp.int32)
    # step * B would overflow int32 in long runs: split step = q * N + r, so that
    # step * B = (q * B) * N + r * B and only r * B < N * B is formed.
    q, r = step // num_examples, step % num_examples
    start_epoch = q * batch_size + (r * batch_size) // num_examples
    start_offset = (r * batch_size) % num_examples
    offsets = start_offset + jnp.arange(batch_size)
    epochs = start_epoch + offsets // num_examples
    offsets = offsets % num_examples
    # Each position in its own epoch's order (a batch spans at most two epochs).
    indices = jax.vmap(lambda e, o: index_shuffle(jax.random.fold_in(key, e), o, num_examples))(
        epochs, offsets)
    return indices.astype(jnp.int32)
