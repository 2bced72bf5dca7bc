"""Second domains derived offline from MNIST and Fashion-MNIST, for image-to-image
translation and domain adaptation that needs no download.

Each is a random-access source (``len(src)``, ``src[i]``) of dicts of uint8
``(H, W, C)`` images, built on read from a TFDS source and, where it needs natural
texture, from the two photographs scikit-learn ships (``load_sample_images``:
``china.jpg`` and ``flower.jpg``, 427 x 640 RGB). Example ``i`` depends only on the
underlying record ``i``, the seed and ``i`` (its generator is
``np.random.default_rng((seed, i))``), so a source is deterministic, random-access and
cheap to pickle for grain workers.

* :class:`EdgeMaps` -- paired: Fashion-MNIST items and their edge maps (a fixed Sobel
  detector), the pix2pix "edges to photos" task at 28 px.
* :class:`TexturedDigits` -- MNIST blended with crops of natural images as MNIST-M is
  (Ganin & Lempitsky 2015): ``|crop - digit|`` per colour channel.
* :class:`SmallDigits` -- a second writer population: scikit-learn's 1,797 handwritten
  digits (8 x 8, 16 grey levels, 43 writers of UCI's optdigits) framed as MNIST frames
  its digits (20 x 20 bicubic in a 28 x 28 field), the role USPS plays for MNIST.
* :class:`AttributeDigits` -- MNIST with three attributes for StarGAN: foreground
  colour (red, green or blue), background (plain or textured), stroke (thin or thick).
"""
from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from scipy import ndimage

from jgan.data.images import DataError

__all__ = ["ATTRIBUTE_NAMES", "AttributeDigits", "EDGE_THRESHOLD", "EdgeMaps",
           "SmallDigits", "TexturedDigits", "edge_map", "natural_images"]

#: Sobel gradient magnitude (of the image in [0, 1]) above which a pixel is an edge.
#: The largest magnitude of a step edge is 4 (and 4 sqrt(2) diagonally); 1 marks a
#: contrast of a quarter of the range across three pixels.
EDGE_THRESHOLD = 1.0

#: StarGAN's domain labels, in the order of the attribute vector.
ATTRIBUTE_NAMES = ("red", "green", "blue", "textured", "thick")
_COLOURS = np.array([[255, 40, 40], [40, 255, 40], [60, 90, 255]], np.float32)


@functools.lru_cache(maxsize=1)
def natural_images() -> tuple[np.ndarray, ...]:
    """scikit-learn's two sample photographs, uint8 ``(427, 640, 3)`` each."""
    from sklearn.datasets import load_sample_images
    return tuple(np.asarray(image, np.uint8) for image in load_sample_images().images)


