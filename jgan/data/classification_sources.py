"""Labelled image sources for the evaluation classifiers (`experiments/configs/classifier_*.py`).

A classifier that scores translated images must read the domain they are translated
to, so besides a TFDS dataset it trains on:

* one domain of a translation task (`data.kind="translation_domain"`, `data.name=
  "TASK:a"` or `"TASK:b"`; `jgan.data.domain_pairs`), with that domain's labels: for
  instance the textured digits of `mnist2textured:b`, which score CycleGAN's MNIST ->
  textured translations;
* one attribute group of StarGAN's `AttributeDigits` (`data.kind="attribute_digits"`,
  `data.target`): the digit, the foreground colour, the background or the stroke.

Each source gives ``{'image': uint8 (H, W, C), 'label': int}`` records, as TFDS does.
"""
from __future__ import annotations

import ml_collections
import numpy as np

from jgan.data import derived_domains
from jgan.data.domain_pairs import domain_pair
from jgan.data.images import DataError, tfds_source

__all__ = ["KINDS", "TARGET_CLASSES", "AttributeTarget", "classification_source",
           "target_classes"]

KINDS = ("tfds", "translation_domain", "attribute_digits")

#: `data.target` of AttributeDigits -> its number of classes.
TARGET_CLASSES = {"label": 10, "colour": 3, "background": 2, "stroke": 2}


def attribute_target(attributes: np.ndarray, target: str) -> np.ndarray:
    """Class indices of an AttributeDigits attribute group, from attribute vectors
    `[..., 5]` (`derived_domains.ATTRIBUTE_NAMES`): colour 0/1/2 = red/green/blue,
    background 1 = textured, stroke 1 = thick."""
    attributes = np.asarray(attributes)
    if target == "colour":
        return np.argmax(attributes[..., :3], -1)
    index = {"background": 3, "stroke": 4}[target]
    return (attributes[..., index] > 0.5).astype(np.int64)


class AttributeTarget:
    """``src[i]`` of AttributeDigits -> ``{'image', 'label': its `target` class}``."""

    def __init__(self, source, target: str):
        self.source, self.target = source, target

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        record = self.source[index]
        label = (record["label"] if self.target == "label"
                 else int(attribute_target(record["attributes"], self.target)))
        return {"image": record["image"], "label": int(label)}

    def __getitems__(self, indices) -> list[dict]:
        return [self[i] for i in indices]

    def __repr__(self) -> str:  # grain writes it into iterator states
        return f"AttributeTarget({self.source!r}, {self.target!r})"


def target_classes(data: ml_collections.ConfigDict) -> int | None:
    """The number of classes `data` defines (None: the dataset's own, not checked here)."""
    if data.kind == "attribute_digits":
        return TARGET_CLASSES[data.get("target", "label")]
    return None


def classification_source(data: ml_collections.ConfigDict, split: str, *, seed: int = 0):
    """The labelled source a classifier config's `data` section names, for `split`.

    Args:
      data: `kind` (one of `KINDS`), `name`, `data_dir`, `target` (attribute_digits).
      split: "train", "test" or a TFDS slice ("test[:72]"; TFDS only).
      seed: the derived data's seed (textures, attributes), as the GAN run's
        `config.seed` chooses them.
    Raises:
      DataError: an unknown kind, task, domain or target (naming it).
    """
    data_dir = data.data_dir or None
    if data.kind == "tfds":
        return tfds_source(data.name, split=split, data_dir=data_dir)
    if data.kind == "attribute_digits":
        target = data.get("target", "label")
        if target not in TARGET_CLASSES:
            raise DataError(f"data.target={target!r} is not one of {tuple(TARGET_CLASSES)}.")
        digits = derived_domains.AttributeDigits(
            tfds_source("mnist", split=split, data_dir=data_dir), seed=seed)
        return AttributeTarget(digits, target)
    if data.kind == "translation_domain":
        task, _, domain = data.name.rpartition(":")
        if domain not in ("a", "b") or not task:
            raise DataError(f"data.name={data.name!r}: a translation domain is 'TASK:a' or "
                            "'TASK:b' (e.g. 'mnist2textured:b').")
        pair = domain_pair(task, split=split, data_dir=data_dir, root=data.get("root", ""),
                           resolution=data.resolution, channels=data.channels, seed=seed)
        return pair.a if domain == "a" else pair.b
    raise DataError(f"data.kind={data.kind!r} is not one of {KINDS}.")
