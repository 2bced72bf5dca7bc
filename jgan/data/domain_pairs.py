"""Two image domains, A and B, for translation and adaptation: paired or unpaired.

A `DomainPair` is two random-access sources of ``{'image', 'label'}`` records and
whether record i of A corresponds to record i of B (*paired*: an edge map and its item,
a facade's labels and its photo) or the two are independent collections (*unpaired*:
horses and zebras). The input pipeline (`jgan.train.input.TwoDomainInput`) reads A and B
with two loaders over the same record order for a paired task (so the pairs stay
together) and with two independent orders for an unpaired one.

`domain_pair(name, ...)` names the tasks:

* ``edges2fashion`` (paired): Fashion-MNIST's edge maps -> its items
  (`jgan.data.derived_domains.EdgeMaps`).
* ``mnist2textured`` (unpaired): MNIST -> MNIST-M-style textured digits of the other
  half of the split, so that no digit appears in both domains.
* ``mnist2digits8`` (unpaired): MNIST -> scikit-learn's 8 x 8 digits framed as MNIST's.
* ``tfds:NAME`` (unpaired): a TFDS dataset with splits ``trainA``, ``trainB``,
  ``testA``, ``testB`` (``cycle_gan/horse2zebra`` and its siblings; prepared under
  ``data_dir``, never downloaded here).
* ``folder_pairs`` (paired): a folder of images with A and B side by side (pix2pix's
  datasets: each file is ``A|B``, twice as wide as high), `SideBySideFolder`; the split
  is a subfolder (``root/train``, ``root/val``, ...) where it exists.
* ``folder_domains`` (unpaired): CycleGAN's layout ``root/trainA``, ``root/trainB``,
  ``root/testA``, ``root/testB``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from jgan.data import derived_domains
from jgan.data.images import (DataError, ImageFolderSource, _resize_center_crop_pil,
                              _to_mode, tfds_source)

__all__ = ["DERIVED_TASKS", "DomainPair", "HalfOf", "SideBySideFolder", "View",
           "domain_pair"]

DERIVED_TASKS = ("edges2fashion", "mnist2textured", "mnist2digits8")


@dataclasses.dataclass(frozen=True)
class DomainPair:
    """Domains A and B.

    Attributes:
      a, b: random-access sources of ``{'image': uint8 (H, W, C), 'label': int}``.
      paired: record i of A corresponds to record i of B (then ``len(a) == len(b)``).
      description: what the domains are, for logs and errors.
    """
    a: Any
    b: Any
    paired: bool
    description: str

    def __post_init__(self):
        if self.paired and len(self.a) != len(self.b):
            raise DataError(f"{self.description}: a paired task needs as many A as B "
                            f"records, got {len(self.a)} and {len(self.b)}.")


class View:
    """The records of `source` with the image under `key` as ``'image'`` (and the
    label, 0 where there is none)."""

    def __init__(self, source, key: str):
        self.source, self.key = source, key

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        record = self.source[index]
        return {"image": record[self.key], "label": int(record.get("label", 0))}

    def __getitems__(self, indices) -> list[dict]:
        return [self[int(i)] for i in indices]

    def __repr__(self) -> str:
        return f"View({self.source!r}, {self.key!r})"


class HalfOf:
    """Records ``[start, start + len)`` of `source`: one half of a split, so that two
    domains made from one dataset share no example."""

    def __init__(self, source, half: int):
        n = len(source) // 2
        self.source, self.start, self.length, self.half = source, half * n, n, half

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of [0, {self.length}).")
        return self.source[self.start + int(index)]

    def __getitems__(self, indices) -> list[dict]:
        return [self[int(i)] for i in indices]

    def __repr__(self) -> str:
        return f"HalfOf({self.source!r}, {self.half})"


class SideBySideFolder(ImageFolderSource):
    """A folder of ``A|B`` images (pix2pix's aligned datasets): each file holds A in its
    left half and B in its right half. Every file is checked to be about twice as wide
    as high when the source is made.

    ``src[i]`` -> ``{'image_a', 'image_b': uint8 (R, R, C) (each half resized and
    centre-cropped as `ImageFolderSource` does), 'label': 0}``.

    Raises:
      DataError: as `ImageFolderSource`, and for a file whose width is not about twice
        its height (naming it and its size).
    """

    def __init__(self, root, *, resolution: int, channels: int = 3, skip_corrupt: bool = False):
        super().__init__(root, resolution=resolution, channels=channels,
                         skip_corrupt=skip_corrupt)
        for path in self.files:
            with Image.open(path) as im:
                width, height = im.size
            if abs(width - 2 * height) > 0.05 * width:
                raise DataError(f"{path}: {width} x {height} pixels is not two images side by "
                                "side (A|B, twice as wide as high), the layout of a paired "
                                "folder (data.name=folder_pairs).")

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        with Image.open(path) as im:
            im = _to_mode(ImageOps.exif_transpose(im), self.channels)
            half = im.width // 2
            halves = [im.crop((0, 0, half, im.height)), im.crop((half, 0, 2 * half, im.height))]
        a, b = (np.asarray(_resize_center_crop_pil(h, self.resolution), np.uint8)
                for h in halves)
        if a.ndim == 2:
            a, b = a[..., None], b[..., None]
        return {"image_a": a, "image_b": b, "label": 0}

    def __getitems__(self, indices) -> list[dict]:
        return [self[int(i)] for i in indices]


def domain_pair(name: str, *, split: str = "train", data_dir: str | None = None,
                root: str = "", resolution: int = 28, channels: int = 1,
                seed: int = 0) -> DomainPair:
    """The domains of task `name` (see the module docstring) for `split`.

    Args:
      name: a task of `DERIVED_TASKS`, ``tfds:NAME``, ``folder_pairs`` or
        ``folder_domains``.
      split: "train" or "test" (derived tasks, TFDS's ``trainA``/``testA``, the folders'
        ``trainA``/``testA`` or ``train``/``test`` subfolders).
      data_dir: TFDS data dir (MNIST and Fashion-MNIST for the derived tasks).
      root: the folder of the folder layouts.
      resolution, channels: the folder layouts' image size (derived tasks and TFDS give
        their own; the pipeline resizes).
      seed: the derived tasks' seed (textures).
    Raises:
      DataError: an unknown task, a missing dataset or folder (naming it).
    """
    if name == "edges2fashion":
        items = derived_domains.EdgeMaps(tfds_source("fashion_mnist", split=split,
                                                     data_dir=data_dir))
        return DomainPair(View(items, "edges"), View(items, "image"), True,
                          f"Fashion-MNIST {split}: edge maps -> items")
    if name == "mnist2textured":
        mnist = tfds_source("mnist", split=split, data_dir=data_dir)
        return DomainPair(HalfOf(mnist, 0),
                          derived_domains.TexturedDigits(HalfOf(mnist, 1), seed=seed),
                          False, f"MNIST {split} (first half) -> textured MNIST (second half)")
    if name == "mnist2digits8":
        return DomainPair(tfds_source("mnist", split=split, data_dir=data_dir),
                          derived_domains.SmallDigits(split, seed=seed), False,
                          f"MNIST {split} -> scikit-learn's 8x8 digits {split}")
    if name.startswith("tfds:"):
        dataset = name[len("tfds:"):]
        return DomainPair(tfds_source(dataset, split=f"{split}A", data_dir=data_dir),
                          tfds_source(dataset, split=f"{split}B", data_dir=data_dir), False,
                          f"{dataset} {split}A -> {split}B")
    if name == "folder_pairs":
        folder = Path(root) / split if (Path(root) / split).is_dir() else Path(root)
        pairs = SideBySideFolder(folder, resolution=resolution, channels=channels)
        return DomainPair(View(pairs, "image_a"), View(pairs, "image_b"), True,
                          f"side-by-side pairs in {folder}")
    if name == "folder_domains":
        folders = [Path(root) / f"{split}{d}" for d in "AB"]
        for folder in folders:
            if not folder.is_dir():
                raise DataError(f"{folder} does not exist: an unpaired folder "
                                f"(data.name=folder_domains) holds {split}A/ and {split}B/ "
                                "(CycleGAN's layout: trainA, trainB, testA, testB).")
        a, b = (ImageFolderSource(f, resolution=resolution, channels=channels)
                for f in folders)
        return DomainPair(a, b, False, f"{folders[0]} -> {folders[1]}")
    raise DataError(f"Unknown translation task {name!r}: one of {DERIVED_TASKS}, "
                    "'tfds:NAME', 'folder_pairs', 'folder_domains'.")