def _crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random ``(size, size, 3)`` float32 crop of a random sample photograph."""
    photo = natural_images()[rng.integers(len(natural_images()))]
    top = rng.integers(photo.shape[0] - size + 1)
    left = rng.integers(photo.shape[1] - size + 1)
    return photo[top:top + size, left:left + size].astype(np.float32)


def _grey(image: np.ndarray) -> np.ndarray:
    """uint8 ``(H, W, C)`` -> float32 ``(H, W)`` in [0, 1]."""
    return np.asarray(image, np.float32).mean(axis=-1) / 255.0


def edge_map(image: np.ndarray, threshold: float = EDGE_THRESHOLD) -> np.ndarray:
    """Binary edges of an image: ``255`` where the Sobel gradient magnitude of its grey
    level in [0, 1] exceeds ``threshold``, else 0.

    Args:
      image: uint8 ``(H, W, C)``.
    Returns:
      uint8 ``(H, W, 1)``.
    """
    grey = _grey(image)
    magnitude = np.hypot(ndimage.sobel(grey, axis=0), ndimage.sobel(grey, axis=1))
    return np.where(magnitude > threshold, 255, 0).astype(np.uint8)[..., None]


class _Derived:
    """A source built record by record from another random-access source."""

    def __init__(self, base, *, seed: int = 0):
        if len(base) == 0:
            raise DataError(f"{type(self).__name__}: the underlying source is empty.")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise DataError(f"{type(self).__name__}: seed must be an int >= 0, got {seed!r}.")
        self.base = base
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.base)

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, int(index)))

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(f"{type(self).__name__}: index {index} out of [0, {len(self)}).")
        return self._make(self.base[int(index)], int(index))

    def __getitems__(self, indices) -> list[dict]:
        return [self[int(i)] for i in indices]

    def __repr__(self) -> str:  # grain writes it into iterator states
        return f"{type(self).__name__}({self.base!r}, seed={self.seed})"


class EdgeMaps(_Derived):
    """Paired edges -> items: ``src[i]`` -> ``{'image': the item (uint8 (H, W, C)),
    'edges': its :func:`edge_map` (uint8 (H, W, 1)), 'label': int}``."""

    def _make(self, record: dict, index: int) -> dict:
        image = np.asarray(record["image"], np.uint8)
        return {"image": image, "edges": edge_map(image), "label": int(record["label"])}


class TexturedDigits(_Derived):
    """MNIST-M-style digits: ``src[i]`` -> ``{'image': uint8 (H, W, 3), 'label': int}``,
    ``|crop - digit|`` per channel with a random crop of a sample photograph (the digit
    inverts the texture where it is drawn)."""

    def _make(self, record: dict, index: int) -> dict:
        digit = np.asarray(record["image"], np.float32)
        crop = _crop(self._rng(index), digit.shape[0])
        image = np.abs(crop - digit).round().astype(np.uint8)
        return {"image": image, "label": int(record["label"])}


class AttributeDigits(_Derived):
    """MNIST with StarGAN's three attributes drawn per example.

    ``src[i]`` -> ``{'image': uint8 (H, W, 3), 'label': the digit, 'attributes':
    float32 (5,)}`` over :data:`ATTRIBUTE_NAMES`: a one-hot foreground colour (red,
    green, blue), textured background (a dimmed photograph crop; else black), thick
    stroke (the digit dilated by a 3 x 3 grey dilation; else eroded by one 2 x 2, so
    thin strokes stay visible).
    """

    def _make(self, record: dict, index: int) -> dict:
        rng = self._rng(index)
        colour, textured, thick = rng.integers(3), rng.integers(2), rng.integers(2)
        digit = np.asarray(record["image"], np.float32)[..., 0]
        stroke = (ndimage.grey_dilation(digit, size=(3, 3)) if thick
                  else ndimage.grey_erosion(digit, size=(2, 2)))
        alpha = (stroke / 255.0)[..., None]
        background = (0.5 * _crop(rng, digit.shape[0]) if textured
                      else np.zeros(digit.shape + (3,), np.float32))
        image = alpha * _COLOURS[colour] + (1.0 - alpha) * background
        attributes = np.zeros(len(ATTRIBUTE_NAMES), np.float32)
        attributes[colour], attributes[3], attributes[4] = 1.0, textured, thick
        return {"image": image.round().clip(0, 255).astype(np.uint8),
                "label": int(record["label"]), "attributes": attributes}


class SmallDigits:
    """scikit-learn's 8 x 8 handwritten digits, framed as MNIST's.

    Each digit (16 grey levels) is scaled to [0, 255], resized bicubically to 20 x 20
    and centred in a 28 x 28 black field, as MNIST's digits are normalized to 20 x 20
    boxes. The 1,797 digits are split by a fixed permutation (``seed``): "train" the
    first 1,500, "test" the other 297.

    ``src[i]`` -> ``{'image': uint8 (28, 28, 1), 'label': int}``.
    """

    SPLITS = {"train": slice(0, 1500), "test": slice(1500, None)}

    def __init__(self, split: str = "train", *, seed: int = 0):
        if split not in self.SPLITS:
            raise DataError(f"SmallDigits: split {split!r} is not one of {sorted(self.SPLITS)}.")
        from sklearn.datasets import load_digits
        digits = load_digits()
        order = np.random.default_rng(seed).permutation(len(digits.target))[self.SPLITS[split]]
        self.images = np.stack([_frame(digits.images[i]) for i in order])
        self.labels = digits.target[order].astype(np.int64)
        self.split, self.seed = split, seed

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"image": self.images[index], "label": int(self.labels[index])}

    def __getitems__(self, indices) -> list[dict]:
        return [self[int(i)] for i in indices]

    def __repr__(self) -> str:
        return f"SmallDigits(split={self.split!r}, seed={self.seed})"


def _frame(digit: np.ndarray) -> np.ndarray:
    """An 8 x 8 digit of levels 0..16 -> uint8 (28, 28, 1), 20 x 20 centred."""
    small = Image.fromarray(np.round(digit * (255.0 / 16.0)).astype(np.uint8))
    field = np.zeros((28, 28), np.uint8)
    field[4:24, 4:24] = np.asarray(small.resize((20, 20), Image.Resampling.BICUBIC))
    return field[..., None]
