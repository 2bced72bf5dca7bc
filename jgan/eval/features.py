"""Inception features of image batches: preprocessing + network, jitted, sharded.

One jitted function per (batch shape, dtype) does quantize (float inputs) -> resize ->
normalize -> :class:`InceptionV3` on the device mesh: the batch is split over the
mesh axis ``"data"`` (``NamedSharding(mesh, P('data'))``) and the parameters are
replicated, as in training. Every batch is padded to ``batch_size``, so a whole data
set compiles once.
"""
from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jgan.eval.inception import InceptionV3
from jgan.eval.inception_weights import InceptionWeights
from jgan.eval.preprocess import RESIZE_METHODS, preprocess_for_inception

__all__ = ["InceptionFeatures"]


class InceptionFeatures:
    """Maps images to FID Inception features (``pool3``, and ``logits`` when available).

    Args:
      weights: from :func:`jgan.eval.inception_weights.load_inception_weights`.
      resize_method: one of :data:`jgan.eval.preprocess.RESIZE_METHODS`
        (``"pil_bicubic"``: clean-fid; ``"tf_bilinear"``: the legacy TensorFlow FID).
      batch_size: images per device call, rounded up to a multiple of the mesh size.
      mesh: a ``jax.sharding.Mesh`` with an axis ``"data"`` over devices this process
        can address; default: all local devices.

    Call with images: uint8 (N, H, W, C), C in {1, 3}, values in [0, 255] (real data),
    or float (N, H, W, C) in [-1, 1] (generated images; quantized to uint8 first, as the
    reference does, see :func:`jgan.eval.preprocess.to_uint8`).
    Returns numpy ``{'pool3': float32 (N, 2048)}`` plus ``'logits': float32 (N, 1008)``
    when ``weights.has_logits``.
    """

    def __init__(self, weights: InceptionWeights, resize_method: str = "pil_bicubic",
                 batch_size: int = 64, mesh: Mesh | None = None):
        if resize_method not in RESIZE_METHODS:
            raise ValueError(f"resize_method must be one of {RESIZE_METHODS}, "
                             f"got {resize_method!r}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}.")
        if mesh is None:
            mesh = Mesh(np.array(jax.local_devices()), ("data",))
        if "data" not in mesh.axis_names:
            raise ValueError(f"mesh needs an axis 'data', has {mesh.axis_names}.")
        if not all(d.process_index == jax.process_index() for d in mesh.devices.flat):
            raise ValueError("mesh must hold only devices of this process (local devices).")
        shards = mesh.shape["data"]
        self.batch_size = -(-batch_size // shards) * shards
        self.resize_method = resize_method
        self.has_logits = weights.has_logits
        self.mesh = mesh
        self._batch_sharding = NamedSharding(mesh, P("data"))
        replicated = NamedSharding(mesh, P())
        self._params = jax.device_put({"params": weights.params}, replicated)
        model = InceptionV3(with_logits=weights.has_logits)

        def features(params, images):
            return model.apply(params, preprocess_for_inception(images, resize_method))

        self._features = jax.jit(features, in_shardings=(replicated, self._batch_sharding),
                                 out_shardings=self._batch_sharding)

    def __call__(self, images) -> dict[str, np.ndarray]:
        tagged = ((None, chunk) for chunk in self._chunks(self._check(images)))
        return _concatenate([feats for _, feats in self._stream(tagged)])

    def iterate(self, batches: Iterable) -> Iterator[dict[str, np.ndarray]]:
        """Features of each batch of an iterable, in order, one dict per batch.

        Batches may have any length (each is split / padded to ``batch_size``). A chunk
        is dispatched before the previous one's features are fetched, so the host's
        work (reading, decoding the next batch) overlaps the device's.
        """
        def tagged():
            for batch in batches:
                chunks = self._chunks(self._check(batch))
                for i, chunk in enumerate(chunks):
                    yield i == len(chunks) - 1, chunk

        parts = []
        for last, feats in self._stream(tagged()):
            parts.append(feats)
            if last:
                yield _concatenate(parts)
                parts = []

    def lower(self, images) -> jax.stages.Lowered:
        """The jitted computation lowered for a batch like ``images[:batch_size]``."""
        images = self._check(images)
        spec = jax.ShapeDtypeStruct((self.batch_size,) + images.shape[1:], images.dtype,
                                    sharding=self._batch_sharding)
        return self._features.lower(self._params, spec)

    def _check(self, images) -> np.ndarray | jax.Array:
        if not isinstance(images, jax.Array):
            images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(f"images must be (N, H, W, C) with C in {{1, 3}}, "
                             f"got shape {images.shape}.")
        if not (images.dtype == np.uint8 or jnp.issubdtype(images.dtype, jnp.floating)):
            raise ValueError(f"images must be uint8 in [0, 255] or float in [-1, 1], "
                             f"got dtype {images.dtype}.")
        return images

    def _chunks(self, images) -> list:
        # An empty input still makes one (all-padding) chunk: its output has 0 rows.
        return [images[i:i + self.batch_size]
                for i in range(0, max(len(images), 1), self.batch_size)]

    def _stream(self, tagged_chunks: Iterable) -> Iterator[tuple[object, dict]]:
        """(tag, numpy features) per chunk; at most two chunks in flight on the device."""
        pending = collections.deque()
        for tag, chunk in tagged_chunks:
            pending.append((tag, len(chunk), self._run_padded(chunk)))
            if len(pending) > 1:
                yield self._fetch(*pending.popleft())
        while pending:
            yield self._fetch(*pending.popleft())

    def _run_padded(self, chunk) -> dict[str, jax.Array]:
        missing = self.batch_size - chunk.shape[0]
        if missing:
            pad = [(0, missing)] + [(0, 0)] * (chunk.ndim - 1)
            chunk = jnp.pad(chunk, pad) if isinstance(chunk, jax.Array) else np.pad(chunk, pad)
        return self._features(self._params, jax.device_put(chunk, self._batch_sharding))

    @staticmethod
    def _fetch(tag, count: int, features: dict) -> tuple[object, dict[str, np.ndarray]]:
        return tag, {k: np.asarray(v)[:count] for k, v in features.items()}


def _concatenate(parts: list[dict]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
