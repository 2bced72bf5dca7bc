"""Stacked MNIST: three MNIST digits in the R, G and B channels, 1,000 modes.

The dataset of the mode-collapse benchmarks of Srivastava et al. 2017 (VEEGAN) and
Lin et al. 2018 (PacGAN, "The power of two samples in generative adversarial
networks"), after Metz et al. 2017 (Unrolled GANs): each example stacks three MNIST
images, drawn independently and uniformly at random with replacement, one per
channel. Its mode is the triple of the three digits, ``100 * d_R + 10 * d_G + d_B``.

Construction here: a seeded ``np.random.default_rng(seed)`` draws a table of MNIST
indices of shape ``(num_examples, 3)``, uniform over the split, with replacement;
example ``i`` reads the three MNIST images of row ``i``. The table is the whole
dataset (12 bytes an example), so the source is deterministic, random-access and
cheap to pickle for grain workers. PacGAN's code draws from train and test pooled
(70,000 images); here one split is used, so train and test stay separate.
"""
from __future__ import annotations

import operator

import numpy as np

from jgan.data.images import DataError, tfds_source

__all__ = ["DEFAULT_NUM_EXAMPLES", "StackedMNISTSource", "stacked_mnist_source"]

#: 128 examples per mode on average. The VEEGAN setting of PacGAN trains on a fixed
#: 25,600; Unrolled GAN draws fresh triples every batch. A larger fixed set is closer
#: to the latter and costs nothing (the examples are built on read), while an epoch
#: stays finite so grain's shuffled epochs and checkpoints work as for MNIST.
DEFAULT_NUM_EXAMPLES = 128_000


class StackedMNISTSource:
    """Random-access Stacked MNIST over an MNIST source (``len``, ``src[i]``).

    ``src[i]`` -> ``{'image': uint8 (28, 28, 3), 'label': int}`` where channel ``c``
    is MNIST image ``mnist_indices[i, c]`` and ``label = 100 * d_0 + 10 * d_1 + d_2``
    with ``d_c`` that image's MNIST label (0..999).

    Args:
      mnist: random-access source of ``{'image': uint8 (28, 28, 1), 'label': int}``
        (e.g. ``tfds_source('mnist', split=...)``); must be picklable for grain
        workers.
      num_examples: number of stacked examples (default
        :data:`DEFAULT_NUM_EXAMPLES`).
      seed: seed of the index table; the same (MNIST split, num_examples, seed)
        gives the same dataset.

    Attributes:
      mnist_indices: int32 (num_examples, 3), the MNIST index of each channel.
    """

    def __init__(self, mnist, *, num_examples: int | None = None, seed: int = 0):
        num_mnist = len(mnist)
        if num_mnist == 0:
            raise DataError("StackedMNISTSource: the MNIST source is empty.")
        if num_examples is None:
            num_examples = DEFAULT_NUM_EXAMPLES
        if not isinstance(num_examples, (int, np.integer)) or num_examples <= 0:
            raise DataError(f"StackedMNISTSource: num_examples must be a positive int, "
                            f"got {num_examples!r}.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataError(f"StackedMNISTSource: seed must be a non-negative int, got {seed!r}.")
        self.mnist = mnist
        self.seed = int(seed)
        rng = np.random.default_rng(self.seed)
        self.mnist_indices = rng.integers(0, num_mnist, size=(int(num_examples), 3),
                                          dtype=np.int64).astype(np.int32)

    def __len__(self) -> int:
        return len(self.mnist_indices)

    def _index(self, index) -> int:
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"StackedMNISTSource index {index} out of range [0, {n})")
        return i

    @staticmethod
    def _stack(records: list) -> dict:
        channels, digits = [], []
        for record in records:
            image = np.asarray(record["image"])
            if image.dtype != np.uint8 or image.shape not in ((28, 28, 1), (28, 28)):
                raise DataError("StackedMNISTSource: MNIST records must hold 'image' uint8 "
                                f"(28, 28, 1), got {image.dtype} {image.shape}.")
            channels.append(image.reshape(28, 28))
            digits.append(int(record["label"]))
        label = 100 * digits[0] + 10 * digits[1] + digits[2]
        return {"image": np.stack(channels, axis=-1), "label": label}

    def __getitem__(self, index) -> dict:
        """``{'image': uint8 (28, 28, 3), 'label': int}`` of example ``index``."""
        row = self.mnist_indices[self._index(index)]
        return self._stack([self.mnist[int(j)] for j in row])

    def __getitems__(self, indices) -> list[dict]:
        """``[self[i] for i in indices]``, reading each MNIST image once (batched)."""
        rows = self.mnist_indices[[self._index(i) for i in indices]]
        unique, inverse = np.unique(rows, return_inverse=True)
        unique = [int(j) for j in unique]
        if hasattr(self.mnist, "__getitems__"):
            records = self.mnist.__getitems__(unique)
        else:
            records = [self.mnist[j] for j in unique]
        inverse = inverse.reshape(rows.shape)
        return [self._stack([records[k] for k in row]) for row in inverse]

    def as_arrays(self, *, resolution: int = 28, channels: int = 3) -> dict:
        """The whole dataset as arrays, each MNIST image read once.

        Returns:
          `{'image': uint8 [N, 28, 28, 3], 'label': int32 [N]}`, equal to
          `[self[i] for i in range(N)]` stacked.
        Raises:
          DataError: a resolution other than 28 or channels other than 3.
        """
        if (resolution, channels) != (28, 3):
            raise DataError(f"Stacked MNIST in memory is 28x28x3, not {resolution}x{resolution}"
                            f"x{channels}.")
        from jgan.data.in_memory import load_examples
        mnist = load_examples(self.mnist, resolution=28, channels=1)
        digits = mnist["image"][..., 0][self.mnist_indices]          # [N, 3, 28, 28]
        labels = mnist["label"][self.mnist_indices]                  # [N, 3]
        return {"image": np.ascontiguousarray(np.moveaxis(digits, 1, -1)),
                "label": (labels @ np.array([100, 10, 1], np.int32)).astype(np.int32)}

    def __repr__(self) -> str:
        return (f"StackedMNISTSource(len={len(self)}, seed={self.seed}, "
                f"mnist_len={len(self.mnist)})")


def stacked_mnist_source(split: str, data_dir: str | None = None, *,
                         num_examples: int | None = None, seed: int = 0) -> StackedMNISTSource:
    """Stacked MNIST over the prepared TFDS ``mnist`` split ``split``.

    Args:
      split: TFDS split string of MNIST (``'train'``, ``'test'``, ``'train[:90%]'``).
      data_dir: TFDS data dir holding ``mnist/3.0.1`` (``None``: the TFDS default).
      num_examples: stacked examples (``None``: :data:`DEFAULT_NUM_EXAMPLES`).
      seed: seed of the digit choice (the dataset, not the training order).

    Returns:
      A :class:`StackedMNISTSource`: ``src[i]`` -> ``{'image': uint8 (28, 28, 3),
      'label': int in [0, 1000)}``.

    Raises:
      DataError: MNIST is not prepared under ``data_dir`` (never downloads), bad
        split, or bad ``num_examples`` / ``seed``.
    """
    return StackedMNISTSource(tfds_source("mnist", split=split, data_dir=data_dir),
                              num_examples=num_examples, seed=seed)
